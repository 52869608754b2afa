// spindle/monitor/stall_detector.hpp — naming the task that holds a worker, while it happens.
//
//   spindle::StallDetector          a watchdog thread over one runtime's workers
//   spindle::StallDetector::Options threshold, check period, callback, clock
//   spindle::StallReport            one report: worker, task, monitor, spawn location, duration
//
// One task that runs for long without yielding — a blocking call, a big loop
// (the seed talk's "one task can starve others") — keeps every other task
// queued on its worker waiting. Metrics show it afterwards as slow polls and
// long scheduled delays; the stall detector reports it *while it lasts*:
// when a worker's current poll has run past the threshold (default 100 ms)
// it reports it once, then again at 2×, 4×, 8×... the threshold while the
// same poll goes on, and counts each report per worker.
//
// Example:
//   spindle::StallDetector stalls(rt.handle());        // logs to stderr
//   spindle::StallDetector custom(rt.handle(), {.threshold = std::chrono::milliseconds(50),
//       .on_stall = [](const spindle::StallReport& r) { my_log(r.describe()); }});
//
// How: the runtime publishes, at every poll start and end, which task each
// worker polls (a few plain stores on the worker's own cache line; no clock
// read). The watchdog samples that every `period` and measures how long it
// has seen the same poll; durations are therefore lower bounds, short by at
// most one period (default threshold / 4).
//
// Thresholds: a stall is a poll slow enough to be a slow poll too, so the
// detector's threshold should be at least the slow_poll_threshold of every
// TaskMonitor whose tasks it watches. The detector is built from a runtime
// Handle and knows no monitor, so its constructor cannot check that; call
// check_monitor(m) where both are known (TaskMonitor::Builder checks the
// same rule between a monitor's own stall_threshold and slow_poll_threshold).
//
// Thread safety: all member functions are safe from any thread. The
// callback runs on the watchdog thread (or the thread calling scan()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/hooks.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle {

class TaskMonitor;

/// One stall report.
struct StallReport {
  std::size_t worker = 0;                ///< the stuck worker (0-based)
  TaskId task = 0;                       ///< the task being polled
  std::string monitor;                   ///< its TaskMonitor's name ("" if uninstrumented)
  SourceLocation location;               ///< where it was spawned
  std::chrono::nanoseconds duration{0};  ///< how long the poll has run so far (at least)
  std::uint32_t report = 1;              ///< 1 for the first report of this poll, then 2, 3...
  /// The flight-recorder trace written for this stall (Options::trace_directory),
  /// or empty: what the workers did up to the stall, the stuck poll open at its end.
  std::string trace_file;
  /// One line, e.g. "worker 1 has been polling task 42 (monitor "checkout",
  /// spawned at app.cpp:31 in handle()) for at least 150 ms without yielding".
  [[nodiscard]] std::string describe() const;
};

class StallDetector {
 public:
  struct Options {
    /// A poll running at least this long is a stall (> 0).
    std::chrono::nanoseconds threshold = std::chrono::milliseconds(100);
    /// How often the watchdog samples the workers; 0 = threshold / 4.
    std::chrono::nanoseconds period{0};
    /// Receives each report; empty = one line on stderr. Must not throw.
    std::function<void(const StallReport&)> on_stall;
    /// Clock for the durations; empty = steady_clock. Tests inject one and
    /// call scan() themselves.
    std::function<Instant()> clock;
    /// Start the watchdog thread (false: call scan() yourself).
    bool start_thread = true;
    /// Where to write a flight-recorder trace (Handle::write_trace, Chrome
    /// trace-event JSON) at the first report of each stall, as
    /// spindle-stall-<pid>-<n>-worker<w>-task<id>.json; empty (default):
    /// none. Needs a runtime built with Runtime::Builder::flight_recorder
    /// (otherwise nothing is written). The directory must exist.
    std::string trace_directory{};
    /// At most this many trace files per detector (> 0; default 16) ...
    std::size_t max_traces = 16;
    /// ... and at most one per this interval (default 10 s; 0: no limit).
    std::chrono::nanoseconds min_trace_interval = std::chrono::seconds(10);
  };

  /// Starts watching `runtime`. Throws ConfigError for a non-positive
  /// threshold or a negative period, UsageError for an empty handle.
  explicit StallDetector(Handle runtime, Options options);
  explicit StallDetector(Handle runtime) : StallDetector(std::move(runtime), Options{}) {}
  /// Stops the watchdog thread (waits for it).
  ~StallDetector();
  StallDetector(const StallDetector&) = delete;
  StallDetector& operator=(const StallDetector&) = delete;

  /// Samples every worker once and reports what is due. The watchdog thread
  /// calls this every period.
  void scan();

  /// Trace files written so far (Options::trace_directory).
  [[nodiscard]] std::size_t traces_written() const noexcept {
    return traces_written_.load(std::memory_order_relaxed);
  }
  /// Reports made per worker so far.
  [[nodiscard]] std::vector<std::uint64_t> stall_counts() const;
  [[nodiscard]] std::uint64_t total_stalls() const;
  [[nodiscard]] std::chrono::nanoseconds threshold() const noexcept { return options_.threshold; }
  /// Throws ConfigError, naming both values and the monitor, when this
  /// detector's threshold is below `monitor`'s slow_poll_threshold (it would
  /// report polls that the monitor counts as fast). Never blocks.
  void check_monitor(const TaskMonitor& monitor) const;
  [[nodiscard]] const Handle& handle() const noexcept { return runtime_; }

 private:
  struct Tracked {
    std::uint64_t seq = 0;                    // the poll being watched (odd), 0 for none
    Instant first_seen{};                     // when the watchdog first saw it
    std::chrono::nanoseconds next_report{0};  // report when the poll is this old
    std::uint32_t reports = 0;                // reports made for it
  };

  void run();
  [[nodiscard]] Instant now() const;
  /// Writes the trace for a first report, if the limits allow; the file's path or "".
  std::string write_stall_trace(const StallReport& r, Instant t) SPINDLE_REQUIRES(scan_mu_);

  Handle runtime_;               // the watched runtime
  Options options_;              // settings
  std::size_t num_workers_ = 0;  // the runtime's, fixed at construction
  detail::Mutex scan_mu_;        // one scan at a time
  std::vector<Tracked> tracked_ SPINDLE_GUARDED_BY(scan_mu_);  // per worker
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;       // reports per worker
  detail::Mutex mu_;  // guards stop_ for the thread's sleep
  // detail::Mutex is Lockable, so the _any flavour waits on it directly (and
  // Clang's analysis sees mu_ held around the wait).
  std::condition_variable_any cv_;                     // wakes the thread to stop
  bool stop_ SPINDLE_GUARDED_BY(mu_) = false;          // the destructor asked the thread to leave
  std::thread thread_;                                 // the watchdog
  std::atomic<std::size_t> traces_written_{0};         // trace files written (scan() writes)
  Instant last_trace_ SPINDLE_GUARDED_BY(scan_mu_){};  // when the last one was
  bool wrote_trace_ SPINDLE_GUARDED_BY(scan_mu_) = false;  // last_trace_ is set
};

}  // namespace spindle
