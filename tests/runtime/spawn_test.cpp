// spawn (inside tasks, from foreign threads, across runtimes) and Handle.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Handle;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;

Task<int> value(int v) { co_return v; }

// ---- spawn ----------------------------------------------------------------------------

TEST(Spawn, FromInsideATaskRunsTheChildAndYieldsItsValue) {
  for (bool current : {false, true}) {
    auto rt = current ? Runtime::Builder().current_thread().build()
                      : Runtime::Builder().worker_threads(2).build();
    int v = rt.block_on([]() -> Task<int> {
      auto a = spindle::spawn(value(40));
      auto b = spindle::spawn(value(2));
      co_return co_await a + co_await b;
    }());
    EXPECT_EQ(v, 42) << (current ? "current_thread" : "multi_thread");
  }
}

TEST(Spawn, OutsideARuntimeThrowsUsageError) {
  EXPECT_THROW((void)spindle::spawn(value(1)), spindle::UsageError);
  // Also on a thread that merely shares the process with a runtime.
  auto rt = Runtime::Builder().worker_threads(1).build();
  bool threw = false;
  std::thread t([&threw] {
    try {
      (void)spindle::spawn(value(1));
    } catch (const spindle::UsageError&) {
      threw = true;
    }
  });
  t.join();
  EXPECT_TRUE(threw);
}

TEST(Spawn, OfAnEmptyTaskThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  EXPECT_THROW((void)rt.spawn(Task<int>()), spindle::UsageError);
  EXPECT_THROW((void)rt.handle().spawn(Task<void>()), spindle::UsageError);
  bool threw = rt.block_on([]() -> Task<bool> {
    try {
      (void)spindle::spawn(Task<int>());
    } catch (const spindle::UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
  EXPECT_EQ(rt.block_on(value(3)), 3);  // still usable
}

TEST(Spawn, RuntimeSpawnFromOutsideRunsTheTaskOnAWorkerThread) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto h = rt.spawn([]() -> Task<std::thread::id> { co_return std::this_thread::get_id(); }());
  std::thread::id ran_on = h.join();
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(Spawn, FromSeveralForeignThreadsAtOnceRunsEveryTaskExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  auto runs = std::make_unique<std::atomic<int>[]>(kThreads * kPerThread);
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    Handle handle = rt.handle();
    std::vector<std::thread> threads;
    std::atomic<int> go{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t, handle] {
        go.fetch_add(1);
        while (go.load() < kThreads) std::this_thread::yield();  // start together
        std::vector<JoinHandle<void>> hs;
        for (int i = 0; i < kPerThread; ++i) {
          hs.push_back(handle.spawn([](std::atomic<int>& slot) -> Task<void> {
            slot.fetch_add(1);
            co_return;
          }(runs[t * kPerThread + i])));
        }
        for (auto& h : hs) h.join();
      });
    }
    for (auto& t : threads) t.join();
  }
  for (int i = 0; i < kThreads * kPerThread; ++i) ASSERT_EQ(runs[i].load(), 1) << "task " << i;
}

#if defined(__SANITIZE_THREAD__)
#define SPINDLE_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_TEST_UNDER_TSAN 1
#endif
#endif

TEST(Spawn, AMillionTinyTasksAllComplete) {
  // A thousand spawners on both workers, each spawning a thousand tiny tasks.
  // ThreadSanitizer makes each spawn ~20x dearer: there it is a tenth of that.
#ifdef SPINDLE_TEST_UNDER_TSAN
  constexpr int kSpawners = 100;
#else
  constexpr int kSpawners = 1000;
#endif
  constexpr int kPerSpawner = 1000;
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::atomic<int> done{0};
  rt.block_on([](std::atomic<int>& done) -> Task<void> {
    auto spawner = [](std::atomic<int>& done) -> Task<void> {
      std::vector<JoinHandle<void>> hs;
      hs.reserve(kPerSpawner);
      for (int i = 0; i < kPerSpawner; ++i) {
        hs.push_back(spindle::spawn([](std::atomic<int>& done) -> Task<void> {
          done.fetch_add(1, std::memory_order_relaxed);
          co_return;
        }(done)));
      }
      for (auto& h : hs) co_await h;
    };
    std::vector<JoinHandle<void>> spawners;
    spawners.reserve(kSpawners);
    for (int i = 0; i < kSpawners; ++i) spawners.push_back(spindle::spawn(spawner(done)));
    for (auto& h : spawners) co_await h;
  }(done));
  EXPECT_EQ(done.load(), kSpawners * kPerSpawner);
  EXPECT_TRUE(spindle::test::eventually([&] { return rt.handle().counters().live_tasks == 0; }));
  EXPECT_EQ(rt.handle().counters().spawned_tasks,
            static_cast<std::uint64_t>(kSpawners * kPerSpawner + kSpawners + 1));
}

TEST(Spawn, AChildOutlivesTheParentThatDetachedIt) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  rt.block_on([](spindle::sync::Sender<int> tx) -> Task<void> {
    spindle::spawn([](spindle::sync::Sender<int> tx) -> Task<void> {
      for (int i = 0; i < 10; ++i) co_await spindle::yield_now();
      tx.send(5);
    }(std::move(tx)))
        .detach();
    co_return;  // the parent finishes first
  }(std::move(tx)));
  EXPECT_EQ(rx.blocking_recv(), 5);
}

TEST(Spawn, OntoAnotherRuntimeFromATaskRunsThereAndCanBeAwaited) {
  auto a = Runtime::Builder().worker_threads(1).thread_name("rt-a").build();
  auto b = Runtime::Builder().worker_threads(1).thread_name("rt-b").build();
  auto thread_of = []() -> Task<std::thread::id> { co_return std::this_thread::get_id(); };
  std::thread::id b_thread = b.block_on(thread_of());
  auto [here, there] = a.block_on(
      [](Handle b,
         decltype(thread_of) thread_of) -> Task<std::pair<std::thread::id, std::thread::id>> {
        auto h = b.spawn(thread_of());
        // The JoinHandle's waker wakes this task on runtime a from runtime b's worker.
        std::thread::id there = co_await h;
        co_return std::pair{std::this_thread::get_id(), there};
      }(b.handle(), thread_of));
  EXPECT_EQ(there, b_thread);
  EXPECT_NE(here, b_thread);
}

TEST(Spawn, ArgumentsOfRefusedAndEmptySpawnsAreDestroyedOnce) {
  LifetimeCounts counts;
  Handle handle;
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    handle = rt.handle();
  }
  auto make = [](Counted c) -> Task<int> { co_return c.value(); };
  EXPECT_THROW((void)handle.spawn(make(Counted(counts, 1))), spindle::RuntimeShutdown);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

// ---- Handle ---------------------------------------------------------------------------

TEST(Handle, CopiesReferToTheSameRuntimeAndSpawnOntoIt) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  Handle a = rt.handle();
  Handle b = a;  // NOLINT(performance-unnecessary-copy-initialization): copying is the point
  Handle c;
  c = b;
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(b == c);
  EXPECT_TRUE(c.valid());
  EXPECT_EQ(c.spawn(value(9)).join(), 9);
  Handle moved = std::move(c);
  EXPECT_FALSE(c.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(moved == a);
  auto other = Runtime::Builder().worker_threads(1).build();
  EXPECT_FALSE(other.handle() == a);
}

TEST(Handle, CurrentInsideATaskIsItsRuntime) {
  auto mt = Runtime::Builder().worker_threads(2).build();
  auto ct = Runtime::Builder().current_thread().build();
  auto same = [](Handle expected) -> Task<bool> {
    Handle cur = Handle::current();
    Handle maybe = Handle::try_current();
    co_return cur == expected&& maybe == expected&& cur.valid();
  };
  EXPECT_TRUE(mt.block_on(same(mt.handle())));
  EXPECT_TRUE(ct.block_on(same(ct.handle())));
}

TEST(Handle, CurrentOutsideARuntimeThrowsAndTryCurrentIsEmpty) {
  EXPECT_THROW((void)Handle::current(), spindle::UsageError);
  EXPECT_FALSE(Handle::try_current().valid());
  auto ct = Runtime::Builder().current_thread().build();
  ct.block_on(value(1));
  // block_on's thread is the worker only while it drives the runtime.
  EXPECT_FALSE(Handle::try_current().valid());
}

TEST(Handle, CurrentOnAWorkerThreadOutsideAnyTaskIsTheRuntime) {
  std::mutex mu;
  std::vector<Handle> seen;  // what try_current() returned in each on_thread_start
  Handle mine;
  {
    auto rt = Runtime::Builder()
                  .worker_threads(2)
                  .on_thread_start([&] {
                    std::lock_guard<std::mutex> lock(mu);
                    seen.push_back(Handle::try_current());
                  })
                  .build();
    mine = rt.handle();
  }  // joins the workers: both have run on_thread_start
  ASSERT_EQ(seen.size(), 2U);
  for (const Handle& h : seen) EXPECT_TRUE(h == mine);
}

TEST(Handle, SpawnAndBlockOnAfterTheRuntimeIsDestroyedThrowRuntimeShutdown) {
  Handle handle;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    handle = rt.handle();
    EXPECT_EQ(handle.spawn(value(1)).join(), 1);
  }
  EXPECT_TRUE(handle.valid());
  EXPECT_THROW((void)handle.spawn(value(2)), spindle::RuntimeShutdown);
  EXPECT_THROW((void)handle.block_on(value(3)), spindle::RuntimeShutdown);
  // The shared state stays readable.
  EXPECT_EQ(handle.num_workers(), 2U);
  EXPECT_EQ(handle.counters().workers.size(), 2U);
  EXPECT_EQ(handle.counters().live_tasks, 0U);
}

TEST(Handle, OfACurrentThreadRuntimeRefusesSpawnsAfterItIsDestroyed) {
  Handle handle;
  {
    auto rt = Runtime::Builder().current_thread().build();
    handle = rt.handle();
  }
  EXPECT_THROW((void)handle.spawn(value(2)), spindle::RuntimeShutdown);
  EXPECT_THROW((void)handle.block_on(value(3)), spindle::RuntimeShutdown);
}

TEST(Handle, EmptyHandleThrowsUsageError) {
  Handle empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_THROW((void)empty.spawn(value(1)), spindle::UsageError);
  EXPECT_THROW((void)empty.block_on(value(1)), spindle::UsageError);
  EXPECT_THROW((void)empty.counters(), spindle::UsageError);
  EXPECT_THROW((void)empty.num_workers(), spindle::UsageError);
}

TEST(Handle, ReportsTheFlavourAndNumberOfWorkers) {
  auto mt = Runtime::Builder().worker_threads(3).build();
  auto ct = Runtime::Builder().current_thread().build();
  EXPECT_EQ(mt.handle().num_workers(), 3U);
  EXPECT_FALSE(mt.handle().is_current_thread());
  EXPECT_EQ(ct.handle().num_workers(), 1U);
  EXPECT_TRUE(ct.handle().is_current_thread());
  auto dflt = Runtime::Builder().build();
  EXPECT_EQ(dflt.handle().num_workers(), std::max(1U, std::thread::hardware_concurrency()));
}

TEST(Handle, KeptInsideATaskDoesNotKeepTheRuntimeAlive) {
  // A task that holds a Handle to its own runtime and never finishes:
  // destroying the Runtime still destroys the frame, which releases the
  // Handle (LSan reports the runtime's state otherwise).
  LifetimeCounts counts;
  auto [tx, rx] = spindle::sync::oneshot<int>();  // never sent while the runtime lives
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    rt.spawn([](Handle self, spindle::sync::Receiver<int> rx, Counted) -> Task<void> {
        (void)self;
        (void)co_await rx;
      }(rt.handle(), std::move(rx), Counted(counts)))
        .detach();
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_FALSE(tx.send(1));  // the receiver died with the frame
}

}  // namespace
