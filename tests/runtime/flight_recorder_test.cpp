// The flight recorder (Runtime::Builder::flight_recorder) and
// Handle::write_trace: the Chrome trace-event JSON is parsed (nlohmann/json)
// and its events checked for order and consistency, with a ring large
// enough to keep everything and with one small enough to wrap many times,
// while the workers keep writing.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <spindle/runtime.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;

Task<int> yielder(int yields) {
  for (int i = 0; i < yields; ++i) co_await spindle::yield_now();
  co_return yields;
}

json trace_of(const spindle::Handle& h) {
  std::ostringstream os;
  h.write_trace(os);
  return json::parse(os.str());  // throws on invalid JSON: the test fails
}

/// Checks every worker track: complete ("X") polls have non-negative
/// durations, come in time order and never overlap (a worker runs one poll
/// at a time); returns the number of polls per task id.
std::map<std::uint64_t, int> check_tracks(const json& trace, std::size_t workers) {
  std::map<std::uint64_t, int> polls;
  std::map<int, double> last_end;  // tid → end of its last poll (us)
  std::set<int> named;
  EXPECT_EQ(trace.at("displayTimeUnit"), "ns");
  for (const json& e : trace.at("traceEvents")) {
    const std::string ph = e.at("ph");
    const int tid = e.at("tid");
    EXPECT_GE(tid, 0);
    EXPECT_LT(tid, static_cast<int>(workers));
    if (ph == "M") {
      EXPECT_EQ(e.at("name"), "thread_name");
      named.insert(tid);
    } else if (ph == "X") {
      const double ts = e.at("ts");
      const double dur = e.at("dur");
      EXPECT_GE(dur, 0.0) << e.dump();
      auto it = last_end.find(tid);
      if (it != last_end.end()) {
        EXPECT_GE(ts + 0.0005, it->second) << "polls overlap or go back in time on worker " << tid << ": "
                                  << e.dump();
      }
      last_end[tid] = ts + dur;
      ++polls[e.at("args").at("task").get<std::uint64_t>()];
      EXPECT_EQ(e.at("cat"), "poll");
    } else {
      EXPECT_TRUE(ph == "i" || ph == "B") << e.dump();
    }
  }
  EXPECT_EQ(named.size(), workers) << "one thread_name per worker";
  return polls;
}

TEST(FlightRecorder, WithoutOneWriteTraceIsAUsageError) {
  auto rt = Runtime::Builder().worker_threads(1).build();
  std::ostringstream os;
  EXPECT_THROW(rt.handle().write_trace(os), spindle::UsageError);
  EXPECT_EQ(rt.handle().flight_recorder_events(), 0U);
}

TEST(FlightRecorder, CapacityIsRoundedUpAndBounded) {
  EXPECT_EQ(Runtime::Builder().worker_threads(1).flight_recorder(1).build().handle()
                .flight_recorder_events(),
            64U);
  EXPECT_EQ(Runtime::Builder().worker_threads(1).flight_recorder(1000).build().handle()
                .flight_recorder_events(),
            1024U);
  EXPECT_THROW((void)Runtime::Builder().flight_recorder(std::size_t{1} << 25).build(),
               spindle::ConfigError);
}

TEST(FlightRecorder, ACurrentThreadTraceHasEveryPollOfEveryTaskInOrder) {
  auto rt = Runtime::Builder().current_thread().flight_recorder(1 << 14).build();
  std::vector<std::uint64_t> ids;
  rt.block_on([](std::vector<std::uint64_t>& ids) -> Task<void> {
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < 20; ++i) {
      hs.push_back(spindle::spawn(yielder(3)));
      ids.push_back(hs.back().id());
    }
    for (auto& h : hs) EXPECT_EQ(co_await h, 3);
  }(ids));
  const json trace = trace_of(rt.handle());
  const std::map<std::uint64_t, int> polls = check_tracks(trace, 1);
  for (std::uint64_t id : ids) {
    auto it = polls.find(id);
    ASSERT_NE(it, polls.end()) << "task " << id << " missing from the trace";
    EXPECT_EQ(it->second, 4) << "task " << id << ": 3 yields, so 4 polls";
  }
  // Each task's wakes (one per yield) are there, marked as self-wakes.
  int self_wakes = 0;
  for (const json& e : trace.at("traceEvents")) {
    if (e.at("ph") == "i" && e.at("name") == "wake" && e.at("args").at("self") == true) {
      ++self_wakes;
    }
  }
  EXPECT_GE(self_wakes, 20 * 3);
  // The last poll of each task says it finished.
  int finished = 0;
  for (const json& e : trace.at("traceEvents")) {
    if (e.at("ph") == "X" && e.at("args").at("finished") == true) ++finished;
  }
  EXPECT_GE(finished, 20);
}

TEST(FlightRecorder, ASmallRingWrapsAndStaysConsistentWhileWorkersWrite) {
  // 64 events per worker, two workers busy while the trace is copied
  // repeatedly: every copy parses and every track is consistent.
  auto rt = Runtime::Builder().worker_threads(2).flight_recorder(64).build();
  std::atomic<bool> stop{false};
  std::atomic<int> batches{0};
  auto load = rt.spawn([](std::atomic<bool>& stop, std::atomic<int>& batches) -> Task<int> {
    int n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      std::vector<JoinHandle<int>> hs;
      for (int i = 0; i < 8; ++i) hs.push_back(spindle::spawn(yielder(2)));
      for (auto& h : hs) n += co_await h;
      batches.fetch_add(1, std::memory_order_relaxed);
    }
    co_return n;
  }(stop, batches));
  // Copy while the workers write: at least 50 copies, and until the load
  // has wrapped the rings many times (8 tasks x 3 polls x 3 events a batch).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int round = 0; round < 50 || batches.load() < 100; ++round) {
    const json trace = trace_of(rt.handle());
    check_tracks(trace, 2);
    const std::size_t events = trace.at("traceEvents").size();
    EXPECT_LE(events, 2 * 64 + 2 + 2) << "at most the rings' events, the names and open polls";
    if (::testing::Test::HasFailure() || std::chrono::steady_clock::now() > give_up) break;
  }
  stop = true;
  EXPECT_GE(batches.load(), 100);
  EXPECT_GT(load.join(), 0);
}

TEST(FlightRecorder, ParksAndWakesFromOtherThreadsAreRecorded) {
  auto rt = Runtime::Builder().worker_threads(2).flight_recorder(1 << 12).build();
  auto [tx, rx] = spindle::sync::oneshot<int>();
  auto h = rt.spawn([](spindle::sync::Receiver<int> rx) -> Task<int> {
    co_return co_await rx;
  }(std::move(rx)));
  const std::uint64_t id = h.id();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the workers park
  std::thread([tx = std::move(tx)]() mutable { tx.send(7); }).join();
  EXPECT_EQ(h.join(), 7);
  const json trace = trace_of(rt.handle());
  check_tracks(trace, 2);
  std::map<std::string, int> kinds;
  bool woken_from_idle = false;
  for (const json& e : trace.at("traceEvents")) {
    if (e.at("ph") != "i") continue;
    ++kinds[e.at("name")];
    if (e.at("name") == "wake" && e.at("args").at("task") == id &&
        e.at("args").at("from") == "idle") {
      woken_from_idle = true;
    }
  }
  EXPECT_GT(kinds["park"], 0);
  EXPECT_GT(kinds["unpark"], 0);
  EXPECT_TRUE(woken_from_idle) << "the foreign thread's wake, reported by the polling worker";
}

}  // namespace
