// examples/demo/table.cpp — renders spindle-demo's live table and exit summary (see table.hpp).
#include "table.hpp"

#include <mutex>
#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <string_view>
#include <utility>

#include "format.hpp"

namespace demo {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// printf onto the end of a std::string (at most 511 bytes per call).
[[gnu::format(printf, 2, 3)]] void append(std::string& out, const char* fmt, ...) {
  char buf[512];
  std::va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  if (n > 0) out.append(buf, std::min(static_cast<std::size_t>(n), sizeof buf - 1));
}

// Ends a line: with ANSI, also erases what an earlier, longer frame left there.
void end_line(std::string& out, bool ansi) { out += ansi ? "\x1b[K\n" : "\n"; }

// Who held the worker while this route's tasks waited (TaskMetrics::delay_blame): the
// largest culprit and its share of the blamed time, e.g. "cpu-hog 87%"; "-" without any.
std::string held_by(const spindle::TaskMetrics& m) {
  if (m.delay_blame.empty()) return "-";
  std::chrono::nanoseconds total{0};
  for (const spindle::DelayBlame& b : m.delay_blame) total += b.duration;
  const spindle::DelayBlame& top = m.delay_blame.front();
  std::string name = top.culprit.size() > 14 ? top.culprit.substr(0, 13) + "~" : top.culprit;
  char share[16];
  std::snprintf(share, sizeof share, " %.0f%%",
                100.0 * static_cast<double>(top.duration.count()) /
                    static_cast<double>(std::max<std::int64_t>(total.count(), 1)));
  return name + share;
}

std::string duration_or_dash(std::chrono::nanoseconds d, bool have) {
  return have ? format_duration(d) : "-";
}

const char* colour_of(const char* kind) {
  const std::string_view k(kind);
  if (k == "poll") return "\x1b[1;31m";  // bold red: the task's own code
  if (k == "sched") return "\x1b[33m";   // yellow: waiting for a worker
  if (k == "idle") return "\x1b[36m";    // cyan: waiting for the outside
  return "";
}

}  // namespace

// ---- StallRing --------------------------------------------------------------------------

StallRing::StallRing(std::size_t capacity) : capacity_(capacity), created_(Clock::now()) {}

void StallRing::push(const spindle::StallReport& report) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  ++total_;
  try {
    entries_.push_back(Entry{Clock::now() - created_, report});
    while (entries_.size() > capacity_) entries_.pop_front();
  } catch (...) {
    // out of memory: the report is counted, not kept
  }
}

std::vector<StallRing::Entry> StallRing::recent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {entries_.begin(), entries_.end()};
}

std::uint64_t StallRing::total() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

// ---- LiveTable --------------------------------------------------------------------------

// The verdict's cause (spindle::diagnose: the largest share of the tasks' time), as the
// table's short word.
const char* dominant(const spindle::TaskMetrics& m) {
  switch (spindle::diagnose(m).cause) {
    case spindle::Cause::kPoll:
      return "poll";
    case spindle::Cause::kScheduled:
      return "sched";
    case spindle::Cause::kIdle:
      return "idle";
    case spindle::Cause::kFirstPoll:
      return "first";
    case spindle::Cause::kNone:
      break;
  }
  return "-";
}

LiveTable::LiveTable(TableContext context)
    : ctx_(std::move(context)),
      runtime_intervals_(spindle::RuntimeMonitor(ctx_.runtime).intervals()),
      started_(Clock::now()),
      last_(started_) {
  for (const Route& r : ctx_.routes->routes()) {
    intervals_.push_back(r.monitor.intervals());
    intervals_.back().next();  // start the first interval now
  }
  runtime_intervals_.next();
  if (ctx_.load != nullptr) ctx_.load->take_interval();
  if (ctx_.server != nullptr) last_requests_ = ctx_.server->requests.load();
}

std::string LiveTable::frame(bool ansi) {
  const auto now = Clock::now();
  const double elapsed = std::max(seconds(now - last_), 1e-3);
  last_ = now;
  const auto& routes = ctx_.routes->routes();
  std::vector<LoadCounts> load;
  if (ctx_.load != nullptr) load = ctx_.load->take_interval();
  const spindle::RuntimeMetrics rt = runtime_intervals_.next();

  std::string out;
  const char* bold = ansi ? "\x1b[1m" : "";
  const char* reset = ansi ? "\x1b[0m" : "";
  append(out, "%sspindle-demo: why are my tasks slow?%s   up %.0fs, %zu workers, %s", bold, reset,
         seconds(now - started_), rt.workers_count,
         ctx_.load != nullptr ? "load generator on" : "no load generator (--load)");
  end_line(out, ansi);
  append(out, "  service     %s   (GET / lists the routes)", ctx_.service_url.c_str());
  end_line(out, ansi);
  append(out, "  metrics     %s", ctx_.metrics_url.c_str());
  end_line(out, ansi);
  append(out,
         "  dashboards  Prometheus + Grafana: cd deploy && docker compose up (see "
         "deploy/README.md)");
  end_line(out, ansi);
  append(out, "  monitors    slow poll >= %s, long delay >= %s; stall detector at %s",
         format_duration(kSlowPollThreshold).c_str(), format_duration(kLongDelayThreshold).c_str(),
         format_duration(ctx_.stall_threshold).c_str());
  end_line(out, ansi);
  end_line(out, ansi);

  char first[32];
  std::snprintf(first, sizeof first, "monitor (last %.0fs)", elapsed);
  append(out,
         "%s%-20s  polls/s  mean poll  p99 poll  slow  mean sched  p99 sched  mean idle  "
         "dominates  held by (long delays)",
         bold, first);
  if (ctx_.load != nullptr) out += " | req/s  p99 resp";
  out += reset;
  end_line(out, ansi);
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const spindle::TaskMetrics m = intervals_[i].next();
    const bool polled = m.total_poll_count > 0;
    const bool scheduled = m.total_scheduled_count > 0;
    const bool idled = m.total_idled_count > 0;
    const char* dom = dominant(m);
    char slow[16] = "-";
    if (polled) std::snprintf(slow, sizeof slow, "%.0f%%", 100.0 * m.slow_poll_ratio());
    append(out, "%-20s %8.1f %10s %9s %5s %11s %10s %10s  ", routes[i].name.c_str(),
           static_cast<double>(m.total_poll_count) / elapsed,
           duration_or_dash(m.mean_poll_duration(), polled).c_str(),
           duration_or_dash(m.poll_duration_histogram.quantile(0.99), polled).c_str(), slow,
           duration_or_dash(m.mean_scheduled_duration(), scheduled).c_str(),
           duration_or_dash(m.scheduled_delay_histogram.quantile(0.99), scheduled).c_str(),
           duration_or_dash(m.mean_idle_duration(), idled).c_str());
    append(out, "%s%-9s%s", ansi ? colour_of(dom) : "", dom, ansi && *colour_of(dom) ? reset : "");
    append(out, "  %-20s", held_by(m).c_str());
    if (ctx_.load != nullptr && i < load.size()) {
      const LoadCounts& c = load[i];
      append(out, " | %5.1f %9s", static_cast<double>(c.ok + c.failed) / elapsed,
             duration_or_dash(c.latency.quantile(0.99), c.ok > 0).c_str());
      if (c.failed > 0) append(out, "  %" PRIu64 " failed", c.failed);
    }
    end_line(out, ansi);
  }
  end_line(out, ansi);

  out += "workers  busy";
  for (std::size_t w = 0; w < rt.workers.size(); ++w) {
    // Clamped: a busy stretch is credited when it ends, so one interval can get more
    // than its length.
    append(out, " w%zu %3.0f%%", w, 100.0 * std::min(1.0, rt.workers[w].busy_ratio(rt.elapsed)));
  }
  append(out, ", %.0f polls/s | blocking pool %zu threads (%zu idle) | live tasks %zu",
         static_cast<double>(rt.total_polls_count) / elapsed, rt.blocking_threads_count,
         rt.idle_blocking_threads_count, rt.live_tasks_count);
  end_line(out, ansi);
  if (ctx_.server != nullptr) {
    const ServerStats& s = *ctx_.server;
    const std::uint64_t requests = s.requests.load();
    append(out,
           "server   %" PRIu64 " connections open, %.0f req/s; %" PRIu64 " bad requests, %" PRIu64
           " not found, %" PRIu64 " failed, %" PRIu64 " connection errors; %" PRIu64
           " refused, %" PRIu64 " timed out",
           s.open.load(), static_cast<double>(requests - last_requests_) / elapsed,
           s.bad_requests.load(), s.not_found.load(), s.handler_errors.load(),
           s.connection_errors.load(), s.rejected.load(),
           s.header_timeouts.load() + s.idle_timeouts.load() + s.body_timeouts.load() +
               s.write_timeouts.load());
    last_requests_ = requests;
    end_line(out, ansi);
  }
  if (ctx_.load != nullptr) {
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    for (const LoadCounts& c : ctx_.load->totals()) {
      ok += c.ok;
      failed += c.failed;
    }
    std::size_t passed = 0;
    const std::vector<CheckResult> checks = ctx_.load->checks();
    for (const CheckResult& c : checks) passed += c.passed ? 1 : 0;
    append(out,
           "load     %" PRIu64 " answered, %" PRIu64
           " failed (plan ~%.0f req/s); protocol "
           "self-checks %zu/%zu passed",
           ok, failed, ctx_.load->planned_rate(), passed, ctx_.load->expected_checks());
    end_line(out, ansi);
    for (const CheckResult& c : checks) {
      if (c.passed) continue;
      append(out, "  check failed: %s (%s)", c.name.c_str(), c.detail.c_str());
      end_line(out, ansi);
    }
  }
  end_line(out, ansi);

  if (ctx_.stalls != nullptr) {
    const std::vector<StallRing::Entry> stalls = ctx_.stalls->recent();
    append(out, "%srecent stalls%s (%" PRIu64 " so far: a poll running >= %s without yielding)",
           bold, reset, ctx_.stalls->total(), format_duration(ctx_.stall_threshold).c_str());
    end_line(out, ansi);
    if (stalls.empty()) {
      out += "  none yet";
      end_line(out, ansi);
    }
    for (const StallRing::Entry& e : stalls) {
      const spindle::StallReport& r = e.report;
      append(out, "  at %6.1fs  worker %zu, task %" PRIu64 " (monitor %s) polled for >= %s",
             seconds(e.at), r.worker, r.task, r.monitor.empty() ? "-" : r.monitor.c_str(),
             format_duration(r.duration).c_str());
      end_line(out, ansi);
    }
    end_line(out, ansi);
  }

  append(out,
         "dominates (the largest share of the tasks' time, as spindle::diagnose says):");
  end_line(out, ansi);
  append(out,
         "           poll  = the task's own code holds the worker: a blocking call or a big "
         "loop (spawn_blocking, yield_now)");
  end_line(out, ansi);
  append(out,
         "           sched = woken, but waiting for a worker: other tasks' long polls, or "
         "too few workers");
  end_line(out, ansi);
  append(out,
         "           idle  = waiting for something outside the runtime: a timer, a "
         "downstream, a lock's queue");
  end_line(out, ansi);
  append(out,
         "           first = spawned, waiting for a first poll; held by = who had the worker "
         "during the long delays");
  end_line(out, ansi);
  return out;
}

// ---- summary ------------------------------------------------------------------------------

void print_summary(std::FILE* out, const RouteTable& routes, const LoadGenerator* load) {
  std::vector<LoadCounts> counts;
  if (load != nullptr) counts = load->totals();
  for (std::size_t i = 0; i < routes.routes().size(); ++i) {
    const Route& r = routes.routes()[i];
    const spindle::TaskMetrics m = r.monitor.cumulative();
    std::fprintf(out,
                 "spindle-demo: summary monitor=%s requests=%" PRIu64 " polls=%" PRIu64
                 " mean_poll=%s p99_poll=%s slow_poll_ratio=%.3f mean_scheduled=%s "
                 "p99_scheduled=%s long_delay_ratio=%.3f mean_idle=%s dominates=%s",
                 r.name.c_str(), m.instrumented_count, m.total_poll_count,
                 format_duration(m.mean_poll_duration()).c_str(),
                 format_duration(m.poll_duration_histogram.quantile(0.99)).c_str(),
                 m.slow_poll_ratio(), format_duration(m.mean_scheduled_duration()).c_str(),
                 format_duration(m.scheduled_delay_histogram.quantile(0.99)).c_str(),
                 m.long_delay_ratio(), format_duration(m.mean_idle_duration()).c_str(),
                 dominant(m));
    if (i < counts.size()) {
      std::fprintf(out, " client_ok=%" PRIu64 " client_failed=%" PRIu64 " client_p99=%s",
                   counts[i].ok, counts[i].failed,
                   format_duration(counts[i].latency.quantile(0.99)).c_str());
    }
    std::fputc('\n', out);
  }
}

}  // namespace demo
