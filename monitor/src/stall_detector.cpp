#include "spindle/monitor/stall_detector.hpp"

#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "monitor_core.hpp"
#include "spindle/monitor/task_monitor.hpp"

namespace spindle {

std::string StallReport::describe() const {
  std::string s =
      "worker " + std::to_string(worker) + " has been polling task " + std::to_string(task) + " (";
  if (!monitor.empty()) s += "monitor \"" + monitor + "\", ";
  s += "spawned at " + std::string(location.file_name()) + ":" + std::to_string(location.line());
  if (location.function_name()[0] != '\0') s += " in " + std::string(location.function_name());
  s += ") for at least " +
       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count()) +
       " ms without yielding";
  if (!trace_file.empty()) s += "; trace: " + trace_file;
  return s;
}

StallDetector::StallDetector(Handle runtime, Options options)
    : runtime_(std::move(runtime)), options_(std::move(options)) {
  if (!runtime_.valid()) throw UsageError("spindle: StallDetector needs a valid runtime Handle");
  if (options_.threshold.count() <= 0) {
    throw ConfigError(
        "spindle: StallDetector: threshold = " + std::to_string(options_.threshold.count()) +
        " ns is out of range: must be positive");
  }
  if (options_.period.count() < 0) {
    throw ConfigError(
        "spindle: StallDetector: period = " + std::to_string(options_.period.count()) +
        " ns is out of range: must not be negative (0 = threshold / 4)");
  }
  if (options_.max_traces == 0) {
    throw ConfigError(
        "spindle: StallDetector: max_traces = 0 is out of range: must be positive "
        "(leave trace_directory empty for no traces)");
  }
  if (options_.min_trace_interval.count() < 0) {
    throw ConfigError("spindle: StallDetector: min_trace_interval = " +
                      std::to_string(options_.min_trace_interval.count()) +
                      " ns is out of range: must not be negative");
  }
  if (options_.period.count() == 0) {
    options_.period =
        std::max<std::chrono::nanoseconds>(options_.threshold / 4, std::chrono::microseconds(100));
  }
  const std::size_t n = runtime_.num_workers();
  num_workers_ = n;
  tracked_.resize(n);
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(n);
  if (options_.start_thread) thread_ = std::thread([this] { run(); });
}

StallDetector::~StallDetector() {
  {
    detail::MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Instant StallDetector::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

void StallDetector::run() {
  pthread_setname_np(pthread_self(), "spindle-stall");
  detail::MutexLock lock(mu_);
  while (!stop_) {
    lock.unlock();
    scan();
    lock.lock();
    // Sleep one period, or until the destructor sets stop_ (a spurious
    // wake-up sleeps on). A loop rather than a predicate: the analysis
    // cannot see that mu_ is held inside a lambda.
    const auto until = std::chrono::steady_clock::now() + options_.period;
    while (!stop_ && cv_.wait_until(mu_, until) == std::cv_status::no_timeout) {
    }
  }
}

void StallDetector::scan() {
  detail::MutexLock lock(scan_mu_);
  const std::vector<WorkerPollState> states = runtime_.poll_states();
  const Instant t = now();
  for (std::size_t w = 0; w < states.size() && w < tracked_.size(); ++w) {
    const WorkerPollState& ps = states[w];
    Tracked& tr = tracked_[w];
    if (!ps.polling) {
      tr = Tracked{};
      continue;
    }
    if (ps.poll_seq != tr.seq) {
      // A poll we have not seen before: start watching it.
      tr = Tracked{ps.poll_seq, t, options_.threshold, 0};
      continue;
    }
    const auto age = std::chrono::duration_cast<std::chrono::nanoseconds>(t - tr.first_seen);
    if (age < tr.next_report) continue;
    StallReport r;
    r.worker = w;
    r.task = ps.task;
    r.monitor = detail::monitor_name_by_id(ps.group_id);
    r.location = ps.location;
    r.duration = age;
    r.report = ++tr.reports;
    if (r.report == 1 && !options_.trace_directory.empty()) r.trace_file = write_stall_trace(r, t);
    tr.next_report *= 2;  // exponential back-off while the same poll lasts
    counts_[w].fetch_add(1, std::memory_order_relaxed);
    if (options_.on_stall) {
      try {
        options_.on_stall(r);
      } catch (...) {
        // A throwing callback must not kill the watchdog.
      }
    } else {
      std::fprintf(stderr, "spindle: stall: %s\n", r.describe().c_str());
    }
  }
}

std::string StallDetector::write_stall_trace(const StallReport& r, Instant t) {
  if (runtime_.flight_recorder_events() == 0) return {};
  if (traces_written_.load(std::memory_order_relaxed) >= options_.max_traces) return {};
  if (wrote_trace_ && t - last_trace_ < options_.min_trace_interval) return {};
  const std::size_t n = traces_written_.load(std::memory_order_relaxed) + 1;
  std::string path = options_.trace_directory;
  if (path.back() != '/') path += '/';
  path += "spindle-stall-" + std::to_string(::getpid()) + "-" + std::to_string(n) + "-worker" +
          std::to_string(r.worker) + "-task" + std::to_string(r.task) + ".json";
  try {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return {};
    runtime_.write_trace(out);
    out.close();
    if (!out) return {};
  } catch (...) {
    return {};  // no trace; the report goes out anyway
  }
  traces_written_.store(n, std::memory_order_relaxed);
  last_trace_ = t;
  wrote_trace_ = true;
  return path;
}

void StallDetector::check_monitor(const TaskMonitor& monitor) const {
  if (options_.threshold >= monitor.slow_poll_threshold()) return;
  throw ConfigError(
      "spindle: StallDetector: threshold = " + std::to_string(options_.threshold.count()) +
      " ns is below the slow_poll_threshold of TaskMonitor \"" + monitor.name() + "\" (" +
      std::to_string(monitor.slow_poll_threshold().count()) +
      " ns): a stall must also count as a slow poll (raise the detector's "
      "threshold or lower the monitor's)");
}

std::vector<std::uint64_t> StallDetector::stall_counts() const {
  std::vector<std::uint64_t> v(num_workers_);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = counts_[i].load(std::memory_order_relaxed);
  return v;
}

std::uint64_t StallDetector::total_stalls() const {
  std::uint64_t n = 0;
  for (std::uint64_t c : stall_counts()) n += c;
  return n;
}

}  // namespace spindle
