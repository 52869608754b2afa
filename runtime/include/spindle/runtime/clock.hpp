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
// readings to within the calibration error (a few parts per million).
//
// Thread safety: callable from any thread; readings are monotonic per thread
// and comparable across threads (the TSC is synchronized across cores on
// the processors that advertise it as invariant).
#pragma once

#include "spindle/runtime/hooks.hpp"

namespace spindle {

/// The runtime's default clock. See the file comment.
Instant clock_now() noexcept;

}  // namespace spindle
