// The cooperative budget: a task whose awaits all complete at once (ready
// oneshots, finished JoinHandles) is made to yield, so on a current_thread
// runtime its neighbour still runs; the budget's size and switching it off.
//
// Everything runs on current_thread, where "the neighbour ran" can only mean
// "this task suspended": the assertions are exact, not timing-dependent.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <spindle/runtime.hpp>
#include <string>
#include <vector>

namespace {

using spindle::ConfigError;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;

Task<void> set_flag(std::atomic<bool>& flag) {
  flag.store(true);
  co_return;
}

Task<int> value(int v) { co_return v; }

std::uint64_t forced_yields(const Runtime& rt) {
  std::uint64_t n = 0;
  for (const auto& w : rt.handle().counters().workers) n += w.budget_forced_yields;
  return n;
}

// Awaits freshly made, already-sent oneshots until the neighbour has run (or
// `cap` iterations); returns how many it awaited, counting the one that
// yielded to the neighbour.
Task<int> spin_on_ready_oneshots(int cap) {
  std::atomic<bool> neighbour_ran{false};
  JoinHandle<void> neighbour = spindle::spawn(set_flag(neighbour_ran));
  int iterations = 0;
  while (!neighbour_ran.load() && iterations < cap) {
    auto [tx, rx] = spindle::sync::oneshot<int>();
    tx.send(1);
    iterations += co_await rx;  // ready at once: never suspends for real
  }
  co_await neighbour;
  co_return iterations;
}

TEST(CoopBudget, ALoopOfReadyOneshotsDoesNotStarveItsNeighbour) {
  auto rt = Runtime::Builder().current_thread().build();
  constexpr int kCap = 1'000'000;
  int iterations = rt.block_on(spin_on_ready_oneshots(kCap));
  // 128 (the default budget) completed at once; the 129th yielded first.
  EXPECT_EQ(iterations, 128 + 1);
  EXPECT_GT(forced_yields(rt), 0U);
}

TEST(CoopBudget, ALoopOverFinishedJoinHandlesDoesNotStarveItsNeighbour) {
  auto rt = Runtime::Builder().current_thread().build();
  constexpr int kHandles = 1000;
  auto [awaited_before_neighbour, sum] = rt.block_on([]() -> Task<std::pair<int, int>> {
    std::vector<JoinHandle<int>> finished;
    for (int i = 0; i < kHandles; ++i) finished.push_back(spindle::spawn(value(1)));
    for (auto& h : finished) {
      while (!h.is_finished()) co_await spindle::yield_now();
    }
    std::atomic<bool> neighbour_ran{false};
    JoinHandle<void> neighbour = spindle::spawn(set_flag(neighbour_ran));
    int before = -1;
    int total = 0;
    for (int i = 0; i < kHandles; ++i) {
      if (before < 0 && neighbour_ran.load()) before = i;
      total += co_await finished[static_cast<std::size_t>(i)];
    }
    co_await neighbour;
    co_return std::pair{before, total};
  }());
  EXPECT_EQ(sum, kHandles);
  EXPECT_GE(awaited_before_neighbour, 0) << "the neighbour only ran after the whole loop";
  EXPECT_EQ(awaited_before_neighbour, 128 + 1);
  EXPECT_GT(forced_yields(rt), 0U);
}

TEST(CoopBudget, TheBudgetIsHowManyReadyAwaitsOnePollMayComplete) {
  auto rt = Runtime::Builder().current_thread().budget(16).build();
  // 16 awaits complete at once; the 17th yields (letting the neighbour in), then completes.
  EXPECT_EQ(rt.block_on(spin_on_ready_oneshots(1'000'000)), 16 + 1);
  EXPECT_EQ(forced_yields(rt), 1U);
}

TEST(CoopBudget, WithCooperationOffAReadyLoopKeepsTheThreadUntilItEnds) {
  auto rt = Runtime::Builder().current_thread().cooperation(false).build();
  constexpr int kCap = 10'000;
  EXPECT_EQ(rt.block_on(spin_on_ready_oneshots(kCap)), kCap);  // the neighbour never got in
  EXPECT_EQ(forced_yields(rt), 0U);
}

TEST(CoopBudget, ZeroBudgetIsRejectedWithAConfigErrorNamingBudget) {
  for (int bad : {0, -1}) {
    try {
      auto rt = Runtime::Builder().current_thread().budget(bad).build();
      ADD_FAILURE() << "budget(" << bad << ") was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("budget"), std::string::npos) << e.what();
    }
  }
}

TEST(CoopBudget, CooperationOffIsAccepted) {
  auto rt = Runtime::Builder().worker_threads(2).cooperation(false).build();
  EXPECT_EQ(rt.block_on(value(3)), 3);
}

}  // namespace
