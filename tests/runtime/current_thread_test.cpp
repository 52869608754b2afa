// The current_thread flavour: everything runs on the thread inside block_on.

#include <gtest/gtest.h>

#include <atomic>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

#include "support/sync.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::Event;

Task<int> value(int v) { co_return v; }

TEST(CurrentThread, RunsEveryTaskOnTheThreadThatCallsBlockOn) {
  auto rt = Runtime::Builder().current_thread().build();
  bool all_here = rt.block_on([](std::thread::id me) -> Task<bool> {
    bool ok = std::this_thread::get_id() == me;
    std::vector<JoinHandle<std::thread::id>> hs;
    for (int i = 0; i < 20; ++i) {
      hs.push_back(spindle::spawn([]() -> Task<std::thread::id> {
        co_await spindle::yield_now();
        co_return std::this_thread::get_id();
      }()));
    }
    for (auto& h : hs) ok = ok && (co_await h == me);
    co_return ok;
  }(std::this_thread::get_id()));
  EXPECT_TRUE(all_here);
}

TEST(CurrentThread, TasksSpawnedFromAnotherThreadRunDuringTheNextBlockOn) {
  auto rt = Runtime::Builder().current_thread().build();
  std::atomic<bool> ran{false};
  JoinHandle<std::thread::id> h;
  std::thread spawner([&] {
    h = rt.spawn([](std::atomic<bool>& ran) -> Task<std::thread::id> {
      ran = true;
      co_return std::this_thread::get_id();
    }(ran));
  });
  spawner.join();
  EXPECT_FALSE(ran.load());  // nothing runs outside block_on
  EXPECT_FALSE(h.is_finished());
  std::thread::id ran_on = rt.block_on([](JoinHandle<std::thread::id> h) -> Task<std::thread::id> {
    co_return co_await h;
  }(std::move(h)));
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(CurrentThread, BlockOnReturnsWhileOtherTasksStayPendingForTheNextOne) {
  auto rt = Runtime::Builder().current_thread().build();
  std::atomic<int> turns{0};
  auto looper = rt.spawn([](std::atomic<int>& turns) -> Task<void> {
    for (;;) {
      turns.fetch_add(1);
      co_await spindle::yield_now();
    }
  }(turns));
  auto few_yields = []() -> Task<int> {
    for (int i = 0; i < 5; ++i) co_await spindle::yield_now();
    co_return 1;
  };
  EXPECT_EQ(rt.block_on(few_yields()), 1);
  int after_first = turns.load();
  EXPECT_GT(after_first, 0);
  EXPECT_EQ(turns.load(), after_first);  // frozen between block_on calls
  EXPECT_EQ(rt.block_on(few_yields()), 1);
  EXPECT_GT(turns.load(), after_first);
  EXPECT_FALSE(looper.is_finished());
}

TEST(CurrentThread, TwoTasksPingPongThroughOneshots) {
  constexpr int kRounds = 1000;
  auto rt = Runtime::Builder().current_thread().build();
  int last = rt.block_on([]() -> Task<int> {
    std::vector<Sender<int>> ping_tx, pong_tx;
    std::vector<Receiver<int>> ping_rx, pong_rx;
    for (int i = 0; i < kRounds; ++i) {
      auto [a, b] = oneshot<int>();
      ping_tx.push_back(std::move(a));
      ping_rx.push_back(std::move(b));
      auto [c, d] = oneshot<int>();
      pong_tx.push_back(std::move(c));
      pong_rx.push_back(std::move(d));
    }
    auto pinger = spindle::spawn(
        [](std::vector<Sender<int>> out, std::vector<Receiver<int>> in) -> Task<int> {
          int v = 0;
          for (int i = 0; i < kRounds; ++i) {
            out[i].send(v + 1);
            v = co_await in[i];
          }
          co_return v;
        }(std::move(ping_tx), std::move(pong_rx)));
    auto ponger = spindle::spawn(
        [](std::vector<Receiver<int>> in, std::vector<Sender<int>> out) -> Task<void> {
          for (int i = 0; i < kRounds; ++i) out[i].send(co_await in[i] + 1);
        }(std::move(ping_rx), std::move(pong_tx)));
    co_await ponger;
    co_return co_await pinger;
  }());
  EXPECT_EQ(last, 2 * kRounds);
}

TEST(CurrentThread, AWakeFromAnotherThreadUnparksTheBlockOnThread) {
  auto rt = Runtime::Builder().current_thread().build();
  auto [tx, rx] = oneshot<int>();
  Event waiting;
  std::thread sender([&waiting, tx = std::move(tx)]() mutable {
    EXPECT_TRUE(waiting.wait());
    tx.send(33);
  });
  int v = rt.block_on([](Receiver<int> rx, Event& waiting) -> Task<int> {
    waiting.set();
    co_return co_await rx;  // the block_on thread parks until the send
  }(std::move(rx), waiting));
  sender.join();
  EXPECT_EQ(v, 33);
}

TEST(CurrentThread, ASpawnFromAnotherThreadUnparksTheBlockOnThread) {
  auto rt = Runtime::Builder().current_thread().build();
  auto [tx, rx] = oneshot<int>();
  Event waiting;
  std::thread spawner([&rt, &waiting, tx = std::move(tx)]() mutable {
    EXPECT_TRUE(waiting.wait());
    rt.spawn([](Sender<int> tx) -> Task<void> {
        tx.send(44);
        co_return;
      }(std::move(tx)))
        .detach();
  });
  int v = rt.block_on([](Receiver<int> rx, Event& waiting) -> Task<int> {
    waiting.set();
    co_return co_await rx;
  }(std::move(rx), waiting));
  spawner.join();
  EXPECT_EQ(v, 44);
}

TEST(CurrentThread, JoinFromAnotherThreadWaitsForABlockOnToDriveTheTask) {
  auto rt = Runtime::Builder().current_thread().build();
  auto h = rt.spawn(value(8));
  int got = 0;
  std::thread joiner([&] { got = h.join(); });
  rt.block_on([]() -> Task<void> {
    for (int i = 0; i < 3; ++i) co_await spindle::yield_now();
  }());
  joiner.join();
  EXPECT_EQ(got, 8);
}

TEST(CurrentThread, ConcurrentBlockOnCallsTakeTurnsAndBothComplete) {
  // Thread A's task needs a value that only thread B's task sends: whichever
  // thread drives the runtime must run both.
  auto rt = Runtime::Builder().current_thread().build();
  spindle::Handle handle = rt.handle();
  for (int round = 0; round < 20; ++round) {
    auto [tx, rx] = oneshot<int>();
    int a = 0;
    std::thread ta([&, rx = std::move(rx)]() mutable {
      a = handle.block_on(
          [](Receiver<int> rx) -> Task<int> { co_return co_await rx; }(std::move(rx)));
    });
    std::thread tb([&, tx = std::move(tx)]() mutable {
      handle.block_on([](Sender<int> tx, int round) -> Task<void> {
        co_await spindle::yield_now();
        tx.send(round);
      }(std::move(tx), round));
    });
    ta.join();
    tb.join();
    ASSERT_EQ(a, round);
  }
}

}  // namespace
