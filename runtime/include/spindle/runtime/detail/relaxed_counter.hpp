// Internal: the one counter type with a single writer, for the runtime's
// per-worker counters and the monitors' per-worker slots.
//
//   detail::RelaxedCounter  written by one thread, read by any
#pragma once

#include <atomic>
#include <cstdint>

namespace spindle::detail {

/// A counter with a single writer. add() and max() are a relaxed load and
/// a relaxed store — no read-modify-write, so no locked instruction on the
/// hot path — and readers on other threads see a value that is at most
/// slightly stale, never torn.
///
/// Thread safety: add() and max() only from the owning thread; get() from any.
class RelaxedCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// Raises the value to `n` if it is below (a running maximum).
  void max(std::uint64_t n) noexcept {
    if (n > value_.load(std::memory_order_relaxed)) value_.store(n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};  // the count; written only by its owner thread
};

}  // namespace spindle::detail
