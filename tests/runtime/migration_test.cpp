// Inline combinators (when_all, when_any, timeout, co_await mon.instrument)
// resumed on another worker than the one they started on. Each round of a
// combinator sets the thread's current wait slot around every operand it
// resumes; code inlined into a coroutine must read that thread-local for the
// thread it runs on *now*. Clang 16 may keep the address of a thread_local
// computed before a co_await and reuse it after the coroutine was resumed on
// another thread, which wrote another worker's slot: the demo crashed in
// suspend_in_slot under load (clang-release only). Wakes from a foreign
// thread go to the injection queue, so either worker resumes the task: the
// combinators here move between the two workers all the time.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <spindle/runtime.hpp>
#include <spindle/sync/mpsc.hpp>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using spindle::Task;

Task<int> next(spindle::sync::mpsc::Receiver<int>& rx) {
  std::optional<int> v = co_await rx.recv();
  co_return v.value_or(-1);
}

Task<int> pairs(spindle::sync::mpsc::Receiver<int>& a, spindle::sync::mpsc::Receiver<int>& b,
                int rounds) {
  int sum = 0;
  for (int i = 0; i < rounds; ++i) {
    auto both = spindle::when_all(next(a), next(b));
    auto [x, y] = co_await spindle::timeout(10s, std::move(both));
    sum += x + y;
  }
  co_return sum;
}

TEST(Migration, CombinatorsResumedOnTheOtherWorkerKeepTheirWaitSlots) {
  constexpr int kTasks = 8;
  constexpr int kRounds = 300;
  auto rt = spindle::Runtime::Builder().worker_threads(2).build();
  std::vector<spindle::sync::mpsc::UnboundedSender<int>> txs;
  std::vector<spindle::sync::mpsc::Receiver<int>> rxs;
  for (int i = 0; i < 2 * kTasks; ++i) {
    auto [tx, rx] = spindle::sync::mpsc::unbounded_channel<int>();
    txs.push_back(std::move(tx));
    rxs.push_back(std::move(rx));
  }
  std::vector<spindle::JoinHandle<int>> hs;
  for (int t = 0; t < kTasks; ++t) hs.push_back(rt.spawn(pairs(rxs[2 * t], rxs[2 * t + 1], kRounds)));
  // Two foreign threads feed the channels, one value at a time per task,
  // so that every resumption is a wake through the injection queue.
  auto feed = [&](int first) {
    for (int r = 0; r < kRounds; ++r) {
      for (int t = 0; t < kTasks; ++t) {
        (void)txs[2 * t + first].send(1);
        if ((r + t) % 7 == 0) std::this_thread::yield();
      }
    }
  };
  std::thread f0(feed, 0);
  std::thread f1(feed, 1);
  f0.join();
  f1.join();
  for (auto& h : hs) EXPECT_EQ(h.join(), 2 * kRounds);
}

}  // namespace
