// spindle::Waker through hand-written awaitables: waking from other threads,
// copies, waking finished or queued tasks, wakers that outlive their
// runtime, and wakes that arrive after the task has moved on.

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <spindle/runtime.hpp>
#include <thread>

#include "support/awaitables.hpp"
#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Runtime;
using spindle::Task;
using spindle::Waker;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::test::Counted;
using spindle::test::Event;
using spindle::test::LifetimeCounts;
using spindle::test::park_in;
using spindle::test::WakerSlot;

TEST(Waker, ResumesAParkedTaskWhenWokenFromAnotherThread) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  WakerSlot slot;
  auto h = rt.spawn([](WakerSlot& slot) -> Task<int> {
    co_await park_in(slot);
    co_return 1;
  }(slot));
  ASSERT_TRUE(slot.wait_filled());
  EXPECT_FALSE(h.is_finished());
  std::thread waker([w = slot.take()]() mutable { std::move(w).wake(); });
  waker.join();
  EXPECT_EQ(h.join(), 1);
}

TEST(Waker, CopiesWakeTheSameTaskAndEmptyWakersDoNothing) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  WakerSlot a;
  WakerSlot b;
  auto ha = rt.spawn([](WakerSlot& s) -> Task<void> { co_await park_in(s); }(a));
  auto hb = rt.spawn([](WakerSlot& s) -> Task<void> { co_await park_in(s); }(b));
  ASSERT_TRUE(a.wait_filled());
  ASSERT_TRUE(b.wait_filled());
  Waker wa = a.take();
  Waker wb = b.take();
  Waker wa2 = wa;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_TRUE(wa);
  EXPECT_TRUE(wa.will_wake(wa2));
  EXPECT_FALSE(wa.will_wake(wb));
  Waker empty;
  EXPECT_FALSE(empty);
  empty.wake_by_ref();
  std::move(empty).wake();
  std::move(wa2).wake();
  EXPECT_FALSE(wa2);  // NOLINT(bugprone-use-after-move): wake() empties it
  ha.join();
  std::move(wb).wake();
  hb.join();
}

TEST(Waker, WakingAFinishedTaskIsHarmless) {
  LifetimeCounts counts;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    WakerSlot slot;
    auto h = rt.spawn([](WakerSlot& slot, Counted) -> Task<int> {
      co_await park_in(slot);
      co_return 2;
    }(slot, Counted(counts)));
    ASSERT_TRUE(slot.wait_filled());
    Waker w = slot.take();
    Waker spare = w;
    w.wake_by_ref();
    EXPECT_EQ(h.join(), 2);
    w.wake_by_ref();
    std::move(w).wake();
    std::move(spare).wake();
  }
  EXPECT_EQ(counts.alive(), 0);
}

TEST(Waker, WakingAQueuedTaskAgainIsHarmless) {
  // current_thread: both wakes land while the task waits in the queue.
  auto rt = Runtime::Builder().current_thread().build();
  WakerSlot slot;
  std::atomic<int> resumed{0};
  auto [tx, rx] = oneshot<int>();
  auto h = rt.spawn([](WakerSlot& slot, std::atomic<int>& resumed, Receiver<int> rx) -> Task<int> {
    co_await park_in(slot);
    resumed.fetch_add(1);
    co_return co_await rx;
  }(slot, resumed, std::move(rx)));
  rt.block_on([]() -> Task<void> { co_return; }());  // the task runs and parks
  ASSERT_TRUE(slot.wait_filled());
  Waker w = slot.take();
  w.wake_by_ref();
  w.wake_by_ref();
  std::move(w).wake();
  tx.send(5);
  int v = rt.block_on(
      [](spindle::JoinHandle<int> h) -> Task<int> { co_return co_await h; }(std::move(h)));
  EXPECT_EQ(v, 5);
  EXPECT_EQ(resumed.load(), 1);
}

TEST(Waker, OutlivingItsRuntimeIsSafeToWakeAndDrop) {
  LifetimeCounts counts;
  WakerSlot slot;
  Waker kept;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    rt.spawn([](WakerSlot& slot, Counted) -> Task<void> { co_await park_in(slot); }(
                                              slot, Counted(counts)))
        .detach();
    ASSERT_TRUE(slot.wait_filled());
    kept = slot.take();
  }
  EXPECT_EQ(counts.alive(), 0);  // the frame went with the runtime
  Waker copy = kept;
  kept.wake_by_ref();
  std::move(kept).wake();
  // The last reference: frees the task's state and then the runtime's (LSan checks).
}

TEST(Waker, AWakeThatArrivesWhileTheTaskRunsDoesNotResumeItsNextAwaitEarly) {
  // The Waker contract: "Waking a task that is already runnable, running, or
  // finished is harmless." Here a second copy of the waker fires while the
  // task is running (after the first copy resumed it); the task then awaits
  // a oneshot that has no value yet. That await must keep waiting.
  auto rt = Runtime::Builder().worker_threads(1).build();
  WakerSlot slot;
  Event running;
  std::atomic<bool> woken_again{false};
  auto [tx, rx] = oneshot<int>();
  auto h = rt.spawn([](WakerSlot& slot, Event& running, std::atomic<bool>& woken_again,
                       Receiver<int> rx) -> Task<int> {
    co_await park_in(slot);
    running.set();
    while (!woken_again.load()) std::this_thread::yield();
    co_return co_await rx;  // nothing sent yet: must suspend until the send
  }(slot, running, woken_again, std::move(rx)));
  ASSERT_TRUE(slot.wait_filled());
  Waker first = slot.take();
  Waker second = first;
  std::move(first).wake();
  ASSERT_TRUE(running.wait());
  std::move(second).wake();  // the task is running: harmless, says the contract
  woken_again = true;
  // One worker: after two later tasks have run one after the other, the
  // task's poll has ended and any re-poll the second wake queued has run.
  for (int i = 0; i < 2; ++i) {
    rt.spawn([]() -> Task<void> { co_return; }()).join();
  }
  EXPECT_FALSE(h.is_finished()) << "the wake during the poll resumed the pending oneshot await";
  tx.send(9);
  int got = -1;
  try {
    got = h.join();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the await of the oneshot was resumed by the stale wake: " << e.what();
  }
  EXPECT_EQ(got, 9);
}

TEST(Waker, AStaleWakeAfterTheTaskMovedOnDoesNotResumeItsNextAwait) {
  // A copy of an already-used waker fires while the task is suspended on
  // something else (a oneshot): the task must go on waiting for the value.
  auto rt = Runtime::Builder().current_thread().build();
  WakerSlot slot;
  auto [tx, rx] = oneshot<int>();
  auto h = rt.spawn([](WakerSlot& slot, Receiver<int> rx) -> Task<int> {
    co_await park_in(slot);
    co_return co_await rx;
  }(slot, std::move(rx)));
  rt.block_on([]() -> Task<void> { co_return; }());  // parks in the slot
  ASSERT_TRUE(slot.wait_filled());
  Waker first = slot.take();
  Waker stale = first;
  std::move(first).wake();
  rt.block_on([]() -> Task<void> { co_return; }());  // resumes, suspends on rx
  EXPECT_FALSE(h.is_finished());
  std::move(stale).wake();
  rt.block_on([]() -> Task<void> { co_return; }());  // runs whatever the wake queued
  EXPECT_FALSE(h.is_finished()) << "the stale wake resumed the pending oneshot await";
  tx.send(4);
  int got = -1;
  try {
    got = rt.block_on(
        [](spindle::JoinHandle<int> h) -> Task<int> { co_return co_await h; }(std::move(h)));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the oneshot await failed after a stale wake: " << e.what();
  }
  EXPECT_EQ(got, 4);
}

TEST(Waker, AStaleWakeDoesNotResumeAPendingJoinHandleAwait) {
  auto rt = Runtime::Builder().current_thread().build();
  WakerSlot slot;
  auto [tx, rx] = oneshot<int>();
  auto inner =
      rt.spawn([](Receiver<int> rx) -> Task<int> { co_return co_await rx; }(std::move(rx)));
  auto outer = rt.spawn([](WakerSlot& slot, spindle::JoinHandle<int> inner) -> Task<int> {
    co_await park_in(slot);
    co_return co_await inner;
  }(slot, std::move(inner)));
  rt.block_on([]() -> Task<void> { co_return; }());
  ASSERT_TRUE(slot.wait_filled());
  Waker first = slot.take();
  Waker stale = first;
  std::move(first).wake();
  rt.block_on([]() -> Task<void> { co_return; }());  // outer now awaits inner
  std::move(stale).wake();
  rt.block_on([]() -> Task<void> { co_return; }());
  EXPECT_FALSE(outer.is_finished()) << "the stale wake resumed the pending JoinHandle await";
  tx.send(6);
  int got = -1;
  try {
    got = rt.block_on(
        [](spindle::JoinHandle<int> h) -> Task<int> { co_return co_await h; }(std::move(outer)));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the JoinHandle await failed after a stale wake: " << e.what();
  }
  EXPECT_EQ(got, 6);
}

TEST(WakerDeathTest, CurrentWakerOutsideASpindleTaskAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH((void)spindle::current_waker(std::noop_coroutine()), "outside a spindle task");
}

}  // namespace
