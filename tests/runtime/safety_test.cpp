// The traps a new user falls into, closed: lambda captures kept alive by
// spawn(callable), a Task awaited twice, deep await chains destroyed in
// constant stack on abort and at shutdown.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <spindle/runtime.hpp>
#include <spindle/runtime/detail/task_alloc.hpp>

#include "support/counted.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Cancelled;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;

// co_await on a named Task does not compile: it has to be moved.
template <class T>
concept AwaitableAsLvalue = requires(T& t) { t.operator co_await(); };
static_assert(!AwaitableAsLvalue<Task<int>>, "co_await on an lvalue Task must not compile");
static_assert(requires(Task<int>&& t) { std::move(t).operator co_await(); });

TEST(SpawnCallable, ACapturedStringOutlivesItsSpawner) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  JoinHandle<std::string> h;
  {
    std::string prefix = "kept alive by the task";
    h = rt.spawn([prefix]() -> Task<std::string> {
      co_await spindle::sleep(5ms);
      co_return prefix + "!";
    });
  }  // the spawner's scope, and the lambda expression, are gone
  EXPECT_EQ(h.join(), "kept alive by the task!");
}

TEST(SpawnCallable, FreeSpawnAndHandleSpawnKeepCapturesToo) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  LifetimeCounts counts;
  int v = rt.block_on([](LifetimeCounts& counts) -> Task<int> {
    auto h1 = spindle::spawn([c = Counted(counts, 7)]() -> Task<int> {
      co_await spindle::yield_now();
      co_return c.value();
    });
    auto h2 = spindle::Handle::current().spawn([s = std::string(100, 'x')]() -> Task<int> {
      co_await spindle::sleep(1ms);
      co_return static_cast<int>(s.size());
    });
    co_return co_await h1 + co_await h2;
  }(counts));
  EXPECT_EQ(v, 107);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(SpawnCallable, AnAbortedCallableTaskDestroysItsCapturesOnce) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  LifetimeCounts counts;
  JoinHandle<void> h = rt.spawn([c = Counted(counts, 1)]() -> Task<void> {
    co_await spindle::sleep(10s);
    (void)c.value();
  });
  while (counts.alive() != 1) std::this_thread::yield();
  h.abort();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

Task<int> seven() { co_return 7; }

/// Reads `c` when the frame it lives in is destroyed: a capture destroyed
/// before the frame that uses it shows up as a lifetime error.
struct UsesOnDestruction {
  const Counted& c;
  ~UsesOnDestruction() { (void)c.value(); }
};

TEST(SpawnCallable, CapturesOutliveTheFrameThatUsesThemWhenItFinishesOrIsAborted) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  LifetimeCounts counts;
  JoinHandle<int> finished = rt.spawn([c = Counted(counts, 3)]() -> Task<int> {
    UsesOnDestruction guard{c};
    co_await spindle::yield_now();
    co_return c.value();
  });
  JoinHandle<int> aborted = rt.spawn([c = Counted(counts, 4)]() -> Task<int> {
    UsesOnDestruction guard{c};
    co_await spindle::sleep(10s);
    co_return c.value();
  });
  EXPECT_EQ(finished.join(), 3);
  aborted.abort();
  EXPECT_THROW(aborted.join(), Cancelled);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(SpawnCallable, ACallableThatThrowsWhenCalledSpawnsNothingAndLeavesNothing) {
  // A plain (non-coroutine) callable that returns a Task runs at spawn, on
  // the spawning thread: what it throws comes out of spawn().
  auto rt = Runtime::Builder().current_thread().build();
  LifetimeCounts counts;
  const auto before = spindle::detail::task_alloc_calls();
  EXPECT_THROW((void)rt.spawn([c = Counted(counts)]() -> Task<int> {
    (void)c.value();
    throw std::runtime_error("no task today");
  }),
               std::runtime_error);
  EXPECT_THROW((void)rt.spawn([c = Counted(counts)]() -> Task<int> { return Task<int>(); }),
               spindle::UsageError);
  const auto after = spindle::detail::task_alloc_calls();
  EXPECT_EQ(after.allocs - before.allocs, after.frees - before.frees);  // the cells went back
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
  EXPECT_EQ(rt.block_on(seven()), 7);  // and the runtime is none the worse
}

TEST(SpawnCallable, ACallableIsCalledAtSpawnOnTheSpawningThread) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  std::thread::id called_on;
  JoinHandle<int> h = rt.spawn([&called_on]() -> Task<int> {
    called_on = std::this_thread::get_id();
    return seven();
  });
  EXPECT_EQ(called_on, std::this_thread::get_id());
  EXPECT_EQ(h.join(), 7);
}

TEST(SpawnCallable, ANamedCallableIsCopiedIntoEachTask) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  LifetimeCounts counts;
  {
    auto make = [c = Counted(counts, 5)]() -> Task<int> {
      co_await spindle::yield_now();
      co_return c.value();
    };
    JoinHandle<int> a = rt.spawn(make);
    JoinHandle<int> b = rt.spawn(make);
    EXPECT_EQ(a.join() + b.join(), 10);
    EXPECT_EQ(counts.alive(), 1);  // `make`'s own; the tasks' copies are gone
    EXPECT_EQ(counts.copy_constructed.load(), 2);
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(SpawnCallable, ARefusedCallableSpawnDestroysItsCapturesOnce) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  EXPECT_TRUE(rt.shutdown_timeout(5s));
  LifetimeCounts counts;
  EXPECT_THROW((void)rt.spawn([c = Counted(counts)]() -> Task<int> { co_return c.value(); }),
               spindle::RuntimeShutdown);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(TaskMisuse, AwaitingAFinishedTaskAgainIsAUsageError) {
  auto rt = Runtime::Builder().current_thread().build();
  bool threw = rt.block_on([]() -> Task<bool> {
    Task<int> t = seven();
    int first = co_await std::move(t);
    EXPECT_EQ(first, 7);
    try {
      (void)co_await std::move(t);
    } catch (const spindle::UsageError&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(threw);
}

// A chain `depth` deep that suspends at its bottom until aborted.
Task<void> chain(int depth, std::atomic<bool>& bottom, LifetimeCounts& counts) {
  Counted witness(counts, depth);
  if (depth == 0) {
    bottom.store(true);
    co_await spindle::sleep(1h);
    co_return;
  }
  co_await chain(depth - 1, bottom, counts);
}

#if defined(__SANITIZE_THREAD__)
constexpr int kDeep = 200'000;  // TSan's shadow memory makes 1M frames too heavy
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kDeep = 200'000;
#else
constexpr int kDeep = 1'000'000;
#endif
#else
constexpr int kDeep = 1'000'000;
#endif

TEST(DeepChain, AbortingAMillionDeepSuspendedChainUsesConstantStack) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  LifetimeCounts counts;
  std::atomic<bool> bottom{false};
  JoinHandle<void> h = rt.spawn(chain(kDeep, bottom, counts));
  while (!bottom.load()) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(counts.alive(), kDeep + 1);
  h.abort();
  EXPECT_THROW(h.join(), Cancelled);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(DeepChain, ShutdownDestroysAMillionDeepSuspendedChain) {
  LifetimeCounts counts;
  std::atomic<bool> bottom{false};
  {
    auto rt = Runtime::Builder().worker_threads(1).build();
    JoinHandle<void> h = rt.spawn(chain(kDeep, bottom, counts));
    while (!bottom.load()) std::this_thread::sleep_for(1ms);
    h.detach();
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(DeepChain, DroppingAnUnspawnedTaskThatHoldsADeepChainIsFine) {
  // A never-started Task holds only its own frame: trivially constant stack.
  LifetimeCounts counts;
  std::atomic<bool> bottom{false};
  { Task<void> t = chain(kDeep, bottom, counts); }
  EXPECT_EQ(counts.alive(), 0);
}

}  // namespace
