// The monitor's shared state is reference-counted: tasks, interval
// iterators and JoinHandles keep it alive after every TaskMonitor copy is
// gone, and it is freed once the last of them goes (the asan preset checks
// for leaks).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <spindle/runtime/detail/groups.hpp>
#include <utility>
#include <vector>

#include "monitor/monitor_support.hpp"
#include "support/counted.hpp"
#include "support/sync.hpp"

namespace {

using spindle::JoinHandle;
using spindle::PerTaskMetrics;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskIntervals;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::sync::oneshot;
using spindle::sync::Receiver;
using spindle::sync::Sender;
using spindle::test::ClockedRuntime;
using spindle::test::Counted;
using spindle::test::LifetimeCounts;
using spindle::test::eventually;
using spindle::test::recv;
using spindle::test::value;
using namespace std::chrono_literals;

TEST(MonitorLifetime, TasksFinishNormallyAfterTheMonitorObjectIsGone) {
  ClockedRuntime c;
  std::atomic<int> finished{0};
  auto [tx, rx] = oneshot<int>();
  JoinHandle<int> h;
  std::optional<TaskIntervals> it;
  {
    TaskMonitor mon = c.monitor_builder("gone")
                          .on_task_finished([&finished](const PerTaskMetrics& m) {
                            if (m.monitor == "gone" && m.polls == 2) finished.fetch_add(1);
                          })
                          .build();
    h = c.rt.spawn(mon.instrument(recv(std::move(rx))));
    it.emplace(mon.intervals());
    c.run_queued();
  }  // every TaskMonitor copy is gone
  c.clock->advance(1ms);
  tx.send(4);
  EXPECT_EQ(c.join(h), 4);
  EXPECT_EQ(finished.load(), 1);
  auto m = spindle::task_metrics(h);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->monitor, "gone");
  EXPECT_EQ(m->idle, 1ms);
  EXPECT_TRUE(m->finished);
  // The iterator still reads the shared state.
  TaskMetrics d = it->next();
  EXPECT_EQ(d.instrumented_count, 1U);
  EXPECT_EQ(d.dropped_count, 1U);
  EXPECT_EQ(d.total_idle_duration, 1ms);
}

TEST(MonitorLifetime, AnInstrumentedTaskDestroyedAtShutdownAfterItsMonitorFreesEverything) {
  LifetimeCounts counts;
  auto [tx, rx] = oneshot<int>();
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    {
      TaskMonitor mon = TaskMonitor::Builder().name("short-lived").build();
      for (int i = 0; i < 20; ++i) {
        rt.spawn(mon.instrument([](Counted c) -> Task<void> {
            co_await spindle::yield_now();
            (void)c.value();
          }(Counted(counts))))
            .detach();
      }
      rt.spawn(mon.instrument([](Receiver<int> rx, Counted c) -> Task<int> {
          (void)c.value();
          co_return co_await rx;
        }(std::move(rx), Counted(counts))))
          .detach();
    }
  }  // the runtime destroys whatever is left
  { Sender<int> gone = std::move(tx); }
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(counts.errors(), 0);
}

TEST(MonitorLifetime, TheMonitorCanBeDroppedWhileItsTasksRunOnOtherThreads) {
  constexpr int kTasks = 200;
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::atomic<int> finished{0};
  std::vector<JoinHandle<void>> hs;
  std::optional<TaskMonitor> mon(
      TaskMonitor::Builder()
          .name("dropped")
          .on_task_finished([&finished](const PerTaskMetrics&) { finished.fetch_add(1); })
          .build());
  for (int i = 0; i < kTasks; ++i) {
    hs.push_back(rt.spawn(mon->instrument([]() -> Task<void> {
      for (int k = 0; k < 20; ++k) co_await spindle::yield_now();
    }())));
  }
  mon.reset();  // while the tasks run
  for (auto& h : hs) h.join();
  EXPECT_EQ(finished.load(), kTasks);
  std::uint64_t polls = 0;
  for (auto& h : hs) polls += spindle::task_metrics(h)->polls;
  EXPECT_EQ(polls, static_cast<std::uint64_t>(kTasks) * 21U);
}

TEST(MonitorLifetime, PerTaskFiguresOutliveTheRuntimeAndTheMonitor) {
  JoinHandle<int> h;
  {
    ClockedRuntime c;
    TaskMonitor mon = c.monitor("outlived");
    h = c.rt.spawn(mon.instrument([](spindle::test::ManualClock& clock) -> Task<int> {
      clock.advance(70us);
      co_return 3;
    }(*c.clock)));
    EXPECT_EQ(c.join(h), 3);
  }
  auto m = spindle::task_metrics(h);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->monitor, "outlived");
  EXPECT_TRUE(m->finished);
  EXPECT_EQ(m->polls, 1U);
  EXPECT_EQ(m->busy, 70us);
  EXPECT_EQ(m->longest_poll, 70us);
}

// Instruments one child per receiver from a worker (each waits on its
// receiver) and returns their handles: probes made on a worker, which a
// reference-count scheme with per-worker batches (tried, see bench/README)
// would have to get right.
Task<std::vector<JoinHandle<int>>> instrument_on_worker(TaskMonitor mon,
                                                         std::vector<Receiver<int>> rxs) {
  std::vector<JoinHandle<int>> hs;
  for (auto& rx : rxs) hs.push_back(spindle::spawn(mon.instrument(recv(std::move(rx)))));
  co_return hs;
}

TEST(MonitorLifetime, ProbesMadeOnAWorkerKeepTheStateAliveUntilTheLastOneGoesAndNoLonger) {
  constexpr int kChildren = 100;
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::optional<TaskMonitor> mon(TaskMonitor::Builder().name("worker-probes").build());
  const std::uint64_t id = mon->id();
  std::vector<Sender<int>> txs;
  std::vector<Receiver<int>> rxs;
  for (int i = 0; i < kChildren; ++i) {
    auto [tx, rx] = oneshot<int>();
    txs.push_back(std::move(tx));
    rxs.push_back(std::move(rx));
  }
  std::vector<JoinHandle<int>> hs = rt.block_on(instrument_on_worker(*mon, std::move(rxs)));
  mon.reset();  // the last TaskMonitor, while its probes live
  EXPECT_EQ(spindle::detail::group_name(id), "worker-probes") << "freed under live probes";
  for (int i = 0; i < kChildren; ++i) txs[static_cast<std::size_t>(i)].send(i);
  for (int i = 0; i < kChildren; ++i) EXPECT_EQ(hs[static_cast<std::size_t>(i)].join(), i);
  EXPECT_EQ(spindle::detail::group_name(id), "worker-probes") << "the handles hold the records";
  hs.clear();  // the last probes go: the state with them
  EXPECT_TRUE(eventually([&] { return spindle::detail::group_name(id).empty(); }))
      << "the state outlived its last probe";
}

TEST(MonitorLifetime, AMonitorWhoseWorkerMadeProbesAreAllGoneIsFreedWithItsLastCopy) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  std::optional<TaskMonitor> mon(TaskMonitor::Builder().name("probes-gone").build());
  const std::uint64_t id = mon->id();
  std::vector<Receiver<int>> rxs;
  for (int i = 0; i < 3; ++i) {
    auto [tx, rx] = oneshot<int>();
    tx.send(i);
    rxs.push_back(std::move(rx));
  }
  {
    std::vector<JoinHandle<int>> hs = rt.block_on(instrument_on_worker(*mon, std::move(rxs)));
    for (int i = 0; i < 3; ++i) EXPECT_EQ(hs[static_cast<std::size_t>(i)].join(), i);
  }  // every probe is gone; only the TaskMonitor holds the state
  ASSERT_EQ(spindle::detail::group_name(id), "probes-gone");
  mon.reset();
  EXPECT_TRUE(eventually([&] { return spindle::detail::group_name(id).empty(); }))
      << "the last TaskMonitor did not free the state";
}

TEST(MonitorLifetime, SpawningAnInstrumentedTaskWithoutARuntimeReleasesItsRecord) {
  // The spawn fails (UsageError); the task's frame is destroyed and its
  // per-task record must be released, not leaked (the asan preset reports
  // the leak), and the monitor must not count it alive forever.
  LifetimeCounts counts;
  TaskMonitor mon = TaskMonitor::Builder().name("nowhere").build();
  auto task = [](Counted c) -> Task<int> { co_return c.value(); };
  spindle::Handle empty;
  EXPECT_THROW((void)empty.spawn(mon.instrument(task(Counted(counts)))), spindle::UsageError);
  EXPECT_THROW((void)spindle::spawn(mon.instrument(task(Counted(counts)))), spindle::UsageError);
  EXPECT_EQ(counts.alive(), 0);
  EXPECT_EQ(mon.live_tasks(), 0U);
}

}  // namespace
