// bench/latch.hpp — the completion signal every benchmark iteration waits on.
//
//   Latch  counts tasks down; the one that reaches zero releases the waiting thread
//
// Shared by spindle-bench's sources so that spindle and Asio variants end an
// iteration the same way. arm() and wait() are called by the benchmark thread,
// count_down() by tasks on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <semaphore>

namespace spindle_bench {

class Latch {
 public:
  void arm(std::int64_t n) noexcept { remaining_.store(n, std::memory_order_relaxed); }
  void count_down() noexcept {
    // acq_rel: every task's writes (parallel_work's sum) happen-before the
    // release of the semaphore, which the waiter acquires.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.release();
  }
  void wait() noexcept { done_.acquire(); }

 private:
  std::atomic<std::int64_t> remaining_{0};  // tasks still to count down
  std::binary_semaphore done_{0};           // released by the last task
};

}  // namespace spindle_bench
