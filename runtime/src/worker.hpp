// Internal: one worker — its run queue, LIFO slot, io_context and loop.
// The loop's policy is described at the top of scheduler.cpp.
#pragma once

#include <array>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "cell_fields.hpp"
#include "flight_recorder.hpp"
#include "local_queue.hpp"
#include "spindle/runtime/counters.hpp"
#include "spindle/runtime/detail/relaxed_counter.hpp"
#include "spindle/runtime/detail/task_cell.hpp"
#include "spindle/runtime/executor.hpp"
#include "spindle/runtime/time.hpp"

namespace spindle::detail {

class Core;

/// Counters a worker publishes; only the worker writes them (see
/// RelaxedCounter). Own cache lines, so readers never slow the writer down
/// by false sharing with the scheduling state.
struct alignas(128) WorkerStats {
  RelaxedCounter polls;
  RelaxedCounter steals;
  RelaxedCounter steal_operations;
  RelaxedCounter parks;
  RelaxedCounter noops;
  RelaxedCounter local_schedules;
  RelaxedCounter overflows;
  RelaxedCounter budget_forced_yields;
  RelaxedCounter io_driver_ready;
  // Busy time as a seqlock: the worker makes busy_seq odd, writes the
  // fields (release), makes it even (release); readers retry until they read
  // the same even value before and after the fields (acquire loads).
  std::atomic<std::uint64_t> busy_seq{0};
  std::atomic<std::uint64_t> busy_ns{0};       // closed busy periods
  std::atomic<std::int64_t> busy_since_ns{0};  // start of the open period (clock epoch ns)
  std::atomic<bool> busy_open{false};          // a busy period is open
  RelaxedCounter spawns;
  // Poll timing only: runtime-wide distributions (Histogram's buckets).
  std::array<RelaxedCounter, Histogram::kBuckets> poll_hist;
  std::array<RelaxedCounter, Histogram::kBuckets> sched_hist;
  RelaxedCounter poll_ns;   // sum of poll durations
  RelaxedCounter sched_ns;  // sum of scheduled delays
};

/// What the worker is polling, published for watchdogs as a seqlock: the
/// worker writes the fields, then an odd `seq` when a poll starts, and an
/// even `seq` when it ends, all with release stores; a reader accepts the
/// fields it read (with acquire loads) between two equal odd readings of
/// `seq`. Plain movs on x86: a handful per poll, on the worker's own line.
struct alignas(128) PollBeacon {
  std::atomic<std::uint64_t> seq{0};      // odd while a poll runs
  std::atomic<TaskId> task{0};            // the task being polled
  std::atomic<const char*> file{""};      // its spawn location (static strings)
  std::atomic<unsigned> line{0};          //   "
  std::atomic<const char*> function{""};  //   "
  std::atomic<std::uint64_t> group{0};    // its hooks' group id (0: none)
};

class Worker {
 public:
  Worker(Core& core, std::size_t index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Body of a multi_thread worker thread.
  void run_thread();
  /// The scheduling loop: until shutdown, or until `until` completes
  /// (current_thread block_on). The calling thread's context must name this worker.
  void run(CellBase* until);

  /// Queues a task woken or spawned on this worker's own thread.
  void schedule_local(CellBase* task, bool is_yield) noexcept;
  /// A task woken on this worker's own thread: polled at once when the wake
  /// comes from a completion handler of this worker's own I/O check (see
  /// poll_io()), queued as schedule_local(task, false) otherwise.
  void schedule_woken(CellBase* task) noexcept;
  /// Wakes the worker from park() (posts a no-op to its io_context).
  void unpark();
  /// Shutdown: makes park() and every later run_one/poll return at once.
  void stop_io() noexcept;
  /// Shutdown, after the thread stopped: hands every queued task to `drop`.
  template <class Drop>
  void drain(Drop&& drop) {
    if (CellBase* t = std::exchange(lifo_, nullptr)) drop(t);
    for (CellBase* t = std::exchange(deferred_head_, nullptr); t != nullptr;) {
      CellBase* next = t->sched().queue_next_;
      drop(t);
      t = next;
    }
    deferred_tail_ = nullptr;
    while (CellBase* t = queue_.pop()) drop(t);
  }
  /// Shutdown, after draining: destroys the io_context and its pending
  /// handlers (which release the wakers they hold).
  void destroy_io() noexcept;

  LocalQueue& queue() noexcept { return queue_; }
  asio::io_context& io() noexcept { return host_->io(); }
  /// The cache of idle timers (spindle::sleep, timeout), used only by this
  /// worker's thread: pop_timer() returns null when empty; push_timer()
  /// false when full (the caller deletes the timer).
  WorkerTimer* pop_timer() noexcept {
    if (timer_pool_.empty()) return nullptr;
    WorkerTimer* t = timer_pool_.back().release();
    timer_pool_.pop_back();
    return t;
  }
  bool push_timer(WorkerTimer* t) noexcept {
    if (timer_pool_.size() >= kTimerPoolSize || io_closing_) return false;
    timer_pool_.emplace_back(t);  // capacity reserved: never allocates
    return true;
  }
  /// An Executor on this worker's io_context (keeps it alive, see executor.hpp).
  [[nodiscard]] Executor executor() { return Executor(host_->io().get_executor(), host_); }
  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  /// The flight recorder, or null (Builder::flight_recorder).
  [[nodiscard]] const FlightRecorder* recorder() const noexcept { return recorder_.get(); }
  /// This worker's process-wide slot (PollStart::worker_slot).
  [[nodiscard]] std::uint32_t slot() const noexcept { return slot_; }
  WorkerStats& stats() noexcept { return stats_; }
  const WorkerStats& stats() const noexcept { return stats_; }
  [[nodiscard]] WorkerCounters snapshot() const;
  /// A consistent reading of the beacon (see PollBeacon); any thread.
  [[nodiscard]] WorkerPollState poll_state() const noexcept;

 private:
  /// Per-thread LIFO polls allowed in a row before the slot's task goes to
  /// the back of the queue: two tasks waking each other cannot starve the rest.
  static constexpr int kMaxLifoPolls = 3;
  /// A parked worker checks this often for a worker stuck in one poll
  /// whose timers and I/O it should drive (see drive_stuck_io()).
  static constexpr std::chrono::milliseconds kStuckCheckPeriod{20};

  CellBase* next_task();
  CellBase* steal_work();
  void run_task(CellBase* task);
  /// About to poll a task: no longer a no-op wake-up, nor searching (the
  /// last searcher wakes another).
  void found_work() noexcept;
  void poll(CellBase* task) noexcept;
  /// An aborted task we hold RUNNING: cancel the operation it waits on and
  /// destroy its frame once nothing is in flight (see abort() in worker.cpp).
  void abort(CellBase* task) noexcept;
  void publish_poll_start(const CellBase* task) noexcept;
  void push_back(CellBase* task) noexcept;
  void park();
  void maintenance();
  void drive_stuck_io();
  void poll_io();
  void begin_busy(Instant now) noexcept;
  void end_busy(Instant now) noexcept;
  void close_busy(Instant now, bool reopen) noexcept;
  [[nodiscard]] std::chrono::nanoseconds busy_now(Instant now) const noexcept;
  void defer(CellBase* task) noexcept;
  void flush_deferred() noexcept;
  void count_io(std::size_t handlers) noexcept;
  std::uint32_t next_random(std::uint32_t n) noexcept;

  friend class Core;  // ref_credit_ / ref_debt_

  Core& core_;                    // the runtime this worker belongs to
  std::uint32_t ref_credit_ = 0;  // Core references taken ahead for new cells (own thread only)
  std::uint32_t ref_debt_ = 0;    // Core references of freed cells not yet returned
  const std::size_t index_;       // position in Core's worker list
  LocalQueue queue_;              // this worker's run queue (stealable)
  CellBase* deferred_head_ = nullptr;  // tasks that yielded, requeued after the next I/O poll
  CellBase* deferred_tail_ = nullptr;  //   (linked through queue_next_)
  CellBase* lifo_ = nullptr;           // the task woken last by a running task; not stealable
  IoHost* host_;  // our io_context (timers, I/O, the parking place); one reference
  static constexpr std::size_t kTimerPoolSize = 64;       // idle timers kept
  std::vector<std::unique_ptr<WorkerTimer>> timer_pool_;  // idle timers on io()
  bool io_closing_ = false;                               // destroy_io() began
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;                               // keeps run_one blocking
  bool searching_ = false;                 // counted in Idle's num_searching
  bool in_park_ = false;                   // inside park(): local schedules do not notify
  bool in_io_check_ = false;               // inside poll_io()'s poll of its own io_context
  std::vector<std::uint64_t> seen_polls_;  // other workers' poll_seq at our last stuck check
  std::size_t wake_posts_run_ = 0;         // our wake-up posts run since count_io()
  bool unparked_without_work_ = false;     // woke and has not run a task since (noop)
  std::uint32_t global_tick_ = 0;          // next_task calls since the injection queue went first
  std::uint32_t polls_since_maintenance_ = 0;  // polls since io_context was last polled
  std::uint32_t rng_;                          // xorshift state for victim selection
  Instant busy_since_{};                       // start of the current busy period
  Instant boundary_{};                         // end time of the last instrumented poll
  bool boundary_valid_ = false;                // boundary_ is still "now" (nothing ran since)
  const bool task_timing_;                     // time every poll, for Handle::dump()
  const std::uint32_t slot_;                   // process-wide worker slot (PollStart)
  const bool time_all_;                        // time every poll (poll_timing or a recorder)
  std::unique_ptr<FlightRecorder> recorder_;   // this worker's trace ring, or null
  WorkerStats stats_;                          // published counters
  PollBeacon beacon_;                          // what is being polled now, for watchdogs
};

}  // namespace spindle::detail
