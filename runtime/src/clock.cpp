// The TSC-backed default clock (see spindle/runtime/clock.hpp).

#include "spindle/runtime/clock.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

namespace spindle {

namespace {

using Steady = std::chrono::steady_clock;
#if defined(__x86_64__)
__extension__ typedef unsigned __int128 U128;  // GCC/Clang extension, for the scaling multiply
#endif

/// Calibration window: long enough that a sample's uncertainty (the width
/// of its steady_clock bracket, about 100 ns) is a few parts per million of
/// it, short enough to finish early in a run.
constexpr std::int64_t kCalibrationNs = 10'000'000;
/// How many times a calibration sample is taken, keeping the narrowest: a
/// thread preempted between the two steady_clock reads of one try makes that
/// try's bracket milliseconds wide, and the scale from it wrong by a third.
constexpr int kSampleTries = 16;
/// A try this narrow is kept at once.
constexpr std::int64_t kGoodBracketNs = 250;
/// How far ahead of steady_clock the TSC line starts at the switch. The line
/// starts at (not below) steady_clock, but its scale is only known to a few
/// parts per million, so if the switching thread is preempted between its
/// last sample and its store of kTsc, steady_clock can move ahead of the line
/// by that error times the delay; 1 µs covers 100 ms of delay at 10 ppm.
constexpr std::int64_t kSwitchMarginNs = 1'000;

// The clock's life is one atomic `mode`. Each step that writes a field is
// won by exactly one thread, with a compare-exchange on the mode, and the
// fields it wrote are published by the release store that ends the step:
//
//   kUnknown     → kSampling     CAS, by the first caller: it decides
//   kSampling    → kSteady       no invariant TSC, or SPINDLE_CLOCK=steady
//   kSampling    → kCalibrating  release: cal_tsc and cal_ns are sampled
//   kCalibrating → kScaling      CAS, by the first caller after the window
//   kScaling     → kTsc          release: the line (base_tsc, base_ns, mult) is set
//   kScaling     → kSteady       the TSC did not move
//
// Every caller that finds kSampling, kScaling or kCalibrating (before the
// window has passed) reads steady_clock. A field is read only after an
// acquire load of the mode that its publishing store made (cal_ns in
// kCalibrating, the line in kTsc), and never written again.
//
// Readings go forward on each thread across the switch to the TSC: a
// steady_clock reading is returned only if the mode, loaded again after it
// was taken, is still not kTsc (else the thread returns a TSC reading, taken
// later); so each steady_clock reading a thread returned was taken before it
// saw the switch, and the line starts at or ahead of steady_clock at the
// switch (see kSwitchMarginNs), so its TSC readings after it are later.
enum : int { kUnknown, kSampling, kCalibrating, kScaling, kTsc, kSteady };

struct TscClock {
  std::atomic<int> mode{kUnknown};  // what now() does; see the state diagram above
  // Written by the winner of kUnknown → kSampling, published by its release
  // store of kCalibrating; constant afterwards. The calibration's first sample.
  std::int64_t cal_ns = 0;    // steady_clock's reading at cal_tsc
  std::uint64_t cal_tsc = 0;  // TSC at the first sample
  // Written by the winner of kCalibrating → kScaling, published by its
  // release store of kTsc; constant afterwards. The line TSC readings are on.
  std::int64_t base_ns = 0;    // the line's reading at base_tsc
  std::uint64_t base_tsc = 0;  // TSC at the line's anchor
  std::uint64_t mult = 0;      // nanoseconds per tick, as a 32.32 fixed-point number
};

TscClock g_clock;

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch())
      .count();
}

Instant from_ns(std::int64_t ns) noexcept {
  return Instant(std::chrono::duration_cast<Steady::duration>(std::chrono::nanoseconds(ns)));
}

#if defined(__x86_64__)
/// Moves the mode from `from` to `to` if it is still `from`; true for the
/// one caller that did. acquire on success: the winner sees what the step
/// before published (the sample, for kCalibrating → kScaling).
bool win(int from, int to) noexcept {
  return g_clock.mode.compare_exchange_strong(from, to, std::memory_order_acquire,
                                              std::memory_order_relaxed);
}

bool has_invariant_tsc() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0x80000000U, &a, &b, &c, &d) == 0 || a < 0x80000007U) return false;
  __get_cpuid(0x80000007U, &a, &b, &c, &d);
  return (d & (1U << 8)) != 0;
}

/// One TSC reading with the steady_clock readings just before and after it.
struct Sample {
  std::int64_t lo = 0;  // steady_clock before the TSC was read
  std::uint64_t tsc = 0;
  std::int64_t hi = 0;  // steady_clock after
  std::int64_t mid() const noexcept { return lo + (hi - lo) / 2; }
};

/// The narrowest of up to kSampleTries brackets.
Sample sample() noexcept {
  Sample best;
  for (int i = 0; i < kSampleTries; ++i) {
    Sample s;
    s.lo = steady_ns();
    s.tsc = __rdtsc();
    s.hi = steady_ns();
    if (i == 0 || s.hi - s.lo < best.hi - best.lo) best = s;
    if (best.hi - best.lo <= kGoodBracketNs) break;
  }
  return best;
}

/// A reading of the calibrated clock; only after an acquire load saw kTsc.
Instant tsc_now() noexcept {
  const std::uint64_t ticks = __rdtsc() - g_clock.base_tsc;
  const auto ns = static_cast<std::int64_t>((static_cast<U128>(ticks) * g_clock.mult) >> 32);
  return from_ns(g_clock.base_ns + ns);
}

/// clock_now() before the switch to the TSC (or to steady_clock for good):
/// takes the calibration's steps when they are due; see the state diagram.
[[gnu::noinline]] Instant calibrating_now(int mode) noexcept {
  const std::int64_t now_ns = steady_ns();
  if (mode == kUnknown) {
    // First use: one thread decides, and takes the first calibration sample.
    if (win(kUnknown, kSampling)) {
      const char* env = std::getenv("SPINDLE_CLOCK");
      if ((env != nullptr && std::strcmp(env, "steady") == 0) || !has_invariant_tsc()) {
        g_clock.mode.store(kSteady, std::memory_order_release);
        return from_ns(now_ns);
      }
      const Sample first = sample();
      g_clock.cal_tsc = first.tsc;
      g_clock.cal_ns = first.mid();
      // release: publishes cal_tsc and cal_ns with the mode.
      g_clock.mode.store(kCalibrating, std::memory_order_release);
    }
  } else if (mode == kCalibrating && now_ns - g_clock.cal_ns >= kCalibrationNs &&
             win(kCalibrating, kScaling)) {
    // The window has passed (cal_ns is visible: this thread's acquire load
    // saw kCalibrating): one thread computes the scale from the two samples
    // and sets the line through a fresh one, at its upper bracket and a
    // margin, so that the line is not behind steady_clock when it starts.
    const Sample last = sample();
    const std::uint64_t ticks = last.tsc - g_clock.cal_tsc;
    if (ticks == 0 || last.mid() <= g_clock.cal_ns) {
      g_clock.mode.store(kSteady, std::memory_order_release);
    } else {
      g_clock.mult = static_cast<std::uint64_t>(
          (static_cast<U128>(last.mid() - g_clock.cal_ns) << 32) / ticks);
      const Sample anchor = sample();
      g_clock.base_tsc = anchor.tsc;
      g_clock.base_ns = anchor.hi + kSwitchMarginNs;
      // release: publishes the line with the mode.
      g_clock.mode.store(kTsc, std::memory_order_release);
    }
  }
  // now_ns is returned only if the switch to the TSC was not yet visible
  // after it was read (see "Readings go forward" above); acquire: pairs with
  // the store of kTsc, for the line.
  if (g_clock.mode.load(std::memory_order_acquire) == kTsc) return tsc_now();
  return from_ns(now_ns);
}
#endif

}  // namespace

Instant clock_now() noexcept {
#if defined(__x86_64__)
  // acquire: pairs with the release store that published the mode, so the
  // fields it guards (the line) are visible in tsc_now().
  const int mode = g_clock.mode.load(std::memory_order_acquire);
  if (mode == kTsc) [[likely]] {
    return tsc_now();
  }
  if (mode == kSteady) return Steady::now();
  return calibrating_now(mode);
#else
  return Steady::now();
#endif
}

namespace detail {

ClockSource clock_source() noexcept {
#if !defined(__x86_64__)
  return ClockSource::kSteady;
#endif
  switch (g_clock.mode.load(std::memory_order_acquire)) {
    case kUnknown:
      return ClockSource::kUndecided;
    case kTsc:
      return ClockSource::kTsc;
    case kSteady:
      return ClockSource::kSteady;
    default:
      return ClockSource::kCalibrating;
  }
}

}  // namespace detail

}  // namespace spindle
