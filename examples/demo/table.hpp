// examples/demo/table.hpp — spindle-demo's live table, its ring of stall reports and the
// summary printed at exit.
//
//   demo::StallRing       the last few StallDetector reports, kept in memory for the table
//   demo::TableContext    what the table reads: routes, runtime, server, load, stalls, URLs
//   demo::LiveTable       renders one frame: per monitor, the figures of the last interval
//   demo::dominant()      the verdict's cause (spindle::diagnose) as a short word
//   demo::print_summary() one line per monitor (cumulative), for the end of a run
//
// Example (main's loop, once a second):
//   demo::LiveTable table(context);
//   std::fputs(table.frame(/*ansi=*/true).c_str(), stdout);
//
// Each frame calls TaskMonitor::intervals().next() on every route's monitor, so its
// figures cover the time since the previous frame: polls/s, mean and p99 poll, slow-poll
// ratio, mean and p99 scheduled delay, mean idle, and the dominant kind of time — the
// first step of tokio-metrics' "why are my tasks slow?" procedure. Under the table: the
// workers' busy ratios (RuntimeMonitor), the server's counters, the load generator's
// view, and the recent stall reports.
//
// Thread safety: StallRing is safe from any thread (the detector pushes from its watchdog
// thread). A LiveTable is used by one thread.
#pragma once

#include <mutex>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <spindle/monitor.hpp>
#include <string>
#include <vector>

#include "load.hpp"
#include "routes.hpp"
#include "server.hpp"

namespace demo {

/// The most recent stall reports, oldest dropped first.
class StallRing {
 public:
  /// One report, with when it came (since the ring was created).
  struct Entry {
    std::chrono::nanoseconds at{0};  ///< time since the ring's creation
    spindle::StallReport report;     ///< what the detector said
  };

  explicit StallRing(std::size_t capacity);

  /// Keeps `report` (dropping the oldest beyond the capacity). For StallDetector's
  /// on_stall: never throws (a report that cannot be stored is only counted).
  void push(const spindle::StallReport& report) noexcept;
  /// The kept reports, oldest first.
  [[nodiscard]] std::vector<Entry> recent() const;
  /// Every report pushed so far.
  [[nodiscard]] std::uint64_t total() const;

 private:
  const std::size_t capacity_;                           // reports kept
  const std::chrono::steady_clock::time_point created_;  // origin of Entry::at
  mutable std::mutex mu_;                                     // guards the two below
  std::deque<Entry> entries_;       // newest last
  std::uint64_t total_ = 0;         // reports pushed
};

/// What the table shows and where it reads it.
struct TableContext {
  std::string service_url;                      ///< "http://127.0.0.1:8080/"
  std::string metrics_url;                      ///< "http://127.0.0.1:9464/metrics", or why none
  std::shared_ptr<const RouteTable> routes;     ///< the monitors, in display order
  spindle::Handle runtime;                      ///< the service's runtime
  const ServerStats* server = nullptr;          ///< the server's counters
  LoadGenerator* load = nullptr;                ///< the load generator, or null without --load
  const StallRing* stalls = nullptr;            ///< recent stall reports
  std::chrono::nanoseconds stall_threshold{0};  ///< the detector's threshold
};

/// "poll", "sched" or "idle": whichever mean is largest; "-" without polls.
const char* dominant(const spindle::TaskMetrics& m);

/// Renders the live table.
class LiveTable {
 public:
  /// Starts every interval now: the first frame covers the time since construction.
  explicit LiveTable(TableContext context);

  /// One frame, ending in a newline. Reads each monitor's, the runtime's and the load
  /// generator's interval since the previous frame. With `ansi`, the dominant column is
  /// coloured and each line ends with "erase to end of line" (for redrawing in place).
  std::string frame(bool ansi);

 private:
  TableContext ctx_;                               // the sources
  std::vector<spindle::TaskIntervals> intervals_;  // one per route, same order
  spindle::RuntimeIntervals runtime_intervals_;    // the service runtime's
  std::chrono::steady_clock::time_point started_;  // for the uptime
  std::chrono::steady_clock::time_point last_;     // the previous frame
  std::uint64_t last_requests_ = 0;                // server requests at the previous frame
};

/// Prints one line per monitor with its cumulative figures (and, with a load generator,
/// what the clients saw): "spindle-demo: summary monitor=healthy requests=... polls=...".
void print_summary(std::FILE* out, const RouteTable& routes, const LoadGenerator* load);

}  // namespace demo
