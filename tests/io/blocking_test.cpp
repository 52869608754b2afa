// spawn_blocking and the blocking pool: results and exceptions, the threads it
// runs on, growth up to max_blocking_threads and queueing beyond, idle threads
// leaving after thread_keep_alive, abort before start, and shutdown (waiting
// for a running job; shutdown_timeout abandoning one).
//
// Jobs block on test::Event latches the test releases, and counters are
// polled with eventually() (a generous hang limit, never a timing bound).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "io/io_support.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Cancelled;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::RuntimeCounters;
using spindle::Task;
using spindle::UsageError;
using spindle::iotest::Flavor;
using spindle::iotest::make_runtime;
using spindle::test::Event;
using spindle::test::eventually;

class BlockingPool : public ::testing::TestWithParam<Flavor> {};

TEST_P(BlockingPool, SpawnBlockingReturnsTheFunctionsValue) {
  auto rt = make_runtime(GetParam());
  std::string v = rt.block_on([]() -> Task<std::string> {
    std::string s = co_await spindle::spawn_blocking([] { return std::string("from the pool"); });
    co_return s;
  }());
  EXPECT_EQ(v, "from the pool");
}

TEST_P(BlockingPool, SpawnBlockingRethrowsWhatTheFunctionThrew) {
  auto rt = make_runtime(GetParam());
  std::string what = rt.block_on([]() -> Task<std::string> {
    try {
      co_await spindle::spawn_blocking([] { throw std::runtime_error("disk on fire"); });
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "nothing thrown";
  }());
  EXPECT_EQ(what, "disk on fire");
}

TEST_P(BlockingPool, JobsRunOnAThreadThatIsNotAWorker) {
  std::mutex mu;
  std::set<std::thread::id> workers;
  auto builder = Runtime::Builder().on_thread_start([&] {
    std::lock_guard<std::mutex> lock(mu);
    workers.insert(std::this_thread::get_id());
  });
  if (GetParam() == Flavor::kCurrentThread) {
    builder.current_thread();
  } else {
    builder.worker_threads(2);
  }
  auto rt = builder.build();
  if (GetParam() == Flavor::kMultiThread) {
    ASSERT_TRUE(eventually([&] {
      std::lock_guard<std::mutex> lock(mu);
      return workers.size() == 2;
    }));
  }
  struct Seen {
    std::thread::id job_thread;
    std::thread::id task_thread;
    bool this_executor_refused = false;
  };
  Seen seen = rt.block_on([]() -> Task<Seen> {
    Seen s;
    s.task_thread = std::this_thread::get_id();
    s.this_executor_refused = co_await spindle::spawn_blocking([&s] {
      s.job_thread = std::this_thread::get_id();
      try {
        (void)spindle::this_executor();  // only a worker has one
      } catch (const UsageError&) {
        return true;
      }
      return false;
    });
    co_return s;
  }());
  EXPECT_TRUE(seen.this_executor_refused);
  EXPECT_NE(seen.job_thread, seen.task_thread);
  EXPECT_NE(seen.job_thread, std::this_thread::get_id());  // nor block_on's thread
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(workers.count(seen.job_thread), 0U);
}

TEST_P(BlockingPool, GrowsUpToMaxBlockingThreadsAndQueuesTheRest) {
  auto builder = Runtime::Builder().max_blocking_threads(2);
  if (GetParam() == Flavor::kCurrentThread) builder.current_thread();
  auto rt = builder.worker_threads(GetParam() == Flavor::kCurrentThread ? 1 : 2).build();
  Event release;
  std::atomic<int> started{0};
  std::vector<JoinHandle<int>> jobs;
  for (int i = 0; i < 4; ++i) {
    jobs.push_back(rt.handle().spawn_blocking([&release, &started, i] {
      started.fetch_add(1);
      EXPECT_TRUE(release.wait());
      return i;
    }));
  }
  ASSERT_TRUE(eventually([&] {
    RuntimeCounters c = rt.handle().counters();
    return started.load() == 2 && c.blocking_threads == 2 && c.blocking_queue_depth == 2;
  }));
  EXPECT_EQ(rt.handle().counters().idle_blocking_threads, 0U);
  EXPECT_EQ(started.load(), 2);  // both threads are held; the cap stops a third
  release.set();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(jobs[static_cast<std::size_t>(i)].join(), i);
  EXPECT_EQ(started.load(), 4);
  EXPECT_LE(rt.handle().counters().blocking_threads, 2U);
  EXPECT_EQ(rt.handle().counters().blocking_queue_depth, 0U);
}

TEST_P(BlockingPool, IdleThreadsLeaveAfterTheKeepAlive) {
  auto builder = Runtime::Builder().thread_keep_alive(std::chrono::milliseconds(50));
  if (GetParam() == Flavor::kCurrentThread) builder.current_thread();
  auto rt = builder.build();
  EXPECT_EQ(rt.handle().spawn_blocking([] { return 1; }).join(), 1);
  EXPECT_TRUE(eventually([&] {
    RuntimeCounters c = rt.handle().counters();
    return c.blocking_threads == 0 && c.idle_blocking_threads == 0;
  }));
  // A later job gets a fresh thread.
  EXPECT_EQ(rt.handle().spawn_blocking([] { return 2; }).join(), 2);
}

TEST_P(BlockingPool, AbortBeforeTheJobStartsMeansItNeverRuns) {
  auto builder = Runtime::Builder().max_blocking_threads(1);
  if (GetParam() == Flavor::kCurrentThread) builder.current_thread();
  auto rt = builder.build();
  Event release;
  std::atomic<bool> ran{false};
  auto first = rt.handle().spawn_blocking([&release] { return release.wait(); });
  auto second = rt.handle().spawn_blocking([&ran] { ran.store(true); });
  ASSERT_TRUE(eventually([&] { return rt.handle().counters().blocking_queue_depth == 1; }));
  second.abort();
  release.set();
  EXPECT_TRUE(first.join());
  EXPECT_THROW(second.join(), Cancelled);
  // The single pool thread has passed the aborted job by the time it runs this one.
  rt.handle().spawn_blocking([] {}).join();
  EXPECT_FALSE(ran.load());
}

TEST_P(BlockingPool, RuntimeDestructionWaitsForARunningJob) {
  Event started;
  std::atomic<bool> finished{false};
  {
    auto rt = make_runtime(GetParam());
    rt.handle()
        .spawn_blocking([&started, &finished] {
          started.set();
          // No assertion depends on this duration: the destructor must wait
          // for the job however long it takes.
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          finished.store(true);
        })
        .detach();
    ASSERT_TRUE(started.wait());
  }
  EXPECT_TRUE(finished.load());
}

TEST_P(BlockingPool, AJobStillQueuedAtShutdownEitherRanOrIsCancelled) {
  std::atomic<bool> ran{false};
  Event release;
  JoinHandle<void> queued;
  {
    auto builder = Runtime::Builder().max_blocking_threads(1);
    if (GetParam() == Flavor::kCurrentThread) builder.current_thread();
    auto rt = builder.build();
    rt.handle().spawn_blocking([&release] { EXPECT_TRUE(release.wait()); }).detach();
    queued = rt.handle().spawn_blocking([&ran] { ran.store(true); });
    ASSERT_TRUE(eventually([&] { return rt.handle().counters().blocking_queue_depth == 1; }));
    release.set();  // the running job ends; shutdown may come before the queued one starts
  }
  // Either the queued job ran before shutdown closed the pool, or it never will.
  if (ran.load()) {
    EXPECT_NO_THROW(queued.join());
  } else {
    EXPECT_THROW(queued.join(), Cancelled);
    EXPECT_FALSE(ran.load());
  }
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPINDLE_IO_TEST_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SPINDLE_IO_TEST_LSAN 1
#endif

TEST(BlockingPoolShutdown, ShutdownTimeoutReportsAJobThatOutlivesIt) {
#ifdef SPINDLE_IO_TEST_LSAN
  GTEST_SKIP() << "shutdown_timeout leaks the runtime's state on purpose when a job outlives "
                  "it, which LeakSanitizer reports; covered by the release and tsan builds";
#else
  Event started;
  Event release;
  Event finished;
  auto rt = Runtime::Builder().worker_threads(1).build();
  rt.handle()
      .spawn_blocking([&] {
        started.set();
        EXPECT_TRUE(release.wait());
        finished.set();
      })
      .detach();
  ASSERT_TRUE(started.wait());
  // The limit must cover the workers' own exit (they are idle, but slow to
  // stop under a sanitizer), or shutdown_timeout gives up on them instead.
  ::testing::internal::CaptureStderr();
  const bool clean = rt.shutdown_timeout(std::chrono::seconds(1));
  const std::string message = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(clean);
  EXPECT_NE(message.find("abandoned 1 spawn_blocking job"), std::string::npos) << message;
  // The abandoned job still finishes, on its detached thread.
  release.set();
  EXPECT_TRUE(finished.wait());
#endif
}

INSTANTIATE_TEST_SUITE_P(Flavors, BlockingPool, spindle::iotest::kBothFlavors,
                         spindle::iotest::flavor_name);

}  // namespace
