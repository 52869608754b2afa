// Internal: a counter written by one thread and read by any.
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail {

/// A monotonically increasing counter with a single writer. add() is a
/// relaxed load and a relaxed store — no read-modify-write, so no locked
/// instruction on the hot path — and readers on other threads see a value
/// that is at most slightly stale, never torn.
class RelaxedCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};  // the count; written only by its owner thread
};

}  // namespace spindle::detail
