// TaskMonitor's totals, scenario by scenario, on a current_thread runtime and
// an injected clock: every duration below is exact (DESIGN.md, "Runtime
// model": idle = end of a poll → wake, scheduled = wake → next poll,
// first-poll delay = instrument() → first poll; a self-wake's scheduled time
// starts at the end of its poll).

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>

#include "monitor/monitor_support.hpp"

namespace {

using spindle::Histogram;
using spindle::JoinHandle;
using spindle::Task;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::buckets;
using spindle::test::busy_for;
using spindle::test::ClockedRuntime;
using spindle::test::ManualClock;
using spindle::test::recv;
using spindle::test::value;
using namespace std::chrono_literals;

TEST(TaskMonitorTiming, ATaskIdleTenMillisecondsOnAnEventHasOneIdleOfTenMilliseconds) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("idle");
  auto [tx, rx] = oneshot<int>();
  auto h = c.rt.spawn(mon.instrument(recv(std::move(rx))));
  c.run_queued();  // first poll at t = 0: suspends on rx
  c.clock->advance(10ms);
  ASSERT_TRUE(tx.send(7));  // the wake, from this thread, at t = 10 ms
  EXPECT_EQ(c.join(h), 7);

  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_idled_count, 1U);
  EXPECT_EQ(m.total_idle_duration, 10ms);
  EXPECT_EQ(m.max_idle_duration, 10ms);
  EXPECT_EQ(m.mean_idle_duration(), 10ms);
  // 10 ms lies in (9,227,469, 10,066,330] ns = (2^23 + ⌈2^23/10⌉, 2^23 + ⌈2·2^23/10⌉]:
  // bucket 1 + 10·(23−6) + 1.
  EXPECT_EQ(Histogram::bucket_for(10ms), 172U);
  EXPECT_EQ(buckets(m.idle_duration_histogram), "{172:1}");
  EXPECT_EQ(m.idle_duration_histogram.sum(), 10ms);
  // Nothing else took time: two instant polls, polled as soon as woken.
  EXPECT_EQ(m.total_poll_count, 2U);
  EXPECT_EQ(m.total_poll_duration, 0ns);
  EXPECT_EQ(m.total_scheduled_count, 1U);
  EXPECT_EQ(m.total_scheduled_duration, 0ns);
  EXPECT_EQ(m.total_wake_count, 1U);
  EXPECT_EQ(m.total_self_wake_count, 0U);
  EXPECT_EQ(m.first_poll_count, 1U);
  EXPECT_EQ(m.total_first_poll_delay, 0ns);
}

TEST(TaskMonitorTiming, AnIdleEndedByAnotherTaskIsMeasuredToThatTasksWake) {
  // The event is completed by another (instrumented) task whose poll
  // advances the clock by 10 ms first.
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("idle");
  TaskMonitor other = c.monitor("sender");
  auto [tx, rx] = oneshot<int>();
  auto h = c.rt.spawn(mon.instrument(recv(std::move(rx))));
  c.run_queued();
  auto sender = c.rt.spawn(other.instrument([](Sender<int> tx, ManualClock& clock) -> Task<void> {
    clock.advance(10ms);
    tx.send(7);  // wakes the waiting task at t = 10 ms
    co_return;
  }(std::move(tx), *c.clock)));
  EXPECT_EQ(c.join(h), 7);

  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_idled_count, 1U);
  EXPECT_EQ(m.total_idle_duration, 10ms);
  EXPECT_EQ(m.max_idle_duration, 10ms);
  EXPECT_EQ(buckets(m.idle_duration_histogram), "{172:1}");
  EXPECT_EQ(m.total_poll_duration, 0ns);
  EXPECT_EQ(m.total_scheduled_duration, 0ns);  // the sender's poll ended at the wake
  TaskMetrics s = other.cumulative();
  EXPECT_EQ(s.total_poll_count, 1U);
  EXPECT_EQ(s.total_poll_duration, 10ms);
  EXPECT_EQ(s.total_slow_poll_count, 1U);
}

TEST(TaskMonitorTiming, AnUninstrumentedTasksPollIsNotChargedToTheNextInstrumentedPoll) {
  // The same scenario, but the sender is not instrumented and runs in the
  // same block_on as the waiting task's first poll. The waiting task's
  // second poll starts after the sender's 10 ms poll ended, so it lasts 0.
  // (The runtime reuses "the end of the previous timed poll" as the next
  // poll's start; an untimed poll in between must invalidate it.)
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("idle");
  auto [tx, rx] = oneshot<int>();
  auto h = c.rt.spawn(mon.instrument(recv(std::move(rx))));
  auto sender = c.rt.spawn([](Sender<int> tx, ManualClock& clock) -> Task<void> {
    clock.advance(10ms);
    tx.send(7);
    co_return;
  }(std::move(tx), *c.clock));
  EXPECT_EQ(c.join(h), 7);

  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_idled_count, 1U);
  EXPECT_EQ(m.total_idle_duration, 10ms);
  EXPECT_EQ(m.total_poll_duration, 0ns)
      << "the uninstrumented task's 10 ms poll was charged to the instrumented task";
  EXPECT_EQ(m.total_slow_poll_count, 0U);
  EXPECT_EQ(m.total_scheduled_duration, 0ns);
}

TEST(TaskMonitorTiming, ATaskQueuedBehindAFiveMillisecondPollHasALongScheduledDelay) {
  ClockedRuntime c;
  TaskMonitor waiting = c.monitor("waiting");
  TaskMonitor busy = c.monitor("busy");
  auto [tx, rx] = oneshot<int>();
  auto b = c.rt.spawn(waiting.instrument(recv(std::move(rx))));
  c.run_queued();  // B's first poll at t = 0: idle on rx
  c.clock->advance(1ms);
  auto a = c.rt.spawn(busy.instrument([](Sender<int> tx, ManualClock& clock) -> Task<void> {
    tx.send(1);          // B is woken at t = 1 ms and queued behind this poll...
    clock.advance(5ms);  // ...which goes on for 5 ms
    co_return;
  }(std::move(tx), *c.clock)));
  EXPECT_EQ(c.join(b), 1);

  TaskMetrics m = waiting.cumulative();
  EXPECT_EQ(m.total_scheduled_count, 1U);
  EXPECT_EQ(m.total_scheduled_duration, 5ms);
  EXPECT_EQ(m.total_long_delay_count, 1U);
  EXPECT_EQ(m.total_long_delay_duration, 5ms);
  EXPECT_EQ(m.total_short_delay_count, 0U);
  EXPECT_EQ(m.total_short_delay_duration, 0ns);
  EXPECT_EQ(m.long_delay_ratio(), 1.0);
  EXPECT_EQ(m.mean_long_delay_duration(), 5ms);
  EXPECT_EQ(m.mean_scheduled_duration(), 5ms);
  // 5 ms lies in (4,613,735, 5,033,165] ns.
  EXPECT_EQ(buckets(m.scheduled_delay_histogram), "{162:1}");
  EXPECT_EQ(m.scheduled_delay_histogram.sum(), 5ms);
  EXPECT_EQ(m.total_idled_count, 1U);
  EXPECT_EQ(m.total_idle_duration, 1ms);
  EXPECT_EQ(m.total_poll_duration, 0ns);

  TaskMetrics bm = busy.cumulative();
  EXPECT_EQ(bm.total_poll_count, 1U);
  EXPECT_EQ(bm.total_slow_poll_count, 1U);
  EXPECT_EQ(bm.total_slow_poll_duration, 5ms);
  EXPECT_EQ(bm.total_scheduled_count, 0U);
}

TEST(TaskMonitorTiming, ADelayShorterThanTheThresholdIsShortAndOneAtItIsLong) {
  ClockedRuntime c;
  TaskMonitor waiting = c.monitor("waiting");
  TaskMonitor busy = c.monitor("busy");
  for (auto d : {49'999ns, 50'000ns}) {
    auto [tx, rx] = oneshot<int>();
    auto b = c.rt.spawn(waiting.instrument(recv(std::move(rx))));
    c.run_queued();
    auto a = c.rt.spawn(busy.instrument(
        [](Sender<int> tx, ManualClock& clock, std::chrono::nanoseconds d) -> Task<void> {
          tx.send(1);
          clock.advance(d);
          co_return;
        }(std::move(tx), *c.clock, d)));
    EXPECT_EQ(c.join(b), 1);
  }
  TaskMetrics m = waiting.cumulative();
  EXPECT_EQ(m.total_short_delay_count, 1U);
  EXPECT_EQ(m.total_short_delay_duration, 49'999ns);
  EXPECT_EQ(m.total_long_delay_count, 1U);
  EXPECT_EQ(m.total_long_delay_duration, 50'000ns);
  EXPECT_EQ(m.total_scheduled_count, 2U);
  EXPECT_EQ(m.total_scheduled_duration, 99'999ns);
  EXPECT_EQ(m.long_delay_ratio(), 0.5);
}

TEST(TaskMonitorTiming, PollsAtOrAboveTheSlowThresholdAreSlowAndTheRestFast) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("polls");
  auto h = c.rt.spawn(mon.instrument([](ManualClock& clock) -> Task<void> {
    clock.advance(60us);  // slow
    co_await spindle::yield_now();
    clock.advance(40us);  // fast
    co_await spindle::yield_now();
    clock.advance(50us);  // exactly the threshold: slow
    co_await spindle::yield_now();
    clock.advance(49'999ns);  // fast
  }(*c.clock)));
  c.join(h);

  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_poll_count, 4U);
  EXPECT_EQ(m.total_slow_poll_count, 2U);
  EXPECT_EQ(m.total_slow_poll_duration, 110us);
  EXPECT_EQ(m.total_fast_poll_count, 2U);
  EXPECT_EQ(m.total_fast_poll_duration, 89'999ns);
  EXPECT_EQ(m.total_poll_count, m.total_fast_poll_count + m.total_slow_poll_count);
  EXPECT_EQ(m.total_poll_duration, m.total_fast_poll_duration + m.total_slow_poll_duration);
  EXPECT_EQ(m.total_poll_duration, 199'999ns);
  EXPECT_EQ(m.slow_poll_ratio(), 0.5);
  EXPECT_EQ(m.mean_slow_poll_duration(), 55us);
  EXPECT_EQ(m.mean_fast_poll_duration(), 44'999ns);  // 89999 / 2, truncated
  EXPECT_EQ(m.mean_poll_duration(), 49'999ns);       // 199999 / 4, truncated
  // Each poll in its own 10%-wide bucket: 40 us in (39,322, 42,599] ns, 49.999
  // and 50 us in (49,152, 52,429] ns, 60 us in (58,983, 62,260] ns.
  EXPECT_EQ(buckets(m.poll_duration_histogram), "{93:1 96:2 99:1}");
  EXPECT_EQ(m.poll_duration_histogram.sum(), 199'999ns);
  EXPECT_EQ(m.total_never_yielded_count, 0U);
}

TEST(TaskMonitorTiming, OneSixtyMicrosecondPollIsSlowAndOneFortyMicrosecondPollFast) {
  ClockedRuntime c;
  TaskMonitor slow = c.monitor("slow");
  TaskMonitor fast = c.monitor("fast");
  auto s = c.rt.spawn(slow.instrument(busy_for(*c.clock, 60us)));
  auto f = c.rt.spawn(fast.instrument(busy_for(*c.clock, 40us)));
  c.join(s);
  c.join(f);
  TaskMetrics sm = slow.cumulative();
  EXPECT_EQ(sm.total_slow_poll_count, 1U);
  EXPECT_EQ(sm.total_slow_poll_duration, 60us);
  EXPECT_EQ(sm.total_fast_poll_count, 0U);
  EXPECT_EQ(sm.slow_poll_ratio(), 1.0);
  TaskMetrics fm = fast.cumulative();
  EXPECT_EQ(fm.total_fast_poll_count, 1U);
  EXPECT_EQ(fm.total_fast_poll_duration, 40us);
  EXPECT_EQ(fm.total_slow_poll_count, 0U);
  EXPECT_EQ(fm.slow_poll_ratio(), 0.0);
}

TEST(TaskMonitorTiming, TheFirstPollDelayCountsFromInstrument) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("first");
  auto hooked = mon.instrument(value(1));  // t = 0
  c.clock->advance(3ms);
  auto h = c.rt.spawn(std::move(hooked));  // t = 3 ms
  c.clock->advance(4ms);
  EXPECT_EQ(mon.cumulative().first_poll_count, 0U);
  EXPECT_EQ(spindle::task_metrics(h)->first_poll_delay, 0ns);  // not polled yet
  EXPECT_EQ(c.join(h), 1);                                     // first polled at t = 7 ms

  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, 1U);
  EXPECT_EQ(m.first_poll_count, 1U);
  EXPECT_EQ(m.total_first_poll_delay, 7ms);
  EXPECT_EQ(m.mean_first_poll_delay(), 7ms);
  // The first poll's wait is not a scheduled delay.
  EXPECT_EQ(m.total_scheduled_count, 0U);
  EXPECT_EQ(m.total_scheduled_duration, 0ns);
  EXPECT_EQ(spindle::task_metrics(h)->first_poll_delay, 7ms);
}

TEST(TaskMonitorTiming, ASelfWakeStartsScheduledTimeAtTheEndOfItsPollWithoutIdle) {
  // Y polls 20 us and yields; another task then polls 30 us before Y runs
  // again; Y then waits 1 ms on an event. Y's life splits exactly into
  // busy 20 us + scheduled 30 us + idle 1 ms, with no overlap.
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("yielder");
  TaskMonitor other = c.monitor("other");
  auto [tx, rx] = oneshot<int>();
  auto y = c.rt.spawn(mon.instrument([](Receiver<int> rx, ManualClock& clock) -> Task<int> {
    clock.advance(20us);
    co_await spindle::yield_now();  // a self-wake at t = 20 us
    co_return co_await rx;          // idle from t = 50 us
  }(std::move(rx), *c.clock)));
  auto o = c.rt.spawn(other.instrument(busy_for(*c.clock, 30us)));
  c.run_queued();
  c.clock->advance(1ms);
  tx.send(5);  // t = 1.05 ms
  EXPECT_EQ(c.join(y), 5);

  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_poll_count, 3U);
  EXPECT_EQ(m.total_poll_duration, 20us);
  EXPECT_EQ(m.total_scheduled_count, 2U);
  EXPECT_EQ(m.total_scheduled_duration, 30us);  // 20 us → 50 us, then 0
  // 0 ns in bucket 0; 30 us in (29,492, 31,130] ns.
  EXPECT_EQ(buckets(m.scheduled_delay_histogram), "{0:1 89:1}");
  EXPECT_EQ(m.total_idled_count, 1U);  // the yield is not an idle
  EXPECT_EQ(m.total_idle_duration, 1ms);
  EXPECT_EQ(m.total_wake_count, 2U);
  EXPECT_EQ(m.total_self_wake_count, 1U);
  EXPECT_EQ(m.self_wake_ratio(), 0.5);

  auto pt = spindle::task_metrics(y);
  ASSERT_TRUE(pt.has_value());
  EXPECT_EQ(pt->busy, 20us);
  EXPECT_EQ(pt->scheduled, 30us);
  EXPECT_EQ(pt->idle, 1ms);
  // First poll at 0, last poll's end at 1.05 ms: nothing overlaps, nothing is missing.
  EXPECT_EQ(pt->busy + pt->scheduled + pt->idle, 1050us);
}

TEST(TaskMonitorTiming, OnlySelfWakesMakeASelfWakeRatioOfOne) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("spinner");
  auto h = c.rt.spawn(mon.instrument([]() -> Task<void> {
    for (int i = 0; i < 10; ++i) co_await spindle::yield_now();
  }()));
  c.join(h);
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_wake_count, 10U);
  EXPECT_EQ(m.total_self_wake_count, 10U);
  EXPECT_EQ(m.self_wake_ratio(), 1.0);
  EXPECT_EQ(m.total_idled_count, 0U);
  EXPECT_EQ(m.total_idle_duration, 0ns);
  EXPECT_EQ(m.total_scheduled_count, 10U);
  EXPECT_EQ(m.total_poll_count, 11U);
}

TEST(TaskMonitorTiming, PollsPastTheStallThresholdCountAsNeverYielded) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor_builder("stalls").stall_threshold(1ms).build();
  auto h = c.rt.spawn(mon.instrument([](ManualClock& clock) -> Task<void> {
    clock.advance(999us);
    co_await spindle::yield_now();
    clock.advance(1ms);
    co_await spindle::yield_now();
    clock.advance(3ms);
  }(*c.clock)));
  c.join(h);
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_never_yielded_count, 2U);
  EXPECT_EQ(m.total_slow_poll_count, 3U);
}

TEST(TaskMonitorTiming, APollAtTheStallThresholdIsBothSlowAndNeverYielded) {
  // The smallest stall threshold the Builder accepts is the slow-poll one.
  ClockedRuntime c;
  TaskMonitor mon = c.monitor_builder("stalls").stall_threshold(50us).build();
  auto h = c.rt.spawn(mon.instrument([](ManualClock& clock) -> Task<void> {
    clock.advance(49us);
    co_await spindle::yield_now();
    clock.advance(50us);
  }(*c.clock)));
  c.join(h);
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.total_fast_poll_count, 1U);
  EXPECT_EQ(m.total_slow_poll_count, 1U);
  EXPECT_EQ(m.total_never_yielded_count, 1U);
}

// ---- dropped tasks -------------------------------------------------------------

TEST(TaskMonitorDrops, AFinishedTaskIsDroppedNotCancelled) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("done");
  auto h = c.rt.spawn(mon.instrument(value(1)));
  EXPECT_EQ(mon.live_tasks(), 1U);
  c.join(h);
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, 1U);
  EXPECT_EQ(m.dropped_count, 1U);
  EXPECT_EQ(mon.live_tasks(), 0U);
  EXPECT_TRUE(spindle::task_metrics(h)->finished);
  EXPECT_FALSE(spindle::task_metrics(h)->cancelled);
}

TEST(TaskMonitorDrops, AnAbortedQueuedTaskIsDroppedWithoutAPoll) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("aborted");
  auto h = c.rt.spawn(mon.instrument(value(1)));
  h.abort();
  c.run_queued();
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, 1U);
  EXPECT_EQ(m.dropped_count, 1U);
  EXPECT_EQ(m.first_poll_count, 0U);
  EXPECT_EQ(m.total_poll_count, 0U);
  auto pt = spindle::task_metrics(h);
  ASSERT_TRUE(pt.has_value());
  EXPECT_TRUE(pt->finished);
  EXPECT_TRUE(pt->cancelled);
  EXPECT_EQ(pt->polls, 0U);
}

TEST(TaskMonitorDrops, AnAbortedIdleTaskIsDropped) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("aborted");
  auto [tx, rx] = oneshot<int>();
  auto h = c.rt.spawn(mon.instrument(recv(std::move(rx))));
  c.run_queued();
  EXPECT_EQ(mon.cumulative().dropped_count, 0U);
  h.abort();  // idle: the frame is destroyed at once or by the next run
  c.run_queued();
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.dropped_count, 1U);
  EXPECT_EQ(m.total_poll_count, 1U);
  EXPECT_EQ(mon.live_tasks(), 0U);
  EXPECT_TRUE(spindle::task_metrics(h)->cancelled);
}

TEST(TaskMonitorDrops, ADetachedTaskIsDroppedWhenItFinishes) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("detached");
  auto [tx, rx] = oneshot<int>();
  c.rt.spawn(mon.instrument(recv(std::move(rx)))).detach();
  c.run_queued();
  EXPECT_EQ(mon.cumulative().dropped_count, 0U);
  tx.send(1);
  c.run_queued();
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, 1U);
  EXPECT_EQ(m.dropped_count, 1U);
  EXPECT_EQ(m.total_poll_count, 2U);
}

TEST(TaskMonitorDrops, TasksDestroyedAtShutdownAreDropped) {
  auto clock = std::make_shared<ManualClock>();
  TaskMonitor mon = TaskMonitor::Builder().name("shutdown").clock(clock->source()).build();
  auto [tx, rx] = oneshot<int>();
  JoinHandle<int> idle;
  JoinHandle<int> queued;
  {
    auto rt = spindle::Runtime::Builder().current_thread().clock(clock->source()).build();
    idle = rt.spawn(mon.instrument(recv(std::move(rx))));
    rt.block_on(spindle::test::yields(4));  // the idle one's first poll
    queued = rt.spawn(mon.instrument(value(1)));
    rt.spawn(mon.instrument(value(2))).detach();
    EXPECT_EQ(mon.live_tasks(), 3U);
  }
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, 3U);
  EXPECT_EQ(m.dropped_count, 3U);
  EXPECT_EQ(mon.live_tasks(), 0U);
  EXPECT_TRUE(spindle::task_metrics(idle)->cancelled);
  EXPECT_TRUE(spindle::task_metrics(queued)->cancelled);
  EXPECT_EQ(spindle::task_metrics(idle)->polls, 1U);
  EXPECT_EQ(spindle::task_metrics(queued)->polls, 0U);
}

TEST(TaskMonitorDrops, AnInstrumentedTaskThatIsNeverSpawnedIsNotCountedAlive) {
  // instrument() counts the task; dropping the HookedTask unspawned
  // destroys its frame, so it must count as dropped too (otherwise
  // instrumented_count - dropped_count, "the tasks alive", never returns to 0).
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("unspawned");
  { auto hooked = mon.instrument(value(1)); }
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count - m.dropped_count, 0U)
      << "instrumented " << m.instrumented_count << ", dropped " << m.dropped_count;
  EXPECT_EQ(mon.live_tasks(), 0U);
}

TEST(TaskMonitorDrops, ASpawnRefusedAfterShutdownIsNotCountedAlive) {
  auto clock = std::make_shared<ManualClock>();
  TaskMonitor mon = TaskMonitor::Builder().name("refused").clock(clock->source()).build();
  spindle::Handle handle;
  {
    auto rt = spindle::Runtime::Builder().current_thread().clock(clock->source()).build();
    handle = rt.handle();
  }
  EXPECT_THROW((void)handle.spawn(mon.instrument(value(1))), spindle::RuntimeShutdown);
  EXPECT_EQ(mon.live_tasks(), 0U);
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, m.dropped_count);
}

}  // namespace

// ---- instrument(callable) ---------------------------------------------------------

namespace callable {

/// Counts live copies of a capture, to show the task owns exactly one.
struct Tracked {
  explicit Tracked(int* live) : live(live) { ++*live; }
  Tracked(const Tracked& o) : live(o.live) { ++*live; }
  Tracked(Tracked&& o) noexcept : live(o.live) { ++*live; }
  ~Tracked() { --*live; }
  int* live;
};

}  // namespace callable

TEST(TaskMonitorInstrumentCallable, CapturesLiveAsLongAsTheTaskAndItsPollsAreMeasured) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("callable");
  int live = 0;
  JoinHandle<std::string> h;
  {
    std::string prefix(64, 'p');  // heap-allocated: a dangling copy would be caught by ASan
    callable::Tracked tracked(&live);
    h = c.rt.spawn(mon.instrument([prefix, tracked, clock = c.clock.get()]() -> Task<std::string> {
      clock->advance(60us);  // one slow poll (threshold 50 us)
      co_await spindle::yield_now();
      clock->advance(10us);  // one fast poll
      co_return prefix + "!";
    }));
  }  // the spawner's string, its Tracked and the lambda expression are gone
  EXPECT_EQ(live, 1) << "the task holds exactly one copy of the callable";
  EXPECT_EQ(c.join(h), std::string(64, 'p') + "!");
  EXPECT_EQ(live, 0) << "the callable is destroyed with its task";
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, 1U);
  EXPECT_EQ(m.dropped_count, 1U);
  EXPECT_EQ(m.total_poll_count, 2U);
  EXPECT_EQ(m.total_slow_poll_count, 1U);
  EXPECT_EQ(m.total_poll_duration, 70us);
}

TEST(TaskMonitorInstrumentCallable, EveryOtherUseConvertsItToAHookedTaskThatStillMeasures) {
  ClockedRuntime c;
  TaskMonitor inner = c.monitor("inner");
  TaskMonitor outer = c.monitor("outer");
  int live = 0;
  {
    callable::Tracked tracked(&live);
    // Named as a HookedTask: converted (the callable moves into a frame).
    spindle::HookedTask<int> named = inner.instrument([tracked]() -> Task<int> { co_return 1; });
    // Stacked under a second monitor.
    auto stacked = outer.instrument(inner.instrument([tracked]() -> Task<int> { co_return 2; }));
    // Awaited inline. (Named first: GCC 12 destroys the captures of a
    // capturing lambda written as a temporary inside co_await twice; see
    // README.md, "Known compiler issues".)
    auto awaits = [](TaskMonitor mon, callable::Tracked t) -> Task<int> {
      auto op = mon.instrument([t]() -> Task<int> {
        co_await spindle::yield_now();
        co_return 4;
      });
      co_return co_await std::move(op);
    };
    auto a = c.rt.spawn(std::move(named));
    auto b = c.rt.spawn(std::move(stacked));
    auto d = c.rt.spawn(awaits(inner, tracked));
    EXPECT_EQ(c.join(a) + c.join(b) + c.join(d), 7);
  }
  EXPECT_EQ(live, 0);
  EXPECT_EQ(inner.cumulative().instrumented_count, 3U);
  EXPECT_EQ(outer.cumulative().instrumented_count, 1U);
  EXPECT_EQ(inner.live_tasks(), 0U);
  EXPECT_EQ(outer.live_tasks(), 0U);
  EXPECT_EQ(outer.cumulative().total_poll_count, 1U);  // the stacked task's one poll
}

TEST(TaskMonitorInstrumentCallable, ACallableThatFailsOrIsSpawnedTwiceLeavesNoLiveTask) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("failing");
  int live = 0;
  {
    callable::Tracked tracked(&live);
    EXPECT_THROW((void)c.rt.spawn(mon.instrument(
                     [tracked]() -> Task<int> { throw std::runtime_error("no task"); })),
                 std::runtime_error);
    auto once = mon.instrument([tracked]() -> Task<int> { co_return 5; });
    auto h = c.rt.spawn(std::move(once));
    EXPECT_THROW((void)c.rt.spawn(std::move(once)), spindle::UsageError);  // NOLINT: moved from
    EXPECT_EQ(c.join(h), 5);
  }
  EXPECT_EQ(live, 0);
  EXPECT_EQ(mon.cumulative().instrumented_count, 2U);
  EXPECT_EQ(mon.cumulative().dropped_count, 2U);
  EXPECT_EQ(mon.live_tasks(), 0U);
}

TEST(TaskMonitorInstrumentCallable, ANeverSpawnedCallableTaskDestroysItsCapturesAndIsNotAlive) {
  ClockedRuntime c;
  TaskMonitor mon = c.monitor("unspawned");
  int live = 0;
  {
    callable::Tracked tracked(&live);
    auto t = mon.instrument([tracked]() -> Task<int> { co_return 1; });
    EXPECT_EQ(live, 2);  // the spawner's and the task's
  }
  EXPECT_EQ(live, 0);
  EXPECT_EQ(mon.live_tasks(), 0U);
}
