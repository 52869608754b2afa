// Internal: the runtime's shared state (Core). The algorithm is described at
// the top of scheduler.cpp.
#pragma once

#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "blocking_pool.hpp"
#include "idle.hpp"
#include "injection_queue.hpp"
#include "owned_tasks.hpp"
#include "spindle/runtime/clock.hpp"
#include "spindle/runtime/counters.hpp"
#include "spindle/runtime/detail/fatal.hpp"
#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/detail/task_cell.hpp"
#include "spindle/runtime/executor.hpp"
#include "spindle/runtime/hooks.hpp"

namespace spindle::detail {

class Worker;

/// Validated settings (Runtime::Builder::build checks them).
struct Config {
  bool current_thread = false;               // one worker, driven by block_on
  std::size_t workers = 1;                   // number of workers
  std::string thread_name = "spindle";       // thread name prefix
  std::function<void()> on_thread_start;     // per worker thread, at start
  std::function<void()> on_thread_stop;      // per worker thread, at exit
  std::uint32_t global_queue_interval = 61;  // polls between injection-queue-first checks
  std::uint32_t event_interval = 61;         // polls between io_context polls
  std::uint32_t local_queue_capacity = 256;  // power of two
  bool lifo_slot = true;                     // LIFO slot enabled
  std::uint32_t budget = 128;                // cooperative budget per poll; UINT32_MAX = off
  std::size_t max_blocking_threads = 512;    // blocking pool cap
  std::chrono::nanoseconds thread_keep_alive = std::chrono::seconds(10);  // idle pool thread life
  std::function<Instant()> clock;          // injected clock, or empty
  bool poll_timing = false;                // time every poll and wake (dump(), runtime histograms)
  std::size_t flight_recorder_events = 0;  // per-worker trace ring; 0: no recorder
  bool time_every_poll = false;  // poll_timing or a recorder: stamp every wake, time every poll
  std::function<void(TaskId, std::exception_ptr)> on_unhandled_exception;  // or empty
};

/// The runtime's shared state: workers, queues, the owned-task list, and the
/// reference count that Runtime, every Handle and every task cell hold.
class Core {
 public:
  explicit Core(Config config);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  /// multi_thread: starts the worker threads. Throws std::system_error.
  void start();

  void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  /// Drops `n` references; deletes the Core with the last one.
  void unref(std::int64_t n = 1) noexcept;
  /// A task cell's reference, batched per worker (see scheduler.cpp).
  void cell_ref() noexcept;
  void cell_unref() noexcept;
  /// Returns a worker's unused credit and unreturned debt (at its exit).
  void flush_refs(Worker& w) noexcept;
  static constexpr std::uint32_t kRefBatch = 64;

  // ---- tasks -----------------------------------------------------------------
  /// Binds and queues a new task; throws RuntimeShutdown (cell destroyed).
  void spawn(CellBase* cell, TaskHooks* hooks, SourceLocation loc);
  /// Binds a spawn_blocking job and queues it on the blocking pool. Throws
  /// RuntimeShutdown (cell destroyed), or std::system_error when no pool
  /// thread can be started (the job is then cancelled and released).
  void spawn_blocking(CellBase* cell, SourceLocation loc);
  /// Queues a runnable task (the caller transfers one scheduler reference).
  void schedule(CellBase* task, bool is_yield) noexcept;
  /// schedule(task, false) for a woken task; on a worker inside its I/O
  /// check, the worker polls it right away (Worker::schedule_woken).
  void schedule_woken(CellBase* task) noexcept;
  /// Queues from outside the workers (the injection queue).
  void schedule_remote(CellBase* task) noexcept;
  /// The root frame is done: store the output and complete.
  void finish_task(CellBase* task) noexcept;
  /// Destroys the frame of a task whose RUNNING bit the caller set, and
  /// completes it as cancelled. `scheduler_ref`: the caller holds one.
  void cancel_task(CellBase* task, bool scheduler_ref) noexcept;
  /// Drops a scheduler reference without running the task.
  void drop_task_ref(CellBase* task) noexcept;
  /// Frees a cell whose last reference was dropped.
  static void dealloc(CellBase* task) noexcept;
  /// An exception no one will observe: count it and hand it to the handler.
  void report_unobserved(CellBase* task, std::exception_ptr error) noexcept;

  // ---- workers ---------------------------------------------------------------
  /// Wakes one sleeping worker if none is searching.
  void notify_parked() noexcept {
    if (idle_.should_notify()) notify_parked_slow();  // inline: one load when all are busy
  }
  void notify_parked_slow() noexcept;
  /// Called by the last searcher before it sleeps: wakes a worker if any
  /// queue still holds a task.
  void notify_if_work_pending() noexcept;
  [[nodiscard]] std::size_t num_workers() const noexcept { return workers_.size(); }
  Worker& worker(std::size_t i) noexcept { return *workers_[i]; }
  InjectionQueue& inject() noexcept { return inject_; }
  OwnedTasks& owned() noexcept { return owned_; }
  /// The worker of this runtime that the calling thread runs (a worker
  /// thread, or the thread inside a current_thread block_on), or null (a
  /// foreign thread, the blocking pool, another runtime's worker). Not for
  /// code inside a coroutine (see tls_context).
  [[nodiscard]] Worker* current_worker() const noexcept {
    const ThreadContext& ctx = tls_context;
    return ctx.core == this ? ctx.worker : nullptr;
  }
  Idle& idle() noexcept { return idle_; }
  [[nodiscard]] const Config& config() const noexcept { return config_; }
  [[nodiscard]] bool is_shutdown() const noexcept {
    return shutdown_.load(std::memory_order_acquire);
  }
  /// The runtime clock.
  [[nodiscard]] Instant now() const { return config_.clock ? config_.clock() : clock_now(); }

  // ---- entry points of Runtime / Handle ----------------------------------------
  /// current_thread: runs worker 0 on this thread until `target` completes.
  /// multi_thread: blocks until it completes.
  void drive(CellBase* target);
  /// Stops the workers and destroys every unfinished task (numbered protocol
  /// in scheduler.cpp). nullopt: wait for the workers without a limit.
  /// Returns false when a worker was still polling at the deadline.
  bool shutdown(std::optional<std::chrono::nanoseconds> timeout);
  [[nodiscard]] RuntimeCounters counters() const;
  /// Every worker's poll beacon (Handle::poll_states()).
  [[nodiscard]] std::vector<WorkerPollState> poll_states() const;
  /// Every live task (Handle::dump()).
  [[nodiscard]] std::vector<TaskSnapshot> dump() const;
  /// Handle::write_trace: every worker's flight recorder as Chrome
  /// trace-event JSON. Throws UsageError without a recorder.
  void write_trace(std::ostream& os) const;

  /// A worker's io_context executor, round-robin (Handle::executor()).
  [[nodiscard]] Executor next_executor();
  /// Called by each worker thread as it exits.
  void worker_exited() noexcept;

 private:
  /// Completes a task whose frame is gone: publishes it (publish_complete)
  /// and hands it to the owned list with `refs` references to release
  /// besides the list's own.
  void complete(CellBase* task, bool cancelled, std::uint64_t refs) noexcept;
  /// The drop hooks, COMPLETE, and the joiner's wake or the unwanted
  /// output's destruction. Releases nothing.
  void publish_complete(CellBase* task, bool cancelled) noexcept;
  /// The worker index of the calling thread, or OwnedTasks::kNotWorker.
  [[nodiscard]] std::size_t caller_worker() const noexcept;
  /// Lets a thread that shutdown does not join touch a worker's io_context
  /// (post a wake, make an executor) only while it is not being closed:
  /// ok() is false once shutdown has begun, and shutdown step 6 waits for
  /// every gate still open. Cheap enough for the slow paths it guards (two
  /// atomic operations beside an Asio post).
  class IoGate {
   public:
    explicit IoGate(Core& core) noexcept;
    ~IoGate() { core_.io_users_.fetch_sub(1, std::memory_order_release); }
    IoGate(const IoGate&) = delete;
    IoGate& operator=(const IoGate&) = delete;
    [[nodiscard]] bool ok() const noexcept { return ok_; }

   private:
    Core& core_;
    bool ok_;
  };
  /// Shutdown step 6's wait for the open IoGates.
  void wait_for_io_users() const noexcept;
  /// Destroys one owned task at shutdown (the caller popped it from the list).
  void shutdown_task(CellBase* task) noexcept;
  /// Sets up a new cell's fields and binds it to the owned list (to the
  /// calling worker's own list unless `remote`); on refusal destroys it and
  /// throws RuntimeShutdown.
  void bind_new(CellBase* cell, TaskHooks* hooks, SourceLocation loc, bool remote);

  const Config config_;                             // settings, fixed at build
  std::atomic<std::int64_t> refs_{1};               // Runtime + Handles + cells
  std::atomic<bool> shutdown_{false};               // shutdown has begun
  std::vector<std::unique_ptr<Worker>> workers_;    // fixed after construction
  InjectionQueue inject_;                           // remote spawns/wakes, overflow
  Idle idle_;                                       // sleeping / searching workers
  OwnedTasks owned_;                                // every unfinished task
  BlockingPool blocking_;                           // spawn_blocking's threads
  std::vector<std::thread> threads_;                // multi_thread worker threads
  const Instant started_;                           // for RuntimeCounters::elapsed
  std::atomic<std::uint64_t> remote_schedules_{0};  // schedules from outside workers
  std::atomic<std::uint64_t> remote_spawns_{0};     // spawns from outside workers
  std::atomic<std::uint64_t> unhandled_{0};         // unobserved exceptions
  std::atomic<std::size_t> next_executor_{0};       // round-robin for Handle::executor()
  Mutex drive_mu_;                                  // current_thread: one block_on drives at a time
  Mutex exit_mu_;                                   // guards exited_
  std::condition_variable_any exit_cv_;             // signalled as worker threads exit
  std::size_t exited_ SPINDLE_GUARDED_BY(exit_mu_) = 0;  // worker threads that have exited
  // Threads inside an IoGate (see shutdown.cpp). Its own cache line: every
  // wake-up of a parked worker writes it twice, and shutdown_, refs_ and
  // config_, which the workers read on every loop, must not share that line.
  alignas(64) std::atomic<std::uint32_t> io_users_{0};
};

/// Allocates a process-unique task id without touching a shared cache line
/// on most calls (each thread reserves ids in blocks).
TaskId next_task_id() noexcept;

}  // namespace spindle::detail
