// Runtime shutdown: every unfinished task (idle, queued, mid-yield-loop) is
// destroyed exactly once, JoinHandles report Cancelled, spawns are refused,
// blocked joiners are released, and shutdown_timeout reports a clean stop.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Cancelled;
using spindle::Handle;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::RuntimeShutdown;
using spindle::Task;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::Counted;
using spindle::test::Event;
using spindle::test::eventually;
using spindle::test::LifetimeCounts;

Task<int> value(int v) { co_return v; }

// Waits on `rx` while holding `tx` (another task's sender) in its frame.
Task<int> idle_holding(Receiver<int> rx, Sender<int> tx, Counted c) {
  int v = co_await rx;
  tx.send(v);
  co_return c.value();
}

// Waits on `rx`, then returns the Counted's value.
Task<int> recv_then(Receiver<int> rx, Counted c) {
  (void)co_await rx;
  co_return c.value();
}

Task<int> yield_forever(Event& looping, Counted c) {
  for (;;) {
    looping.set();
    co_await spindle::yield_now();
  }
  co_return c.value();
}

Task<int> noop(Counted c) { co_return c.value(); }

void expect_cancelled(JoinHandle<int>& h, const char* what) {
  EXPECT_TRUE(h.is_finished()) << what;
  EXPECT_THROW((void)h.join(), Cancelled) << what;
}

TEST(Shutdown, DestroysIdleAndYieldingTasksExactlyOnceAndTheirHandlesReportCancelled) {
  LifetimeCounts counts;
  std::vector<JoinHandle<int>> kept;
  Event looping;  // outlives the runtime: the looping task sets it until destroyed
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    // Two idle tasks, each waiting on a channel whose sender the other holds.
    auto [tx1, rx1] = oneshot<int>();
    auto [tx2, rx2] = oneshot<int>();
    kept.push_back(rt.spawn(idle_holding(std::move(rx1), std::move(tx2), Counted(counts, 1))));
    kept.push_back(rt.spawn(idle_holding(std::move(rx2), std::move(tx1), Counted(counts, 2))));
    kept.push_back(rt.spawn(yield_forever(looping, Counted(counts, 3))));
    ASSERT_TRUE(looping.wait());
    EXPECT_EQ(counts.alive(), 3);
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
  for (auto& h : kept) expect_cancelled(h, "pending at shutdown");
}

TEST(Shutdown, DestroysDetachedPendingTasksExactlyOnce) {
  LifetimeCounts counts;
  Event looping;  // outlives the runtime: the looping task sets it until destroyed
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    auto [tx1, rx1] = oneshot<int>();
    auto [tx2, rx2] = oneshot<int>();
    rt.spawn(idle_holding(std::move(rx1), std::move(tx2), Counted(counts, 1))).detach();
    rt.spawn(idle_holding(std::move(rx2), std::move(tx1), Counted(counts, 2))).detach();
    rt.spawn(yield_forever(looping, Counted(counts, 3))).detach();
    ASSERT_TRUE(looping.wait());
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Shutdown, DestroysQueuedTasksOfACurrentThreadRuntimeThatNeverRan) {
  LifetimeCounts counts;
  std::vector<JoinHandle<int>> kept;
  {
    auto rt = Runtime::Builder().current_thread().build();
    for (int i = 0; i < 10; ++i) kept.push_back(rt.spawn(noop(Counted(counts, i))));
    for (int i = 0; i < 10; ++i) rt.spawn(noop(Counted(counts, i))).detach();
    EXPECT_EQ(counts.alive(), 20);
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
  for (auto& h : kept) expect_cancelled(h, "queued at shutdown");
}

TEST(Shutdown, DestroysTasksQueuedOnAWorkerThatIsBusyInAPoll) {
  // One worker, stuck in a poll until shutdown has begun: the tasks it
  // spawned sit in its local queue (LIFO slot off) and must never run.
  LifetimeCounts counts;
  std::vector<JoinHandle<int>> kept;
  std::atomic<int> ran{0};
  std::atomic<bool> release{false};
  Event spawned;
  std::optional<Runtime> rt(Runtime::Builder().worker_threads(1).lifo_slot(false).build());
  Handle handle = rt->handle();
  auto blocker =
      rt->spawn([](LifetimeCounts& counts, std::atomic<int>& ran, std::atomic<bool>& release,
                   Event& spawned, std::vector<JoinHandle<int>>& kept) -> Task<int> {
        for (int i = 0; i < 3; ++i) {
          kept.push_back(spindle::spawn([](std::atomic<int>& ran, Counted c) -> Task<int> {
            ran.fetch_add(1);
            co_return c.value();
          }(ran, Counted(counts, i))));
        }
        spawned.set();
        while (!release.load()) std::this_thread::yield();
        co_await spindle::yield_now();  // not finished: destroyed at shutdown
        co_return 0;
      }(counts, ran, release, spawned, kept));
  ASSERT_TRUE(spawned.wait());
  std::thread destroyer([&rt] { rt.reset(); });
  // Shutdown has begun once spawns are refused; only then may the poll end.
  EXPECT_TRUE(eventually([&] {
    try {
      handle.spawn(value(0)).detach();
      return false;
    } catch (const RuntimeShutdown&) {
      return true;
    }
  }));
  release = true;
  destroyer.join();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(counts.alive(), 0);
  for (auto& h : kept) expect_cancelled(h, "queued behind a busy poll");
  EXPECT_THROW((void)blocker.join(), Cancelled);
}

TEST(Shutdown, WorkersDoNotPollTheLifoSlotAfterShutdownBegan) {
  // The Runtime's contract: "the workers stop after their current poll".
  // A task spawned from a worker goes to its LIFO slot; if shutdown begins
  // during the spawning poll, that task must be destroyed unpolled.
  std::atomic<int> ran{0};
  std::atomic<bool> release{false};
  Event spawned;
  std::optional<Runtime> rt(Runtime::Builder().worker_threads(1).build());
  Handle handle = rt->handle();
  JoinHandle<int> lifo_task;
  auto blocker = rt->spawn([](std::atomic<int>& ran, std::atomic<bool>& release, Event& spawned,
                              JoinHandle<int>& lifo_task) -> Task<void> {
    lifo_task = spindle::spawn([](std::atomic<int>& ran) -> Task<int> {
      ran.fetch_add(1);
      co_return 1;
    }(ran));
    spawned.set();
    while (!release.load()) std::this_thread::yield();
    co_return;
  }(ran, release, spawned, lifo_task));
  ASSERT_TRUE(spawned.wait());
  std::thread destroyer([&rt] { rt.reset(); });
  EXPECT_TRUE(eventually([&] {
    try {
      handle.spawn(value(0)).detach();
      return false;
    } catch (const RuntimeShutdown&) {
      return true;
    }
  }));
  release = true;
  destroyer.join();
  blocker.join();
  EXPECT_EQ(ran.load(), 0) << "a LIFO-slot task was polled after shutdown began";
  EXPECT_THROW((void)lifo_task.join(), Cancelled);
}

// Spawns from its destructor, which runs while the runtime destroys the frame.
struct SpawnsWhenDestroyed {
  Handle handle;
  LifetimeCounts* counts;
  std::atomic<int>* refused;
  ~SpawnsWhenDestroyed() {
    try {
      handle.spawn(noop(Counted(*counts, 9))).detach();
    } catch (const RuntimeShutdown&) {
      refused->fetch_add(1);
    }
  }
};

TEST(Shutdown, SpawnFromADestructorRunByShutdownIsRefusedWithRuntimeShutdown) {
  LifetimeCounts counts;
  std::atomic<int> refused{0};
  auto [tx, rx] = oneshot<int>();  // never sent while the runtime lives
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    Event waiting;
    rt.spawn([](Handle handle, LifetimeCounts& counts, std::atomic<int>& refused, Receiver<int> rx,
                Event& waiting) -> Task<void> {
        SpawnsWhenDestroyed local{std::move(handle), &counts, &refused};
        waiting.set();
        (void)co_await rx;
      }(rt.handle(), counts, refused, std::move(rx), waiting))
        .detach();
    ASSERT_TRUE(waiting.wait());
  }
  EXPECT_EQ(refused.load(), 1);
  EXPECT_EQ(counts.alive(), 0);  // the refused task's frame was destroyed unpolled
}

TEST(Shutdown, SpawnAfterShutdownTimeoutThroughTheRuntimeIsRefusedWithRuntimeShutdown) {
  // Handle::spawn documents RuntimeShutdown once the runtime shut down; the
  // Runtime forwards to it and should report the same, not a UsageError
  // about an "empty Handle" the caller never touched.
  auto rt = Runtime::Builder().worker_threads(1).build();
  ASSERT_TRUE(rt.shutdown_timeout(std::chrono::seconds(30)));
  EXPECT_THROW((void)rt.spawn(value(1)), RuntimeShutdown);
  EXPECT_THROW((void)rt.block_on(value(1)), RuntimeShutdown);
}

TEST(Shutdown, ShutdownTimeoutReturnsTrueOnACleanShutdownAndCancelsPendingTasks) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().worker_threads(2).build();
  Handle handle = rt.handle();
  auto [tx, rx] = oneshot<int>();
  auto pending = rt.spawn(recv_then(std::move(rx), Counted(counts)));
  EXPECT_TRUE(rt.shutdown_timeout(std::chrono::seconds(30)));
  expect_cancelled(pending, "pending at shutdown_timeout");
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_THROW((void)rt.spawn(value(1)), RuntimeShutdown);    // refused through the Runtime too
  EXPECT_TRUE(rt.shutdown_timeout(std::chrono::seconds(1)));  // nothing left to do
  EXPECT_THROW((void)handle.spawn(value(1)), RuntimeShutdown);
}

TEST(Shutdown, ShutdownTimeoutIsCleanWhenNoWorkerIsInsideAPollAtTheDeadline) {
  // shutdown_timeout's contract: the runtime is leaked (and false returned)
  // only when "a worker is still inside a poll at the deadline". Here no
  // task runs at all; the workers are merely still finishing on_thread_stop
  // (held for up to 500 ms) when the zero timeout expires. Nothing is stuck
  // in a poll, so the shutdown must wait for them and be clean.
  auto stop_may_finish = std::make_shared<Event>();  // shared: a leaked worker may outlive us
  auto rt = Runtime::Builder()
                .worker_threads(2)
                .on_thread_stop([stop_may_finish] {
                  (void)stop_may_finish->wait(std::chrono::milliseconds(500));
                })
                .build();
  EXPECT_EQ(rt.block_on(value(1)), 1);
  bool clean = rt.shutdown_timeout(std::chrono::nanoseconds(0));
  stop_may_finish->set();
  EXPECT_TRUE(clean) << "an idle runtime was declared stuck and leaked";
}

TEST(Shutdown, NegativeShutdownTimeoutThrowsUsageErrorAndLeavesTheRuntimeRunning) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  EXPECT_THROW((void)rt.shutdown_timeout(std::chrono::nanoseconds(-1)), spindle::UsageError);
  EXPECT_EQ(rt.block_on(value(5)), 5);
}

TEST(Shutdown, ShutdownTimeoutOfACurrentThreadRuntimeIsClean) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().current_thread().build();
  auto h = rt.spawn(noop(Counted(counts)));
  EXPECT_TRUE(rt.shutdown_timeout(std::chrono::seconds(1)));
  expect_cancelled(h, "queued on current_thread");
  EXPECT_EQ(counts.alive(), 0);
}

TEST(Shutdown, ReleasesAThreadBlockedInJoinWithCancelled) {
  auto [tx, rx] = oneshot<int>();
  std::optional<Runtime> rt(Runtime::Builder().worker_threads(2).build());
  auto h = rt->spawn([](Receiver<int> rx) -> Task<int> { co_return co_await rx; }(std::move(rx)));
  bool cancelled = false;
  Event joining;
  std::thread joiner([&] {
    joining.set();
    try {
      (void)h.join();
    } catch (const Cancelled&) {
      cancelled = true;
    }
  });
  ASSERT_TRUE(joining.wait());
  rt.reset();
  joiner.join();
  EXPECT_TRUE(cancelled);
}

TEST(Shutdown, ReleasesAForeignBlockOnWithCancelledOnMultiThread) {
  auto [tx, rx] = oneshot<int>();
  std::optional<Runtime> rt(Runtime::Builder().worker_threads(2).build());
  Handle handle = rt->handle();
  Event started;
  bool cancelled = false;
  std::thread caller([&, rx = std::move(rx)]() mutable {
    try {
      (void)handle.block_on([](Receiver<int> rx, Event& started) -> Task<int> {
        started.set();
        co_return co_await rx;
      }(std::move(rx), started));
    } catch (const Cancelled&) {
      cancelled = true;
    }
  });
  ASSERT_TRUE(started.wait());
  rt.reset();
  caller.join();
  EXPECT_TRUE(cancelled);
}

TEST(Shutdown, ReleasesAForeignBlockOnWithCancelledOnCurrentThread) {
  // Another thread drives the current_thread runtime in block_on (parked,
  // waiting on a channel) while this thread destroys the Runtime: shutdown
  // waits for the driver to leave the scheduling loop (the drive lock), then
  // destroys its task, so that block_on throws Cancelled.
  auto [tx, rx] = oneshot<int>();
  std::optional<Runtime> rt(Runtime::Builder().current_thread().build());
  Handle handle = rt->handle();
  Event started;
  bool cancelled = false;
  std::thread caller([&, rx = std::move(rx)]() mutable {
    try {
      (void)handle.block_on([](Receiver<int> rx, Event& started) -> Task<int> {
        started.set();
        co_return co_await rx;
      }(std::move(rx), started));
    } catch (const Cancelled&) {
      cancelled = true;
    }
  });
  ASSERT_TRUE(started.wait());
  rt.reset();
  caller.join();
  EXPECT_TRUE(cancelled);
}

TEST(Shutdown, RacesWithWakesFromAForeignThreadWithoutLosingOrDoublingAFrame) {
  // Tasks idle on channels while a foreign thread sends to them and the
  // runtime is destroyed at the same time: each frame is destroyed once, by
  // completion or by shutdown, and each handle reports one or the other.
  constexpr int kTasks = 300;
  LifetimeCounts counts;
  std::vector<JoinHandle<int>> handles;
  std::vector<Sender<int>> senders;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    for (int i = 0; i < kTasks; ++i) {
      auto [tx, rx] = oneshot<int>();
      senders.push_back(std::move(tx));
      handles.push_back(rt.spawn(recv_then(std::move(rx), Counted(counts, i))));
    }
    std::thread sender([&senders] {
      for (auto& tx : senders) tx.send(1);
    });
    rt = Runtime::Builder().current_thread().build();  // destroys the first runtime now
    sender.join();
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(handles[i].is_finished());
    try {
      EXPECT_EQ(handles[i].join(), i);
    } catch (const Cancelled&) {
    }
  }
}

TEST(Shutdown, ForeignSpawnersAndExecutorCallsRacingWithShutdownNeverTouchAClosedIoContext) {
  // Threads the shutdown does not join keep spawning (each spawn may post a
  // wake-up to a parked worker's io_context) and asking for executors while
  // the runtime is destroyed. Shutdown closes the io_contexts last; a post
  // or an executor copy that reached one being closed was a use-after-free
  // (ASan) or a race inside Asio (TSan). Each thread must end refused with
  // RuntimeShutdown, and every frame be destroyed once.
  constexpr int kRounds = 40;
  LifetimeCounts counts;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> refused{0};
    std::atomic<int> started{0};
    {
      std::optional<Runtime> rt(Runtime::Builder().worker_threads(2).build());
      Handle handle = rt->handle();
      std::vector<std::thread> threads;
      for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, handle] {
          started.fetch_add(1);
          for (int i = 0;; ++i) {
            try {
              // Tiny tasks: the workers finish them at once and park again,
              // so most spawns take the wake-a-parked-worker path.
              handle.spawn(noop(Counted(counts, i))).detach();
            } catch (const RuntimeShutdown&) {
              refused.fetch_add(1);
              return;
            }
          }
        });
      }
      threads.emplace_back([&, handle] {
        started.fetch_add(1);
        for (;;) {
          try {
            spindle::Executor ex = handle.executor();
            (void)ex;
          } catch (const RuntimeShutdown&) {
            refused.fetch_add(1);
            return;
          }
        }
      });
      while (started.load() < 3) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::microseconds(100 * (round % 8)));
      rt.reset();  // shutdown, racing with all three
      for (auto& t : threads) t.join();
    }
    EXPECT_EQ(refused.load(), 3) << "round " << round;
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Shutdown, MoveAssigningARuntimeShutsDownTheOverwrittenOne) {
  LifetimeCounts counts;
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto [tx, rx] = oneshot<int>();
  auto pending = rt.spawn(recv_then(std::move(rx), Counted(counts)));
  rt = Runtime::Builder().worker_threads(1).build();
  expect_cancelled(pending, "pending in the overwritten runtime");
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(rt.block_on(value(2)), 2);  // the new one works
  Runtime moved = std::move(rt);
  EXPECT_FALSE(rt.handle().valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(moved.block_on(value(3)), 3);
}

TEST(ShutdownDeathTest, DestroyingTheRuntimeFromItsOwnTaskIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto rt = Runtime::Builder().worker_threads(1).build();
        rt.block_on([](Runtime* rt) -> Task<void> {
          (void)rt->shutdown_timeout(std::chrono::seconds(1));
          co_return;
        }(&rt));
      },
      "own worker threads");
}

}  // namespace
