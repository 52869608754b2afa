// The starvation catalogue (examples/starvation/scenarios.hpp) as tests: each
// cause of a slow task from the seed talk starves a probe task on a
// current_thread runtime, and each fix does not.
//
// Bounds are deliberately loose so that they hold on a loaded 2-core machine
// under ThreadSanitizer: a culprit that holds the thread for kBlock makes the
// probe's worst wake at least 80 % of kBlock late (it cannot be less: the
// probe cannot run at all meanwhile) and leaves it at most two wakes; a fix
// keeps the worst lateness under 50 % of kBlock (it is typically ~1 ms; the
// yield_now fix up to ~60 loop slices, see spindle-starvation's output) and
// the probe keeps waking.

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "starvation/scenarios.hpp"

namespace {

using starvation::Options;
using starvation::Report;
using starvation::Scenario;

constexpr starvation::milliseconds kBlock{300};

Options current_thread() {
  Options o;
  o.block = kBlock;
  // Timers fire when the worker polls its io_context, every 61 polls while a
  // task is queued: the yielding loop delays the probe by up to ~61 slices.
  // Small slices keep that far below the bound even under ThreadSanitizer
  // (which makes each iteration's clock read a slow call) on a loaded machine.
  o.yield_every = 16;
  return o;
}

Options two_workers() {
  Options o = current_thread();
  o.workers = 2;
  return o;
}

constexpr double kBlockMs = static_cast<double>(kBlock.count());

void expect_starved(const Report& r) {
  SCOPED_TRACE(starvation::describe(r.scenario).variant);
  EXPECT_GE(r.culprit_ms, 0.8 * kBlockMs);
  EXPECT_GE(r.lateness.max_ms, 0.8 * kBlockMs);
  EXPECT_GE(r.probe_wakes, 1);  // the one the culprit delayed
  EXPECT_LE(r.probe_wakes, 2);
}

void expect_not_starved(const Report& r) {
  SCOPED_TRACE(starvation::describe(r.scenario).variant);
  EXPECT_GE(r.culprit_ms, 0.8 * kBlockMs);       // the same job took as long...
  EXPECT_LT(r.lateness.max_ms, 0.5 * kBlockMs);  // ...without holding up the probe
  EXPECT_GE(r.probe_wakes, 3);
}

// ---- 1. synchronous sleep inside a task ----------------------------------------------------

TEST(Starvation, ASynchronousSleepInATaskStarvesTheOtherTasks) {
  expect_starved(run_scenario(Scenario::kThreadSleep, current_thread()));
}

TEST(Starvation, ASynchronousSleepMovedToSpawnBlockingDoesNot) {
  expect_not_starved(run_scenario(Scenario::kThreadSleepOnPool, current_thread()));
}

TEST(Starvation, AnAsyncSleepDoesNot) {
  expect_not_starved(run_scenario(Scenario::kAsyncSleep, current_thread()));
}

// ---- 2. a big loop without an await -------------------------------------------------------

TEST(Starvation, ABigLoopWithoutAwaitsStarvesTheOtherTasks) {
  expect_starved(run_scenario(Scenario::kBusyLoop, current_thread()));
}

TEST(Starvation, ABigLoopThatYieldsEveryNIterationsDoesNot) {
  expect_not_starved(run_scenario(Scenario::kBusyLoopYielding, current_thread()));
}

TEST(Starvation, ABigLoopMovedToSpawnBlockingDoesNot) {
  expect_not_starved(run_scenario(Scenario::kBusyLoopOnPool, current_thread()));
}

// ---- 3. a lock held across a suspension ---------------------------------------------------

TEST(Starvation, ABlockingLockHeldAcrossAnAwaitBlocksTheThreadUntilTheWaiterGivesUp) {
  Report r = run_scenario(Scenario::kBlockingLockAcrossAwait, current_thread());
  expect_starved(r);
  // The holder could only be resumed by the thread the waiter was blocking:
  // without its deadline the waiter would have waited forever.
  EXPECT_TRUE(r.lock_gave_up);
  EXPECT_EQ(r.guarded_value, 1);  // only the holder's update happened
}

TEST(Starvation, TheAsyncMutexLetsTheWaiterWaitAsATask) {
  Report r = run_scenario(Scenario::kAsyncMutex, current_thread());
  expect_not_starved(r);
  EXPECT_FALSE(r.lock_gave_up);
  EXPECT_EQ(r.guarded_value, 11);  // both updates, in order
}

// ---- the fixes on a multi_thread runtime ---------------------------------------------------

class StarvationFixOnTwoWorkers : public ::testing::TestWithParam<Scenario> {};

TEST_P(StarvationFixOnTwoWorkers, KeepsTheProbeOnTime) {
  Report r = run_scenario(GetParam(), two_workers());
  expect_not_starved(r);
  if (GetParam() == Scenario::kAsyncMutex) {
    EXPECT_EQ(r.guarded_value, 11);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixes, StarvationFixOnTwoWorkers,
                         ::testing::Values(Scenario::kThreadSleepOnPool, Scenario::kAsyncSleep,
                                           Scenario::kBusyLoopYielding, Scenario::kBusyLoopOnPool,
                                           Scenario::kAsyncMutex),
                         [](const ::testing::TestParamInfo<Scenario>& info) {
                           switch (info.param) {
                             case Scenario::kThreadSleepOnPool:
                               return std::string("SleepOnSpawnBlocking");
                             case Scenario::kAsyncSleep:
                               return std::string("AsyncSleep");
                             case Scenario::kBusyLoopYielding:
                               return std::string("LoopWithYieldNow");
                             case Scenario::kBusyLoopOnPool:
                               return std::string("LoopOnSpawnBlocking");
                             default:
                               return std::string("AsyncMutex");
                           }
                         });

}  // namespace
