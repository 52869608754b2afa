// spindle::sleep, sleep_until, timeout and Interval on both runtime flavours.
//
// Timing assertions are one-sided: a sleep waits *at least* its duration,
// never "at most" (a loaded 2-core machine under a sanitizer can be late by
// any amount). Interval tests compare the scheduled instants that tick()
// returns, which are exact, not the wall-clock times the ticks happened.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/io_support.hpp"
#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Interval;
using spindle::JoinHandle;
using spindle::MissedTick;
using spindle::Task;
using spindle::TimedOut;
using spindle::UsageError;
using spindle::iotest::Flavor;
using spindle::iotest::make_runtime;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class Time : public ::testing::TestWithParam<Flavor> {};

Task<void> set_flag(std::atomic<bool>& flag) {
  flag.store(true);
  co_return;
}

// Spins (without awaiting) until `until`: the task itself is late.
void busy_wait_until(Clock::time_point until) {
  while (Clock::now() < until) {
  }
}

// Yields until `done()` is true; false if that takes longer than a hang would.
template <class Pred>
Task<bool> yield_until(Pred done) {
  const auto deadline = Clock::now() + spindle::test::kPatience;
  while (!done()) {
    if (Clock::now() > deadline) co_return false;
    co_await spindle::yield_now();
  }
  co_return true;
}

// ---- sleep --------------------------------------------------------------------------------

TEST_P(Time, SleepWaitsAtLeastItsDuration) {
  auto rt = make_runtime(GetParam());
  Clock::duration waited = rt.block_on([]() -> Task<Clock::duration> {
    const auto start = Clock::now();
    co_await spindle::sleep(milliseconds(30));
    co_return Clock::now() - start;
  }());
  EXPECT_GE(waited, milliseconds(30));
}

TEST_P(Time, SleepUntilWaitsUntilTheDeadline) {
  auto rt = make_runtime(GetParam());
  bool on_time = rt.block_on([]() -> Task<bool> {
    const auto deadline = Clock::now() + milliseconds(25);
    co_await spindle::sleep_until(deadline);
    co_return Clock::now() >= deadline;
  }());
  EXPECT_TRUE(on_time);
}

TEST(Time, ZeroOrNegativeSleepCompletesWithoutSuspending) {
  // On current_thread a queued neighbour runs only if this task suspends.
  auto rt = spindle::Runtime::Builder().current_thread().build();
  bool neighbour_ran_during_sleeps = rt.block_on([]() -> Task<bool> {
    std::atomic<bool> neighbour_ran{false};
    JoinHandle<void> neighbour = spindle::spawn(set_flag(neighbour_ran));
    co_await spindle::sleep(milliseconds(0));
    co_await spindle::sleep(milliseconds(-5));
    co_await spindle::sleep(-std::chrono::hours(1));
    co_await spindle::sleep_until(Clock::now() - milliseconds(10));
    const bool ran = neighbour_ran.load();
    co_await neighbour;
    co_return ran;
  }());
  EXPECT_FALSE(neighbour_ran_during_sleeps);
}

TEST_P(Time, TenThousandTasksSleepingOneMillisecondAllComplete) {
  auto rt = make_runtime(GetParam());
  constexpr int kTasks = 10'000;
  int done = rt.block_on([]() -> Task<int> {
    std::vector<JoinHandle<int>> hs;
    hs.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(spindle::spawn([]() -> Task<int> {
        co_await spindle::sleep(milliseconds(1));
        co_return 1;
      }()));
    }
    int sum = 0;
    for (auto& h : hs) sum += co_await h;
    co_return sum;
  }());
  EXPECT_EQ(done, kTasks);
}

// ---- timeout ------------------------------------------------------------------------------

Task<int> value_after(milliseconds d, int v) {
  co_await spindle::sleep(d);
  co_return v;
}

// Its frame holds `witness` from the call on, so the frame's destruction is
// visible whether or not the task ever started.
Task<int> sleep_for_an_hour(Counted witness) {
  co_await spindle::sleep(std::chrono::hours(1));
  co_return witness.value();
}

Task<int> throw_after(milliseconds d) {
  co_await spindle::sleep(d);
  throw std::runtime_error("inner failure");
}

TEST_P(Time, TimeoutReturnsTheValueWhenTheTaskFinishesInTime) {
  auto rt = make_runtime(GetParam());
  int v = rt.block_on([]() -> Task<int> {
    int a = co_await spindle::timeout(std::chrono::seconds(60), value_after(milliseconds(1), 7));
    int b = co_await spindle::timeout(std::chrono::seconds(60), value_after(milliseconds(0), 5));
    co_return a * 10 + b;
  }());
  EXPECT_EQ(v, 75);
}

TEST_P(Time, TimeoutThrowsTimedOutAndDestroysTheInnerTask) {
  auto rt = make_runtime(GetParam());
  LifetimeCounts counts;
  std::string error = rt.block_on([](LifetimeCounts& counts) -> Task<std::string> {
    std::string what;
    try {
      (void)co_await spindle::timeout(milliseconds(20), sleep_for_an_hour(Counted(counts)));
    } catch (const TimedOut& e) {
      EXPECT_EQ(e.limit(), milliseconds(20));
      what = e.what();
    }
    // The inner task was aborted; its frame is destroyed on a worker soon.
    EXPECT_TRUE(co_await yield_until([&counts] { return counts.alive() == 0; }));
    co_return what;
  }(counts));
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
  EXPECT_NE(error.find("cancelled"), std::string::npos) << error;
}

TEST_P(Time, TimeoutPropagatesTheInnerTasksException) {
  auto rt = make_runtime(GetParam());
  std::string what = rt.block_on([]() -> Task<std::string> {
    try {
      (void)co_await spindle::timeout(std::chrono::seconds(60), throw_after(milliseconds(1)));
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  }());
  EXPECT_EQ(what, "inner failure");
}

TEST_P(Time, TimeoutRejectsANegativeLimitWithUsageError) {
  auto rt = make_runtime(GetParam());
  LifetimeCounts counts;
  bool rejected = rt.block_on([](LifetimeCounts& counts) -> Task<bool> {
    try {
      (void)co_await spindle::timeout(milliseconds(-1), [](Counted c) -> Task<int> {
        co_return c.value();
      }(Counted(counts, 3)));
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }(counts));
  EXPECT_TRUE(rejected);
  EXPECT_EQ(counts.alive(), 0);  // the task that was never run is destroyed too
}

// ---- Interval -----------------------------------------------------------------------------

constexpr milliseconds kPeriod{20};

TEST_P(Time, IntervalTicksFirstAtOnceThenEveryPeriod) {
  auto rt = make_runtime(GetParam());
  rt.block_on([]() -> Task<void> {
    const auto before = Clock::now();
    Interval iv = spindle::interval(kPeriod);
    const auto after = Clock::now();
    EXPECT_EQ(iv.period(), kPeriod);
    std::vector<Clock::time_point> ticks;
    for (int i = 0; i < 4; ++i) {
      ticks.push_back(co_await iv.tick());
      EXPECT_GE(Clock::now(), ticks.back());  // never early
    }
    EXPECT_GE(ticks[0], before);
    EXPECT_LE(ticks[0], after);
    for (int i = 1; i < 4; ++i) EXPECT_EQ(ticks[i] - ticks[i - 1], kPeriod) << i;
  }());
}

TEST_P(Time, IntervalBurstFiresMissedTicksBackToBack) {
  auto rt = make_runtime(GetParam());
  rt.block_on([]() -> Task<void> {
    const auto start = Clock::now();
    Interval iv(kPeriod, MissedTick::kBurst, start);
    EXPECT_EQ(co_await iv.tick(), start);
    busy_wait_until(start + 3 * kPeriod + kPeriod / 2);  // misses ticks 1, 2 and 3
    for (int i = 1; i <= 5; ++i) EXPECT_EQ(co_await iv.tick(), start + i * kPeriod) << i;
  }());
}

TEST_P(Time, IntervalDelayRestartsThePeriodFromTheLateTick) {
  auto rt = make_runtime(GetParam());
  rt.block_on([]() -> Task<void> {
    const auto start = Clock::now();
    Interval iv(kPeriod, MissedTick::kDelay, start);
    EXPECT_EQ(co_await iv.tick(), start);
    const auto late_until = start + 3 * kPeriod + kPeriod / 2;
    busy_wait_until(late_until);
    // The overdue tick fires (scheduled for start + period), then the
    // schedule restarts one period after the moment it fired.
    EXPECT_EQ(co_await iv.tick(), start + kPeriod);
    const auto fired_by = Clock::now();
    const auto next = co_await iv.tick();
    EXPECT_GE(next, late_until + kPeriod);
    EXPECT_LE(next, fired_by + kPeriod);
    EXPECT_GE(co_await iv.tick() - next, kPeriod);  // never closer than a period
  }());
}

TEST_P(Time, IntervalSkipDropsMissedTicksAndStaysOnTheGrid) {
  auto rt = make_runtime(GetParam());
  rt.block_on([]() -> Task<void> {
    const auto start = Clock::now();
    Interval iv(kPeriod, MissedTick::kSkip, start);
    EXPECT_EQ(co_await iv.tick(), start);
    const auto late_until = start + 3 * kPeriod + kPeriod / 2;
    busy_wait_until(late_until);
    EXPECT_EQ(co_await iv.tick(), start + kPeriod);
    const auto fired_by = Clock::now();
    // Next: the first multiple of the period after the late tick fired.
    const auto next = co_await iv.tick();
    EXPECT_EQ((next - start) % kPeriod, Clock::duration::zero());
    EXPECT_GT(next, late_until);
    EXPECT_LE(next, fired_by + kPeriod);
    const auto after = co_await iv.tick();
    EXPECT_EQ((after - start) % kPeriod, Clock::duration::zero());
    EXPECT_GT(after, next);
  }());
}

TEST(Time, IntervalRejectsANonPositivePeriodWithUsageError) {
  EXPECT_THROW((void)spindle::interval(milliseconds(0)), UsageError);
  EXPECT_THROW((void)spindle::interval(milliseconds(-1)), UsageError);
  EXPECT_THROW(Interval(std::chrono::nanoseconds(0), MissedTick::kSkip), UsageError);
}

INSTANTIATE_TEST_SUITE_P(Flavors, Time, spindle::iotest::kBothFlavors,
                         spindle::iotest::flavor_name);

}  // namespace
