// The spindle scheduler: a work-stealing runtime for root tasks.
//
// ## Model
//
// A runtime has N workers (N = 1 for current_thread). Each worker owns:
//   - a bounded local run queue (local_queue.hpp; 256 slots in production),
//     which only the worker pushes to and pops from, and from which other
//     workers may steal half;
//   - a LIFO slot: the task most recently woken or spawned by the task the
//     worker is running. It runs next, on a warm cache, which is what makes
//     request/response pairs (ping-pong) and spawn chains fast. It cannot be
//     stolen. It is capped: after kMaxLifoPolls LIFO polls in a row its
//     task goes to the back of the queue, so two tasks that keep waking
//     each other cannot starve the rest of the queue;
//   - an asio::io_context: the reactor and timers of the I/O objects created
//     on that worker, and the place where the worker sleeps.
// The runtime shares an injection queue (injection_queue.hpp) for tasks
// spawned or woken from outside the workers and for overflow, the Idle
// state (idle.hpp), and the owned-task list (owned_tasks.hpp).
//
// ## Where a runnable task goes
//   - woken or spawned on a worker thread of this runtime: that worker's
//     LIFO slot (the previous occupant moves to the back of the local queue);
//     a task woken during its own poll goes to the back of the local queue
//     instead, so that it really lets others run; a yield_now() is held
//     back further, until the worker next polls its io_context (when it
//     runs out of local work, or at the latest after event_interval polls)
//     and then goes to the back of the queue: a task yielding in a loop
//     cannot hold back its worker's timers and I/O;
//   - a full local queue moves half of itself, plus the new task, to the
//     injection queue in one batch (an overflow);
//   - from any other thread: the injection queue.
// Whenever a task is queued where another worker could take it, and no
// worker is searching, one sleeping worker is woken (Idle::worker_to_notify).
//
// ## The worker loop (worker.cpp)
//   1. Every event_interval polls, poll the io_context without blocking
//      (timers and I/O completions wake tasks).
//   2. Take the next task: the injection queue first every
//      global_queue_interval turns (so remote spawns are not starved by a
//      busy local queue), else the LIFO slot, else the local queue, else a
//      batch from the injection queue (len / N + 1 tasks, at most half a
//      local queue). Poll it, then up to kMaxLifoPolls tasks from the LIFO slot.
//   3. Nothing local: poll the io_context once and requeue the tasks that
//      yielded meanwhile; if that gave nothing either, become a *searcher*
//      (at most half of the workers search at once) and try to steal half
//      of a random victim's queue, visiting every other worker, then the
//      injection queue.
//   4. Still nothing: park. The worker enters the sleeping list, and if it
//      was the last searcher it checks every queue once more and wakes a
//      worker if any holds a task (the pusher's tail store and the sleeper's
//      state update are both seq_cst: one of the two sees the other, so no
//      task is stranded). It then blocks in io_context::run_one(): a wake
//      is a no-op handler posted to that io_context; a timer or I/O
//      completion also returns from run_one, and the worker gets up if that
//      made local work. A worker woken by another starts out searching; when
//      a searcher finds work and was the last searcher it wakes one more, so
//      that wake-ups chain as long as work is left.
//   5. A worker stuck in one long poll cannot run its own io_context, so the
//      timers and I/O registered there would wait for that poll to end even
//      with other workers idle. A parked worker therefore also wakes every
//      kStuckCheckPeriod (20 ms; not on a single-worker runtime) and, for
//      any worker it finds inside the same poll as at its previous look,
//      runs that worker's ready handlers itself (an io_context may be run by
//      several threads); the tasks they wake are queued on the helper.
//   6. The first such period that passes with nothing to do also trims the
//      worker's cache of task blocks (task_alloc_trim); a single worker wakes
//      once for that, then sleeps until something happens.

//
// ## One poll (Worker::poll)
// The RUNNING bit gives the worker the frame exclusively. It resumes the
// task's resume point (the innermost awaiter that suspended; nested Tasks
// run inline by symmetric transfer) until control returns. If the root
// frame is done the output is stored and the task completes; otherwise the
// task becomes idle, unless it was woken during the poll (then it is
// re-queued as a yield) or aborted (then its frame is destroyed now).
// Instrumented tasks (TaskHooks) get their clock readings here; others pay
// no clock read.
//
// ## Shutdown protocol (Core::shutdown)
//   1. Set the shutdown flag, then close the owned-task list and the
//      injection queue under their locks: from here on spawn() throws
//      RuntimeShutdown, and a wake from outside drops its reference instead
//      of queueing (the woken task is destroyed in step 4 anyway). Closing
//      under the same locks that step 4 drains with is what guarantees no
//      task is bound after the drain.
//   2. Stop every io_context: a parked worker's run_one returns at once, and
//      every loop checks the flag between polls. A running poll is never
//      interrupted (C++ cannot preempt a coroutine).
//   3. Join the worker threads (bounded by shutdown_timeout; a worker still
//      inside a poll at the deadline means a task that never yields: the
//      state is then leaked on purpose, since destroying frames under a
//      running task would be a use-after-free). Then shut the blocking pool:
//      its queued jobs never start (step 4 cancels them); running jobs are
//      waited for until the same deadline, and any still running then are
//      abandoned (reported; the state is leaked for them, as above).
//   4. Pop every task from the owned list and destroy its frame, on this
//      thread, exactly once: the RUNNING bit is claimed first, so a task is
//      destroyed by whoever holds it and never twice. Each completes as
//      cancelled, which wakes its JoinHandle's waiter with Cancelled.
//      Frames' destructors may wake other tasks (dropping their references,
//      step 1) but cannot spawn.
//   5. Drain the local queues, LIFO slots and injection queue, dropping the
//      scheduler references they hold (every task in them is complete).
//   6. Close the io_contexts: pending handlers (timer waits, I/O) are
//      destroyed and release the task references their wakers hold. This
//      must come after step 4 (those tasks must be complete) and before the
//      Core can be freed. An io_context itself is freed with the last
//      Executor that refers to it: an I/O object that outlives the runtime
//      (a task's result, a global) is still destroyed safely.
//   7. The Core itself is freed when its last reference goes: the Runtime's,
//      the Handles', and one per task cell still held by a JoinHandle or a
//      Waker somewhere. Those cells are complete, so using them never
//      touches the workers again.

#include "scheduler.hpp"

#include <pthread.h>

#include <algorithm>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "task_state.hpp"
#include "worker.hpp"

namespace spindle::detail {

namespace {
std::atomic<TaskId> g_next_task_id_block{1};
constexpr TaskId kTaskIdBlock = 1024;

std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "(an exception not derived from std::exception)";
  }
}
}  // namespace

TaskId next_task_id() noexcept {
  // Plain thread-locals: each thread hands out ids from its own block.
  thread_local TaskId next = 0;
  thread_local TaskId end = 0;
  if (next == end) {
    // relaxed: only uniqueness matters.
    next = g_next_task_id_block.fetch_add(kTaskIdBlock, std::memory_order_relaxed);
    end = next + kTaskIdBlock;
  }
  return next++;
}

void fatal(const char* message) noexcept {
  std::fprintf(stderr, "spindle: fatal: %s\n", message);
  std::fflush(stderr);
  std::abort();
}

Core::Core(Config config)
    : config_(std::move(config)),
      idle_(config_.workers),
      owned_(config_.workers),
      blocking_(*this, config_.max_blocking_threads, config_.thread_keep_alive,
                config_.thread_name),
      started_(now()) {

  workers_.reserve(config_.workers);
  for (std::size_t i = 0; i < config_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i));
  }
}

Core::~Core() = default;

void Core::start() {
  if (config_.current_thread) return;
  threads_.reserve(workers_.size());
  for (auto& w : workers_) {
    Worker* worker = w.get();
    threads_.emplace_back([worker] { worker->run_thread(); });
  }
}

void Core::unref(std::int64_t n) noexcept {
  // acq_rel: every user's accesses happen-before the delete.
  if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) delete this;
}

// Task cells take their references on the Core in batches per worker, so
// that spawning and freeing a task does not write the one shared counter
// (see Worker::ref_credit_): refs_ = outside references + live cells +
// every worker's unused credit + its unreturned debt.
void Core::cell_ref() noexcept {
  ThreadContext& ctx = tls_context;
  if (ctx.core == this && ctx.worker != nullptr) {
    Worker& w = *ctx.worker;
    if (w.ref_credit_ == 0) {
      refs_.fetch_add(kRefBatch, std::memory_order_relaxed);  // we already hold one: relaxed
      w.ref_credit_ = kRefBatch;
    }
    --w.ref_credit_;
    return;
  }
  ref();
}

void Core::cell_unref() noexcept {
  ThreadContext& ctx = tls_context;
  if (ctx.core == this && ctx.worker != nullptr) {
    Worker& w = *ctx.worker;
    if (++w.ref_debt_ == kRefBatch) {
      w.ref_debt_ = 0;
      unref(kRefBatch);  // cannot be the last: this worker's runtime is alive
    }
    return;
  }
  unref();
}

void Core::flush_refs(Worker& w) noexcept {
  const std::int64_t n = static_cast<std::int64_t>(w.ref_credit_) + w.ref_debt_;
  w.ref_credit_ = 0;
  w.ref_debt_ = 0;
  if (n != 0) unref(n);
}

// ---- tasks ---------------------------------------------------------------------

void Core::spawn(CellBase* cell, TaskHooks* hooks, SourceLocation loc) {
  bind_new(cell, hooks, loc);
  ThreadContext& ctx = tls_context;
  if (ctx.core == this && ctx.worker != nullptr) {
    ctx.worker->stats().spawns.add();
  } else {
    remote_spawns_.fetch_add(1, std::memory_order_relaxed);
  }
  schedule(cell, false);
}

void Core::spawn_blocking(CellBase* cell, SourceLocation loc) {
  cell->blocking_ = true;
  bind_new(cell, nullptr, loc);
  remote_spawns_.fetch_add(1, std::memory_order_relaxed);
  bool queued = false;
  try {
    queued = blocking_.push(cell);
  } catch (...) {
    // No thread could be started for it: cancel it here, as nobody else
    // will, and release the reference its JoinHandle would have held.
    const bool claimed = claim_to_cancel(cell);
    if (claimed) {
      cancel_task(cell, true);
    } else {
      drop_task_ref(cell);  // shutdown got to it first
    }
    if (cell->unset_join_interest()) cell->vtable_->drop_output(cell);
    drop_task_ref(cell);
    throw;
  }
  // Refused only when the pool shut down after the bind: shutdown step 4
  // cancels the task (its JoinHandle reports Cancelled); drop the reference
  // the pool would have held.
  if (!queued) drop_task_ref(cell);
}

void Core::bind_new(CellBase* cell, TaskHooks* hooks, SourceLocation loc) {
  cell->core_ = this;
  cell_ref();  // the cell's reference on the Core
  cell->hooks_ = hooks;
  cell->group_id_ = hooks != nullptr ? hooks->group_id() : 0;
  cell->location_ = loc;
  Instant spawned{};
  if (hooks != nullptr || config_.time_every_poll) {
    spawned = now();  // one reading: the hooks' spawn time and the first poll's woken_at
    cell->spawned_at_ = cell->woken_at_ = spawned;
  }
  cell->wake_kind_ = WakeKind::kFirstPoll;
  cell->id_ = next_task_id();
  // Owners: the owned list, the scheduler (queued now), the JoinHandle.
  // relaxed: the cell reaches other threads through a queue (release/mutex).
  cell->state_.store(kNotified | kJoinInterest | 3 * kRefOne, std::memory_order_relaxed);
  if (hooks != nullptr) hooks->on_spawn(TaskInfo{cell->id_, loc}, spawned);
  ThreadContext& ctx = tls_context;
  const bool on_worker = ctx.core == this && ctx.worker != nullptr;
  if (!owned_.bind(cell, on_worker ? ctx.worker->index() : SIZE_MAX)) {
    if (hooks != nullptr) hooks->on_drop(true);
    dealloc(cell);  // destroys the never-polled frame
    throw RuntimeShutdown();
  }
}

void Core::schedule(CellBase* task, bool is_yield) noexcept {
  ThreadContext& ctx = tls_context;
  if (ctx.core == this && ctx.worker != nullptr) {
    ctx.worker->schedule_local(task, is_yield);
  } else {
    schedule_remote(task);
  }
}

void Core::schedule_remote(CellBase* task) noexcept {
  remote_schedules_.fetch_add(1, std::memory_order_relaxed);
  if (!inject_.push(task)) {
    // Shutting down: the task is (or will be) destroyed by shutdown step 4.
    drop_task_ref(task);
    return;
  }
  notify_parked();
}

void Core::drop_task_ref(CellBase* task) noexcept {
  if (task->ref_dec()) dealloc(task);
}

void Core::finish_task(CellBase* task) noexcept {
  task->vtable_->finish(task);
  complete(task, false, 1);
}

void Core::cancel_task(CellBase* task, bool scheduler_ref) noexcept {
  // Destroying the frame runs the destructors of the task's locals, on this
  // thread, with the task still RUNNING (nobody else touches it).
  task->vtable_->cancel(task);
  complete(task, true, scheduler_ref ? 1 : 0);
}

void Core::complete(CellBase* task, bool cancelled, std::uint64_t refs) noexcept {
  if (task->hooks_ != nullptr) task->hooks_->on_drop(cancelled);
  const std::uint64_t prev = transition_to_complete(task);
  if ((prev & kJoinInterest) == 0) {
    // Detached: nobody will read the output.
    if (std::exception_ptr e = task->vtable_->drop_output(task)) report_unobserved(task, e);
  } else if ((prev & kJoinWaker) != 0) {
    // JOIN_WAKER was set when we set COMPLETE: the slot is ours now.
    task->join_waker_.wake_by_ref();
    task->join_waker_ = Waker();
  }
  if (owned_.remove(task)) ++refs;
  if (refs != 0 && task->ref_dec(refs)) dealloc(task);
}

void Core::dealloc(CellBase* task) noexcept {
  Core* core = task->core_;
  if (task->hooks_ != nullptr) task->hooks_->on_release();
  task->vtable_->dealloc(task);
  if (core != nullptr) core->cell_unref();  // last: may free the Core
}

void Core::report_unobserved(CellBase* task, std::exception_ptr error) noexcept {
  unhandled_.fetch_add(1, std::memory_order_relaxed);
  if (config_.on_unhandled_exception) {
    try {
      config_.on_unhandled_exception(task->id_, std::move(error));
    } catch (...) {
      fatal("the on_unhandled_exception handler threw");
    }
    return;
  }
  std::string what = describe_exception(error);
  std::fprintf(stderr,
               "spindle: task %llu (spawned at %s:%u) ended with an exception that nobody "
               "awaited: %s\n",
               static_cast<unsigned long long>(task->id_), task->location_.file_name(),
               static_cast<unsigned>(task->location_.line()), what.c_str());
}

// ---- workers ------------------------------------------------------------------

void Core::notify_parked_slow() noexcept {
  try {
    if (std::optional<std::size_t> w = idle_.worker_to_notify()) workers_[*w]->unpark();
  } catch (...) {
    // Posting a wake-up allocates; with no memory left the worker still
    // wakes on its next timer or I/O event. Nothing else can be done here.
  }
}

void Core::notify_if_work_pending() noexcept {
  for (auto& w : workers_) {
    if (!w->queue().is_empty()) {
      notify_parked();
      return;
    }
  }
  if (!inject_.is_empty()) notify_parked();
}

// ---- Runtime / Handle entry points ---------------------------------------------

void Core::drive(CellBase* target) {
  if (!config_.current_thread) {
    if (!target->is_complete()) block_until_complete(target);
    return;
  }
  MutexLock lock(drive_mu_);
  ThreadContext saved = tls_context;
  tls_context = ThreadContext{this, workers_[0].get(), nullptr, false, false};
  tls_context.worker_slot = workers_[0]->slot();
  workers_[0]->run(target);
  flush_refs(*workers_[0]);
  tls_context = saved;
}

void Core::worker_exited() noexcept {
  MutexLock lock(exit_mu_);
  ++exited_;
  exit_cv_.notify_all();
}

bool Core::shutdown(std::optional<std::chrono::nanoseconds> timeout) {
  ThreadContext& ctx = tls_context;
  if (ctx.core == this && ctx.worker != nullptr) {
    fatal(
        "a Runtime was destroyed or shut down from one of its own worker threads (inside one "
        "of its tasks); it would wait for itself. Shut it down from outside the runtime.");
  }
  const auto shutdown_started = std::chrono::steady_clock::now();
  // Step 1.
  if (shutdown_.exchange(true, std::memory_order_acq_rel)) return true;
  owned_.close();
  inject_.close();
  // Step 2.
  for (auto& w : workers_) w->stop_io();
  // current_thread: a thread inside block_on drives worker 0; it leaves the
  // loop at its next check (its target is then cancelled in step 4 and its
  // block_on throws Cancelled). Wait for it, and keep later block_on calls
  // out, by holding the drive lock for the rest of the shutdown.
  std::unique_lock<Mutex> driving(drive_mu_, std::defer_lock);
  if (config_.current_thread) {
    if (!timeout) {
      driving.lock();
    } else {
      while (!driving.try_lock()) {
        if (std::chrono::steady_clock::now() >= shutdown_started + *timeout) {
          std::fprintf(stderr,
                       "spindle: shutdown timed out: a block_on call is still polling on "
                       "another thread. The runtime's state is leaked rather than destroyed "
                       "under a running task.\n");
          ref();  // leak, as for a stuck worker
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  // Step 3.
  if (!threads_.empty()) {
    if (timeout) {
      const auto deadline = shutdown_started + *timeout;
      std::string stuck;
      {
        MutexLock lock(exit_mu_);
        for (;;) {
          if (exited_ == threads_.size()) break;
          if (std::chrono::steady_clock::now() >= deadline) {
            // Past the deadline, only a worker inside a poll is stuck; one
            // between polls is on its way out: keep waiting for it.
            stuck.clear();
            for (auto& w : workers_) {
              const WorkerPollState ps = w->poll_state();
              if (ps.polling) {
                stuck += " worker " + std::to_string(w->index()) + " (task " +
                         std::to_string(ps.task) + ")";
              }
            }
            if (!stuck.empty()) break;
          }
          exit_cv_.wait_for(exit_mu_, std::chrono::milliseconds(10));
        }
      }
      if (!stuck.empty()) {
        std::fprintf(stderr,
                     "spindle: shutdown timed out after %lld ns: still polling:%s. The runtime's "
                     "state is leaked rather than destroyed under a running task.\n",
                     static_cast<long long>(timeout->count()), stuck.c_str());
        for (auto& t : threads_) t.detach();
        threads_.clear();
        // The blocking pool stops too: its queued jobs never start, and its
        // threads are left to finish what they run (deadline already past).
        const std::size_t abandoned = blocking_.shutdown(deadline);
        if (abandoned != 0) {
          std::fprintf(stderr, "spindle: shutdown also abandoned %zu spawn_blocking job(s).\n",
                       abandoned);
        }
        ref();  // leak: never freed, the detached threads may still use it
        return false;
      }
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  // Step 3b: the blocking pool, within what is left of the timeout.
  std::optional<std::chrono::steady_clock::time_point> pool_deadline;
  if (timeout) pool_deadline = shutdown_started + *timeout;
  const std::size_t abandoned = blocking_.shutdown(pool_deadline);
  if (abandoned != 0) {
    std::fprintf(stderr,
                 "spindle: shutdown abandoned %zu spawn_blocking job(s) still running after the "
                 "shutdown timeout; their threads are detached and the runtime's state is "
                 "leaked for them to finish with.\n",
                 abandoned);
    ref();  // leak: the abandoned jobs still complete through this Core
  }
  // Step 4.
  while (CellBase* task = owned_.pop_any()) shutdown_task(task);
  // Step 5.
  for (auto& w : workers_) w->drain([this](CellBase* t) { drop_task_ref(t); });
  while (CellBase* t = inject_.pop()) drop_task_ref(t);
  blocking_.drain([this](CellBase* t) { drop_task_ref(t); });
  // Step 6.
  for (auto& w : workers_) w->destroy_io();
  return abandoned == 0;
}

void Core::shutdown_task(CellBase* task) noexcept {
  // We hold the owned list's reference (pop_any transferred it).
  if (!claim_to_cancel(task)) {
    drop_task_ref(task);  // not ours to destroy (cannot happen once workers stopped)
    return;
  }
  task->vtable_->cancel(task);
  complete(task, true, 1);
}

std::vector<WorkerPollState> Core::poll_states() const {
  std::vector<WorkerPollState> states;
  states.reserve(workers_.size());
  for (const auto& w : workers_) states.push_back(w->poll_state());
  return states;
}

std::vector<TaskSnapshot> Core::dump() const {
  std::vector<TaskSnapshot> tasks;
  const Instant t = now();
  // A listed cell is alive: it leaves the list before its last reference can go.
  owned_.for_each([&](const CellBase* cell) {
    TaskSnapshot snap;
    snap.id = cell->id_;
    if (cell->hooks_ != nullptr) snap.group = std::string(cell->hooks_->group_name());
    snap.location = cell->location_;
    std::uint64_t st = cell->state_.load(std::memory_order_acquire);
    snap.state = (st & kRunning) != 0    ? TaskState::kRunning
                 : (st & kNotified) != 0 ? TaskState::kScheduled
                                         : TaskState::kIdle;
    snap.polls = cell->polls_.load(std::memory_order_relaxed);
    snap.blocking = cell->blocking_;
    if (config_.poll_timing) {
      snap.age = std::chrono::duration_cast<std::chrono::nanoseconds>(t - cell->spawned_at_);
      snap.busy = std::chrono::nanoseconds(cell->busy_ns_.load(std::memory_order_relaxed));
    }
    tasks.push_back(std::move(snap));
  });
  return tasks;
}

Executor Core::next_executor() {
  if (is_shutdown()) throw RuntimeShutdown("spindle: Handle::executor(): the runtime has shut down");

  std::size_t i = next_executor_.fetch_add(1, std::memory_order_relaxed) % workers_.size();
  return workers_[i]->executor();
}

RuntimeCounters Core::counters() const {

  RuntimeCounters c;
  c.workers.reserve(workers_.size());
  for (const auto& w : workers_) c.workers.push_back(w->snapshot());
  c.remote_schedules = remote_schedules_.load(std::memory_order_relaxed);
  c.spawned_tasks = remote_spawns_.load(std::memory_order_relaxed);
  for (const auto& w : workers_) c.spawned_tasks += w->stats().spawns.get();
  c.unhandled_exceptions = unhandled_.load(std::memory_order_relaxed);
  c.global_queue_depth = inject_.len();
  c.live_tasks = owned_.live();
  c.blocking_threads = blocking_.threads();
  c.idle_blocking_threads = blocking_.idle_threads();
  c.blocking_queue_depth = blocking_.queue_depth();
  c.now = now();
  c.elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(c.now - started_);
  return c;
}

}  // namespace spindle::detail
