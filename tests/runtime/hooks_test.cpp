// TaskHooks: the order of calls, self-wakes, the injected clock's Instants,
// abort and shutdown, and what uninstrumented tasks cost.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/awaitables.hpp"
#include "support/manual_clock.hpp"
#include "support/recording_hooks.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Handle;
using spindle::Instant;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::Event;
using spindle::test::HookEvent;
using spindle::test::ManualClock;
using spindle::test::RecordingHooks;
using std::chrono::microseconds;

using Kind = HookEvent::Kind;

Task<int> value(int v) { co_return v; }
Task<int> recv(Receiver<int> rx) { co_return co_await rx; }

// True once the recorded events contain `kind`.
auto has(Kind kind) {
  return [kind](const std::vector<HookEvent>& ev) {
    for (const HookEvent& e : ev) {
      if (e.kind == kind) return true;
    }
    return false;
  };
}

// The events of `kind`, in order.
std::vector<HookEvent> of(const RecordingHooks& hooks, Kind kind) {
  std::vector<HookEvent> out;
  for (const HookEvent& e : hooks.events()) {
    if (e.kind == kind) out.push_back(e);
  }
  return out;
}

// Drops the JoinHandle and waits for the runtime to let go of the hooks.
template <class T>
void release(JoinHandle<T>& h, RecordingHooks& hooks) {
  h = JoinHandle<T>();
  EXPECT_TRUE(hooks.wait_released());
}

TEST(TaskHooks, SeeSpawnPollsWakeDropAndReleaseInOrder) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = oneshot<int>();
  auto h = rt.handle().spawn_with_hooks(recv(std::move(rx)), &hooks);
  ASSERT_TRUE(hooks.wait_for(has(Kind::kPollEnd)));  // the first poll suspended on rx
  tx.send(3);
  EXPECT_EQ(h.join(), 3);
  release(h, hooks);
  EXPECT_EQ(hooks.trace(), "spawn start end wake start end:ready drop release");
  EXPECT_EQ(hooks.violations(), "");
  for (const HookEvent& e : of(hooks, Kind::kPollStart)) EXPECT_LT(e.worker, 2U);
}

TEST(TaskHooks, AYieldIsReportedAsASelfWake) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto h =
      rt.handle().spawn_with_hooks([]() -> Task<void> { co_await spindle::yield_now(); }(), &hooks);
  h.join();
  release(h, hooks);
  EXPECT_EQ(hooks.trace(), "spawn start end wake:self start end:ready drop release");
  EXPECT_EQ(hooks.violations(), "");
}

TEST(TaskHooks, AWakeOfItselfDuringItsPollIsASelfWake) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto h = rt.handle().spawn_with_hooks(
      []() -> Task<void> { co_await spindle::test::wake_self(); }(), &hooks);
  h.join();
  release(h, hooks);
  EXPECT_EQ(hooks.trace(), "spawn start end wake:self start end:ready drop release");
  EXPECT_EQ(hooks.violations(), "");
}

TEST(TaskHooks, AWakeFromAnotherThreadDuringThePollIsReportedAtThePollsEnd) {
  // The task is woken (through a clone of its waker) while its second poll
  // runs: the wake is reported when that poll ends, with the poll's end time,
  // and it is not a self-wake.
  auto clock = std::make_shared<ManualClock>();
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(1).clock(clock->source()).build();
  spindle::test::WakerSlot slot;
  Event in_second_poll;
  std::atomic<bool> woken_during{false};
  auto h = rt.handle().spawn_with_hooks(
      [](spindle::test::WakerSlot& slot, Event& in_second_poll, std::atomic<bool>& woken_during,
         ManualClock& clock) -> Task<void> {
        co_await spindle::test::park_in(slot);
        in_second_poll.set();
        while (!woken_during.load()) std::this_thread::yield();
        clock.advance(microseconds(7));
        co_await spindle::test::park_in(slot);  // the wake already came: re-queued
      }(slot, in_second_poll, woken_during, *clock),
      &hooks);
  ASSERT_TRUE(slot.wait_filled());
  spindle::Waker first = slot.take();
  spindle::Waker during = first;  // a clone: it wakes the same task later
  std::move(first).wake();
  ASSERT_TRUE(in_second_poll.wait());
  during.wake_by_ref();  // the task is being polled right now
  woken_during = true;
  h.join();
  during = spindle::Waker();
  (void)slot.take();  // the waker of the second park_in: the task finished without it
  release(h, hooks);
  EXPECT_EQ(hooks.trace(), "spawn start end wake start end wake start end:ready drop release");
  EXPECT_EQ(hooks.violations(), "");
  auto wakes = of(hooks, Kind::kWake);
  auto ends = of(hooks, Kind::kPollEnd);
  ASSERT_EQ(wakes.size(), 2U);
  ASSERT_EQ(ends.size(), 3U);
  EXPECT_FALSE(wakes[1].flag);
  EXPECT_EQ(wakes[1].at, ends[1].at);
  EXPECT_EQ(ends[1].at, ManualClock::at(microseconds(7)));
}

/// A by-value parameter whose destruction takes 5 ms (of the manual clock).
struct SlowToDestroy {
  ManualClock* clock;
  explicit SlowToDestroy(ManualClock* c) : clock(c) {}
  SlowToDestroy(SlowToDestroy&& o) noexcept : clock(std::exchange(o.clock, nullptr)) {}
  ~SlowToDestroy() {
    if (clock != nullptr) clock->advance(std::chrono::milliseconds(5));
  }
};

TEST(TaskHooks, TeardownOfOneTaskIsNotChargedToTheNextTasksPoll) {
  // Task A finishes; destroying its frame (a by-value parameter) takes 5 ms.
  // Task B, next on the same worker, does nothing: its poll must not start
  // at A's poll end, or B would be charged A's teardown.
  auto clock = std::make_shared<ManualClock>();
  auto rt = Runtime::Builder().current_thread().clock(clock->source()).build();
  for (int i = 0; i < 10; ++i) {
    RecordingHooks a_hooks;
    RecordingHooks b_hooks;
    rt.block_on([](Handle h, RecordingHooks& a_hooks, RecordingHooks& b_hooks,
                   ManualClock& clock) -> Task<void> {
      // B first, then A: A takes the LIFO slot and runs first, B follows.
      auto b = h.spawn_with_hooks([]() -> Task<void> { co_return; }(), &b_hooks);
      auto a = h.spawn_with_hooks([](SlowToDestroy) -> Task<void> { co_return; }(
                                      SlowToDestroy(&clock)),
                                  &a_hooks);
      // Join B first: A's completion then wakes nobody, and nothing else
      // runs between A's teardown and B's poll.
      co_await std::move(b);
      co_await std::move(a);
    }(rt.handle(), a_hooks, b_hooks, *clock));
    ASSERT_TRUE(a_hooks.wait_released());
    ASSERT_TRUE(b_hooks.wait_released());
    auto starts = of(b_hooks, Kind::kPollStart);
    auto ends = of(b_hooks, Kind::kPollEnd);
    ASSERT_EQ(starts.size(), 1U);
    ASSERT_EQ(ends.size(), 1U);
    EXPECT_EQ(ends[0].at - starts[0].at, std::chrono::nanoseconds(0)) << "round " << i;
    EXPECT_EQ(b_hooks.violations(), "");
  }
}

TEST(TaskHooks, InstantsComeFromTheInjectedClock) {
  auto clock = std::make_shared<ManualClock>();
  RecordingHooks hooks;
  auto rt = Runtime::Builder().current_thread().clock(clock->source()).build();
  auto h = rt.handle().spawn_with_hooks(
      [](ManualClock& clock) -> Task<int> {
        clock.advance(microseconds(10));
        co_await spindle::yield_now();
        clock.advance(microseconds(5));
        co_return 1;
      }(*clock),
      &hooks);
  EXPECT_EQ(rt.block_on([](JoinHandle<int> h) -> Task<int> { co_return co_await h; }(std::move(h))),
            1);
  ASSERT_TRUE(hooks.wait_released());
  ASSERT_EQ(hooks.trace(), "spawn start end wake:self start end:ready drop release");
  std::vector<HookEvent> ev = hooks.events();
  EXPECT_EQ(ev[0].at, ManualClock::at(microseconds(0)));   // spawn
  EXPECT_EQ(ev[1].at, ManualClock::at(microseconds(0)));   // first poll starts
  EXPECT_EQ(ev[2].at, ManualClock::at(microseconds(10)));  // ... ends after 10 us
  EXPECT_EQ(ev[3].at, ManualClock::at(microseconds(10)));  // the yield: scheduled from the end
  EXPECT_EQ(ev[4].at, ManualClock::at(microseconds(10)));  // second poll
  EXPECT_EQ(ev[5].at, ManualClock::at(microseconds(15)));
  EXPECT_EQ(rt.handle().now(), ManualClock::at(microseconds(15)));
  EXPECT_EQ(hooks.violations(), "");
}

TEST(TaskHooks, PollStartIsNotBackdatedOverAnotherTasksPoll) {
  // An instrumented task yields; an uninstrumented task then polls for
  // 100 us (by the injected clock) before the instrumented one is polled
  // again. That second poll starts after the other one ended: reusing the
  // instrumented task's own last poll end as "now" would charge the other
  // task's 100 us to this task's poll time (and hide its scheduled delay).
  auto clock = std::make_shared<ManualClock>();
  RecordingHooks hooks;
  auto rt = Runtime::Builder().current_thread().clock(clock->source()).build();
  auto instrumented = rt.handle().spawn_with_hooks(
      []() -> Task<int> {
        co_await spindle::yield_now();
        co_return 1;
      }(),
      &hooks);
  auto plain = rt.spawn([](ManualClock& clock) -> Task<int> {
    clock.advance(microseconds(100));
    co_return 2;
  }(*clock));
  int sum = rt.block_on([](JoinHandle<int> a, JoinHandle<int> b) -> Task<int> {
    co_return co_await a + co_await b;
  }(std::move(instrumented), std::move(plain)));
  EXPECT_EQ(sum, 3);
  ASSERT_TRUE(hooks.wait_released());
  ASSERT_EQ(hooks.trace(), "spawn start end wake:self start end:ready drop release");
  auto starts = of(hooks, Kind::kPollStart);
  auto wakes = of(hooks, Kind::kWake);
  EXPECT_EQ(wakes[0].at, ManualClock::at(microseconds(0)));
  EXPECT_GE(starts[1].at, ManualClock::at(microseconds(100)))
      << "the second poll was reported as starting before the other task's poll ended";
}

TEST(TaskHooks, AnAbortedIdleTaskIsDroppedCancelledWithoutAnotherPoll) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto [tx, rx] = oneshot<int>();
  auto h = rt.handle().spawn_with_hooks(recv(std::move(rx)), &hooks);
  ASSERT_TRUE(hooks.wait_for(has(Kind::kPollEnd)));
  rt.spawn(value(0)).join();  // one worker: the victim's poll is over, it is idle
  h.abort();
  EXPECT_THROW((void)h.join(), spindle::Cancelled);
  EXPECT_EQ(hooks.trace(), "spawn start end drop:cancelled");
  { Sender<int> gone = std::move(tx); }  // see AnAbortedTaskIsReleasedWhileTheSenderItAwaitedLives
  release(h, hooks);
  EXPECT_EQ(hooks.trace(), "spawn start end drop:cancelled release");
  EXPECT_EQ(hooks.violations(), "");
}

TEST(TaskHooks, AnAbortedTaskIsReleasedWhileTheSenderItAwaitedLives) {
  // The aborted task's frame (with its Receiver) is gone, but the channel
  // still holds the Waker the Receiver registered, and with it a reference
  // to the task's cell, its hooks and the runtime's shared state, for as
  // long as the Sender lives (here: forever).
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto [tx, rx] = oneshot<int>();
  auto h = rt.handle().spawn_with_hooks(recv(std::move(rx)), &hooks);
  ASSERT_TRUE(hooks.wait_for(has(Kind::kPollEnd)));
  rt.spawn(value(0)).join();  // the task is idle, its waker registered in the channel
  h.abort();
  EXPECT_THROW((void)h.join(), spindle::Cancelled);
  h = JoinHandle<int>();
  EXPECT_TRUE(hooks.wait_released(std::chrono::seconds(5)))
      << "the task's state stays referenced by the channel's registered waker";
  EXPECT_TRUE(tx.is_closed());
  { Sender<int> gone = std::move(tx); }  // lets the test end cleanly either way
  EXPECT_TRUE(hooks.wait_released());
}

TEST(TaskHooks, AnAbortedQueuedTaskIsDroppedCancelledWithoutAPoll) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().current_thread().build();
  auto h = rt.handle().spawn_with_hooks(value(1), &hooks);
  h.abort();
  bool cancelled = rt.block_on([](JoinHandle<int> h) -> Task<bool> {
    try {
      (void)co_await h;
    } catch (const spindle::Cancelled&) {
      co_return true;
    }
    co_return false;
  }(std::move(h)));
  EXPECT_TRUE(cancelled);
  ASSERT_TRUE(hooks.wait_released());
  EXPECT_EQ(hooks.trace(), "spawn drop:cancelled release");
  EXPECT_EQ(hooks.violations(), "");
}

TEST(TaskHooks, TasksDestroyedAtShutdownAreDroppedCancelledAndReleased) {
  RecordingHooks idle;
  RecordingHooks queued;
  {
    auto [tx, rx] = oneshot<int>();
    {
      auto rt = Runtime::Builder().current_thread().build();
      rt.handle().spawn_with_hooks(recv(std::move(rx)), &idle).detach();
      rt.block_on(value(0));  // polls the idle one once: it suspends on rx
      rt.handle().spawn_with_hooks(value(1), &queued).detach();
    }
    EXPECT_TRUE(queued.wait_released());
    // The destroyed receiver let go of the task's waker although the sender
    // lives on: the task's state is released with the runtime.
    EXPECT_TRUE(idle.wait_released());
    EXPECT_EQ(idle.trace(), "spawn start end drop:cancelled release");
  }
  EXPECT_EQ(queued.trace(), "spawn drop:cancelled release");
  EXPECT_EQ(idle.violations(), "");
  EXPECT_EQ(queued.violations(), "");
}

TEST(TaskHooks, ASpawnRefusedAtShutdownReleasesTheHooksOnce) {
  RecordingHooks hooks;
  Handle handle;
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    handle = rt.handle();
  }
  EXPECT_THROW((void)handle.spawn_with_hooks(value(1), &hooks), spindle::RuntimeShutdown);
  EXPECT_EQ(hooks.releases(), 1);
  EXPECT_EQ(hooks.count(Kind::kPollStart), 0);
  EXPECT_EQ(hooks.violations(), "");
}

TEST(TaskHooks, AnEmptyTaskIsRefusedAndItsHooksReleasedAtOnce) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(1).build();
  EXPECT_THROW((void)rt.handle().spawn_with_hooks(Task<int>(), &hooks), spindle::UsageError);
  EXPECT_EQ(hooks.trace(), "release");
}

TEST(TaskHooks, InfoCarriesTheTaskIdAndTheSpawnLocation) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(1).build();
  Handle handle = rt.handle();
  auto h = handle.spawn_with_hooks(value(1), &hooks);
  const unsigned spawn_line = __LINE__ - 1;
  spindle::TaskId id = h.id();
  h.join();
  release(h, hooks);
  EXPECT_EQ(hooks.info().id, id);
  EXPECT_NE(std::string(hooks.info().location.file_name()).find("hooks_test.cpp"),
            std::string::npos);
  EXPECT_EQ(hooks.info().location.line(), spawn_line);
}

TEST(TaskHooks, UninstrumentedTasksDoNotReadTheClockPerPoll) {
  // "An uninstrumented task pays no clock read per poll." The maintenance
  // interval is pushed out of the way; its own (rare) reads are not per poll.
  constexpr int kYields = 1000;
  auto clock = std::make_shared<ManualClock>();
  auto rt =
      Runtime::Builder().current_thread().clock(clock->source()).event_interval(1'000'000).build();
  auto loop = [](ManualClock& clock) -> Task<std::uint64_t> {
    std::uint64_t before = clock.reads();
    for (int i = 0; i < kYields; ++i) co_await spindle::yield_now();
    co_return clock.reads() - before;
  };
  std::uint64_t plain_reads = rt.block_on(loop(*clock));
  EXPECT_LT(plain_reads, 10U);
  // An instrumented task reads it at most at each poll's start and end
  // (once per boundary when nothing ran in between).
  RecordingHooks hooks;
  auto h = rt.handle().spawn_with_hooks(loop(*clock), &hooks);
  std::uint64_t instrumented_reads =
      rt.block_on([](JoinHandle<std::uint64_t> h) -> Task<std::uint64_t> {
        co_return co_await h;
      }(std::move(h)));
  EXPECT_GE(instrumented_reads, static_cast<std::uint64_t>(kYields) / 2);
  EXPECT_LE(instrumented_reads, 2 * static_cast<std::uint64_t>(kYields) + 10);
  EXPECT_TRUE(hooks.wait_released());
  EXPECT_EQ(hooks.violations(), "");
}

TEST(TaskHooks, OnlyTheInstrumentedTaskCallsItsHooks) {
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto h = rt.handle().spawn_with_hooks(value(1), &hooks);
  h.join();
  release(h, hooks);
  std::string before = hooks.trace();
  for (int i = 0; i < 100; ++i) rt.spawn(value(i)).join();
  rt.block_on([]() -> Task<void> {
    for (int i = 0; i < 100; ++i) co_await spindle::yield_now();
  }());
  EXPECT_EQ(hooks.trace(), before);
  EXPECT_EQ(before, "spawn start end:ready drop release");
}

TEST(TaskHooks, CallsNeverOverlapAndKeepTheirOrderUnderLoad) {
  // Many instrumented tasks on two workers, woken by each other, by
  // themselves and by a foreign thread: every task's calls must follow the
  // documented order, one at a time.
  constexpr int kPairs = 100;
  std::vector<std::unique_ptr<RecordingHooks>> hooks;
  for (int i = 0; i < 2 * kPairs + kPairs; ++i) hooks.push_back(std::make_unique<RecordingHooks>());
  {
    auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
    Handle handle = rt.handle();
    std::vector<JoinHandle<int>> hs;
    std::vector<Sender<int>> foreign;
    for (int p = 0; p < kPairs; ++p) {
      auto [ab_tx, ab_rx] = oneshot<int>();
      auto [ba_tx, ba_rx] = oneshot<int>();
      hs.push_back(handle.spawn_with_hooks(
          [](Sender<int> tx, Receiver<int> rx) -> Task<int> {
            co_await spindle::yield_now();
            tx.send(1);
            co_await spindle::test::wake_self();
            co_return co_await rx;
          }(std::move(ab_tx), std::move(ba_rx)),
          hooks[2 * p].get()));
      hs.push_back(handle.spawn_with_hooks(
          [](Sender<int> tx, Receiver<int> rx) -> Task<int> {
            int v = co_await rx;
            co_await spindle::yield_now();
            tx.send(v + 1);
            co_return v;
          }(std::move(ba_tx), std::move(ab_rx)),
          hooks[2 * p + 1].get()));
      auto [f_tx, f_rx] = oneshot<int>();
      foreign.push_back(std::move(f_tx));
      hs.push_back(handle.spawn_with_hooks(recv(std::move(f_rx)), hooks[2 * kPairs + p].get()));
    }
    std::thread sender([&foreign] {
      for (auto& tx : foreign) tx.send(5);
    });
    sender.join();
    for (auto& h : hs) (void)h.join();
  }  // handles dropped, runtime gone: every hooks object is released
  for (auto& h : hooks) {
    EXPECT_TRUE(h->wait_released());
    EXPECT_EQ(h->violations(), "");
    EXPECT_EQ(h->releases(), 1);
    EXPECT_EQ(h->count(Kind::kDrop), 1);
  }
}

TEST(TaskHooks, AWakeFromAForeignThreadRunsNoHookThereAndIsReportedAtTheNextPollStart) {
  // Hooks run on the polling worker only: the foreign thread that wakes the
  // task records the wake in the task's cell, and the worker reports it (with
  // the wake's time) when the next poll starts.
  RecordingHooks hooks;
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto [tx, rx] = oneshot<int>();
  auto h = rt.handle().spawn_with_hooks(recv(std::move(rx)), &hooks);
  ASSERT_TRUE(hooks.wait_for(has(Kind::kPollEnd)));
  rt.spawn(value(0)).join();  // one worker: the task's poll is over, it is idle
  std::thread::id waker_id;
  Instant before_wake;
  Instant after_wake;
  std::thread waker([&, tx = std::move(tx)]() mutable {
    waker_id = std::this_thread::get_id();
    before_wake = spindle::clock_now();
    tx.send(1);
    after_wake = spindle::clock_now();
  });
  waker.join();
  EXPECT_EQ(h.join(), 1);
  release(h, hooks);
  EXPECT_EQ(hooks.trace(), "spawn start end wake start end:ready drop release");
  EXPECT_EQ(hooks.violations(), "");
  const std::vector<HookEvent> events = hooks.events();
  for (const HookEvent& e : events) EXPECT_NE(e.thread, waker_id) << "a hook ran on the waker";
  auto wakes = of(hooks, Kind::kWake);
  auto starts = of(hooks, Kind::kPollStart);
  ASSERT_EQ(wakes.size(), 1U);
  ASSERT_EQ(starts.size(), 2U);
  EXPECT_EQ(wakes[0].thread, starts[1].thread) << "reported by the worker that polls it";
  EXPECT_GE(wakes[0].at, before_wake);
  EXPECT_LE(wakes[0].at, after_wake) << "the wake's own time, not the poll's";
  EXPECT_LE(wakes[0].at, starts[1].at);
}

TEST(TaskHooks, TwoRuntimesWorkersHaveDistinctWorkerSlots) {
  // PollStart::worker_slot is unique among all live workers, so a monitor
  // shared by two runtimes has one writer per slot.
  RecordingHooks a;
  RecordingHooks b;
  auto rt1 = Runtime::Builder().worker_threads(1).build();
  auto rt2 = Runtime::Builder().worker_threads(1).build();
  auto ha = rt1.handle().spawn_with_hooks(value(1), &a);
  auto hb = rt2.handle().spawn_with_hooks(value(2), &b);
  EXPECT_EQ(ha.join() + hb.join(), 3);
  release(ha, a);
  release(hb, b);
  EXPECT_EQ(a.violations(), "");
  EXPECT_EQ(b.violations(), "");
  EXPECT_NE(a.first_poll_slot(), b.first_poll_slot());
}

}  // namespace
