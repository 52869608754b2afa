// tests/support/manual_clock.hpp — a clock that only moves when the test says so.
//
//   spindle::test::ManualClock  an injectable clock (Runtime::Builder::clock) that also
//                               counts how often the runtime reads it
//
// Example:
//   auto clock = std::make_shared<spindle::test::ManualClock>();
//   auto rt = spindle::Runtime::Builder().current_thread().clock(clock->source()).build();
//   clock->advance(std::chrono::microseconds(5));
//
// Thread safety: every member is safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <spindle/runtime/hooks.hpp>

namespace spindle::test {

class ManualClock : public std::enable_shared_from_this<ManualClock> {
 public:
  /// The time the clock starts at: far from the epoch, so that a reading of
  /// Instant{} (a value the runtime made up) never looks valid.
  static constexpr std::chrono::nanoseconds kStart{1'000'000'000};

  /// The function to pass to Runtime::Builder::clock(). Keeps the clock alive.
  [[nodiscard]] std::function<Instant()> source() {
    return [self = shared_from_this()] { return self->read(); };
  }
  /// The current time, without counting a read.
  [[nodiscard]] Instant now() const { return Instant(std::chrono::nanoseconds(ns_.load())); }
  void advance(std::chrono::nanoseconds d) { ns_.fetch_add(d.count()); }
  /// How many times the runtime has read the clock.
  [[nodiscard]] std::uint64_t reads() const { return reads_.load(); }

  /// An Instant `d` after the start.
  static Instant at(std::chrono::nanoseconds d) { return Instant(kStart + d); }

 private:
  Instant read() {
    reads_.fetch_add(1);
    return now();
  }

  std::atomic<std::int64_t> ns_{kStart.count()};  // the time, in ns since the epoch
  std::atomic<std::uint64_t> reads_{0};           // reads by the runtime
};

}  // namespace spindle::test
