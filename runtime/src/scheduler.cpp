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
// The worker loop and one poll are described in worker.cpp, a task's life
// (spawn, completion, deallocation) in task_lifecycle.cpp, the shutdown
// protocol in shutdown.cpp. This file holds the Core: references, task ids,
// notifications, block_on's drive, and the readers (poll states, dump,
// counters).

#include "scheduler.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "cell_fields.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "task_state.hpp"
#include "worker.hpp"

namespace spindle::detail {

namespace {
std::atomic<TaskId> g_next_task_id_block{1};
constexpr TaskId kTaskIdBlock = 1024;

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

// The one definition (declared in spindle/runtime/detail/fatal.hpp).
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
  if (Worker* worker = current_worker()) {
    Worker& w = *worker;
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
  if (Worker* worker = current_worker()) {
    Worker& w = *worker;
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

// ---- workers ------------------------------------------------------------------

Core::IoGate::IoGate(Core& core) noexcept : core_(core) {
  // seq_cst here and on shutdown's side (the flag's exchange, then the
  // count's load in wait_for_io_users): either this gate sees the flag, or
  // shutdown sees the count and waits for the gate to close.
  core_.io_users_.fetch_add(1, std::memory_order_seq_cst);
  ok_ = !core_.shutdown_.load(std::memory_order_seq_cst);
}

void Core::wait_for_io_users() const noexcept {
  // A gate is held across one post or one executor copy: microseconds.
  while (io_users_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

void Core::notify_parked_slow() noexcept {
  // A spawner, a waker or a blocking job gets here on its own thread, which
  // shutdown does not join: without the gate its post could meet the
  // io_context while step 6 closes it (a use-after-free, or a race inside
  // Asio's queue). Once shutdown has begun nobody needs waking: step 2
  // stops every io_context and the workers leave their loops.
  const IoGate gate(*this);
  if (!gate.ok()) return;
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

std::vector<WorkerPollState> Core::poll_states() const {
  std::vector<WorkerPollState> states;
  states.reserve(workers_.size());
  for (const auto& w : workers_) states.push_back(w->poll_state());
  return states;
}

std::vector<TaskSnapshot> Core::dump() const {
  std::vector<TaskSnapshot> tasks;
  const Instant t = now();
  // A visited cell is not freed during the visit (owned_tasks.hpp, Dumps).
  owned_.for_each([&](const CellBase* cell) {
    TaskSnapshot snap;
    snap.id = cell->id_;
    if (cell->hooks_ != nullptr) snap.group = std::string(cell->hooks_->group_name());
    snap.location = cell->sched().location_;
    std::uint64_t st = cell->state_.load(std::memory_order_acquire);
    snap.state = (st & kRunning) != 0    ? TaskState::kRunning
                 : (st & kNotified) != 0 ? TaskState::kScheduled
                                         : TaskState::kIdle;
    snap.polls = cell->sched().polls_.load(std::memory_order_relaxed);
    snap.blocking = cell->sched().blocking_;
    if (config_.poll_timing) {
      snap.age =
          std::chrono::duration_cast<std::chrono::nanoseconds>(t - cell->sched().spawned_at_);
      snap.busy = std::chrono::nanoseconds(cell->sched().busy_ns_.load(std::memory_order_relaxed));
    }
    tasks.push_back(std::move(snap));
  });
  return tasks;
}

Executor Core::next_executor() {
  const IoGate gate(*this);  // any thread: keep step 6 from closing the io_context under us
  if (!gate.ok()) throw RuntimeShutdown("spindle: Handle::executor(): the runtime has shut down");

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
