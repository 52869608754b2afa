// StallDetector: a task that holds its worker is named while it happens, at
// the threshold and then at 2×, 4×, 8× it; tasks that yield are never
// reported. Most tests call scan() themselves with an injected clock; one
// runs the real watchdog thread.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "monitor/monitor_support.hpp"
#include "support/sync.hpp"

namespace {

using spindle::ConfigError;
using spindle::Runtime;
using spindle::StallDetector;
using spindle::StallReport;
using spindle::Task;
using spindle::TaskMonitor;
using spindle::test::ends_with;
using spindle::test::Event;
using spindle::test::eventually;
using spindle::test::ManualClock;
using namespace std::chrono_literals;

/// Collects the reports of a detector (safe from the watchdog thread).
class Reports {
 public:
  std::function<void(const StallReport&)> callback() {
    return [this](const StallReport& r) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.push_back(r);
      cv_.notify_all();
    };
  }
  std::vector<StallReport> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }
  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_.size();
  }
  /// Waits until at least `n` reports arrived.
  bool wait_for(std::size_t n, std::chrono::nanoseconds limit = spindle::test::kPatience) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return reports_.size() >= n; });
  }

 private:
  mutable std::mutex mu_;             // guards reports_
  std::condition_variable cv_;        // signalled on each report
  std::vector<StallReport> reports_;  // in arrival order
};

/// Holds its worker (one poll) until `release` is set.
Task<void> block_until(std::atomic<bool>& release, Event& started) {
  started.set();
  while (!release.load()) std::this_thread::yield();
  co_return;
}

/// The worker polling task `id` now (fails the test if none is).
std::size_t worker_of(const spindle::Handle& handle, spindle::TaskId id) {
  std::vector<spindle::WorkerPollState> states = handle.poll_states();
  for (std::size_t w = 0; w < states.size(); ++w) {
    if (states[w].polling && states[w].task == id) return w;
  }
  ADD_FAILURE() << "no worker is polling task " << id;
  return 0;
}

StallDetector::Options manual(const std::shared_ptr<ManualClock>& clock, Reports& reports,
                              std::chrono::nanoseconds threshold = 10ms) {
  StallDetector::Options o;
  o.threshold = threshold;
  o.on_stall = reports.callback();
  o.clock = clock->source();
  o.start_thread = false;
  return o;
}

TEST(StallDetector, ReportsABlockedWorkerAtTheThresholdThenAtTwiceAndFourTimesIt) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  TaskMonitor mon = TaskMonitor::Builder().name("stuck").build();
  auto clock = std::make_shared<ManualClock>();
  Reports reports;
  StallDetector det(rt.handle(), manual(clock, reports));
  EXPECT_EQ(det.threshold(), 10ms);
  std::atomic<bool> release{false};
  Event started;
  auto hooked = mon.instrument(block_until(release, started));
  auto h = rt.spawn(std::move(hooked));
  const unsigned spawn_line = __LINE__ - 1;  // the line above
  ASSERT_TRUE(started.wait());
  const std::size_t worker = worker_of(rt.handle(), h.id());

  det.scan();  // t = 0: the poll is first seen
  clock->advance(10ms - 1ns);
  det.scan();
  EXPECT_EQ(reports.size(), 0U);
  clock->advance(1ns);  // 10 ms: the first report
  det.scan();
  det.scan();  // the same instant: nothing new
  ASSERT_EQ(reports.size(), 1U);
  StallReport r = reports.get()[0];
  EXPECT_EQ(r.worker, worker);
  EXPECT_EQ(r.task, h.id());
  EXPECT_EQ(r.monitor, "stuck");
  EXPECT_TRUE(ends_with(r.location.file_name(), "stall_detector_test.cpp"))
      << r.location.file_name();
  EXPECT_EQ(r.location.line(), spawn_line);
  EXPECT_NE(std::string(r.location.function_name()).find("TestBody"), std::string::npos);
  EXPECT_EQ(r.duration, 10ms);
  EXPECT_EQ(r.report, 1U);

  clock->advance(10ms - 1ns);
  det.scan();
  EXPECT_EQ(reports.size(), 1U);
  clock->advance(1ns);  // 20 ms
  det.scan();
  ASSERT_EQ(reports.size(), 2U);
  EXPECT_EQ(reports.get()[1].duration, 20ms);
  EXPECT_EQ(reports.get()[1].report, 2U);
  clock->advance(20ms);  // 40 ms
  det.scan();
  ASSERT_EQ(reports.size(), 3U);
  EXPECT_EQ(reports.get()[2].duration, 40ms);
  EXPECT_EQ(reports.get()[2].report, 3U);
  clock->advance(39ms);
  det.scan();
  EXPECT_EQ(reports.size(), 3U);
  clock->advance(1ms);  // 80 ms
  det.scan();
  ASSERT_EQ(reports.size(), 4U);
  EXPECT_EQ(reports.get()[3].duration, 80ms);
  EXPECT_EQ(reports.get()[3].task, h.id());
  EXPECT_EQ(reports.get()[3].worker, worker);

  std::vector<std::uint64_t> counts = det.stall_counts();
  ASSERT_EQ(counts.size(), 2U);
  EXPECT_EQ(counts[worker], 4U);
  EXPECT_EQ(counts[1 - worker], 0U);
  EXPECT_EQ(det.total_stalls(), 4U);

  std::string line = reports.get()[3].describe();
  EXPECT_NE(line.find("worker " + std::to_string(worker)), std::string::npos) << line;
  EXPECT_NE(line.find("task " + std::to_string(h.id())), std::string::npos) << line;
  EXPECT_NE(line.find("monitor \"stuck\""), std::string::npos) << line;
  EXPECT_NE(line.find("stall_detector_test.cpp:" + std::to_string(spawn_line)), std::string::npos)
      << line;
  EXPECT_NE(line.find("80 ms"), std::string::npos) << line;

  release = true;
  h.join();
  ASSERT_TRUE(eventually([&] { return !rt.handle().poll_states()[worker].polling; }));
  clock->advance(1s);
  det.scan();
  EXPECT_EQ(det.total_stalls(), 4U);
}

TEST(StallDetector, ReportsEachBlockedWorkerWithItsOwnTaskAndCountsPerWorker) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  TaskMonitor mon = TaskMonitor::Builder().name("instrumented").build();
  auto clock = std::make_shared<ManualClock>();
  Reports reports;
  StallDetector det(rt.handle(), manual(clock, reports));
  std::atomic<bool> release{false};
  Event a_started;
  Event b_started;
  auto a = rt.spawn(mon.instrument(block_until(release, a_started)));
  ASSERT_TRUE(a_started.wait());
  auto b = rt.spawn(block_until(release, b_started));  // not instrumented
  ASSERT_TRUE(b_started.wait());
  const std::size_t wa = worker_of(rt.handle(), a.id());
  const std::size_t wb = worker_of(rt.handle(), b.id());
  ASSERT_NE(wa, wb);
  det.scan();
  clock->advance(10ms);
  det.scan();
  std::vector<StallReport> rs = reports.get();
  ASSERT_EQ(rs.size(), 2U);
  for (const StallReport& r : rs) {
    if (r.worker == wa) {
      EXPECT_EQ(r.task, a.id());
      EXPECT_EQ(r.monitor, "instrumented");
    } else {
      EXPECT_EQ(r.worker, wb);
      EXPECT_EQ(r.task, b.id());
      EXPECT_EQ(r.monitor, "");
      EXPECT_EQ(r.describe().find("monitor \""), std::string::npos) << r.describe();
    }
  }
  EXPECT_EQ(det.stall_counts()[wa], 1U);
  EXPECT_EQ(det.stall_counts()[wb], 1U);
  release = true;
  a.join();
  b.join();
}

TEST(StallDetector, NeverReportsABusyTaskThatYields) {
  // Many short polls: between two scans the task has started at least two
  // new polls (so the poll a scan saw is over), however far the clock moves.
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto clock = std::make_shared<ManualClock>();
  Reports reports;
  StallDetector det(rt.handle(), manual(clock, reports));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> polls{0};
  auto h = rt.spawn([](std::atomic<bool>& stop, std::atomic<std::uint64_t>& polls) -> Task<void> {
    while (!stop.load()) {
      polls.fetch_add(1);
      co_await spindle::yield_now();
    }
  }(stop, polls));
  for (int i = 0; i < 50; ++i) {
    det.scan();
    const std::uint64_t seen = polls.load();
    ASSERT_TRUE(eventually([&] { return polls.load() >= seen + 2; }));
    clock->advance(25ms);  // 2.5 thresholds per step
  }
  det.scan();
  stop = true;
  h.join();
  EXPECT_EQ(reports.size(), 0U);
  EXPECT_EQ(det.total_stalls(), 0U);
}

TEST(StallDetector, ANewPollOfTheSameTaskIsWatchedAfresh) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto clock = std::make_shared<ManualClock>();
  Reports reports;
  StallDetector det(rt.handle(), manual(clock, reports));
  std::atomic<int> phase{0};
  Event first;
  Event second;
  auto h = rt.spawn([](std::atomic<int>& phase, Event& first, Event& second) -> Task<void> {
    first.set();
    while (phase.load() < 1) std::this_thread::yield();
    co_await spindle::yield_now();
    second.set();
    while (phase.load() < 2) std::this_thread::yield();
  }(phase, first, second));
  ASSERT_TRUE(first.wait());
  det.scan();
  clock->advance(10ms);
  det.scan();
  ASSERT_EQ(reports.size(), 1U);
  phase = 1;
  ASSERT_TRUE(second.wait());
  det.scan();  // a different poll: watched from now
  clock->advance(10ms - 1ns);
  det.scan();
  EXPECT_EQ(reports.size(), 1U);
  clock->advance(1ns);
  det.scan();
  ASSERT_EQ(reports.size(), 2U);
  EXPECT_EQ(reports.get()[1].report, 1U);  // the first report of that poll
  EXPECT_EQ(reports.get()[1].duration, 10ms);
  phase = 2;
  h.join();
}

TEST(StallDetector, AThrowingCallbackDoesNotStopTheReports) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto clock = std::make_shared<ManualClock>();
  std::atomic<int> calls{0};
  StallDetector::Options o;
  o.threshold = 1ms;
  o.clock = clock->source();
  o.start_thread = false;
  o.on_stall = [&calls](const StallReport&) {
    calls.fetch_add(1);
    throw std::runtime_error("callback failed");
  };
  StallDetector det(rt.handle(), o);
  std::atomic<bool> release{false};
  Event started;
  auto h = rt.spawn(block_until(release, started));
  ASSERT_TRUE(started.wait());
  det.scan();
  clock->advance(1ms);
  EXPECT_NO_THROW(det.scan());
  clock->advance(1ms);
  EXPECT_NO_THROW(det.scan());
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(det.total_stalls(), 2U);
  release = true;
  h.join();
}

TEST(StallDetector, RejectsBadOptions) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  auto expect_config_error = [&](StallDetector::Options o, const std::string& setting) {
    o.start_thread = false;
    try {
      StallDetector det(rt.handle(), o);
      ADD_FAILURE() << setting << ": accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(setting), std::string::npos) << e.what();
    }
  };
  StallDetector::Options zero;
  zero.threshold = 0ns;
  expect_config_error(zero, "threshold");
  StallDetector::Options negative;
  negative.threshold = -1ms;
  expect_config_error(negative, "threshold");
  StallDetector::Options bad_period;
  bad_period.period = -1ns;
  expect_config_error(bad_period, "period");
  StallDetector::Options ok;
  ok.start_thread = false;
  auto make = [&ok](spindle::Handle handle) { StallDetector det(std::move(handle), ok); };
  EXPECT_NO_THROW(make(rt.handle()));
  EXPECT_THROW(make(spindle::Handle()), spindle::UsageError);
}

TEST(StallDetector, WritesOneFlightRecorderTracePerStallWithinItsLimits) {
  // The runtime keeps a flight recorder; the detector writes a trace at the
  // first report of each stall: valid JSON naming the stuck task (an open
  // poll at its end) and what ran before it. At most max_traces files, at
  // most one per min_trace_interval.
  char dir_template[] = "/tmp/spindle-stall-traces-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  auto rt = Runtime::Builder().worker_threads(2).flight_recorder(1024).build();
  TaskMonitor mon = TaskMonitor::Builder().name("stuck").build();
  auto clock = std::make_shared<ManualClock>();
  Reports reports;
  StallDetector::Options o = manual(clock, reports);
  o.trace_directory = dir;
  o.max_traces = 2;
  o.min_trace_interval = 1s;
  StallDetector det(rt.handle(), o);
  auto stall_once = [&](spindle::TaskId& id) {
    std::atomic<bool> release{false};
    Event started;
    auto h = rt.spawn(mon.instrument(block_until(release, started)));
    id = h.id();
    EXPECT_TRUE(started.wait());
    det.scan();
    clock->advance(10ms);
    det.scan();  // the first report of this stall
    release = true;
    h.join();
  };
  spindle::TaskId first = 0;
  stall_once(first);
  ASSERT_EQ(reports.size(), 1U);
  const std::string path = reports.get()[0].trace_file;
  ASSERT_FALSE(path.empty()) << "no trace written";
  EXPECT_NE(reports.get()[0].describe().find("trace: " + path), std::string::npos);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"traceEvents\""), std::string::npos);
  EXPECT_NE(text.find("task " + std::to_string(first) + " (stuck, still running)"),
            std::string::npos)
      << "the stuck poll is the open event at the end of the trace";
  EXPECT_EQ(det.traces_written(), 1U);
  // A second stall within the interval: reported, no trace.
  spindle::TaskId second = 0;
  stall_once(second);
  ASSERT_EQ(reports.size(), 2U);
  EXPECT_TRUE(reports.get()[1].trace_file.empty());
  // After the interval: a second trace; then the count limit holds.
  clock->advance(1s);
  spindle::TaskId third = 0;
  stall_once(third);
  ASSERT_EQ(reports.size(), 3U);
  EXPECT_FALSE(reports.get()[2].trace_file.empty());
  clock->advance(1s);
  spindle::TaskId fourth = 0;
  stall_once(fourth);
  ASSERT_EQ(reports.size(), 4U);
  EXPECT_TRUE(reports.get()[3].trace_file.empty()) << "max_traces = 2";
  EXPECT_EQ(det.traces_written(), 2U);
  for (const StallReport& r : reports.get()) {
    if (!r.trace_file.empty()) std::remove(r.trace_file.c_str());
  }
  ::rmdir(dir.c_str());
}

TEST(StallDetector, RejectsBadTraceLimits) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  StallDetector::Options o;
  o.start_thread = false;
  o.max_traces = 0;
  EXPECT_THROW(StallDetector(rt.handle(), o), ConfigError);
  o.max_traces = 1;
  o.min_trace_interval = -1s;
  EXPECT_THROW(StallDetector(rt.handle(), o), ConfigError);
}

TEST(StallDetector, CheckMonitorRejectsAMonitorWhoseSlowPollThresholdIsAboveTheThreshold) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  StallDetector::Options o;
  o.threshold = 10ms;
  o.start_thread = false;
  StallDetector det(rt.handle(), o);
  TaskMonitor slow = TaskMonitor::Builder().name("batch").slow_poll_threshold(20ms).build();
  try {
    det.check_monitor(slow);
    ADD_FAILURE() << "a 20 ms slow_poll_threshold was accepted under a 10 ms stall threshold";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("threshold = 10000000 ns"), std::string::npos) << what;
    EXPECT_NE(what.find("slow_poll_threshold"), std::string::npos) << what;
    EXPECT_NE(what.find("\"batch\" (20000000 ns)"), std::string::npos) << what;
  }
  // Equal thresholds, and a lower slow_poll_threshold, are consistent.
  EXPECT_NO_THROW(
      det.check_monitor(TaskMonitor::Builder().slow_poll_threshold(10ms).build()));
  EXPECT_NO_THROW(det.check_monitor(TaskMonitor::Builder().build()));  // 50 us
}

TEST(StallDetector, TheWatchdogThreadReportsATaskThatBlocksItsWorker) {
  // Real time: the task holds its worker for at least 300 ms and until a
  // report came (so a slow machine delays the test instead of failing it).
  auto rt = Runtime::Builder().worker_threads(2).build();
  TaskMonitor mon = TaskMonitor::Builder().name("sleepy").build();
  Reports reports;
  StallDetector::Options o;
  o.threshold = 50ms;
  o.on_stall = reports.callback();
  StallDetector det(rt.handle(), o);
  auto h = rt.spawn(mon.instrument([](Reports& reports) -> Task<void> {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const auto held = std::chrono::steady_clock::now() - start;
      if (held >= spindle::test::kPatience) break;
      if (held >= 300ms && reports.size() > 0) break;
      std::this_thread::yield();
    }
    co_return;
  }(reports)));
  ASSERT_TRUE(reports.wait_for(1));
  h.join();
  std::vector<StallReport> rs = reports.get();
  ASSERT_GE(rs.size(), 1U);
  EXPECT_EQ(rs[0].task, h.id());
  EXPECT_EQ(rs[0].monitor, "sleepy");
  EXPECT_EQ(rs[0].report, 1U);
  EXPECT_GE(rs[0].duration, 50ms);
  EXPECT_LT(rs[0].worker, 2U);
  for (std::size_t i = 1; i < rs.size(); ++i) {
    EXPECT_EQ(rs[i].task, h.id());
    EXPECT_GE(rs[i].duration, 50ms * (1 << i));  // the back-off: 2×, 4×, ... the threshold
  }
  EXPECT_GE(det.total_stalls(), 1U);
}

}  // namespace
