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

enum : int { kUnknown, kCalibrating, kTsc, kSteady };

struct TscClock {
  std::atomic<int> mode{kUnknown};  // what now() does
  // Published by the release store of mode = kTsc; constant afterwards.
  std::int64_t base_ns = 0;         // steady_clock reading at the first sample
  std::uint64_t base_tsc = 0;       // TSC at the first sample
  std::uint64_t mult = 0;           // nanoseconds per tick, as a 32.32 fixed-point number
  std::atomic<bool> claimed{false}; // one thread computes the calibration
};

TscClock g_clock;

#if defined(__x86_64__)
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
  int mode = g_clock.mode.load(std::memory_order_acquire);
  if (mode == kTsc) [[likely]] {
    std::uint64_t ticks = __rdtsc() - g_clock.base_tsc;
    auto ns = static_cast<std::int64_t>(
        (static_cast<U128>(ticks) * g_clock.mult) >> 32);
    return from_ns(g_clock.base_ns + ns);
  }
  if (mode == kSteady) return Steady::now();
  const std::int64_t now_ns = steady_ns();
  if (mode == kUnknown) {
    // First use: decide, and take the first calibration sample.
    if (!g_clock.claimed.exchange(true, std::memory_order_acq_rel)) {
      const char* env = std::getenv("SPINDLE_CLOCK");
      if ((env != nullptr && std::strcmp(env, "steady") == 0) || !has_invariant_tsc()) {
        g_clock.mode.store(kSteady, std::memory_order_release);
      } else {
        g_clock.base_tsc = __rdtsc();
        g_clock.base_ns = steady_ns();
        g_clock.claimed.store(false, std::memory_order_release);
        g_clock.mode.store(kCalibrating, std::memory_order_release);
      }
    }
    return from_ns(now_ns);
  }
  // Calibrating: steady_clock until the window has passed, then one thread
  // computes the scale and switches everyone to the TSC.
  if (now_ns - g_clock.base_ns >= kCalibrationNs &&
      !g_clock.claimed.exchange(true, std::memory_order_acq_rel)) {
    const std::uint64_t tsc = __rdtsc();
    const std::int64_t ns = steady_ns();
    const std::uint64_t ticks = tsc - g_clock.base_tsc;
    if (ticks == 0) {
      g_clock.mode.store(kSteady, std::memory_order_release);
    } else {
      g_clock.mult = static_cast<std::uint64_t>(
          (static_cast<U128>(ns - g_clock.base_ns) << 32) / ticks);
      g_clock.mode.store(kTsc, std::memory_order_release);
    }
  }
  return from_ns(now_ns);
#else
  return Steady::now();
#endif
}

}  // namespace spindle
