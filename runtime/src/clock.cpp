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

/// Calibration window: long enough that clock_gettime's jitter (tens of ns)
/// is a few parts per million of it, short enough to finish early in a run.
constexpr std::int64_t kCalibrationNs = 10'000'000;

// The clock's life is one atomic `mode`. Each step that writes a field is
// won by exactly one thread, with a compare-exchange on the mode, and the
// fields it wrote are published by the release store that ends the step:
//
//   kUnknown     → kSampling     CAS, by the first caller: it decides
//   kSampling    → kSteady       no invariant TSC, or SPINDLE_CLOCK=steady
//   kSampling    → kCalibrating  release: base_tsc and base_ns are sampled
//   kCalibrating → kScaling      CAS, by the first caller after the window
//   kScaling     → kTsc          release: mult is computed
//   kScaling     → kSteady       the TSC did not move
//
// Every caller that finds kSampling, kScaling or kCalibrating (before the
// window has passed) reads steady_clock. A field is read only after an
// acquire load of the mode that its publishing store made (base_ns in
// kCalibrating, everything in kTsc), and never written again.
enum : int { kUnknown, kSampling, kCalibrating, kScaling, kTsc, kSteady };

struct TscClock {
  std::atomic<int> mode{kUnknown};  // what now() does; see the state diagram above
  // Written by the winner of kUnknown → kSampling, published by its release
  // store of kCalibrating; constant afterwards.
  std::int64_t base_ns = 0;    // steady_clock reading at the first sample
  std::uint64_t base_tsc = 0;  // TSC at the first sample
  // Written by the winner of kCalibrating → kScaling, published by its
  // release store of kTsc; constant afterwards.
  std::uint64_t mult = 0;  // nanoseconds per tick, as a 32.32 fixed-point number
};

TscClock g_clock;

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
#endif

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Steady::now().time_since_epoch())
      .count();
}

Instant from_ns(std::int64_t ns) noexcept {
  return Instant(std::chrono::duration_cast<Steady::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

Instant clock_now() noexcept {
#if defined(__x86_64__)
  // acquire: pairs with the release store that published the mode, so the
  // fields it guards (base_*, mult) are visible below.
  const int mode = g_clock.mode.load(std::memory_order_acquire);
  if (mode == kTsc) [[likely]] {
    std::uint64_t ticks = __rdtsc() - g_clock.base_tsc;
    auto ns = static_cast<std::int64_t>((static_cast<U128>(ticks) * g_clock.mult) >> 32);
    return from_ns(g_clock.base_ns + ns);
  }
  if (mode == kSteady) return Steady::now();
  const std::int64_t now_ns = steady_ns();
  if (mode == kUnknown) {
    // First use: one thread decides, and takes the first calibration sample.
    if (win(kUnknown, kSampling)) {
      const char* env = std::getenv("SPINDLE_CLOCK");
      if ((env != nullptr && std::strcmp(env, "steady") == 0) || !has_invariant_tsc()) {
        g_clock.mode.store(kSteady, std::memory_order_release);
      } else {
        g_clock.base_tsc = __rdtsc();
        g_clock.base_ns = steady_ns();
        // release: publishes base_tsc and base_ns with the mode.
        g_clock.mode.store(kCalibrating, std::memory_order_release);
      }
    }
    return from_ns(now_ns);
  }
  // kSampling or kScaling: another thread is inside a transition; steady_clock meanwhile.
  if (mode != kCalibrating) return from_ns(now_ns);
  // kCalibrating: steady_clock until the window has passed, then one thread
  // computes the scale and switches everyone to the TSC. (base_ns is
  // visible: this thread's acquire load saw kCalibrating.)
  if (now_ns - g_clock.base_ns >= kCalibrationNs && win(kCalibrating, kScaling)) {
    const std::uint64_t tsc = __rdtsc();
    const std::int64_t ns = steady_ns();
    const std::uint64_t ticks = tsc - g_clock.base_tsc;
    if (ticks == 0) {
      g_clock.mode.store(kSteady, std::memory_order_release);
    } else {
      g_clock.mult =
          static_cast<std::uint64_t>((static_cast<U128>(ns - g_clock.base_ns) << 32) / ticks);
      // release: publishes mult with the mode.
      g_clock.mode.store(kTsc, std::memory_order_release);
    }
  }
  return from_ns(now_ns);
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
