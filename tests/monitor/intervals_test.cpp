// TaskIntervals: deltas that add up to the cumulative values, field by field
// and bucket by bucket, on an injected clock.

#include <gtest/gtest.h>

#include <chrono>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <utility>
#include <vector>

#include "monitor/monitor_support.hpp"

namespace {

using spindle::Histogram;
using spindle::Task;
using spindle::TaskIntervals;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::sync::oneshot;
using spindle::sync::Sender;
using spindle::test::buckets;
using spindle::test::ClockedRuntime;
using spindle::test::diff;
using spindle::test::ManualClock;
using spindle::test::plus;
using spindle::test::recv;
using namespace std::chrono_literals;

// A task of `mon` that waits `idle` for an event, then polls `poll` long.
void idle_then_poll(ClockedRuntime& c, const TaskMonitor& mon, std::chrono::nanoseconds idle,
                    std::chrono::nanoseconds poll) {
  auto [tx, rx] = oneshot<int>();
  auto h = c.rt.spawn(mon.instrument([](spindle::sync::Receiver<int> rx, ManualClock& clock,
                                        std::chrono::nanoseconds poll) -> Task<int> {
    int v = co_await rx;
    clock.advance(poll);
    co_return v;
  }(std::move(rx), *c.clock, poll)));
  c.run_queued();
  c.clock->advance(idle);
  tx.send(1);
  c.join(h);
}

// A task of `mon` woken while a task of `mon` polls for `d`, then both end.
void queued_behind(ClockedRuntime& c, const TaskMonitor& mon, std::chrono::nanoseconds d) {
  auto [tx, rx] = oneshot<int>();
  auto waiting = c.rt.spawn(mon.instrument(recv(std::move(rx))));
  c.run_queued();
  c.clock->advance(1us);
  auto busy = c.rt.spawn(mon.instrument(
      [](Sender<int> tx, ManualClock& clock, std::chrono::nanoseconds d) -> Task<void> {
        tx.send(1);
        clock.advance(d);
        co_return;
      }(std::move(tx), *c.clock, d)));
  c.join(waiting);
  c.join(busy);
}

// A task of `mon` that yields `n` times, polling `each` every time.
void yielder(ClockedRuntime& c, const TaskMonitor& mon, int n, std::chrono::nanoseconds each) {
  auto h = c.rt.spawn(
      mon.instrument([](ManualClock& clock, int n, std::chrono::nanoseconds each) -> Task<void> {
        for (int i = 0; i < n; ++i) {
          clock.advance(each);
          co_await spindle::yield_now();
        }
      }(*c.clock, n, each)));
  c.clock->advance(3us);  // a first-poll delay
  c.join(h);
}

TEST(TaskIntervals, DeltasAddUpToTheCumulativeValuesFieldByFieldAndBucketByBucket) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("iv");
  TaskIntervals it = mon.intervals();
  std::vector<TaskMetrics> deltas;

  idle_then_poll(c, mon, 10ms, 60us);
  c.clock->advance(1s);
  deltas.push_back(it.next());

  queued_behind(c, mon, 5ms);
  yielder(c, mon, 20, 7us);
  deltas.push_back(it.next());

  deltas.push_back(it.next());  // nothing happened

  // A task that stays alive (idle) across the next reading.
  auto [tx, rx] = oneshot<int>();
  auto live = c.rt.spawn(mon.instrument(recv(std::move(rx))));
  c.run_queued();
  idle_then_poll(c, mon, 3ms, 1us);
  deltas.push_back(it.next());

  c.clock->advance(2ms);
  tx.send(1);
  c.join(live);
  yielder(c, mon, 3, 100us);
  deltas.push_back(it.next());

  TaskMetrics total = mon.cumulative();  // the clock has not moved since the last next()
  TaskMetrics sum;
  for (const TaskMetrics& d : deltas) sum = plus(sum, d);
  EXPECT_EQ(diff(sum, total), "");
  // The readings are not trivial.
  EXPECT_EQ(total.instrumented_count, 7U);
  EXPECT_EQ(total.dropped_count, 7U);
  EXPECT_GT(total.total_long_delay_count, 0U);
  EXPECT_GT(total.total_slow_poll_count, 0U);
  EXPECT_GT(total.total_self_wake_count, 0U);
  EXPECT_EQ(total.max_idle_duration, 10ms);
  EXPECT_EQ(total.poll_duration_histogram.count(), total.total_poll_count);
  EXPECT_EQ(total.scheduled_delay_histogram.count(), total.total_scheduled_count);
  EXPECT_EQ(total.idle_duration_histogram.count(), total.total_idled_count);
  // The empty interval is empty but for its length (0: the clock stood still).
  TaskMetrics empty;
  EXPECT_EQ(diff(deltas[2], empty), "");
  // The interval that held the live task's first poll and the 3 ms idle.
  EXPECT_EQ(deltas[3].instrumented_count, 2U);
  EXPECT_EQ(deltas[3].dropped_count, 1U);
  EXPECT_EQ(deltas[4].instrumented_count, 1U);
  EXPECT_EQ(deltas[4].dropped_count, 2U);
  // The live task idled through the 3 ms idle and 1 us poll of the other, then 2 ms.
  EXPECT_EQ(deltas[4].total_idle_duration, 5'001us);
}

TEST(TaskIntervals, TheFirstNextEqualsTheCumulativeValues) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("first");
  c.clock->advance(7ms);
  idle_then_poll(c, mon, 10ms, 60us);
  queued_behind(c, mon, 200us);
  TaskIntervals it = mon.intervals();  // created late: still counts from the monitor's creation
  TaskMetrics first = it.next();
  TaskMetrics total = mon.cumulative();
  EXPECT_EQ(diff(first, total), "");
  EXPECT_EQ(first.elapsed, 7ms + 10ms + 60us + 1us + 200us);
}

TEST(TaskIntervals, TwoIteratorsAreIndependent) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("two");
  TaskIntervals a = mon.intervals();
  TaskIntervals b = mon.intervals();
  idle_then_poll(c, mon, 1ms, 60us);
  TaskMetrics a1 = a.next();
  queued_behind(c, mon, 100us);
  TaskMetrics a2 = a.next();
  TaskMetrics b1 = b.next();  // everything so far: a's readings did not move b
  EXPECT_EQ(diff(b1, plus(a1, a2)), "");
  EXPECT_EQ(diff(b1, mon.cumulative()), "");
  yielder(c, mon, 2, 1us);
  TaskMetrics b2 = b.next();
  TaskMetrics a3 = a.next();
  EXPECT_EQ(diff(a3, b2), "");
  EXPECT_EQ(b2.total_self_wake_count, 2U);
  // A moved iterator continues where it was.
  TaskIntervals moved = std::move(a);
  yielder(c, mon, 1, 1us);
  TaskMetrics m1 = moved.next();
  EXPECT_EQ(m1.total_self_wake_count, 1U);
  EXPECT_EQ(m1.instrumented_count, 1U);
}

TEST(TaskIntervals, AMovedFromIteratorThrowsUsageError) {
  TaskMonitor mon = TaskMonitor::Builder().build();
  TaskIntervals a = mon.intervals();
  TaskIntervals b = std::move(a);
  EXPECT_THROW((void)a.next(), spindle::UsageError);  // NOLINT(bugprone-use-after-move)
  EXPECT_NO_THROW((void)b.next());
  a = std::move(b);
  EXPECT_NO_THROW((void)a.next());
}

TEST(TaskIntervals, MaxIdleIsTheIntervalsMeasuredMaximumNotABucketBound) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("max");
  TaskIntervals it = mon.intervals();
  TaskMetrics d0 = it.next();
  EXPECT_EQ(d0.max_idle_duration, 0ns);
  idle_then_poll(c, mon, 1s, 1us);
  TaskMetrics d1 = it.next();
  EXPECT_EQ(d1.max_idle_duration, 1s);  // not 1,020,054,733 ns, its bucket's bound
  idle_then_poll(c, mon, 2ms, 1us);
  TaskMetrics d2 = it.next();
  EXPECT_EQ(d2.max_idle_duration, 2ms);  // below the record, still exact
  // 2 ms lies in (1,992,295, 2,097,152] ns.
  EXPECT_EQ(buckets(d2.idle_duration_histogram), "{150:1}");
  TaskMetrics d3 = it.next();
  EXPECT_EQ(d3.max_idle_duration, 0ns);  // no idle at all
  idle_then_poll(c, mon, 3ms, 1us);
  idle_then_poll(c, mon, 9ms, 1us);
  idle_then_poll(c, mon, 4ms, 1us);
  TaskMetrics d4 = it.next();
  EXPECT_EQ(d4.max_idle_duration, 9ms);  // the largest of the interval's three
  idle_then_poll(c, mon, 9ms, 1us);
  TaskMetrics d5 = it.next();
  EXPECT_EQ(d5.max_idle_duration, 9ms);  // the same value again is still seen
  EXPECT_EQ(mon.cumulative().max_idle_duration, 1s);
}

TEST(TaskIntervals, EachIteratorGetsTheMaxIdleOfItsOwnInterval) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("max2");
  TaskIntervals a = mon.intervals();
  TaskIntervals b = mon.intervals();
  EXPECT_EQ(a.next().max_idle_duration, 0ns);
  EXPECT_EQ(b.next().max_idle_duration, 0ns);
  idle_then_poll(c, mon, 4ms, 1us);
  EXPECT_EQ(a.next().max_idle_duration, 4ms);
  idle_then_poll(c, mon, 1ms, 1us);
  EXPECT_EQ(b.next().max_idle_duration, 4ms);  // b's interval holds both idles
  EXPECT_EQ(a.next().max_idle_duration, 1ms);  // a's only the second
  EXPECT_EQ(b.next().max_idle_duration, 0ns);
  // An iterator created late starts with the monitor's whole life.
  idle_then_poll(c, mon, 2ms, 1us);
  TaskIntervals late = mon.intervals();
  EXPECT_EQ(late.next().max_idle_duration, 4ms);
  EXPECT_EQ(late.next().max_idle_duration, 0ns);
  // A moved iterator keeps its own interval.
  idle_then_poll(c, mon, 3ms, 1us);
  TaskIntervals moved = std::move(a);
  EXPECT_EQ(moved.next().max_idle_duration, 3ms);  // the 2 ms and 3 ms idles
  EXPECT_EQ(b.next().max_idle_duration, 3ms);
}

TEST(TaskIntervals, ElapsedIsTheLengthOfEachInterval) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("elapsed");
  TaskIntervals it = mon.intervals();
  c.clock->advance(250ms);
  EXPECT_EQ(it.next().elapsed, 250ms);
  c.clock->advance(1s);
  EXPECT_EQ(it.next().elapsed, 1s);
  EXPECT_EQ(it.next().elapsed, 0ns);
  EXPECT_EQ(mon.cumulative().elapsed, 1250ms);
}

}  // namespace
