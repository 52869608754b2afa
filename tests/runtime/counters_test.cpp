// Handle::counters(): the scheduler's raw counters. Scheduling is
// nondeterministic, so the assertions are on sums, lower bounds, or
// single-worker setups where the outcome is certain.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

#include "support/manual_clock.hpp"
#include "support/sync.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::RuntimeCounters;
using spindle::Task;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::eventually;

Task<int> value(int v) { co_return v; }

template <class F>
std::uint64_t sum(const RuntimeCounters& c, F field) {
  std::uint64_t s = 0;
  for (const auto& w : c.workers) s += field(w);
  return s;
}
std::uint64_t polls(const RuntimeCounters& c) {
  return sum(c, [](const spindle::WorkerCounters& w) { return w.polls; });
}

TEST(Counters, PollsAddUpToAtLeastThePollsCaused) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::uint64_t before = polls(rt.handle().counters());
  rt.block_on([]() -> Task<void> {
    for (int i = 0; i < 100; ++i) co_await spindle::yield_now();
  }());
  for (int i = 0; i < 50; ++i) rt.spawn(value(i)).join();
  // block_on: 101 polls; each spawned task: one poll.
  EXPECT_GE(polls(rt.handle().counters()) - before, 151U);
}

TEST(Counters, PollsOnCurrentThreadAreCountedExactly) {
  auto rt = Runtime::Builder().current_thread().build();
  rt.block_on([]() -> Task<void> {
    for (int i = 0; i < 10; ++i) co_await spindle::yield_now();
  }());
  EXPECT_EQ(polls(rt.handle().counters()), 11U);
}

TEST(Counters, LiveTasksCountsUnfinishedTasksAndReturnsToZero) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  EXPECT_EQ(rt.handle().counters().live_tasks, 0U);
  std::vector<Sender<int>> senders;
  std::vector<JoinHandle<int>> hs;
  for (int i = 0; i < 50; ++i) {
    auto [tx, rx] = oneshot<int>();
    senders.push_back(std::move(tx));
    hs.push_back(
        rt.spawn([](Receiver<int> rx) -> Task<int> { co_return co_await rx; }(std::move(rx))));
  }
  EXPECT_EQ(rt.handle().counters().live_tasks, 50U);
  for (auto& tx : senders) tx.send(1);
  for (auto& h : hs) EXPECT_EQ(h.join(), 1);
  // A joiner may return just before the worker unlists the task.
  EXPECT_TRUE(eventually([&] { return rt.handle().counters().live_tasks == 0; }));
}

TEST(Counters, SpawnedTasksCountsEverySpawnFromInsideAndOutside) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  for (int i = 0; i < 10; ++i) rt.spawn(value(i)).join();
  rt.block_on([]() -> Task<void> {  // itself one spawn
    for (int i = 0; i < 20; ++i) co_await spindle::spawn(value(i));
  }());
  EXPECT_EQ(rt.handle().counters().spawned_tasks, 31U);
  // Refused spawns are not counted.
  EXPECT_THROW((void)rt.spawn(Task<int>()), spindle::UsageError);
  EXPECT_EQ(rt.handle().counters().spawned_tasks, 31U);
}

TEST(Counters, RemoteSchedulesCountSpawnsAndWakesFromOutsideTheWorkers) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = oneshot<int>();
  spindle::test::Event waiting;
  auto h = rt.spawn([](Receiver<int> rx, spindle::test::Event& waiting) -> Task<int> {
    waiting.set();
    co_return co_await rx;
  }(std::move(rx), waiting));
  for (int i = 0; i < 9; ++i) rt.spawn(value(i)).join();
  ASSERT_TRUE(waiting.wait());
  tx.send(1);  // a wake from this (foreign) thread
  EXPECT_EQ(h.join(), 1);
  EXPECT_GE(rt.handle().counters().remote_schedules, 10U);
}

TEST(Counters, OverflowsAreCountedWhenALocalQueueOfFourFills) {
  // One worker: nobody steals, so the 6th spawn in a row (LIFO slot + 4
  // queued) must overflow half the queue into the injection queue.
  constexpr int kTasks = 50;
  auto rt = Runtime::Builder().worker_threads(1).local_queue_capacity(4).build();
  auto ran = std::make_unique<std::atomic<int>[]>(kTasks);
  rt.block_on([](std::atomic<int>* ran) -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(spindle::spawn([](std::atomic<int>& r) -> Task<void> {
        r.fetch_add(1);
        co_return;
      }(ran[i])));
    }
    for (auto& h : hs) co_await h;
  }(ran.get()));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(ran[i].load(), 1) << i;
  RuntimeCounters c = rt.handle().counters();
  EXPECT_GE(c.workers[0].overflows, 1U);
  EXPECT_GE(c.workers[0].local_schedules, static_cast<std::uint64_t>(kTasks));
}

TEST(Counters, StealsHappenWhenABusyWorkerHasQueuedTasks) {
  // The spawning task keeps its worker inside one poll until one of its
  // children has run: only the other worker, by stealing, can run them.
  auto rt = Runtime::Builder().worker_threads(2).build();
  bool stolen_ran = rt.block_on([]() -> Task<bool> {
    std::atomic<int> ran{0};
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 8; ++i) {
      hs.push_back(spindle::spawn([](std::atomic<int>& ran) -> Task<void> {
        ran.fetch_add(1);
        co_return;
      }(ran)));
    }
    bool ok = spindle::test::eventually([&] { return ran.load() > 0; });
    for (auto& h : hs) co_await h;
    co_return ok;
  }());
  EXPECT_TRUE(stolen_ran) << "queued tasks of a busy worker were never stolen";
  RuntimeCounters c = rt.handle().counters();
  EXPECT_GE(sum(c, [](const spindle::WorkerCounters& w) { return w.steals; }), 1U);
  EXPECT_GE(sum(c, [](const spindle::WorkerCounters& w) { return w.steal_operations; }), 1U);
  for (const auto& w : c.workers) EXPECT_GE(w.steals, w.steal_operations);
}

TEST(Counters, ParksAreCountedWhenWorkersHaveNothingToDo) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  rt.block_on(value(1));
  EXPECT_TRUE(eventually([&] {
    RuntimeCounters c = rt.handle().counters();
    return c.workers[0].parks >= 1 && c.workers[1].parks >= 1;
  }));
}

TEST(Counters, QueueDepthsShowQueuedTasks) {
  auto ct = Runtime::Builder().current_thread().build();
  for (int i = 0; i < 5; ++i) ct.spawn(value(i)).detach();
  RuntimeCounters c = ct.handle().counters();
  EXPECT_EQ(c.global_queue_depth, 5U);  // nothing runs outside block_on
  EXPECT_EQ(c.live_tasks, 5U);
  ct.block_on(value(0));
  c = ct.handle().counters();
  EXPECT_EQ(c.global_queue_depth, 0U);
  EXPECT_EQ(c.live_tasks, 0U);

  auto rt = Runtime::Builder().worker_threads(1).lifo_slot(false).build();
  std::size_t depth = rt.block_on([]() -> Task<std::size_t> {
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < 10; ++i) hs.push_back(spindle::spawn(value(i)));
    std::size_t d = spindle::Handle::current().counters().workers[0].local_queue_depth;
    for (auto& h : hs) (void)co_await h;
    co_return d;
  }());
  EXPECT_EQ(depth, 10U);
}

TEST(Counters, ElapsedAndNowFollowTheInjectedClock) {
  auto clock = std::make_shared<spindle::test::ManualClock>();
  auto rt = Runtime::Builder().worker_threads(1).clock(clock->source()).build();
  clock->advance(std::chrono::milliseconds(250));
  RuntimeCounters c = rt.handle().counters();
  EXPECT_EQ(c.elapsed, std::chrono::milliseconds(250));
  EXPECT_EQ(c.now, clock->now());
}

TEST(Counters, CanBeReadFromAnotherThreadWhileTasksRun) {
  auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
  std::atomic<bool> done{false};
  std::atomic<bool> went_backwards{false};
  std::thread reader([&] {
    std::vector<std::uint64_t> last(2, 0);
    while (!done.load()) {
      RuntimeCounters c = rt.handle().counters();
      for (std::size_t i = 0; i < 2; ++i) {
        if (c.workers[i].polls < last[i]) went_backwards = true;
        last[i] = c.workers[i].polls;
      }
    }
  });
  rt.block_on([]() -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 2000; ++i) {
      hs.push_back(spindle::spawn([]() -> Task<void> { co_await spindle::yield_now(); }()));
    }
    for (auto& h : hs) co_await h;
  }());
  done = true;
  reader.join();
  EXPECT_FALSE(went_backwards.load());
}

}  // namespace
