// Concurrency stress: spawn/steal races with local queues of 4, wake chains
// across workers, LIFO-slot fairness, concurrent spawn+abort, and runtimes
// built and destroyed in a loop. Sized to stay within seconds under TSan.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::Handle;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::RuntimeCounters;
using spindle::Task;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;

constexpr int kBranches = 64;
constexpr int kLeavesPerBranch = 64;
constexpr int kForeign = 2000;

Task<void> leaf(std::atomic<int>& slot, int n) {
  if (n % 3 == 0) co_await spindle::yield_now();  // back of the queue: stealable
  slot.fetch_add(1);
}

Task<void> branch(std::atomic<int>* slots) {
  std::vector<JoinHandle<void>> hs;
  hs.reserve(kLeavesPerBranch);
  for (int i = 0; i < kLeavesPerBranch; ++i) hs.push_back(spindle::spawn(leaf(slots[i], i)));
  for (auto& h : hs) co_await h;
}

TEST(Stress, SpawnAndStealRacesWithLocalQueuesOfFourRunEveryTaskExactlyOnce) {
  constexpr int kLocal = kBranches * kLeavesPerBranch;
  auto slots = std::make_unique<std::atomic<int>[]>(kLocal + kForeign);
  auto rt = Runtime::Builder().worker_threads(3).local_queue_capacity(4).build();
  Handle handle = rt.handle();
  // Meanwhile a foreign thread spawns into the injection queue.
  std::thread foreign([&] {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kForeign; ++i) hs.push_back(handle.spawn(leaf(slots[kLocal + i], i)));
    for (auto& h : hs) h.join();
  });
  rt.block_on([](std::atomic<int>* slots) -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int b = 0; b < kBranches; ++b) {
      hs.push_back(spindle::spawn(branch(slots + b * kLeavesPerBranch)));
    }
    for (auto& h : hs) co_await h;
  }(slots.get()));
  foreign.join();
  for (int i = 0; i < kLocal + kForeign; ++i) ASSERT_EQ(slots[i].load(), 1) << "task " << i;
  RuntimeCounters c = rt.handle().counters();
  std::uint64_t overflows = 0;
  for (const auto& w : c.workers) overflows += w.overflows;
  EXPECT_GT(overflows, 0U);  // bursts of 64 spawns into 4 slots
  EXPECT_TRUE(spindle::test::eventually([&] { return rt.handle().counters().live_tasks == 0; }));
}

TEST(Stress, AWakeChainAcrossWorkersDeliversEveryLink) {
  // Task i waits for link i and passes the value on to link i + 1.
  constexpr int kLinks = 5000;
  auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
  std::vector<JoinHandle<void>> hs;
  auto [first_tx, rx] = oneshot<int>();
  Receiver<int> prev = std::move(rx);
  for (int i = 0; i < kLinks; ++i) {
    auto [tx, next_rx] = oneshot<int>();
    hs.push_back(rt.spawn([](Receiver<int> in, Sender<int> out) -> Task<void> {
      out.send(co_await in + 1);
    }(std::move(prev), std::move(tx))));
    prev = std::move(next_rx);
  }
  first_tx.send(0);
  EXPECT_EQ(prev.blocking_recv(), kLinks);
  for (auto& h : hs) h.join();
}

// One ping-pong player: receives on in[i], answers on out[i] (the server
// opens with out[0] and answers on out[i + 1]). Stops when `stop` is set or
// the other player has gone. Returns the number of values it received.
Task<int> player(std::atomic<bool>& stop, std::vector<Receiver<int>> in,
                 std::vector<Sender<int>> out, bool serve) {
  std::size_t i = 0;
  if (serve) out[0].send(0);
  const std::size_t shift = serve ? 1 : 0;
  for (; i < in.size() && !stop.load(); ++i) {
    int v = 0;
    try {
      v = co_await in[i];
    } catch (const spindle::sync::RecvError&) {
      break;  // the other player stopped first
    }
    if (i + shift < out.size()) out[i + shift].send(v + 1);
  }
  co_return static_cast<int>(i);
}

TEST(Stress, PingPongingTasksDoNotStarveTheRestOfTheQueue) {
  // One worker. Two tasks wake each other (each wake goes to the LIFO slot)
  // while a third task sits in the local queue and needs 10 turns before it
  // stops them. Without the LIFO cap it would only run once the ping-pong
  // ran out of channels.
  constexpr int kMaxRounds = 20'000;
  auto rt = Runtime::Builder().worker_threads(1).build();
  int rounds = rt.block_on([]() -> Task<int> {
    std::atomic<bool> stop{false};
    std::vector<Sender<int>> a_out, b_out;
    std::vector<Receiver<int>> a_in, b_in;
    for (int i = 0; i < kMaxRounds; ++i) {
      auto [t1, r1] = oneshot<int>();
      a_out.push_back(std::move(t1));
      b_in.push_back(std::move(r1));
      auto [t2, r2] = oneshot<int>();
      b_out.push_back(std::move(t2));
      a_in.push_back(std::move(r2));
    }
    auto stopper = spindle::spawn([](std::atomic<bool>& stop) -> Task<void> {
      for (int i = 0; i < 10; ++i) co_await spindle::yield_now();
      stop = true;
    }(stop));
    auto a = spindle::spawn(player(stop, std::move(a_in), std::move(a_out), true));
    auto b = spindle::spawn(player(stop, std::move(b_in), std::move(b_out), false));
    co_await stopper;
    int ra = co_await a;
    int rb = co_await b;
    co_return ra + rb;
  }());
  EXPECT_LT(rounds, kMaxRounds / 2) << "the queued task only ran once the ping-pong ran out";
}

TEST(Stress, ForeignThreadsSpawnAndAbortConcurrently) {
  LifetimeCounts counts;
  {
    auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
    Handle handle = rt.handle();
    std::vector<std::thread> threads;
    std::atomic<int> finished{0};
    std::atomic<int> cancelled{0};
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, handle] {
        std::vector<JoinHandle<int>> hs;
        for (int i = 0; i < 1000; ++i) {
          hs.push_back(handle.spawn([](Counted c) -> Task<int> {
            co_await spindle::yield_now();
            co_await spindle::yield_now();
            co_return c.value();
          }(Counted(counts, i))));
          if (i % 2 == 0) hs.back().abort();
        }
        for (int i = 0; i < 1000; ++i) {
          try {
            EXPECT_EQ(hs[i].join(), i);
            finished.fetch_add(1);
          } catch (const spindle::Cancelled&) {
            EXPECT_EQ(i % 2, 0) << "a task that was not aborted was cancelled";
            cancelled.fetch_add(1);
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(finished.load() + cancelled.load(), 2000);
    EXPECT_GE(finished.load(), 1000);
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Stress, RuntimesBuiltAndDestroyedInALoopLeaveNothingBehind) {
  LifetimeCounts counts;
  for (int round = 0; round < 30; ++round) {
    auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
    auto [tx, rx] = oneshot<int>();
    rt.spawn([](Receiver<int> rx, Counted) -> Task<void> { (void)co_await rx; }(std::move(rx),
                                                                                Counted(counts)))
        .detach();
    for (int i = 0; i < 20; ++i) {
      rt.spawn([](Counted) -> Task<void> {
          for (int k = 0; k < 5; ++k) co_await spindle::yield_now();
        }(Counted(counts)))
          .detach();
    }
    if (round % 2 == 0) tx.send(1);  // sometimes races the shutdown
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(Stress, SpawnsFromManyTasksOnBothFlavoursAllComplete) {
  for (bool current : {false, true}) {
    auto rt = current ? Runtime::Builder().current_thread().local_queue_capacity(4).build()
                      : Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
    std::atomic<int> ran{0};
    rt.block_on([](std::atomic<int>& ran) -> Task<void> {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < 100; ++i) {
        hs.push_back(spindle::spawn([](std::atomic<int>& ran) -> Task<void> {
          std::vector<JoinHandle<void>> inner;
          for (int j = 0; j < 20; ++j) {
            inner.push_back(spindle::spawn([](std::atomic<int>& ran) -> Task<void> {
              ran.fetch_add(1);
              co_return;
            }(ran)));
          }
          for (auto& h : inner) co_await h;
        }(ran)));
      }
      for (auto& h : hs) co_await h;
    }(ran));
    EXPECT_EQ(ran.load(), 2000) << (current ? "current_thread" : "multi_thread");
  }
}

}  // namespace
