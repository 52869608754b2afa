// Many instrumented tasks on two workers while other threads read the
// monitor: no data race (the tsan preset), and exact totals at the end.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "monitor/monitor_support.hpp"

namespace {

using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskIntervals;
using spindle::TaskMetrics;
using spindle::TaskMonitor;
using spindle::sync::oneshot;
using spindle::sync::Sender;
using spindle::test::diff;
using spindle::test::plus;
using spindle::test::recv;

// Fields that only grow, as seen by one reader.
std::string went_backwards(const TaskMetrics& before, const TaskMetrics& after) {
  std::string out;
  spindle::test::for_each_summable([&](const char* name, auto member) {
    using V = std::decay_t<decltype(before.*member)>;
    if constexpr (std::is_same_v<V, spindle::Histogram>) {
      if ((before.*member).count() > (after.*member).count()) out += std::string(name) + " ";
    } else {
      if (before.*member > after.*member) out += std::string(name) + " ";
    }
  });
  return out;
}

TEST(MonitorConcurrency, TotalsAreExactAfterManyTasksWhileReadersRun) {
  constexpr int kYielders = 2000;
  constexpr int kYields = 50;
  constexpr int kIdlers = 200;
  constexpr std::uint64_t kTasks = kYielders + kIdlers;
  auto rt = Runtime::Builder().worker_threads(2).build();
  TaskMonitor mon = TaskMonitor::Builder().name("stress").build();

  std::atomic<bool> done{false};
  std::string backwards;       // written by the cumulative() reader only
  TaskMetrics interval_sum;    // written by the intervals() reader only
  std::uint64_t readings = 0;  // by the cumulative() reader
  std::thread cumulative_reader([&] {
    TaskMetrics last;
    while (!done.load()) {
      TaskMetrics m = mon.cumulative();
      backwards += went_backwards(last, m);
      last = m;
      ++readings;
    }
  });
  std::thread interval_reader([&] {
    TaskIntervals it = mon.intervals();
    while (!done.load()) interval_sum = plus(interval_sum, it.next());
    interval_sum = plus(interval_sum, it.next());  // the rest, after the tasks ended
  });

  std::vector<Sender<int>> senders;
  std::vector<JoinHandle<int>> idlers;
  for (int i = 0; i < kIdlers; ++i) {
    auto [tx, rx] = oneshot<int>();
    senders.push_back(std::move(tx));
    idlers.push_back(rt.spawn(mon.instrument(recv(std::move(rx)))));
  }
  std::vector<JoinHandle<void>> yielders;
  yielders.reserve(kYielders);
  for (int i = 0; i < kYielders; ++i) {
    yielders.push_back(rt.spawn(mon.instrument([]() -> Task<void> {
      for (int k = 0; k < kYields; ++k) co_await spindle::yield_now();
    }())));
  }
  for (int i = 0; i < kIdlers; ++i) senders[i].send(i);
  for (int i = 0; i < kIdlers; ++i) EXPECT_EQ(idlers[i].join(), i);
  for (auto& h : yielders) h.join();
  done = true;
  cumulative_reader.join();
  interval_reader.join();

  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(backwards, "");
  EXPECT_GT(readings, 0U);
  EXPECT_EQ(m.instrumented_count, kTasks);
  EXPECT_EQ(m.dropped_count, kTasks);
  EXPECT_EQ(mon.live_tasks(), 0U);
  EXPECT_EQ(m.first_poll_count, kTasks);

  std::uint64_t polls = 0;
  std::chrono::nanoseconds busy{0};
  for (auto& h : idlers) {
    polls += spindle::task_metrics(h)->polls;
    busy += spindle::task_metrics(h)->busy;
  }
  for (auto& h : yielders) {
    auto t = spindle::task_metrics(h);
    EXPECT_EQ(t->polls, static_cast<std::uint64_t>(kYields) + 1U);
    EXPECT_TRUE(t->finished);
    polls += t->polls;
    busy += t->busy;
  }
  EXPECT_EQ(m.total_poll_count, polls);
  EXPECT_EQ(m.total_poll_duration, busy);
  EXPECT_EQ(m.total_self_wake_count, static_cast<std::uint64_t>(kYielders) * kYields);
  EXPECT_GE(m.total_wake_count, m.total_self_wake_count);
  EXPECT_LE(m.total_wake_count, m.total_self_wake_count + kIdlers);
  // Every wake led to exactly one later poll.
  EXPECT_EQ(m.total_scheduled_count, m.total_wake_count);
  EXPECT_EQ(m.total_poll_count, m.first_poll_count + m.total_scheduled_count);
  EXPECT_LE(m.total_idled_count, m.total_wake_count - m.total_self_wake_count);
  // The distributions hold every observation.
  EXPECT_EQ(m.poll_duration_histogram.count(), m.total_poll_count);
  EXPECT_EQ(m.poll_duration_histogram.sum(), m.total_poll_duration);
  EXPECT_EQ(m.scheduled_delay_histogram.count(), m.total_scheduled_count);
  EXPECT_EQ(m.scheduled_delay_histogram.sum(), m.total_scheduled_duration);
  EXPECT_EQ(m.idle_duration_histogram.count(), m.total_idled_count);
  EXPECT_EQ(m.idle_duration_histogram.sum(), m.total_idle_duration);
  // The interval reader's deltas add up to the totals (but for the length
  // of the period, which grew since its last reading).
  interval_sum.elapsed = m.elapsed;
  EXPECT_EQ(diff(interval_sum, m), "");
}

TEST(MonitorConcurrency, MonitorsOfInterleavedTasksKeepTheirOwnTotals) {
  constexpr int kPerMonitor = 300;
  auto rt = Runtime::Builder().worker_threads(2).local_queue_capacity(4).build();
  TaskMonitor a = TaskMonitor::Builder().name("a").build();
  TaskMonitor b = TaskMonitor::Builder().name("b").build();
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < kPerMonitor; ++i) {
    hs.push_back(rt.spawn(a.instrument([]() -> Task<void> {
      for (int k = 0; k < 3; ++k) co_await spindle::yield_now();
    }())));
    hs.push_back(rt.spawn(b.instrument([]() -> Task<void> { co_await spindle::yield_now(); }())));
  }
  std::thread reader([&] {
    for (int i = 0; i < 200; ++i) {
      (void)a.cumulative();
      (void)b.cumulative();
    }
  });
  for (auto& h : hs) h.join();
  reader.join();
  TaskMetrics ma = a.cumulative();
  TaskMetrics mb = b.cumulative();
  EXPECT_EQ(ma.instrumented_count, static_cast<std::uint64_t>(kPerMonitor));
  EXPECT_EQ(mb.instrumented_count, static_cast<std::uint64_t>(kPerMonitor));
  EXPECT_EQ(ma.total_poll_count, 4U * kPerMonitor);
  EXPECT_EQ(mb.total_poll_count, 2U * kPerMonitor);
  EXPECT_EQ(ma.total_self_wake_count, 3U * kPerMonitor);
  EXPECT_EQ(mb.total_self_wake_count, 1U * kPerMonitor);
  EXPECT_EQ(ma.dropped_count, static_cast<std::uint64_t>(kPerMonitor));
  EXPECT_EQ(mb.dropped_count, static_cast<std::uint64_t>(kPerMonitor));
}

TEST(MonitorConcurrency, PerTaskFiguresCanBeReadWhileTheTasksRun) {
  constexpr int kTasks = 200;
  auto rt = Runtime::Builder().worker_threads(2).build();
  TaskMonitor mon = TaskMonitor::Builder().name("live").build();
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < kTasks; ++i) {
    hs.push_back(rt.spawn(mon.instrument([]() -> Task<void> {
      for (int k = 0; k < 30; ++k) co_await spindle::yield_now();
    }())));
  }
  // The handles are only read (never joined) until every task finished.
  std::string problems;
  std::thread reader([&] {
    std::vector<std::uint64_t> polls(kTasks, 0);
    std::vector<std::chrono::nanoseconds> busy(kTasks, std::chrono::nanoseconds(0));
    for (bool all_done = false; !all_done;) {
      all_done = true;
      for (int i = 0; i < kTasks; ++i) {
        auto m = spindle::task_metrics(hs[i]);
        if (!m.has_value()) {
          problems += "nullopt ";
          continue;
        }
        if (m->polls < polls[i] || m->busy < busy[i]) problems += "backwards ";
        if (m->id != hs[i].id() || m->monitor != "live") problems += "identity ";
        polls[i] = m->polls;
        busy[i] = m->busy;
        all_done = all_done && m->finished;
      }
    }
  });
  reader.join();
  EXPECT_EQ(problems, "");
  std::uint64_t polls = 0;
  for (auto& h : hs) {
    h.join();
    polls += spindle::task_metrics(h)->polls;
  }
  EXPECT_EQ(polls, 31U * kTasks);
  EXPECT_EQ(mon.cumulative().total_poll_count, polls);
}

TEST(MonitorConcurrency, TasksInstrumentedOnManyShortLivedThreadsAreAllCounted) {
  // Each instrument() and each wake from a fresh thread lands in a
  // per-thread block; thread indices are recycled as threads exit.
  constexpr int kThreads = 64;
  auto rt = Runtime::Builder().worker_threads(2).build();
  TaskMonitor mon = TaskMonitor::Builder().name("threads").build();
  std::vector<JoinHandle<int>> hs(kThreads);
  std::vector<Sender<int>> senders(kThreads);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done.load()) (void)mon.cumulative();
  });
  for (int round = 0; round < 2; ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i, round] {
        if (round == 0) {
          auto [tx, rx] = oneshot<int>();
          senders[i] = std::move(tx);
          hs[i] = rt.spawn(mon.instrument(recv(std::move(rx))));
        } else {
          senders[i].send(i);
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(hs[i].join(), i);
  done = true;
  reader.join();
  TaskMetrics m = mon.cumulative();
  EXPECT_EQ(m.instrumented_count, static_cast<std::uint64_t>(kThreads));
  EXPECT_EQ(m.dropped_count, static_cast<std::uint64_t>(kThreads));
  EXPECT_LE(m.total_wake_count, static_cast<std::uint64_t>(kThreads));
  EXPECT_EQ(m.total_scheduled_count, m.total_wake_count);
}

}  // namespace
