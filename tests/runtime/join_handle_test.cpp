// JoinHandle<T>: await, join, detach, abort (of running, queued, idle and
// finished tasks), exceptions, and the unhandled-exception path of detached tasks.

#include <gtest/gtest.h>

#include <atomic>
#include <exception>
#include <mutex>
#include <set>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Cancelled;
using spindle::Handle;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::UsageError;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::Counted;
using spindle::test::Event;
using spindle::test::eventually;
using spindle::test::LifetimeCounts;

Task<int> value(int v) { co_return v; }

Task<int> wait_for(Receiver<int> rx) { co_return co_await rx; }

Task<int> throw_after(Receiver<int> rx) {
  (void)co_await rx;
  throw std::runtime_error("late boom");
}

Task<void> boom() {
  throw std::runtime_error("boom");
  co_return;
}

// ---- await / join -----------------------------------------------------------------------

TEST(JoinHandle, CoAwaitYieldsTheTasksValue) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  int v = rt.block_on([]() -> Task<int> {
    JoinHandle<int> h = spindle::spawn(value(11));
    co_return co_await h;
  }());
  EXPECT_EQ(v, 11);
}

TEST(JoinHandle, CoAwaitSuspendsUntilTheTaskFinishes) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto outer = rt.spawn([](Receiver<int> rx) -> Task<int> {
    auto h = spindle::spawn(wait_for(std::move(rx)));
    co_return co_await h + 1;
  }(std::move(rx)));
  EXPECT_FALSE(outer.is_finished());
  tx.send(6);
  EXPECT_EQ(outer.join(), 7);
}

TEST(JoinHandle, JoinFromAForeignThreadWaitsForTheValue) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto h = rt.spawn(wait_for(std::move(rx)));
  int got = 0;
  Event joining;
  std::thread joiner([&] {
    joining.set();
    got = h.join();
  });
  EXPECT_TRUE(joining.wait());
  tx.send(12);
  joiner.join();
  EXPECT_EQ(got, 12);
  EXPECT_TRUE(h.is_finished());
}

TEST(JoinHandle, JoinOnAWorkerThreadThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  int v = rt.block_on([]() -> Task<int> {
    auto [tx, rx] = spindle::sync::oneshot<int>();
    auto h = spindle::spawn(wait_for(std::move(rx)));
    bool threw = false;
    try {
      (void)h.join();  // would block this worker
    } catch (const UsageError&) {
      threw = true;
    }
    tx.send(3);
    co_return threw ? co_await h : -1;
  }());
  EXPECT_EQ(v, 3);
}

TEST(JoinHandle, JoinOnAWorkerThreadThrowsUsageErrorEvenWhenTheTaskHasFinished) {
  // join()'s contract: UsageError on a worker thread. Throwing only when it
  // would block makes misuse depend on timing: it passes in tests where the
  // task is fast and throws in production.
  auto rt = Runtime::Builder().worker_threads(2).build();
  bool threw = rt.block_on([]() -> Task<bool> {
    auto h = spindle::spawn(value(1));
    while (!h.is_finished()) co_await spindle::yield_now();
    try {
      (void)h.join();
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

TEST(JoinHandle, AwaitingTwiceThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  bool threw = rt.block_on([]() -> Task<bool> {
    auto h = spindle::spawn(value(1));
    (void)co_await h;
    try {
      (void)co_await h;
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

TEST(JoinHandle, JoiningTwiceThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto h = rt.spawn(value(4));
  EXPECT_EQ(h.join(), 4);
  EXPECT_THROW((void)h.join(), UsageError);
}

TEST(JoinHandle, ExceptionsPropagateToCoAwaitAndToJoin) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::string what = rt.block_on([]() -> Task<std::string> {
    auto h = spindle::spawn(boom());
    try {
      co_await h;
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "";
  }());
  EXPECT_EQ(what, "boom");
  auto h = rt.spawn(boom());
  EXPECT_THROW(h.join(), std::runtime_error);
  // Awaited exceptions are observed: none is reported as unhandled.
  EXPECT_EQ(rt.handle().counters().unhandled_exceptions, 0U);
}

TEST(JoinHandle, EmptyHandleReportsUsageErrorsAndIgnoresAbort) {
  JoinHandle<int> h;
  EXPECT_FALSE(h.valid());
  EXPECT_FALSE(h);
  EXPECT_FALSE(h.is_finished());
  h.abort();   // no effect
  h.detach();  // no effect
  EXPECT_THROW((void)h.join(), UsageError);
  auto rt = Runtime::Builder().current_thread().build();
  bool threw = rt.block_on([]() -> Task<bool> {
    JoinHandle<int> empty;
    try {
      (void)co_await empty;
    } catch (const UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

TEST(JoinHandle, IdsAreNonZeroAndUnique) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::set<spindle::TaskId> ids;
  for (int i = 0; i < 100; ++i) {
    auto h = rt.spawn(value(i));
    EXPECT_NE(h.id(), 0U);
    ids.insert(h.id());
  }
  EXPECT_EQ(ids.size(), 100U);
}

TEST(JoinHandle, IsFinishedTurnsTrueOnceTheTaskFinishes) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto h = rt.spawn(wait_for(std::move(rx)));
  EXPECT_FALSE(h.is_finished());  // it cannot finish before the send
  tx.send(1);
  EXPECT_TRUE(eventually([&] { return h.is_finished(); }));
  EXPECT_EQ(h.join(), 1);
  EXPECT_TRUE(h.is_finished());
}

TEST(JoinHandle, MoveKeepsTheTaskAndMoveAssignmentDetachesTheOverwrittenOne) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx1, rx1] = spindle::sync::oneshot<int>();
  auto [tx2, rx2] = spindle::sync::oneshot<int>();
  auto [done_tx, done_rx] = spindle::sync::oneshot<int>();
  JoinHandle<int> a = rt.spawn([](Receiver<int> rx, Sender<int> done) -> Task<int> {
    int v = co_await rx;
    done.send(v);  // proves the detached task still runs to the end
    co_return v;
  }(std::move(rx1), std::move(done_tx)));
  JoinHandle<int> b = rt.spawn(wait_for(std::move(rx2)));
  JoinHandle<int> c = std::move(b);
  EXPECT_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
  a = std::move(c);         // detaches the first task
  tx1.send(1);
  EXPECT_EQ(done_rx.blocking_recv(), 1);
  tx2.send(2);
  EXPECT_EQ(a.join(), 2);
}

// ---- detach -------------------------------------------------------------------------

TEST(JoinHandle, DetachLetsTheTaskRunToCompletion) {
  LifetimeCounts counts;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    auto [tx, rx] = spindle::sync::oneshot<int>();
    auto [done_tx, done_rx] = spindle::sync::oneshot<int>();
    auto h = rt.spawn([](Receiver<int> rx, Sender<int> done, Counted) -> Task<void> {
      done.send(co_await rx * 2);
    }(std::move(rx), std::move(done_tx), Counted(counts)));
    h.detach();
    EXPECT_FALSE(h.valid());
    tx.send(21);
    EXPECT_EQ(done_rx.blocking_recv(), 42);
  }
  EXPECT_EQ(counts.alive(), 0);
}

TEST(JoinHandle, DestroyingTheHandleDetachesTheTask) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto [done_tx, done_rx] = spindle::sync::oneshot<int>();
  {
    auto h = rt.spawn([](Receiver<int> rx, Sender<int> done) -> Task<void> {
      done.send(co_await rx + 1);
    }(std::move(rx), std::move(done_tx)));
  }
  tx.send(1);
  EXPECT_EQ(done_rx.blocking_recv(), 2);
}

// ---- abort --------------------------------------------------------------------------

TEST(JoinHandle, AbortOfARunningTaskCancelsItWhenItsPollSuspends) {
  LifetimeCounts counts;
  auto [tx, rx] = spindle::sync::oneshot<int>();
  std::atomic<bool> resumed{false};
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    Event in_poll;
    std::atomic<bool> aborted{false};
    auto h = rt.spawn([](Event& in_poll, std::atomic<bool>& aborted, std::atomic<bool>& resumed,
                         Receiver<int> rx, Counted) -> Task<int> {
      in_poll.set();
      while (!aborted.load()) std::this_thread::yield();  // still inside the first poll
      int v = co_await rx;                                // suspends: the abort takes effect here
      resumed = true;
      co_return v;
    }(in_poll, aborted, resumed, std::move(rx), Counted(counts)));
    EXPECT_TRUE(in_poll.wait());
    h.abort();
    // The poll cannot be interrupted: the frame is intact until it suspends.
    EXPECT_FALSE(h.is_finished());
    EXPECT_EQ(counts.alive(), 1);  // the frame's copy of the argument
    aborted = true;
    EXPECT_THROW((void)h.join(), Cancelled);
    EXPECT_TRUE(h.is_finished());
    EXPECT_EQ(counts.alive(), 0);
  }
  EXPECT_FALSE(tx.send(1));  // the receiver died with the frame
  EXPECT_FALSE(resumed.load());
}

TEST(JoinHandle, AbortDuringTheFinalPollLetsTheValueStand) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  Event in_poll;
  std::atomic<bool> aborted{false};
  auto h = rt.spawn([](Event& in_poll, std::atomic<bool>& aborted) -> Task<int> {
    in_poll.set();
    while (!aborted.load()) std::this_thread::yield();
    co_return 5;  // finishes in the poll during which abort() was called
  }(in_poll, aborted));
  EXPECT_TRUE(in_poll.wait());
  h.abort();
  aborted = true;
  EXPECT_EQ(h.join(), 5);
}

TEST(JoinHandle, AbortOfAQueuedTaskNeverPollsIt) {
  // One worker, kept busy inside a poll: the victim waits in the injection
  // queue while it is aborted.
  LifetimeCounts counts;
  std::atomic<bool> victim_ran{false};
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    Event blocking;
    std::atomic<bool> release{false};
    auto blocker = rt.spawn([](Event& blocking, std::atomic<bool>& release) -> Task<void> {
      blocking.set();
      while (!release.load()) std::this_thread::yield();
      co_return;
    }(blocking, release));
    EXPECT_TRUE(blocking.wait());
    auto victim = rt.spawn([](std::atomic<bool>& ran, Counted) -> Task<int> {
      ran = true;
      co_return 1;
    }(victim_ran, Counted(counts)));
    victim.abort();
    release = true;
    EXPECT_THROW((void)victim.join(), Cancelled);
    blocker.join();
    EXPECT_EQ(counts.alive(), 0);
  }
  EXPECT_FALSE(victim_ran.load());
}

TEST(JoinHandle, AbortOfAQueuedTaskOnCurrentThreadNeverPollsIt) {
  LifetimeCounts counts;
  std::atomic<bool> victim_ran{false};
  auto rt = Runtime::Builder().current_thread().build();
  auto victim = rt.spawn([](std::atomic<bool>& ran, Counted) -> Task<int> {
    ran = true;
    co_return 1;
  }(victim_ran, Counted(counts)));
  victim.abort();  // queued: nothing runs before block_on
  bool cancelled = rt.block_on([](JoinHandle<int> victim) -> Task<bool> {
    try {
      (void)co_await victim;
    } catch (const Cancelled&) {
      co_return true;
    }
    co_return false;
  }(std::move(victim)));
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(victim_ran.load());
  EXPECT_EQ(counts.alive(), 0);
}

TEST(JoinHandle, AbortOfAnIdleTaskDestroysItsFrameWithoutAWake) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  Event waiting;
  auto victim = rt.spawn([](Event& waiting, Receiver<int> rx, Counted) -> Task<int> {
    waiting.set();
    co_return co_await rx;
  }(waiting, std::move(rx), Counted(counts)));
  ASSERT_TRUE(waiting.wait());
  // One worker: once a later task has run, the victim's poll has ended and it is idle.
  rt.spawn(value(0)).join();
  EXPECT_FALSE(victim.is_finished());
  victim.abort();
  EXPECT_THROW((void)victim.join(), Cancelled);
  EXPECT_EQ(counts.alive(), 0);  // destroyed although the sender never sent nor dropped
  EXPECT_TRUE(tx.is_closed());
  EXPECT_FALSE(tx.send(1));
}

TEST(JoinHandle, AbortOfAnIdleTaskOnCurrentThreadDestroysItsFrame) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().current_thread().build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  bool ok = rt.block_on([](Receiver<int> rx, LifetimeCounts& counts) -> Task<bool> {
    auto victim = spindle::spawn([](Receiver<int> rx, Counted) -> Task<int> {
      co_return co_await rx;
    }(std::move(rx), Counted(counts)));
    co_await spindle::yield_now();  // the victim runs and suspends on the receiver
    bool was_alive = counts.alive() == 1;
    victim.abort();
    try {
      (void)co_await victim;
    } catch (const Cancelled&) {
      co_return was_alive&& counts.alive() == 0;
    }
    co_return false;
  }(std::move(rx), counts));
  EXPECT_TRUE(ok);
  EXPECT_FALSE(tx.send(1));
}

TEST(JoinHandle, AbortOfAFinishedTaskKeepsItsValue) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto h = rt.spawn(value(8));
  ASSERT_TRUE(eventually([&] { return h.is_finished(); }));
  h.abort();
  EXPECT_TRUE(h.is_finished());
  EXPECT_EQ(h.join(), 8);
}

TEST(JoinHandle, AbortFromManyThreadsAtOnceCancelsOnce) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto victim = rt.spawn([](Receiver<int> rx, Counted) -> Task<int> { co_return co_await rx; }(
                                                           std::move(rx), Counted(counts)));
  std::vector<std::thread> threads;
  std::atomic<int> go{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      go.fetch_add(1);
      while (go.load() < 4) std::this_thread::yield();
      victim.abort();  // abort() is safe from any thread
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THROW((void)victim.join(), Cancelled);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(JoinHandle, AwaitingAnAbortedTaskThrowsCancelled) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  bool cancelled = rt.block_on([](Receiver<int> rx) -> Task<bool> {
    auto h = spindle::spawn(wait_for(std::move(rx)));
    h.abort();
    try {
      (void)co_await h;
    } catch (const Cancelled&) {
      co_return true;
    }
    co_return false;
  }(std::move(rx)));
  EXPECT_TRUE(cancelled);
}

TEST(JoinHandle, AbortingAnAwaitingTaskDetachesWhatItAwaited) {
  // The outer task is aborted while suspended on an inner JoinHandle: its
  // frame (and that handle) go, and the inner task runs on, now detached:
  // its exception is reported as unhandled, once.
  std::atomic<int> unhandled{0};
  Event reported;
  auto rt = Runtime::Builder()
                .worker_threads(2)
                .on_unhandled_exception([&](spindle::TaskId, std::exception_ptr) {
                  unhandled.fetch_add(1);
                  reported.set();
                })
                .build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto [ready_tx, ready_rx] = spindle::sync::oneshot<int>();
  auto outer = rt.spawn([](Receiver<int> rx, Sender<int> ready) -> Task<int> {
    auto inner = spindle::spawn(throw_after(std::move(rx)));
    ready.send(0);
    co_return co_await inner;
  }(std::move(rx), std::move(ready_tx)));
  (void)ready_rx.blocking_recv();
  outer.abort();
  EXPECT_THROW((void)outer.join(), Cancelled);
  tx.send(1);  // the inner task throws now
  EXPECT_TRUE(reported.wait());
  EXPECT_EQ(unhandled.load(), 1);
}

// ---- unhandled exceptions of detached tasks ----------------------------------------

struct Reports {
  std::mutex mu;
  std::vector<std::pair<spindle::TaskId, std::string>> seen;  // id and what()
  Event first;
  void add(spindle::TaskId id, const std::exception_ptr& e) {
    std::string what;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.emplace_back(id, what);
    }
    first.set();
  }
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  }
};

TEST(UnhandledException, OfATaskDetachedBeforeItThrewIsReportedOnce) {
  Reports reports;
  spindle::TaskId id = 0;
  {
    auto rt = Runtime::Builder()
                  .worker_threads(2)
                  .on_unhandled_exception(
                      [&](spindle::TaskId id, std::exception_ptr e) { reports.add(id, e); })
                  .build();
    auto [tx, rx] = spindle::sync::oneshot<int>();
    auto h = rt.spawn(throw_after(std::move(rx)));
    id = h.id();
    h.detach();
    tx.send(1);
    ASSERT_TRUE(reports.first.wait());
    EXPECT_EQ(rt.handle().counters().unhandled_exceptions, 1U);
  }
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_EQ(reports.seen[0].first, id);
  EXPECT_EQ(reports.seen[0].second, "late boom");
}

TEST(UnhandledException, OfATaskDetachedAfterItThrewIsReportedOnceByDetach) {
  Reports reports;
  auto rt = Runtime::Builder()
                .worker_threads(2)
                .on_unhandled_exception(
                    [&](spindle::TaskId id, std::exception_ptr e) { reports.add(id, e); })
                .build();
  auto h = rt.spawn(boom());
  spindle::TaskId id = h.id();
  ASSERT_TRUE(eventually([&] { return h.is_finished(); }));
  EXPECT_EQ(reports.size(), 0U);  // someone may still await it
  h.detach();                     // nobody will: reported here, on this thread
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_EQ(reports.seen[0].first, id);
  EXPECT_EQ(reports.seen[0].second, "boom");
  EXPECT_EQ(rt.handle().counters().unhandled_exceptions, 1U);
}

TEST(UnhandledException, IsReportedOncePerTaskWhenManyDetachedTasksThrow) {
  Reports reports;
  constexpr int kTasks = 200;
  {
    auto rt = Runtime::Builder()
                  .worker_threads(2)
                  .on_unhandled_exception(
                      [&](spindle::TaskId id, std::exception_ptr e) { reports.add(id, e); })
                  .build();
    for (int i = 0; i < kTasks; ++i) {
      rt.spawn(boom()).detach();  // at once: the detach races the task's completion
    }
    ASSERT_TRUE(eventually([&] { return reports.size() == kTasks; }));
    EXPECT_EQ(rt.handle().counters().unhandled_exceptions, static_cast<std::uint64_t>(kTasks));
  }
  std::set<spindle::TaskId> ids;
  for (auto& [id, what] : reports.seen) ids.insert(id);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kTasks));
}

TEST(UnhandledException, IsNotReportedForAbortedOrSuccessfulDetachedTasks) {
  Reports reports;
  auto rt = Runtime::Builder()
                .worker_threads(2)
                .on_unhandled_exception(
                    [&](spindle::TaskId id, std::exception_ptr e) { reports.add(id, e); })
                .build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto aborted = rt.spawn(throw_after(std::move(rx)));
  aborted.abort();
  EXPECT_THROW((void)aborted.join(), Cancelled);
  aborted.detach();
  rt.spawn(value(1)).detach();
  rt.spawn(value(2)).join();
  tx.send(1);
  rt.block_on(value(0));
  EXPECT_EQ(reports.size(), 0U);
  EXPECT_EQ(rt.handle().counters().unhandled_exceptions, 0U);
}

TEST(UnhandledException, WithTheDefaultHandlerIsLoggedAndDoesNotCrash) {
  testing::internal::CaptureStderr();
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    rt.spawn(boom()).detach();
    ASSERT_TRUE(eventually([&] { return rt.handle().counters().unhandled_exceptions == 1; }));
  }  // joins the workers: the message is written
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("boom"), std::string::npos) << err;
  EXPECT_NE(err.find("join_handle_test.cpp"), std::string::npos) << err;
}

TEST(UnhandledExceptionDeathTest, AHandlerThatThrowsIsAFatalError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto rt = Runtime::Builder()
                      .worker_threads(1)
                      .on_unhandled_exception(
                          [](spindle::TaskId, std::exception_ptr) { throw std::logic_error("no"); })
                      .build();
        rt.spawn(boom()).detach();
        rt.block_on([]() -> Task<void> {
          // The detached task runs in between and its report kills the process.
          for (int i = 0; i < 1'000'000; ++i) co_await spindle::yield_now();
        }());
      },
      "on_unhandled_exception");
}

}  // namespace
