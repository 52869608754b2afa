// spindle::clock_now(), the clock the runtime and the monitors read: its
// first use, when several threads race to calibrate it, and its readings.
//
// The calibration happens once per process, at the first reading, so the
// racing test runs in a child process of its own (a "threadsafe" death-test
// child, which re-executes this binary for this test alone): there the
// clock is certainly unused when the threads start. Under ThreadSanitizer a
// data race in the calibration makes the child exit with TSan's status, and
// the test fails. Each child calibrates once, so the test runs several: a
// step back at the switch from steady_clock to the TSC (which the clock once
// took in about one calibration of 16 on a 2-core machine) shows in one of
// them.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <spindle/runtime/clock.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using spindle::Instant;
using spindle::detail::ClockSource;
using std::chrono::steady_clock;

constexpr int kThreads = 8;
// Longer than the calibration window (10 ms), so the threads also race to
// finish the calibration and then read the calibrated clock.
constexpr auto kReadFor = std::chrono::milliseconds(40);
/// Children, each one calibration.
constexpr int kCalibrations = 8;

/// Exits the process with `code` after printing `what` (the child's
/// verdict). std::exit, not _Exit: ThreadSanitizer sets the exit status of
/// a process that reported a race in its exit handlers.
[[noreturn]] void finish(int code, const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::fflush(stderr);
  std::exit(code);
}

/// The child: kThreads threads read the clock first at once, then keep
/// reading it through the calibration. Exits 0 when every thread's
/// readings went forward and the calibrated clock agrees with steady_clock.
[[noreturn]] void race_first_reads() {
  if (spindle::detail::clock_source() != ClockSource::kUndecided) {
    finish(2, "the clock was read before the threads started");
  }
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<std::int64_t> largest_step_back_ns{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      const auto until = steady_clock::now() + kReadFor;
      Instant last = spindle::clock_now();  // the racing first reads
      while (steady_clock::now() < until) {
        const Instant now = spindle::clock_now();
        if (now < last) {
          const std::int64_t back = (last - now).count();
          std::int64_t seen = largest_step_back_ns.load();
          while (back > seen && !largest_step_back_ns.compare_exchange_weak(seen, back)) {
          }
        }
        last = now;
      }
    });
  }
  while (ready.load() != kThreads) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  if (largest_step_back_ns.load() != 0) {
    const std::string what = "a thread's readings went backwards, by up to " +
                             std::to_string(largest_step_back_ns.load()) + " ns";
    finish(3, what.c_str());
  }
  const ClockSource source = spindle::detail::clock_source();
  if (source != ClockSource::kTsc && source != ClockSource::kSteady) {
    finish(4, "the calibration never finished");
  }
  // The calibrated clock is on steady_clock's timeline.
  const auto before = steady_clock::now();
  const Instant reading = spindle::clock_now();
  const auto after = steady_clock::now();
  const auto slack = std::chrono::milliseconds(1);
  if (reading < before - slack || reading > after + slack) {
    finish(5, "the calibrated clock is off steady_clock's timeline by over 1 ms");
  }
  finish(0, source == ClockSource::kTsc ? "calibrated: TSC" : "calibrated: steady_clock");
}

TEST(ClockDeathTest, ThreadsRacingToReadItFirstCalibrateItWithoutARaceAndReadForward) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (int i = 0; i < kCalibrations; ++i) {
    EXPECT_EXIT(race_first_reads(), ::testing::ExitedWithCode(0), "calibrated: ")
        << "calibration " << i + 1 << " of " << kCalibrations;
  }
}

TEST(Clock, ReadingsAreOnSteadyClocksTimelineAndGoForward) {
  const auto before = steady_clock::now();
  const Instant a = spindle::clock_now();
  const Instant b = spindle::clock_now();
  const auto after = steady_clock::now();
  EXPECT_LE(a, b);
  // Calibrating or calibrated, within the calibration error (well under 1 ms).
  EXPECT_GE(a, before - std::chrono::milliseconds(1));
  EXPECT_LE(b, after + std::chrono::milliseconds(1));
  EXPECT_NE(spindle::detail::clock_source(), ClockSource::kUndecided);
}

}  // namespace
