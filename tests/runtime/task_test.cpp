// Task<T>, block_on and yield_now: values, move-only results, inline nested
// awaits (no stack growth), exceptions, empty Tasks, and interleaving.

#include <gtest/gtest.h>

#include <atomic>
#include <coroutine>
#include <memory>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Runtime;
using spindle::Task;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;

Task<int> add(int a, int b) { co_return a + b; }

Task<void> thrower() {
  throw std::runtime_error("boom");
  co_return;
}

Task<int> trivially(int v) { co_return v; }

// ---- block_on -------------------------------------------------------------------------

TEST(BlockOn, ReturnsTheValueOnMultiThread) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  EXPECT_EQ(rt.block_on(add(2, 3)), 5);
}

TEST(BlockOn, ReturnsTheValueOnCurrentThread) {
  auto rt = Runtime::Builder().current_thread().build();
  EXPECT_EQ(rt.block_on(add(2, 3)), 5);
}

TEST(BlockOn, ThroughAHandleReturnsTheValueOnBothFlavours) {
  auto mt = Runtime::Builder().worker_threads(2).build();
  auto ct = Runtime::Builder().current_thread().build();
  spindle::Handle mh = mt.handle();
  spindle::Handle ch = ct.handle();
  EXPECT_EQ(mh.block_on(add(20, 1)), 21);
  EXPECT_EQ(ch.block_on(add(30, 1)), 31);
}

TEST(BlockOn, RethrowsTheTasksExceptionOnBothFlavours) {
  auto mt = Runtime::Builder().worker_threads(2).build();
  auto ct = Runtime::Builder().current_thread().build();
  EXPECT_THROW(mt.block_on(thrower()), std::runtime_error);
  EXPECT_THROW(ct.block_on(thrower()), std::runtime_error);
  // The runtimes stay usable after a task threw.
  EXPECT_EQ(mt.block_on(add(1, 1)), 2);
  EXPECT_EQ(ct.block_on(add(1, 1)), 2);
}

TEST(BlockOn, CanBeCalledRepeatedly) {
  auto mt = Runtime::Builder().worker_threads(2).build();
  auto ct = Runtime::Builder().current_thread().build();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(mt.block_on(add(i, 1)), i + 1);
    ASSERT_EQ(ct.block_on(add(i, 2)), i + 2);
  }
}

// Runs `rt.block_on` (or a Handle's) from inside one of its tasks and reports
// whether it threw UsageError; it must, instead of deadlocking the worker.
Task<bool> nested_block_on(spindle::Handle target) {
  try {
    (void)target.block_on(add(1, 2));
  } catch (const spindle::UsageError&) {
    co_return true;
  }
  co_return false;
}

TEST(BlockOn, FromInsideATaskThrowsUsageErrorOnMultiThread) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  EXPECT_TRUE(rt.block_on(nested_block_on(rt.handle())));
}

TEST(BlockOn, FromInsideATaskThrowsUsageErrorOnCurrentThread) {
  auto rt = Runtime::Builder().current_thread().build();
  EXPECT_TRUE(rt.block_on(nested_block_on(rt.handle())));
}

TEST(BlockOn, OfAnotherRuntimeFromInsideATaskThrowsUsageError) {
  auto a = Runtime::Builder().worker_threads(1).build();
  auto b = Runtime::Builder().current_thread().build();
  EXPECT_TRUE(a.block_on(nested_block_on(b.handle())));
  EXPECT_TRUE(b.block_on(nested_block_on(a.handle())));
}

TEST(BlockOn, FromOnThreadStartThrowsUsageError) {
  // A worker thread outside any task still must not block in block_on.
  auto other = Runtime::Builder().current_thread().build();
  spindle::Handle target = other.handle();
  std::atomic<int> usage_errors{0};
  {
    auto rt = Runtime::Builder()
                  .worker_threads(1)
                  .on_thread_start([&] {
                    try {
                      (void)target.block_on(add(1, 1));
                    } catch (const spindle::UsageError&) {
                      usage_errors.fetch_add(1);
                    }
                  })
                  .build();
  }  // joins the worker: on_thread_start has run
  EXPECT_EQ(usage_errors.load(), 1);
}

TEST(BlockOn, OfAnEmptyTaskThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  EXPECT_THROW(rt.block_on(Task<int>()), spindle::UsageError);
  auto ct = Runtime::Builder().current_thread().build();
  EXPECT_THROW(ct.block_on(Task<void>()), spindle::UsageError);
}

TEST(BlockOn, FromSeveralForeignThreadsAtOnceAllReturn) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  spindle::Handle h = rt.handle();
  std::vector<std::thread> threads;
  std::atomic<int> sum{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&sum, h, t] {
      for (int i = 0; i < 50; ++i) {
        sum.fetch_add(h.block_on([](int v) -> Task<int> {
          co_await spindle::yield_now();
          co_return v;
        }(t)));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(sum.load(), 50 * (0 + 1 + 2 + 3));
}

// ---- Task<T> ------------------------------------------------------------------------

TEST(Task, VoidTaskRunsItsBody) {
  auto rt = Runtime::Builder().current_thread().build();
  int ran = 0;
  rt.block_on([](int& ran) -> Task<void> {
    ++ran;
    co_return;
  }(ran));
  EXPECT_EQ(ran, 1);
}

TEST(Task, IsLazyUntilAwaitedOrSpawned) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  std::atomic<bool> ran{false};
  auto make = [](std::atomic<bool>& ran) -> Task<void> {
    ran = true;
    co_return;
  };
  Task<void> t = make(ran);
  EXPECT_TRUE(t.valid());
  EXPECT_FALSE(ran.load());
  rt.block_on(std::move(t));
  EXPECT_TRUE(ran.load());
}

TEST(Task, MoveOnlyResultsTravelThroughAwaitAndBlockOn) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  auto make = [](int v) -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(v); };
  std::unique_ptr<int> p = rt.block_on(make(7));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
  std::unique_ptr<int> q = rt.block_on([](decltype(make) make) -> Task<std::unique_ptr<int>> {
    std::unique_ptr<int> inner = co_await make(8);
    auto h = spindle::spawn(make(9));
    std::unique_ptr<int> spawned = co_await h;
    *inner += *spawned;
    co_return inner;
  }(make));
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(*q, 17);
}

TEST(Task, ResultValueIsMovedNotCopiedAndDestroyedOnce) {
  LifetimeCounts counts;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    auto make = [](LifetimeCounts& counts, int v) -> Task<Counted> {
      co_return Counted(counts, v);
    };
    Counted c = rt.block_on([](decltype(make) make, LifetimeCounts& counts) -> Task<Counted> {
      Counted a = co_await make(counts, 1);
      auto h = spindle::spawn(make(counts, 2));
      Counted b = co_await h;
      co_return Counted(counts, a.value() + b.value());
    }(make, counts));
    EXPECT_EQ(c.value(), 3);
  }
  EXPECT_EQ(counts.copy_constructed.load(), 0);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Task, AwaitingAMillionTriviallyCompletingChildrenDoesNotGrowTheStack) {
  // Each child completes inside the parent's poll; symmetric transfer must
  // hand control back without a nested call, or a million of them would
  // overflow the worker's stack.
  auto rt = Runtime::Builder().worker_threads(1).build();
  constexpr int kChildren = 1'000'000;
  long long sum = rt.block_on([]() -> Task<long long> {
    long long s = 0;
    for (int i = 0; i < kChildren; ++i) s += co_await trivially(1);
    co_return s;
  }());
  EXPECT_EQ(sum, kChildren);
}

Task<int> chain(int depth) {
  if (depth == 0) co_return 0;
  int below = co_await chain(depth - 1);
  co_return below + 1;
}

TEST(Task, DeeplyNestedAwaitChainsDoNotGrowTheStack) {
  // 200,000 frames each awaiting the next: starting and finishing each level
  // are symmetric transfers, so the stack stays flat in both directions.
  auto rt = Runtime::Builder().worker_threads(1).build();
  EXPECT_EQ(rt.block_on(chain(200'000)), 200'000);
  auto ct = Runtime::Builder().current_thread().build();
  EXPECT_EQ(ct.block_on(chain(200'000)), 200'000);
}

Task<int> throws_at(int depth) {
  if (depth == 0) throw std::out_of_range("deep");
  co_return co_await throws_at(depth - 1) + 1;
}

TEST(Task, ExceptionsPropagateThroughNestedAwaits) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::string caught = rt.block_on([]() -> Task<std::string> {
    try {
      (void)co_await throws_at(50);
    } catch (const std::out_of_range& e) {
      co_return e.what();
    }
    co_return "nothing";
  }());
  EXPECT_EQ(caught, "deep");
  EXPECT_THROW(rt.block_on(throws_at(10)), std::out_of_range);
}

TEST(Task, ATaskCanContinueAfterAChildThrew) {
  auto rt = Runtime::Builder().current_thread().build();
  int v = rt.block_on([]() -> Task<int> {
    int caught = 0;
    for (int i = 0; i < 3; ++i) {
      try {
        co_await thrower();
      } catch (const std::runtime_error&) {
        ++caught;
      }
    }
    co_return caught + co_await add(10, 0);
  }());
  EXPECT_EQ(v, 13);
}

TEST(Task, AwaitingAnEmptyTaskThrowsUsageError) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  bool threw = rt.block_on([]() -> Task<bool> {
    Task<int> empty;
    try {
      (void)co_await std::move(empty);
    } catch (const spindle::UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

TEST(Task, MovedFromTaskIsEmptyAndTheMoveTargetRuns) {
  auto rt = Runtime::Builder().current_thread().build();
  Task<int> a = add(1, 2);
  Task<int> b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_TRUE(b.valid());
  Task<int> c = add(5, 5);
  c = std::move(b);  // destroys c's unstarted frame
  EXPECT_EQ(rt.block_on(std::move(c)), 3);
  EXPECT_FALSE(Task<void>().valid());
}

TEST(Task, UnstartedFramesAreDestroyedExactlyOnce) {
  LifetimeCounts counts;
  auto make = [](Counted c) -> Task<int> { co_return c.value(); };
  {
    Task<int> t = make(Counted(counts, 4));
    Task<int> u = make(Counted(counts, 5));
    u = std::move(t);
    EXPECT_EQ(counts.alive(), 1);  // only the frame owned by u remains
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Task, FramesOfAwaitedAndSpawnedTasksAreDestroyedExactlyOnce) {
  LifetimeCounts counts;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    auto leaf = [](Counted c) -> Task<int> {
      co_await spindle::yield_now();
      co_return c.value();
    };
    int v = rt.block_on([](decltype(leaf) leaf, LifetimeCounts& counts) -> Task<int> {
      int s = 0;
      std::vector<spindle::JoinHandle<int>> hs;
      for (int i = 0; i < 100; ++i) {
        s += co_await leaf(Counted(counts, 1));
        hs.push_back(spindle::spawn(leaf(Counted(counts, 1))));
      }
      for (auto& h : hs) s += co_await h;
      co_return s;
    }(leaf, counts));
    EXPECT_EQ(v, 200);
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

// ---- yield_now ------------------------------------------------------------------------

TEST(YieldNow, LetsOtherTasksOnTheSameWorkerRun) {
  // One worker: the spinning task makes progress only if yield_now really
  // puts it behind the other task (a yield into the LIFO slot would spin forever).
  auto rt = Runtime::Builder().worker_threads(1).build();
  bool other_ran = rt.block_on([]() -> Task<bool> {
    bool flag = false;
    auto h = spindle::spawn([](bool& flag) -> Task<void> {
      flag = true;
      co_return;
    }(flag));
    for (int i = 0; i < 100'000 && !flag; ++i) co_await spindle::yield_now();
    co_await h;
    co_return flag;
  }());
  EXPECT_TRUE(other_ran);
}

TEST(YieldNow, AYieldedTaskIsNotStarvedByAWorkerThatNeverRunsOutOfTasks) {
  // One worker, kept busy by a chain of tasks that each spawn the next (no
  // yields: the worker always has local work). A task that yielded once
  // must run again while the chain goes on, not only when it ends.
  constexpr int kMaxLinks = 20'000;
  auto rt = Runtime::Builder().worker_threads(1).build();
  std::atomic<bool> yielder_done{false};
  std::atomic<int> links{0};
  auto yielder = rt.spawn([](std::atomic<bool>& done) -> Task<void> {
    co_await spindle::yield_now();
    done = true;
  }(yielder_done));
  struct Chain {
    static Task<void> link(std::atomic<bool>& stop, std::atomic<int>& links) {
      if (stop.load() || links.fetch_add(1) >= kMaxLinks) co_return;
      spindle::spawn(link(stop, links)).detach();
    }
  };
  rt.spawn(Chain::link(yielder_done, links)).detach();
  yielder.join();
  EXPECT_LT(links.load(), kMaxLinks) << "the yielded task only ran once the chain ended";
}

TEST(YieldNow, TwoYieldingTasksInterleaveOnCurrentThread) {
  auto rt = Runtime::Builder().current_thread().build();
  std::vector<char> order = rt.block_on([]() -> Task<std::vector<char>> {
    std::vector<char> order;
    auto body = [](std::vector<char>& order, char name) -> Task<void> {
      for (int i = 0; i < 20; ++i) {
        order.push_back(name);
        co_await spindle::yield_now();
      }
    };
    auto a = spindle::spawn(body(order, 'a'));
    auto b = spindle::spawn(body(order, 'b'));
    co_await a;
    co_await b;
    co_return order;
  }());
  ASSERT_EQ(order.size(), 40U);
  for (std::size_t i = 1; i < order.size(); ++i) {
    EXPECT_NE(order[i], order[i - 1]) << "the tasks did not alternate at step " << i;
  }
}

TEST(YieldNow, ResumesTheTaskWhereItLeftOff) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  int v = rt.block_on([]() -> Task<int> {
    int local = 0;
    for (int i = 0; i < 1000; ++i) {
      ++local;
      co_await spindle::yield_now();
    }
    co_return local;
  }());
  EXPECT_EQ(v, 1000);
}

TEST(YieldNow, InsideNestedTasksYieldsTheRootTask) {
  auto rt = Runtime::Builder().current_thread().build();
  auto inner = [](int n) -> Task<int> {
    for (int i = 0; i < n; ++i) co_await spindle::yield_now();
    co_return n;
  };
  int v = rt.block_on([](decltype(inner) inner) -> Task<int> {
    int s = 0;
    for (int i = 0; i < 10; ++i) s += co_await inner(i);
    co_return s;
  }(inner));
  EXPECT_EQ(v, 45);
}

// A coroutine type that is not a spindle Task: awaiting yield_now in it has no
// task to yield.
struct Foreign {
  struct promise_type {
    Foreign get_return_object() {
      return Foreign{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() {}
  };
  std::coroutine_handle<promise_type> h;
};

TEST(YieldNowDeathTest, OutsideASpindleTaskAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto f = []() -> Foreign { co_await spindle::yield_now(); }();
        f.h.destroy();
      },
      "outside a spindle task");
}

}  // namespace
