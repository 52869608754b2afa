// An instrumented task's record, and the callable of spawn(callable), live
// inside the task's cell: neither adds an allocation. The test counts the
// task heaps' calls on the thread that drives a current_thread runtime
// (every block of its tasks is allocated and freed there) and compares
// each way a task can end, for a plain Task, an instrumented one and a
// capturing lambda, plain or instrumented: finished, aborted before its
// first poll, aborted while it waits, destroyed at runtime shutdown,
// refused by a runtime that shut down, and (instrumented only) dropped
// unspawned. Each scenario runs with 0
// and with kTasks tasks, so that the runtime's own blocks cancel out.

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <spindle/runtime/detail/task_alloc.hpp>
#include <utility>
#include <vector>

#include "support/counted.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskMonitor;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;

constexpr int kTasks = 50;

/// Blocks allocated and freed on this thread while `body` runs.
struct Blocks {
  std::int64_t allocs = 0;
  std::int64_t frees = 0;
};
Blocks count_blocks(const std::function<void()>& body) {
  const auto before = spindle::detail::task_alloc_calls();
  body();
  const auto after = spindle::detail::task_alloc_calls();
  return Blocks{static_cast<std::int64_t>(after.allocs - before.allocs),
                static_cast<std::int64_t>(after.frees - before.frees)};
}

Task<void> done(Counted c) {
  (void)c.value();
  co_return;
}
Task<int> waits(Receiver<int> rx, Counted c) {
  (void)c.value();
  co_return co_await std::move(rx);
}
/// Yields a few times: every task queued before it gets its poll.
Task<void> settle() {
  for (int i = 0; i < 3; ++i) co_await spindle::yield_now();
}

enum class Ending { kFinished, kAbortedUnpolled, kAbortedWaiting, kShutdown, kRefused };

/// How the tasks are spawned: a Task, a Task instrumented by a monitor, or
/// a lambda whose captures (the channel and the Counted) the task uses.
enum class Form { kTask, kInstrumented, kCallable, kInstrumentedCallable };

/// Runs `n` tasks that end as `ending` on a fresh current_thread runtime,
/// spawned as `form` (kInstrumented: by `mon`). Returns the blocks counted
/// from the first task made until the runtime is gone.
Blocks run_tasks(int n, Ending ending, Form form, const std::optional<TaskMonitor>& mon,
                 LifetimeCounts& counts) {
  // Channels first, outside the count: their blocks outlive the runtime.
  std::vector<Sender<int>> senders;
  std::vector<Receiver<int>> receivers;
  for (int i = 0; i < n; ++i) {
    auto [tx, rx] = oneshot<int>();
    senders.push_back(std::move(tx));
    receivers.push_back(std::move(rx));
  }
  std::optional<Runtime> rt(Runtime::Builder().current_thread().build());
  const Blocks b = count_blocks([&] {
    auto spawn = [&](Receiver<int> rx, Counted c) -> JoinHandle<int> {
      switch (form) {
        case Form::kTask:
          return rt->spawn(waits(std::move(rx), std::move(c)));
        case Form::kInstrumented:
          return rt->spawn(mon->instrument(waits(std::move(rx), std::move(c))));
        case Form::kCallable:
        case Form::kInstrumentedCallable:
          break;
      }
      auto f = [rx = std::move(rx), c = std::move(c)]() mutable -> Task<int> {
        (void)c.value();
        co_return co_await std::move(rx);
      };
      return form == Form::kCallable ? rt->spawn(std::move(f))
                                     : rt->spawn(mon->instrument(std::move(f)));
    };
    auto spawn_done = [&](Counted c) -> JoinHandle<void> {
      switch (form) {
        case Form::kTask:
          return rt->spawn(done(std::move(c)));
        case Form::kInstrumented:
          return rt->spawn(mon->instrument(done(std::move(c))));
        case Form::kCallable:
        case Form::kInstrumentedCallable:
          break;
      }
      auto f = [c = std::move(c)]() -> Task<void> {
        (void)c.value();
        co_return;
      };
      return form == Form::kCallable ? rt->spawn(std::move(f))
                                     : rt->spawn(mon->instrument(std::move(f)));
    };
    std::vector<JoinHandle<int>> handles;
    switch (ending) {
      case Ending::kFinished: {
        std::vector<JoinHandle<void>> finished;
        for (int i = 0; i < n; ++i) finished.push_back(spawn_done(Counted(counts)));
        rt->block_on(settle());
        for (auto& h : finished) EXPECT_TRUE(h.is_finished());
        break;
      }
      case Ending::kAbortedUnpolled:
        for (int i = 0; i < n; ++i)
          handles.push_back(spawn(std::move(receivers[i]), Counted(counts)));
        for (auto& h : handles) h.abort();
        rt->block_on(settle());
        break;
      case Ending::kAbortedWaiting:
        for (int i = 0; i < n; ++i)
          handles.push_back(spawn(std::move(receivers[i]), Counted(counts)));
        rt->block_on(settle());  // every task is now waiting on its channel
        for (auto& h : handles) h.abort();
        rt->block_on(settle());
        break;
      case Ending::kShutdown:
        for (int i = 0; i < n; ++i) spawn(std::move(receivers[i]), Counted(counts)).detach();
        rt->block_on(settle());
        break;  // the runtime, destroyed below, destroys them
      case Ending::kRefused:
        EXPECT_TRUE(rt->shutdown_timeout(std::chrono::seconds(5)));
        for (int i = 0; i < n; ++i) {
          EXPECT_THROW((void)spawn(std::move(receivers[i]), Counted(counts)),
                       spindle::RuntimeShutdown);
        }
        break;
    }
    handles.clear();
    rt.reset();
  });
  return b;
}

/// The blocks of `kTasks` tasks ending as `ending`, less the runtime's own.
Blocks per_batch(Ending ending, Form form, const std::optional<TaskMonitor>& mon,
                 LifetimeCounts& counts) {
  (void)run_tasks(1, ending, form, mon, counts);  // warm-up: first-use allocations
  const Blocks base = run_tasks(0, ending, form, mon, counts);
  const Blocks full = run_tasks(kTasks, ending, form, mon, counts);
  return Blocks{full.allocs - base.allocs, full.frees - base.frees};
}

/// Tasks spawned as `form` (by `mon`, when set) allocate and free exactly
/// the blocks of plain Tasks, and end every task and capture they made.
void expect_blocks_of_plain_tasks(Ending ending, Form form, const std::optional<TaskMonitor>& mon) {
  LifetimeCounts counts;
  const Blocks plain = per_batch(ending, Form::kTask, std::nullopt, counts);
  const Blocks other = per_batch(ending, form, mon, counts);

  // A task is its coroutine frame and its cell (spawned as a Task, the
  // frame exists before spawn sees it); a refused spawn frees both at once.
  EXPECT_EQ(plain.allocs, 2 * kTasks);
  EXPECT_EQ(plain.frees, plain.allocs);
  EXPECT_EQ(other.allocs, plain.allocs);
  EXPECT_EQ(other.frees, other.allocs);
  if (mon) {
    EXPECT_EQ(mon->live_tasks(), 0U);
    EXPECT_EQ(mon->cumulative().dropped_count, mon->cumulative().instrumented_count);
  }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

class TaskBlocks : public ::testing::TestWithParam<Ending> {};

TEST_P(TaskBlocks, AnInstrumentedTaskAllocatesAndFreesTheBlocksOfAPlainOneOnceEach) {
  // The monitor's record is inside the cell: no block more.
  expect_blocks_of_plain_tasks(GetParam(), Form::kInstrumented,
                               TaskMonitor::Builder().name("blocks").build());
}

TEST_P(TaskBlocks, ACapturingLambdaPlainOrInstrumentedAllocatesTheBlocksOfAPlainTask) {
  // The lambda (with its captures) is inside the cell, not in a frame of
  // its own, and so is the record: its task is the frame its call made,
  // and the cell.
  expect_blocks_of_plain_tasks(GetParam(), Form::kCallable, std::nullopt);
  expect_blocks_of_plain_tasks(GetParam(), Form::kInstrumentedCallable,
                               TaskMonitor::Builder().name("lambdas").build());
}

INSTANTIATE_TEST_SUITE_P(EveryEnding, TaskBlocks,
                         ::testing::Values(Ending::kFinished, Ending::kAbortedUnpolled,
                                           Ending::kAbortedWaiting, Ending::kShutdown,
                                           Ending::kRefused),
                         [](const ::testing::TestParamInfo<Ending>& info) {
                           switch (info.param) {
                             case Ending::kFinished:
                               return "Finished";
                             case Ending::kAbortedUnpolled:
                               return "AbortedBeforeItsFirstPoll";
                             case Ending::kAbortedWaiting:
                               return "AbortedWhileItWaits";
                             case Ending::kShutdown:
                               return "DestroyedAtShutdown";
                             case Ending::kRefused:
                               return "RefusedAfterShutdown";
                           }
                           return "Unknown";
                         });

TEST(TaskBlocks, ADroppedUnspawnedInstrumentedTaskFreesItsFrameAndLeavesTheLiveCount) {
  LifetimeCounts counts;
  TaskMonitor mon = TaskMonitor::Builder().name("unspawned").build();
  const Blocks b = count_blocks([&] {
    for (int i = 0; i < kTasks; ++i) {
      auto hooked = mon.instrument(done(Counted(counts)));
      (void)hooked;
    }
  });
  EXPECT_EQ(b.allocs, kTasks);  // the frames; the records were never built
  EXPECT_EQ(b.frees, kTasks);
  EXPECT_EQ(mon.live_tasks(), 0U);
  EXPECT_EQ(mon.cumulative().instrumented_count, static_cast<std::uint64_t>(kTasks));
  EXPECT_EQ(counts.alive(), 0);
}

TEST(TaskBlocks, ARecordBuiltBeforeTheSpawnStillWorksAndIsFreedOnce) {
  // Reading a HookedTask's hooks builds the record in a block of its own;
  // the spawn then takes it as it is.
  LifetimeCounts counts;
  TaskMonitor mon = TaskMonitor::Builder().name("early").build();
  auto rt = Runtime::Builder().current_thread().build();
  const Blocks b = count_blocks([&] {
    auto hooked = mon.instrument(done(Counted(counts)));
    ASSERT_NE(hooked.hooks(), nullptr);
    EXPECT_EQ(hooked.hooks()->group_id(), mon.id());
    JoinHandle<void> h = rt.spawn(std::move(hooked));
    rt.block_on(settle());
    EXPECT_TRUE(h.is_finished());
  });
  EXPECT_EQ(b.frees, b.allocs);
  EXPECT_EQ(mon.live_tasks(), 0U);
  EXPECT_EQ(mon.cumulative().total_poll_count, 1U);
  EXPECT_EQ(counts.alive(), 0);
}

}  // namespace
