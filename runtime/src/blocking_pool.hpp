// Internal: the blocking pool behind spawn_blocking.
//
// Blocking work (synchronous I/O, a long computation, a call into a library
// that sleeps) must not run on a worker: it would hold that worker's whole
// queue hostage. spawn_blocking wraps the function in a one-poll Task whose
// cell is queued here instead of on a worker; a pool thread "polls" it once,
// which runs the function to completion and completes the cell like any
// task (so JoinHandle, abort-before-start and exceptions work unchanged).
//
// Threads are created on demand up to max_threads; a thread that has been
// idle for keep_alive exits. A job waits in the FIFO queue when every thread
// is busy and the cap is reached.
//
// Shutdown: queued jobs are not started (shutdown step 4 cancels them); the
// pool waits for running ones up to a deadline, then abandons the rest
// (their threads are detached, and the runtime's state is leaked on purpose
// because they still use it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/detail/task_cell.hpp"

namespace spindle::detail {

class Core;

class BlockingPool {
 public:
  BlockingPool(Core& core, std::size_t max_threads, std::chrono::nanoseconds keep_alive,
               std::string thread_name);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  /// Queues a bound blocking cell (the caller transfers its scheduler
  /// reference). False once shut down (the caller keeps the reference).
  /// Throws std::system_error when a needed thread cannot be started and no
  /// thread exists to run the job later.
  bool push(CellBase* cell);

  /// Stops accepting jobs, wakes idle threads so they exit, and waits until
  /// `deadline` (or forever) for running jobs. Returns how many jobs were
  /// still running when it gave up (their threads are detached).
  std::size_t shutdown(std::optional<std::chrono::steady_clock::time_point> deadline);

  /// Hands every job that never started to `drop` (after shutdown()).
  template <class Drop>
  void drain(Drop&& drop) {
    std::deque<CellBase*> q;
    {
      MutexLock lock(mu_);
      q.swap(queue_);
      queue_depth_.store(0, std::memory_order_relaxed);
    }
    for (CellBase* c : q) drop(c);
  }

  [[nodiscard]] std::size_t threads() const noexcept {
    return num_threads_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t idle_threads() const noexcept {
    return num_idle_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t queue_depth() const noexcept {
    return queue_depth_.load(std::memory_order_relaxed);
  }

 private:
  void spawn_thread() SPINDLE_REQUIRES(mu_);
  void thread_main(std::size_t id);
  void run(CellBase* cell) noexcept;

  Core& core_;                                           // completes the cells
  const std::size_t max_threads_;                        // cap on threads
  const std::chrono::nanoseconds keep_alive_;            // idle time before a thread exits
  const std::string thread_name_;                        // thread name prefix
  Mutex mu_;                                             // guards everything below it
  std::condition_variable_any cv_;                       // jobs queued / shutdown / thread exit
  std::deque<CellBase*> queue_ SPINDLE_GUARDED_BY(mu_);  // jobs not yet started
  std::unordered_map<std::size_t, std::thread> threads_ SPINDLE_GUARDED_BY(mu_);  // live threads
  std::optional<std::thread> last_exited_ SPINDLE_GUARDED_BY(mu_);  // to join, exited on its own
  std::size_t next_id_ SPINDLE_GUARDED_BY(mu_) = 0;                 // thread ids
  std::size_t idle_ SPINDLE_GUARDED_BY(mu_) = 0;                    // threads waiting for a job
  std::size_t notified_ SPINDLE_GUARDED_BY(mu_) = 0;  // wake-ups sent and not yet taken
  std::size_t running_ SPINDLE_GUARDED_BY(mu_) = 0;   // jobs being run now
  bool shutdown_ SPINDLE_GUARDED_BY(mu_) = false;     // no more jobs
  std::atomic<std::size_t> num_threads_{0};           // mirror of threads_.size() for counters
  std::atomic<std::size_t> num_idle_{0};              // mirror of idle_
  std::atomic<std::size_t> queue_depth_{0};           // mirror of queue_.size()
};

}  // namespace spindle::detail
