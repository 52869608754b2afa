// The worker loop and one poll. Where runnable tasks go (LIFO slot, local
// queue, injection queue) is described at the top of scheduler.cpp.
//
// ## The worker loop (worker.cpp)
//   1. Every event_interval polls, poll the io_context without blocking
//      (timers and I/O completions wake tasks), and maintain this worker's
//      owned-task list (take in the completions other workers handed over,
//      free retired cells; see owned_tasks.hpp; also done before parking).
//   2. Take the next task: the injection queue first every
//      global_queue_interval turns (so remote spawns are not starved by a
//      busy local queue), else the LIFO slot, else the local queue, else a
//      batch from the injection queue (len / N + 1 tasks, at most half a
//      local queue). Poll it, then up to kMaxLifoPolls tasks from the LIFO slot.
//   3. Nothing local: poll the io_context once and requeue the tasks that
//      yielded meanwhile. (In this poll, and in step 1's, a task that a
//      completion handler wakes is polled at once inside the handler, as
//      plain Asio resumes a coroutine there, instead of being queued; see
//      schedule_woken().) If that gave nothing either, become a *searcher*
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

#include "worker.hpp"

#include <pthread.h>

#include <algorithm>
#include <asio/bind_allocator.hpp>
#include <asio/detail/thread_context.hpp>
#include <asio/detail/thread_info_base.hpp>
#include <asio/post.hpp>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

#include "cell_fields.hpp"
#include "scheduler.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/task_alloc.hpp"
#include "task_state.hpp"

namespace spindle::detail {

namespace {

/// The process-wide worker slots (PollStart::worker_slot): dense indices
/// for the live workers of every runtime, so that a monitor keeps one block
/// of counters per worker. An index returns to the free list when its
/// Worker is destroyed (after its thread ended); the next Worker to take it
/// continues those counters, ordered after the old one by the mutex.
struct WorkerSlots {
  std::mutex mu;                    // guards both below
  std::vector<std::uint32_t> free;  // returned indices, reused first
  std::uint32_t next = 0;           // indices handed out so far
};

WorkerSlots& worker_slots() {
  static WorkerSlots* slots = new WorkerSlots;  // never destroyed: workers may outlive statics
  return *slots;
}

std::uint32_t acquire_worker_slot() {
  WorkerSlots& s = worker_slots();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.free.empty()) {
    const std::uint32_t i = s.free.back();
    s.free.pop_back();
    return i;
  }
  if (s.next == kNoWorkerSlot) {
    fatal("more than 4,294,967,294 workers alive at once");
  }
  // Room for every index handed out to come back, so that release (noexcept)
  // never allocates.
  s.free.reserve(s.next + 1);
  return s.next++;
}

void release_worker_slot(std::uint32_t i) noexcept {
  WorkerSlots& s = worker_slots();
  std::lock_guard<std::mutex> lock(s.mu);
  s.free.push_back(i);  // within the capacity acquire_worker_slot reserved
}

/// Asio's recycling allocator (the memory of operations, of their
/// cancellation handlers, of composed operations' states) caches blocks per
/// thread, but only for a thread inside an io_context's call stack: on any
/// other thread every block is a fresh operator new and every free a delete.
/// A task starts its Asio operations while its worker polls it, outside
/// io_context::poll(); this gives the worker's thread a call-stack entry of
/// its own for the whole run, so those blocks are recycled as they are for
/// Asio's own handlers. The key matches no scheduler, so nothing else
/// changes: running_in_this_thread() and dispatch() still see only the
/// io_contexts the thread is really running (Asio looks entries up by key).
/// asio::detail is Asio's internal API; Debian 12's Asio 1.22 is the one
/// spindle builds against, and tests/io checks the recycling.
class AsioThreadEntry : public asio::detail::thread_context {
 public:
  AsioThreadEntry() : entry_(this, info_) {}
  AsioThreadEntry(const AsioThreadEntry&) = delete;
  AsioThreadEntry& operator=(const AsioThreadEntry&) = delete;

 private:
  asio::detail::thread_info_base info_;  // the thread's block cache
  thread_call_stack::context entry_;     // pushed for this object's life
};

}  // namespace

Worker::Worker(Core& core, std::size_t index)
    : core_(core),
      index_(index),
      queue_(core.config().local_queue_capacity),
      host_(IoHost::create()),
      rng_(static_cast<std::uint32_t>(index) * 0x9E3779B9U + 0x7F4A7C15U),
      task_timing_(core.config().poll_timing),
      slot_(acquire_worker_slot()),
      time_all_(core.config().time_every_poll) {
  if (core.config().flight_recorder_events != 0) {
    recorder_ = std::make_unique<FlightRecorder>(core.config().flight_recorder_events);
  }

  work_.emplace(host_->io().get_executor());
  timer_pool_.reserve(kTimerPoolSize);
}

Worker::~Worker() {
  timer_pool_.clear();
  work_.reset();
  if (host_ != nullptr) host_->unref();
  release_worker_slot(slot_);
}

void Worker::run_thread() {
  // Linux keeps 15 bytes of a thread name: shorten the prefix, not the index.
  const std::string suffix = "-" + std::to_string(index_);
  std::string name = core_.config().thread_name;
  if (name.size() + suffix.size() > 15) name.resize(15 - std::min<std::size_t>(suffix.size(), 15));
  name += suffix;
  pthread_setname_np(pthread_self(), name.c_str());
  tls_context = ThreadContext{&core_, this, nullptr, false, false};
  tls_context.worker_slot = slot_;
  if (core_.config().on_thread_start) {
    try {
      core_.config().on_thread_start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "spindle: on_thread_start threw on worker %zu: %s\n", index_, e.what());
    }
  }
  run(nullptr);
  if (core_.config().on_thread_stop) {
    try {
      core_.config().on_thread_stop();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "spindle: on_thread_stop threw on worker %zu: %s\n", index_, e.what());
    }
  }
  core_.flush_refs(*this);  // while tls_context still names this worker
  tls_context = ThreadContext{};
  core_.worker_exited();
}

void Worker::run(CellBase* until) {
  const AsioThreadEntry asio_entry;  // before any task runs; see its comment
  begin_busy(core_.now());
  boundary_valid_ = false;
  while (!core_.is_shutdown()) {
    if (until != nullptr && until->is_complete()) break;
    if (polls_since_maintenance_ >= core_.config().event_interval) maintenance();
    CellBase* task = next_task();
    if (task == nullptr) {
      // Out of local work: poll timers and I/O, then requeue the tasks that
      // yielded since the last time (after the I/O poll, so that a task
      // yielding in a loop cannot hold back its worker's timers).
      poll_io();
      flush_deferred();
      task = next_task();
    }
    if (task == nullptr) {
      task = steal_work();
      boundary_valid_ = false;  // searching took time that no poll should be charged
    }
    if (task != nullptr) {
      run_task(task);
      continue;
    }
    if (until != nullptr && until->is_complete()) break;
    park();
  }
  end_busy(core_.now());
  if (searching_) {
    searching_ = false;
    core_.idle().transition_worker_from_searching();
  }
  // Leave no retired cells behind between block_on calls (current_thread).
  core_.owned().maintain(index_);
}

CellBase* Worker::next_task() {
  InjectionQueue& inject = core_.inject();
  if (++global_tick_ >= core_.config().global_queue_interval) {
    global_tick_ = 0;
    if (CellBase* t = inject.pop()) return t;
  }
  if (CellBase* t = std::exchange(lifo_, nullptr)) return t;
  if (CellBase* t = queue_.pop()) return t;
  if (inject.is_empty()) return nullptr;
  // Pull a fair share of the injection queue into the local queue.
  std::size_t n = inject.len() / core_.num_workers() + 1;
  n = std::min<std::size_t>(n, queue_.remaining_slots());
  n = std::min<std::size_t>(n, queue_.capacity() / 2);
  n = std::max<std::size_t>(n, 1);
  std::size_t got = 0;
  CellBase* first = inject.pop_batch(n, got);
  if (first == nullptr) return nullptr;
  for (CellBase* t = first->sched().queue_next_; t != nullptr;) {
    CellBase* next = t->sched().queue_next_;
    queue_.push_back_unchecked(t);
    t = next;
  }
  return first;
}

CellBase* Worker::steal_work() {
  if (!searching_) {
    if (!core_.idle().transition_worker_to_searching()) return nullptr;
    searching_ = true;
  }
  const std::size_t n = core_.num_workers();
  const std::size_t start = next_random(static_cast<std::uint32_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t victim = (start + i) % n;
    if (victim == index_) continue;
    std::uint32_t stolen = 0;
    if (CellBase* t = core_.worker(victim).queue().steal_into(queue_, stolen)) {
      if (recorder_ != nullptr) {
        recorder_->record(TraceKind::kSteal, trace_ns(core_.now()), 0, 0, stolen);
      }
      stats_.steals.add(stolen);
      stats_.steal_operations.add();
      return t;
    }
  }
  return core_.inject().pop();
}

void Worker::found_work() noexcept {
  unparked_without_work_ = false;
  if (searching_) {
    searching_ = false;
    // The last searcher found work: wake another to keep looking.
    if (core_.idle().transition_worker_from_searching()) {
      core_.notify_parked();
      boundary_valid_ = false;  // the wake-up post is nobody's poll
    }
  }
}

void Worker::run_task(CellBase* task) {
  found_work();
  poll(task);
  for (int i = 0; i < kMaxLifoPolls; ++i) {
    if (lifo_ == nullptr || core_.is_shutdown()) return;  // at shutdown the drain takes it
    poll(std::exchange(lifo_, nullptr));
  }
  // LIFO cap reached: the slot's task waits its turn at the back. (No
  // wake-up for another worker: this one pops it next anyway, and waking a
  // sleeper for it mostly costs a park/unpark round trip.)
  if (CellBase* next = std::exchange(lifo_, nullptr)) push_back(next);
}

void Worker::poll(CellBase* task) noexcept {
  switch (transition_to_running(task)) {
    case RunTransition::kGone:
      boundary_valid_ = false;    // a dealloc is nobody's poll
      core_.drop_task_ref(task);  // completed while queued (shutdown)
      return;
    case RunTransition::kAbort:
      boundary_valid_ = false;  // destroying the frame is nobody's poll
      abort(task);
      return;
    case RunTransition::kRun:
      break;
  }
  ++polls_since_maintenance_;
  stats_.polls.add();
  // Single writer at a time (the RUNNING owner): a load and a store, no RMW.
  const std::uint64_t previous_polls = task->sched().polls_.load(std::memory_order_relaxed);
  task->sched().polls_.store(previous_polls + 1, std::memory_order_relaxed);
  publish_poll_start(task);
  ThreadContext& ctx = tls_context;
  ctx.current = task;
  ctx.yielded = false;
  ctx.self_woken = false;
  ctx.budget = core_.config().budget;
  TaskHooks* hooks = task->hooks_;
  const bool timed = hooks != nullptr || time_all_ || task->sched().inline_hooks_ != 0;
  Instant start{};
  if (timed) [[unlikely]] {
    // The end of the previous timed poll is this poll's start when nothing
    // else ran in between: one clock reading per poll boundary.
    start = boundary_valid_ ? boundary_ : core_.now();
    if (recorder_ != nullptr) {
      if (task->sched().wake_kind_ != WakeKind::kFirstPoll) {
        const std::uint32_t how = (task->sched().wake_kind_ == WakeKind::kFromIdle ? 1U : 2U) |
                                  (task->sched().wake_self_ ? 4U : 0U);
        recorder_->record(TraceKind::kWake, trace_ns(task->sched().woken_at_), task->id_,
                          task->sched().group_id_, how);
      }
      recorder_->record(TraceKind::kPollStart, trace_ns(start), task->id_, task->sched().group_id_);
    }
    if (hooks != nullptr) {
      hooks->on_poll_start(PollStart{start, task->sched().woken_at_, index_, slot_,
                                     task->sched().wake_kind_, task->sched().wake_self_,
                                     recorder_.get()});
    }
    if (task_timing_ && previous_polls != 0) {
      const std::int64_t d = std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::nanoseconds>(start - task->sched().woken_at_)
                 .count());
      stats_.sched_hist[Histogram::bucket_for(d)].add();
      stats_.sched_ns.add(static_cast<std::uint64_t>(d));
    }
  }

  // A stale wake finds the awaiter not ready: the poll ends without
  // resuming, and the awaiter's own wake comes later.
  if (slot_ready(task->sched().wait_)) {
    const std::coroutine_handle<> h = task->sched().wait_.resume_point;
    task->sched().wait_.ready_check = ReadyCheck{};
    task->sched().wait_.cancel = CancelHook{};  // that operation completed
    ctx.slot = &task->sched().wait_;
    h.resume();  // runs until the task suspends or finishes
    ctx.slot = nullptr;
  }

  ctx.current = nullptr;
  ctx.budget = UINT32_MAX;
  // release: the seqlock's even value (see PollBeacon).
  beacon_.seq.store(beacon_.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  const bool done = task->root_.done();
  Instant end{};
  if (timed) [[unlikely]] {
    end = core_.now();
    boundary_ = end;
    boundary_valid_ = true;
    if (task_timing_) {
      const std::int64_t d = std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
      task->sched().busy_ns_.store(task->sched().busy_ns_.load(std::memory_order_relaxed) + d,
                                   std::memory_order_relaxed);
      stats_.poll_hist[Histogram::bucket_for(d)].add();
      stats_.poll_ns.add(static_cast<std::uint64_t>(d));
    }
    if (recorder_ != nullptr) {
      recorder_->record(TraceKind::kPollEnd, trace_ns(end), task->id_, task->sched().group_id_,
                        done ? 1U : 0U);
    }
    // Before any transition: once idle, another thread may poll the task.
    if (hooks != nullptr) hooks->on_poll_end(end, done);
  } else {
    boundary_valid_ = false;  // this poll was not timed: its end is unknown
  }
  if (done) {
    // Destroying the frame (by-value parameters live there), the drop
    // hooks and waking the joiner take time on no task's behalf: the next
    // poll reads the clock again instead of starting at this poll's end.
    boundary_valid_ = false;
    core_.finish_task(task);
    return;
  }
  switch (transition_to_idle(task, ctx.yielded)) {
    case IdleTransition::kIdle:
      return;
    case IdleTransition::kRequeue:
      if (timed || task->sched().inline_hooks_ != 0) [[unlikely]] {
        if (!timed) end = core_.now();  // an inline instrumentation began during this poll
        // Scheduled from this poll's end; the next poll's start reports it.
        task->sched().woken_at_ = end;
        task->sched().wake_kind_ = WakeKind::kDuringPoll;
        task->sched().wake_self_ = ctx.yielded || ctx.self_woken;
      }
      if (ctx.yielded) {
        defer(task);  // requeued after the next I/O poll, see run()
      } else {
        schedule_local(task, true);  // woken during its poll: back of the queue
      }
      return;
    case IdleTransition::kAbort:
      boundary_valid_ = false;  // destroying the frame is nobody's poll
      abort(task);
      return;
  }
}

void Worker::abort(CellBase* task) noexcept {
  // Cancellation is a protocol, not a destructor: the frame lent buffers to
  // the operation it is suspended on, so it may only go once that
  // operation's handler has run. Ask the operation to cancel; while it is
  // in flight, its handler's wake brings the task back here.
  if (slot_cancel(task->sched().wait_)) {
    if (transition_to_idle_cancelling(task)) schedule_local(task, true);
    return;
  }
  core_.cancel_task(task, true);
}

void Worker::publish_poll_start(const CellBase* task) noexcept {
  // Fields first, then the odd seq, all release (see PollBeacon).
  beacon_.task.store(task->id_, std::memory_order_release);
  beacon_.file.store(task->sched().location_.file_name(), std::memory_order_release);
  beacon_.line.store(task->sched().location_.line(), std::memory_order_release);
  beacon_.function.store(task->sched().location_.function_name(), std::memory_order_release);
  beacon_.group.store(task->sched().group_id_, std::memory_order_release);
  beacon_.seq.store(beacon_.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

WorkerPollState Worker::poll_state() const noexcept {
  for (;;) {
    WorkerPollState s;
    const std::uint64_t seq = beacon_.seq.load(std::memory_order_acquire);
    s.poll_seq = seq;
    s.polling = (seq & 1) != 0;
    if (!s.polling) return s;
    s.task = beacon_.task.load(std::memory_order_acquire);
    const char* file = beacon_.file.load(std::memory_order_acquire);
    unsigned line = beacon_.line.load(std::memory_order_acquire);
    const char* function = beacon_.function.load(std::memory_order_acquire);
    s.group_id = beacon_.group.load(std::memory_order_acquire);
    if (beacon_.seq.load(std::memory_order_acquire) != seq) continue;  // a poll ended meanwhile
    s.location = SourceLocation::current(file, line, function);
    return s;
  }
}

void Worker::schedule_woken(CellBase* task) noexcept {
  // Polled right here when a use_task completion handler woke the task as
  // its last act (wake_ending_handler), inside this worker's I/O check of
  // its own io_context (poll_io), between two polls: as plain Asio resumes
  // a coroutine inside its handler. Queueing it would cost a push and a
  // pop and, with the LIFO slot taken, a wake-up of another worker, which
  // then steals the task away from the io_context its socket is on.
  // Everything else is queued: a wake inside a task's poll; a wake from a
  // plain Asio handler (one that sends on a channel may go on to use what
  // the woken task changes, or hold a lock the task takes); a handler run
  // in park() (the worker counts as parked there) or while this worker
  // drives another worker's io_context.
  const ThreadContext& ctx = tls_context;
  if (in_io_check_ && ctx.waking_from_handler && ctx.current == nullptr && !core_.is_shutdown()) {
    found_work();
    in_io_check_ = false;     // a wake during this poll queues (it is inside a poll anyway)
    boundary_valid_ = false;  // the I/O check so far is nobody's poll
    poll(task);
    boundary_valid_ = false;  // nor is the rest of it
    in_io_check_ = true;
    return;
  }
  schedule_local(task, false);
}

void Worker::schedule_local(CellBase* task, bool is_yield) noexcept {
  stats_.local_schedules.add();
  bool should_notify = true;
  if (is_yield || !core_.config().lifo_slot) {
    push_back(task);
  } else {
    CellBase* prev = std::exchange(lifo_, task);
    should_notify = prev != nullptr;
    if (prev != nullptr) push_back(prev);
  }
  if (should_notify && !in_park_) core_.notify_parked();
}

void Worker::push_back(CellBase* task) noexcept {
  if (queue_.push_back_or_overflow(task, core_.inject(),
                                   [this](CellBase* t) { core_.drop_task_ref(t); })) {
    stats_.overflows.add();
  }
}

void Worker::defer(CellBase* task) noexcept {
  stats_.local_schedules.add();
  task->sched().queue_next_ = nullptr;
  if (deferred_tail_ != nullptr) {
    deferred_tail_->sched().queue_next_ = task;
  } else {
    deferred_head_ = task;
  }
  deferred_tail_ = task;
}

void Worker::flush_deferred() noexcept {
  CellBase* t = std::exchange(deferred_head_, nullptr);
  deferred_tail_ = nullptr;
  if (t == nullptr) return;
  const bool several = t->sched().queue_next_ != nullptr;
  while (t != nullptr) {
    CellBase* next = t->sched().queue_next_;
    push_back(t);
    t = next;
  }
  if (several) core_.notify_parked();  // others may take some of them
}

void Worker::park() {
  if (lifo_ != nullptr || !queue_.is_empty() || deferred_head_ != nullptr) return;
  // Completions other workers handed us, and retired cells: freed before we sleep.
  core_.owned().maintain(index_);
  if (unparked_without_work_) stats_.noops.add();
  const Instant parked_at = core_.now();
  end_busy(parked_at);
  if (recorder_ != nullptr) recorder_->record(TraceKind::kPark, trace_ns(parked_at), 0, 0);
  boundary_valid_ = false;
  const bool last_searcher = core_.idle().transition_worker_to_parked(index_, searching_);
  searching_ = false;
  if (last_searcher) core_.notify_if_work_pending();
  stats_.parks.add();
  in_park_ = true;
  const bool alone = core_.num_workers() == 1;
  bool trimmed = false;
  for (;;) {
    // Blocks until a handler ran: a wake-up post, a timer, an I/O completion.
    // With other workers around, wake up every kStuckCheckPeriod as well, to
    // drive the io_context of a worker stuck in one long poll (see
    // drive_stuck_io()); alone, only once, to trim.
    const std::size_t handlers =
        alone && trimmed ? host_->io().run_one() : host_->io().run_one_for(kStuckCheckPeriod);
    count_io(handlers);
    if (handlers == 0 && !trimmed) {
      // Parked a whole period with nothing to do: give back the task blocks
      // cached beyond the idle limit (see task_alloc.cpp).
      task_alloc_trim();
      trimmed = true;
    }
    if (core_.is_shutdown() || host_->io().stopped()) break;
    if (!alone) {
      core_.owned().maintain(index_);  // tasks of ours other workers finished meanwhile
      drive_stuck_io();
    }
    if (!core_.idle().is_parked(index_)) {
      searching_ = true;  // a notifier woke us and counted us as searching
      break;
    }
    if (lifo_ != nullptr || !queue_.is_empty()) {
      // A completion handler made local work: get up on our own.
      if (!core_.idle().unpark_worker_by_self(index_)) searching_ = true;
      break;
    }
  }
  in_park_ = false;
  const Instant unparked_at = core_.now();
  begin_busy(unparked_at);
  if (recorder_ != nullptr) recorder_->record(TraceKind::kUnpark, trace_ns(unparked_at), 0, 0);
  unparked_without_work_ = true;
  // Work that arrived while we slept (timer handlers) may be more than we need.
  if (queue_.len() > 1 || (lifo_ != nullptr && !queue_.is_empty())) core_.notify_parked();
}

void Worker::drive_stuck_io() {
  // A worker inside the same poll as at our previous look has been stuck for
  // at least one period: its timers and I/O completions would wait for that
  // poll to end. Run its ready handlers here instead (an io_context may be
  // run by several threads); the tasks they wake are queued on this worker.
  const std::size_t n = core_.num_workers();
  if (seen_polls_.size() != n) seen_polls_.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (i == index_) continue;
    Worker& other = core_.worker(i);
    const WorkerPollState ps = other.poll_state();
    if (ps.polling && ps.poll_seq == seen_polls_[i]) {
      stats_.io_driver_ready.add(other.io().poll());
    }
    seen_polls_[i] = ps.polling ? ps.poll_seq : 0;
  }
}

void Worker::maintenance() {
  polls_since_maintenance_ = 0;
  core_.owned().maintain(index_);
  poll_io();
  // A worker that never runs out of local work still requeues its yielded
  // tasks here, every event_interval polls.
  flush_deferred();
}

void Worker::poll_io() {
  std::size_t handlers = 0;
  {
    // Wakes from its handlers poll their tasks at once (schedule_woken()).
    struct CheckScope {
      bool& flag;
      explicit CheckScope(bool& f) noexcept : flag(f) { flag = true; }
      ~CheckScope() { flag = false; }
      CheckScope(const CheckScope&) = delete;
      CheckScope& operator=(const CheckScope&) = delete;
    } scope(in_io_check_);
    handlers = host_->io().poll();
  }
  // Even an I/O check that ran nothing took time (the reactor's epoll_wait):
  // the next poll reads the clock instead of starting at the last one's end.
  boundary_valid_ = false;
  count_io(handlers);
}

void Worker::count_io(std::size_t handlers) noexcept {
  // Handlers that ran, less our own wake-up posts: timer and I/O completions.
  const std::size_t ours = std::exchange(wake_posts_run_, 0);
  if (handlers > ours) stats_.io_driver_ready.add(handlers - ours);
}

// Busy time is published as a seqlock (see WorkerStats): readers add the
// open period themselves, so an interval never receives a long period that
// was accounted late in one piece.
void Worker::begin_busy(Instant now) noexcept {
  busy_since_ = now;
  stats_.busy_seq.store(stats_.busy_seq.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  stats_.busy_since_ns.store(now.time_since_epoch().count(), std::memory_order_release);
  stats_.busy_open.store(true, std::memory_order_release);
  stats_.busy_seq.store(stats_.busy_seq.load(std::memory_order_relaxed) + 1,
                        std::memory_order_release);
}

void Worker::end_busy(Instant now) noexcept { close_busy(now, false); }

void Worker::close_busy(Instant now, bool reopen) noexcept {
  const std::int64_t d = std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(now - busy_since_).count());
  busy_since_ = now;
  stats_.busy_seq.store(stats_.busy_seq.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  stats_.busy_ns.store(
      stats_.busy_ns.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d),
      std::memory_order_release);
  stats_.busy_since_ns.store(now.time_since_epoch().count(), std::memory_order_release);
  stats_.busy_open.store(reopen, std::memory_order_release);
  stats_.busy_seq.store(stats_.busy_seq.load(std::memory_order_relaxed) + 1,
                        std::memory_order_release);
}

std::chrono::nanoseconds Worker::busy_now(Instant now) const noexcept {
  for (;;) {
    const std::uint64_t s1 = stats_.busy_seq.load(std::memory_order_acquire);
    if ((s1 & 1) != 0) continue;  // an update is in progress
    std::uint64_t busy = stats_.busy_ns.load(std::memory_order_acquire);
    const std::int64_t since = stats_.busy_since_ns.load(std::memory_order_acquire);
    const bool open = stats_.busy_open.load(std::memory_order_acquire);
    if (stats_.busy_seq.load(std::memory_order_acquire) != s1) continue;
    if (open) {
      const std::int64_t running = now.time_since_epoch().count() - since;
      if (running > 0) busy += static_cast<std::uint64_t>(running);
    }
    return std::chrono::nanoseconds(busy);
  }
}

void Worker::unpark() {
  // Runs on this worker's own thread (inside its run_one/poll).
  // (Another worker driving this io_context, see drive_stuck_io(), may run
  // it instead: then it is not ours to count.)
  // The handler's block comes from the task heaps: allocated here, freed
  // by the parked thread inside its run_one(), whose Asio cache dies with
  // the call; the task heaps take the block back for the next wake.
  asio::post(host_->io(), asio::bind_allocator(TaskHeapAllocator<void>(), [this] {
               if (tls_context.worker == this) ++wake_posts_run_;
             }));
}

void Worker::stop_io() noexcept { host_->io().stop(); }

void Worker::destroy_io() noexcept {
  io_closing_ = true;
  timer_pool_.clear();  // idle timers: nothing pending on them
  work_.reset();
  // Pending handlers are destroyed now (releasing the task references their
  // wakers hold); the io_context itself lives on while an Executor — an I/O
  // object made on it — still refers to it.
  host_->close();
  std::exchange(host_, nullptr)->unref();
}

WorkerCounters Worker::snapshot() const {
  WorkerCounters c;
  c.polls = stats_.polls.get();
  c.steals = stats_.steals.get();
  c.steal_operations = stats_.steal_operations.get();
  c.parks = stats_.parks.get();
  c.noops = stats_.noops.get();
  c.local_schedules = stats_.local_schedules.get();
  c.overflows = stats_.overflows.get();
  c.budget_forced_yields = stats_.budget_forced_yields.get();
  c.io_driver_ready = stats_.io_driver_ready.get();
  c.busy = busy_now(core_.now());
  if (task_timing_) {
    for (std::size_t b = 0; b < Histogram::kBuckets; ++b) {
      c.poll_durations.add_bucket(b, stats_.poll_hist[b].get());
      c.scheduled_delays.add_bucket(b, stats_.sched_hist[b].get());
    }
    c.poll_durations.add_sum(std::chrono::nanoseconds(stats_.poll_ns.get()));
    c.scheduled_delays.add_sum(std::chrono::nanoseconds(stats_.sched_ns.get()));
  }
  c.local_queue_depth = queue_.len();
  return c;
}

std::uint32_t Worker::next_random(std::uint32_t n) noexcept {
  // xorshift32: victim selection only needs to be cheap and spread out.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return static_cast<std::uint32_t>((std::uint64_t{rng_} * n) >> 32);
}

}  // namespace spindle::detail
