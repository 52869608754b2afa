// spindle/runtime/clock.hpp — the clock the runtime and its monitors read.
//
//   spindle::clock_now()  the runtime's default clock (an Instant on steady_clock's timeline)
//
// Task instrumentation reads the clock at every poll boundary, so its cost
// matters: std::chrono::steady_clock::now() costs about 40 ns on the
// virtual machines spindle is developed on, the processor's time-stamp
// counter about a third of that. On x86-64 processors with an invariant
// TSC, clock_now() reads the TSC and scales it to nanoseconds, calibrated
// against steady_clock over the first ~10 ms of use (it returns
// steady_clock readings until then); elsewhere, or with the environment
// variable SPINDLE_CLOCK=steady, it is steady_clock. Its readings are on
// steady_clock's timeline, so they can be compared with steady_clock
// readings to within the calibration error (the TSC line starts 1 µs ahead
// of steady_clock and drifts from it by a few parts per million).
//
// Thread safety: callable from any thread; readings are monotonic per thread,
// across the switch from steady_clock to the TSC too, and comparable across
// threads (the TSC is synchronized across cores on the processors that
// advertise it as invariant).
#pragma once

#include "spindle/runtime/hooks.hpp"

namespace spindle {

/// The runtime's default clock. See the file comment.
Instant clock_now() noexcept;

namespace detail {

/// What clock_now() reads at the moment (for tests and diagnostics).
enum class ClockSource {
  kUndecided,    // clock_now() has not been called yet
  kCalibrating,  // steady_clock, while the TSC's scale is measured (the first ~10 ms)
  kTsc,          // the scaled TSC
  kSteady,       // steady_clock for good (no invariant TSC, or SPINDLE_CLOCK=steady)
};
/// Where clock_now() stands now. Safe from any thread.
ClockSource clock_source() noexcept;

}  // namespace detail

}  // namespace spindle
