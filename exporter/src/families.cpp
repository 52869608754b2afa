#include "families.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <limits>
#include <utility>

#include "text_format.hpp"

namespace spindle::detail {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr MetricType kCounter = MetricType::Counter;
constexpr MetricType kGauge = MetricType::Gauge;
constexpr MetricType kHistogram = MetricType::Histogram;

// ---- spindle_task_* (METRICS.md, "Task monitors") ---------------------------

enum TaskFamily : std::size_t {
  kTaskInstrumented,
  kTaskDropped,
  kTaskLive,
  kTaskFirstPolls,
  kTaskFirstPollDelay,
  kTaskPolls,
  kTaskPollTime,
  kTaskPollDuration,
  kTaskScheduled,
  kTaskScheduledTime,
  kTaskScheduledDelay,
  kTaskIdled,
  kTaskIdleTime,
  kTaskIdleDuration,
  kTaskMaxIdle,
  kTaskWakes,
  kTaskNeverYielded,
  kTaskSlowPollThreshold,
  kTaskLongDelayThreshold,
  kTaskFamilyCount,
};

constexpr std::array<FamilySpec, kTaskFamilyCount> kTaskSpecs = {{
    {"spindle_task_instrumented_total", kCounter,
     "Tasks instrumented by the monitor. rate() = tasks started per second."},
    {"spindle_task_dropped_total", kCounter,
     "Instrumented tasks that finished, were aborted or were destroyed at shutdown. rate() = "
     "tasks ended per second."},
    {"spindle_task_live_tasks", kGauge,
     "Instrumented tasks alive now (instrumented - dropped). Steady growth means tasks pile up "
     "or never finish."},
    {"spindle_task_first_polls_total", kCounter, "Instrumented tasks polled for the first time."},
    {"spindle_task_first_poll_delay_seconds_total", kCounter,
     "Seconds from instrument() to the first poll, summed over tasks. rate() / "
     "rate(spindle_task_first_polls_total) = mean wait before a new task starts; a rise means "
     "the runtime is saturated."},
    {"spindle_task_polls_total", kCounter,
     "Polls of the monitor's tasks; kind=\"slow\" ran at least "
     "spindle_task_slow_poll_threshold_seconds, kind=\"fast\" less (the two sum to all polls). "
     "A rising slow share means blocking or CPU-heavy code inside the tasks."},
    {"spindle_task_poll_time_seconds_total", kCounter,
     "Seconds the monitor's tasks ran on workers, by kind (fast|slow polls). rate() = workers "
     "kept busy by these tasks (1 = one worker's whole time)."},
    {"spindle_task_poll_duration_seconds", kHistogram,
     "Distribution of the tasks' poll durations. histogram_quantile(0.99, rate(_bucket[5m])) = "
     "p99 poll; a long poll holds a worker from every other task."},
    {"spindle_task_scheduled_total", kCounter,
     "Times a woken task was polled again; kind=\"long\" waited for a worker at least "
     "spindle_task_long_delay_threshold_seconds, kind=\"short\" less (the two sum to all). A "
     "rising long share means the workers are busy elsewhere."},
    {"spindle_task_scheduled_time_seconds_total", kCounter,
     "Seconds woken tasks waited for a worker (wake -> poll), by kind (short|long). rate() / "
     "rate(spindle_task_scheduled_total) = mean scheduling delay."},
    {"spindle_task_scheduled_delay_seconds", kHistogram,
     "Distribution of wake -> poll delays: time a task was ready but waited for a worker."},
    {"spindle_task_idled_total", kCounter,
     "Idle periods (end of a poll -> the wake) ended by a wake."},
    {"spindle_task_idle_time_seconds_total", kCounter,
     "Seconds the tasks waited between polls for I/O, timers, channels or other tasks. rate() / "
     "rate(spindle_task_idled_total) = mean idle period."},
    {"spindle_task_idle_duration_seconds", kHistogram,
     "Distribution of idle periods (end of a poll -> the wake)."},
    {"spindle_task_max_idle_duration_seconds", kGauge,
     "Longest single idle period of any of the monitor's tasks since the monitor was created."},
    {"spindle_task_wakes_total", kCounter,
     "Wakes of the tasks; kind=\"self\" came from the task's own poll (yield_now, waking "
     "itself), kind=\"other\" from elsewhere. A high self share means tasks spin through the "
     "scheduler instead of waiting for events."},
    {"spindle_task_never_yielded_polls_total", kCounter,
     "Polls that ran past the monitor's stall threshold without yielding. Any increase means a "
     "task blocked its worker."},
    {"spindle_task_slow_poll_threshold_seconds", kGauge,
     "The monitor's slow-poll threshold: polls at least this long count as "
     "spindle_task_polls_total{kind=\"slow\"}."},
    {"spindle_task_long_delay_threshold_seconds", kGauge,
     "The monitor's long-delay threshold: wake -> poll delays at least this long count as "
     "spindle_task_scheduled_total{kind=\"long\"}."},
}};

// ---- spindle_runtime_* (METRICS.md, "Runtime") ------------------------------

enum RuntimeFamily : std::size_t {
  kRtWorkers,
  kRtLiveTasks,
  kRtSpawned,
  kRtPolls,
  kRtBusy,
  kRtParks,
  kRtNoops,
  kRtSteals,
  kRtStealOps,
  kRtLocalSchedules,
  kRtRemoteSchedules,
  kRtOverflows,
  kRtForcedYields,
  kRtIoReady,
  kRtGlobalQueue,
  kRtLocalQueue,
  kRtBlockingThreads,
  kRtIdleBlockingThreads,
  kRtBlockingQueue,
  kRtMaxBlockingThreads,
  kRtUnhandled,
  kRtStalls,
  kRtUptime,
  kRtPollDuration,
  kRtScheduledDelay,
  kRuntimeFamilyCount,
};

constexpr std::array<FamilySpec, kRuntimeFamilyCount> kRuntimeSpecs = {{
    {"spindle_runtime_workers", kGauge, "Worker threads of the runtime."},
    {"spindle_runtime_live_tasks", kGauge,
     "Tasks spawned and not yet finished. Steady growth means tasks pile up or leak."},
    {"spindle_runtime_spawned_tasks_total", kCounter, "Tasks spawned. rate() = spawns per second."},
    {"spindle_runtime_polls_total", kCounter,
     "Task polls run by each worker. Compare rate() across workers to see how evenly work "
     "spreads."},
    {"spindle_runtime_busy_seconds_total", kCounter,
     "Seconds workers spent busy (not parked); rate() per worker: 1 = fully busy."},
    {"spindle_runtime_parks_total", kCounter,
     "Times each worker went to sleep with nothing to do."},
    {"spindle_runtime_noops_total", kCounter,
     "Wake-ups after which a worker found nothing to do. A rate close to the parks rate means "
     "wasted wake-ups."},
    {"spindle_runtime_steals_total", kCounter,
     "Tasks each worker stole from other workers. A high rate means work arrives unevenly."},
    {"spindle_runtime_steal_operations_total", kCounter,
     "Successful steal attempts by each worker (each moves one task or more)."},
    {"spindle_runtime_local_schedules_total", kCounter,
     "Tasks spawned or woken onto each worker's own run queue."},
    {"spindle_runtime_remote_schedules_total", kCounter,
     "Tasks spawned or woken from outside the workers, through the shared injection queue."},
    {"spindle_runtime_overflows_total", kCounter,
     "Times a worker's full local queue moved half of its tasks to the injection queue. A "
     "steady rate means bursts larger than the local queue."},
    {"spindle_runtime_budget_forced_yields_total", kCounter,
     "Polls ended by the cooperative budget: a task ran through many ready operations without "
     "suspending and was made to yield."},
    {"spindle_runtime_io_driver_ready_total", kCounter,
     "I/O and timer completions run by each worker. rate() = events per second."},
    {"spindle_runtime_global_queue_depth", kGauge,
     "Tasks waiting in the shared injection queue now. Growth means the workers do not keep up "
     "with spawns and wakes from outside."},
    {"spindle_runtime_local_queue_depth", kGauge,
     "Tasks waiting in each worker's local run queue now."},
    {"spindle_runtime_blocking_threads", kGauge, "Threads in the blocking pool now."},
    {"spindle_runtime_idle_blocking_threads", kGauge,
     "Blocking-pool threads waiting for a job now."},
    {"spindle_runtime_blocking_queue_depth", kGauge,
     "spawn_blocking jobs waiting for a thread now. Non-zero while spindle_runtime_blocking_"
     "threads equals spindle_runtime_max_blocking_threads: the pool is saturated."},
    {"spindle_runtime_max_blocking_threads", kGauge,
     "The blocking pool's thread cap (Runtime::Builder::max_blocking_threads)."},
    {"spindle_runtime_unhandled_exceptions_total", kCounter,
     "Exceptions thrown by detached tasks whose result nobody awaited. Any increase is an error "
     "nobody handled."},
    {"spindle_runtime_stalls_total", kCounter,
     "Stall-detector reports per worker: a poll held the worker past the detector's threshold "
     "(the log names the task). Any increase means a task blocked a worker."},
    {"spindle_runtime_uptime_seconds", kGauge, "Seconds since the runtime was built."},
    {"spindle_runtime_poll_duration_seconds", kHistogram,
     "Distribution of every task's poll durations (runtime built with poll_timing(true)). "
     "histogram_quantile(0.99, rate(_bucket[5m])) = p99 poll."},
    {"spindle_runtime_scheduled_delay_seconds", kHistogram,
     "Distribution of every task's wake -> poll delays (runtime built with poll_timing(true)): "
     "time ready tasks waited for a worker."},
}};

constexpr FamilySpec kDelayBlame = {
    "spindle_task_delay_blame_seconds_total", kCounter,
    "Who held the worker while the monitor's tasks waited to be scheduled: each long scheduled "
    "delay split by what the worker that polled the task ran meanwhile, by culprit (a monitor's "
    "name, \"unmonitored\", \"runtime\" for the worker's own time, \"unrecorded\"; at most 5 "
    "named per monitor, the rest as \"other\"). Needs the runtime's flight recorder. "
    "topk(1, rate(...[5m])) by (monitor) = the task that starves each monitor."};

// ---- how each family's series are read from a reading ------------------------

using TaskReading = ScrapeReading::Task;
using RuntimeReading = ScrapeReading::Runtime;

double seconds(std::chrono::nanoseconds d) noexcept { return static_cast<double>(d.count()) / 1e9; }

double as_double(std::uint64_t n) noexcept { return static_cast<double>(n); }

/// One series of a task family, per monitor.
struct TaskSeries {
  std::string_view kind;                  // the `kind` label's value; empty: no kind label
  double (*value)(const TaskReading& r);  // its value
};

/// The series of a task family: one or two scalars, or one histogram.
struct TaskSeriesSet {
  std::array<TaskSeries, 2> scalars{};  // value null: no such series
  const ScrapeReading::SparseHistogram& (*histogram)(const TaskReading& r) = nullptr;  // histograms
};

constexpr TaskSeriesSet one(double (*value)(const TaskReading&)) {
  return {{{{"", value}, {"", nullptr}}}, nullptr};
}
constexpr TaskSeriesSet split(std::string_view kind1, double (*value1)(const TaskReading&),
                              std::string_view kind2, double (*value2)(const TaskReading&)) {
  return {{{{kind1, value1}, {kind2, value2}}}, nullptr};
}
using Sparse = ScrapeReading::SparseHistogram;
constexpr TaskSeriesSet histogram(const Sparse& (*h)(const TaskReading&)) { return {{}, h}; }

std::uint64_t self_wakes(const ScrapeReading::TaskTotals& m) noexcept {
  return std::min(m.total_self_wake_count, m.total_wake_count);
}

// A switch, so that the compiler checks every family has its series.
TaskSeriesSet task_series(TaskFamily f) {
  using R = const TaskReading&;
  switch (f) {
    case kTaskInstrumented:
      return one([](R r) { return as_double(r.metrics.instrumented_count); });
    case kTaskDropped:
      return one([](R r) { return as_double(r.metrics.dropped_count); });
    case kTaskLive:
      // The two counters are read one after the other while tasks run:
      // never report a negative number of tasks.
      return one([](R r) {
        const auto& m = r.metrics;
        return m.instrumented_count > m.dropped_count
                   ? as_double(m.instrumented_count - m.dropped_count)
                   : 0.0;
      });
    case kTaskFirstPolls:
      return one([](R r) { return as_double(r.metrics.first_poll_count); });
    case kTaskFirstPollDelay:
      return one([](R r) { return seconds(r.metrics.total_first_poll_delay); });
    case kTaskPolls:
      return split(
          "fast", [](R r) { return as_double(r.metrics.total_fast_poll_count); },  //
          "slow", [](R r) { return as_double(r.metrics.total_slow_poll_count); });
    case kTaskPollTime:
      return split(
          "fast", [](R r) { return seconds(r.metrics.total_fast_poll_duration); },  //
          "slow", [](R r) { return seconds(r.metrics.total_slow_poll_duration); });
    case kTaskPollDuration:
      return histogram([](R r) -> const Sparse& { return r.poll; });
    case kTaskScheduled:
      return split(
          "short", [](R r) { return as_double(r.metrics.total_short_delay_count); },  //
          "long", [](R r) { return as_double(r.metrics.total_long_delay_count); });
    case kTaskScheduledTime:
      return split(
          "short", [](R r) { return seconds(r.metrics.total_short_delay_duration); },  //
          "long", [](R r) { return seconds(r.metrics.total_long_delay_duration); });
    case kTaskScheduledDelay:
      return histogram([](R r) -> const Sparse& { return r.scheduled; });
    case kTaskIdled:
      return one([](R r) { return as_double(r.metrics.total_idled_count); });
    case kTaskIdleTime:
      return one([](R r) { return seconds(r.metrics.total_idle_duration); });
    case kTaskIdleDuration:
      return histogram([](R r) -> const Sparse& { return r.idle; });
    case kTaskMaxIdle:
      return one([](R r) { return seconds(r.metrics.max_idle_duration); });
    case kTaskWakes:
      return split(
          "self", [](R r) { return as_double(self_wakes(r.metrics)); },  //
          "other",
          [](R r) { return as_double(r.metrics.total_wake_count - self_wakes(r.metrics)); });
    case kTaskNeverYielded:
      return one([](R r) { return as_double(r.metrics.total_never_yielded_count); });
    case kTaskSlowPollThreshold:
      return one([](R r) { return seconds(r.slow_poll_threshold); });
    case kTaskLongDelayThreshold:
      return one([](R r) { return seconds(r.long_delay_threshold); });
    case kTaskFamilyCount:
      break;
  }
  return {};
}

/// Which series a runtime family has per runtime.
enum class Scope : std::uint8_t {
  kRuntime,          // one
  kWorker,           // one per worker (label `worker`)
  kWorkerIfStalls,   // one per worker, with a stall detector
  kRuntimeIfTiming,  // one histogram, with poll_timing(true)
};

struct RuntimeSeries {
  Scope scope = Scope::kRuntime;
  double (*value)(const RuntimeReading& r, std::size_t worker) = nullptr;  // scalar families
  const Histogram& (*histogram)(const RuntimeReading& r) = nullptr;        // histogram families
};

RuntimeSeries runtime_series(RuntimeFamily f) {
  using R = const RuntimeReading&;
  using W = std::size_t;
  constexpr Scope kRt = Scope::kRuntime;
  constexpr Scope kWk = Scope::kWorker;
  switch (f) {
    case kRtWorkers:
      return {kRt, [](R r, W) { return as_double(r.counters.workers.size()); }};
    case kRtLiveTasks:
      return {kRt, [](R r, W) { return as_double(r.counters.live_tasks); }};
    case kRtSpawned:
      return {kRt, [](R r, W) { return as_double(r.counters.spawned_tasks); }};
    case kRtPolls:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].polls); }};
    case kRtBusy:
      return {kWk, [](R r, W w) { return seconds(r.counters.workers[w].busy); }};
    case kRtParks:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].parks); }};
    case kRtNoops:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].noops); }};
    case kRtSteals:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].steals); }};
    case kRtStealOps:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].steal_operations); }};
    case kRtLocalSchedules:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].local_schedules); }};
    case kRtRemoteSchedules:
      return {kRt, [](R r, W) { return as_double(r.counters.remote_schedules); }};
    case kRtOverflows:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].overflows); }};
    case kRtForcedYields:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].budget_forced_yields); }};
    case kRtIoReady:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].io_driver_ready); }};
    case kRtGlobalQueue:
      return {kRt, [](R r, W) { return as_double(r.counters.global_queue_depth); }};
    case kRtLocalQueue:
      return {kWk, [](R r, W w) { return as_double(r.counters.workers[w].local_queue_depth); }};
    case kRtBlockingThreads:
      return {kRt, [](R r, W) { return as_double(r.counters.blocking_threads); }};
    case kRtIdleBlockingThreads:
      return {kRt, [](R r, W) { return as_double(r.counters.idle_blocking_threads); }};
    case kRtBlockingQueue:
      return {kRt, [](R r, W) { return as_double(r.counters.blocking_queue_depth); }};
    case kRtMaxBlockingThreads:
      return {kRt, [](R r, W) { return as_double(r.max_blocking_threads); }};
    case kRtUnhandled:
      return {kRt, [](R r, W) { return as_double(r.counters.unhandled_exceptions); }};
    case kRtStalls:
      return {Scope::kWorkerIfStalls,
              [](R r, W w) { return w < r.stalls->size() ? as_double((*r.stalls)[w]) : 0.0; }};
    case kRtUptime:
      return {kRt, [](R r, W) { return seconds(r.counters.elapsed); }};
    case kRtPollDuration:
      return {Scope::kRuntimeIfTiming, nullptr, [](R r) -> const Histogram& { return r.polls; }};
    case kRtScheduledDelay:
      return {Scope::kRuntimeIfTiming, nullptr, [](R r) -> const Histogram& { return r.delays; }};
    case kRuntimeFamilyCount:
      break;
  }
  return {};
}

/// How many series of a runtime family `r` has.
std::size_t series_of(const RuntimeSeries& s, const RuntimeReading& r) noexcept {
  switch (s.scope) {
    case Scope::kRuntime:
      return 1;
    case Scope::kWorker:
      return r.counters.workers.size();
    case Scope::kWorkerIfStalls:
      return r.stalls != nullptr ? r.counters.workers.size() : 0;
    case Scope::kRuntimeIfTiming:
      return r.poll_timing ? 1 : 0;
  }
  return 0;
}

// The classic view of a spindle::Histogram (METRICS.md): one `le` per
// power of two from 64 ns to 2^36 ns (Histogram's classic bounds, each an
// exact bucket bound, so the cumulative counts are exact), then +Inf.
// Exporting all 302 buckets would make every histogram 302 series.
constexpr std::size_t kLeBuckets = Histogram::kClassicBounds + 1;

/// The last Histogram bucket that `le` bucket `c` (< kLeBuckets) counts.
constexpr std::size_t last_bucket_of_le(std::size_t c) noexcept {
  return c < Histogram::kClassicBounds ? Histogram::classic_bucket(c) : Histogram::kBuckets - 1;
}

/// Calls `f(c, cumulative)` for each `le` bucket of `h` in order.
template <class F>
void for_each_le_bucket(const Histogram& h, F&& f) {
  std::uint64_t cumulative = 0;
  std::size_t b = 0;
  for (std::size_t c = 0; c < kLeBuckets; ++c) {
    for (const std::size_t last = last_bucket_of_le(c); b <= last; ++b) {
      cumulative += h.bucket_count(b);
    }
    f(c, cumulative);
  }
}

// The `le` bounds in seconds, computed once.
const std::array<double, kLeBuckets>& bucket_bounds() {
  static const std::array<double, kLeBuckets> bounds = [] {
    std::array<double, kLeBuckets> b{};
    for (std::size_t c = 0; c < Histogram::kClassicBounds; ++c) {
      b[c] = seconds(Histogram::upper_bound(Histogram::classic_bucket(c)));
    }
    b[Histogram::kClassicBounds] = std::numeric_limits<double>::infinity();
    return b;
  }();
  return bounds;
}

// ---- prometheus-cpp families --------------------------------------------------

using LabelList = std::vector<ClientMetric::Label>;

MetricFamily new_family(const FamilySpec& spec) {
  MetricFamily f;
  f.name = std::string(spec.name);
  f.help = std::string(spec.help);
  f.type = spec.type;
  return f;
}

/// `own`="`value`", then `extra` (when its name is not empty), then the constant labels.
LabelList labels_of(std::string_view own, std::string_view value, std::string_view extra_name,
                    std::string_view extra_value, const std::map<std::string, std::string>& c) {
  LabelList l;
  l.reserve(c.size() + 2);
  l.push_back({std::string(own), std::string(value)});
  if (!extra_name.empty()) l.push_back({std::string(extra_name), std::string(extra_value)});
  for (const auto& [name, v] : c) l.push_back({name, v});
  return l;
}

void set_value(ClientMetric& m, prometheus::MetricType type, double v) {
  if (type == kCounter) {
    m.counter.value = v;
  } else {
    m.gauge.value = v;
  }
}

void set_histogram(ClientMetric& m, const Histogram& h) {
  const auto& bounds = bucket_bounds();
  m.histogram.bucket.resize(kLeBuckets);
  for_each_le_bucket(h, [&](std::size_t c, std::uint64_t cumulative) {
    m.histogram.bucket[c].cumulative_count = cumulative;
    m.histogram.bucket[c].upper_bound = bounds[c];
  });
  // _count equals the +Inf bucket, as Prometheus requires.
  m.histogram.sample_count = m.histogram.bucket.back().cumulative_count;
  m.histogram.sample_sum = seconds(h.sum());
}

// ---- text ---------------------------------------------------------------------

/// The text of a label block built once per scrape: pieces appended to one
/// string, handed out as views once every piece is in.
class LabelTexts {
 public:
  /// Adds `name="value"`; returns its index.
  std::size_t add(std::string_view name, std::string_view value) {
    const std::size_t start = text_.size();
    append_label(text_, name, value);
    spans_.emplace_back(start, text_.size() - start);
    return spans_.size() - 1;
  }
  /// Piece `i`; valid until the next add().
  [[nodiscard]] std::string_view operator[](std::size_t i) const noexcept {
    return std::string_view(text_).substr(spans_[i].first, spans_[i].second);
  }

 private:
  std::string text_;                                        // every piece, back to back
  std::vector<std::pair<std::size_t, std::size_t>> spans_;  // offset and size of each
};

/// The constant labels as one piece: `a="x",b="y"`.
std::string const_label_text(const std::map<std::string, std::string>& c) {
  std::string out;
  for (const auto& [name, value] : c) {
    if (!out.empty()) out += ',';
    append_label(out, name, value);
  }
  return out;
}

/// The le="..." pieces of the exported bucket bounds, formatted once.
const std::array<std::string, kLeBuckets>& le_labels() {
  static const std::array<std::string, kLeBuckets> labels = [] {
    std::array<std::string, kLeBuckets> l;
    for (std::size_t i = 0; i < kLeBuckets; ++i) {
      NumberBuffer number;
      l[i] = "le=\"" + std::string(format_label_number(number, bucket_bounds()[i])) + "\"";
    }
    return l;
  }();
  return labels;
}

/// One histogram's lines.
void write_histogram(LineWriter& w, std::string_view name, std::string_view own,
                     std::string_view consts, const Histogram& h) {
  const auto& le = le_labels();
  NumberBuffer value;
  std::uint64_t cumulative = 0;
  for_each_le_bucket(h, [&](std::size_t c, std::uint64_t n) {
    cumulative = n;
    w.sample(name, "_bucket", {own, consts, le[c], {}}, format_count(value, n));
  });
  w.sample(name, "_sum", {own, consts, {}, {}}, format_value(value, seconds(h.sum())));
  w.sample(name, "_count", {own, consts, {}, {}}, format_count(value, cumulative));
}

/// `kind="<value>"` in `buf`.
std::string_view kind_label(std::array<char, 32>& buf, std::string_view value) {
  if (value.empty()) return {};
  constexpr std::string_view kOpen = "kind=\"";
  char* p = buf.data();
  for (const char c : kOpen) *p++ = c;
  for (const char c : value) *p++ = c;  // spindle's own values: nothing to escape
  *p++ = '"';
  return {buf.data(), static_cast<std::size_t>(p - buf.data())};
}

// Bytes assumed per line besides the name and the labels (suffix, le,
// value, separators); an underestimate only costs a doubling of the string.
constexpr std::size_t kLineSlack = 32;

}  // namespace

namespace {

/// `h`'s buckets from its first to its last non-empty one, appended to
/// `pool`. Throws std::bad_alloc.
ScrapeReading::SparseHistogram keep_used(const Histogram& h, std::vector<std::uint64_t>& pool) {
  ScrapeReading::SparseHistogram out;
  out.offset = pool.size();
  out.sum = h.sum();
  std::size_t lo = 0;
  while (lo < Histogram::kBuckets && h.bucket_count(lo) == 0) ++lo;
  if (lo == Histogram::kBuckets) return out;
  std::size_t hi = Histogram::kBuckets;
  while (h.bucket_count(hi - 1) == 0) --hi;
  for (std::size_t b = lo; b < hi; ++b) pool.push_back(h.bucket_count(b));
  out.lo = static_cast<std::uint16_t>(lo);
  out.size = static_cast<std::uint16_t>(hi - lo);
  return out;
}

}  // namespace

void read_sources(Sources::Snapshot snapshot, ScrapeReading& out) {
  out.snapshot = std::move(snapshot);
  out.runtimes.clear();
  out.tasks.clear();
  out.runtimes.reserve(out.snapshot.runtimes.size());
  for (const Sources::RuntimeReading& r : out.snapshot.runtimes) {
    try {
      // Handle reads the runtime's shared state, which outlives its
      // workers: during and after shutdown these are the final values.
      ScrapeReading::Runtime reading;
      reading.name = &r.name;
      reading.counters = r.handle.counters();
      reading.max_blocking_threads = r.handle.max_blocking_threads();
      reading.poll_timing = r.handle.poll_timing();
      reading.stalls = r.stalls ? &*r.stalls : nullptr;
      for (const WorkerCounters& w : reading.counters.workers) {
        reading.polls += w.poll_durations;
        reading.delays += w.scheduled_delays;
      }
      out.runtimes.push_back(std::move(reading));
    } catch (const std::exception&) {
      // This runtime could not be read now; the others still are.
    }
  }
  out.tasks.reserve(out.snapshot.monitors.size());
  out.buckets.clear();
  TaskMetrics m;  // each monitor's reading in turn (~7 KiB, stays in cache)
  for (const TaskMonitor& monitor : out.snapshot.monitors) {
    try {
      m = monitor.cumulative();
      ScrapeReading::Task& t = out.tasks.emplace_back();
      t.name = &monitor.name();
      t.slow_poll_threshold = monitor.slow_poll_threshold();
      t.long_delay_threshold = monitor.long_delay_threshold();
      t.poll = keep_used(m.poll_duration_histogram, out.buckets);
      t.scheduled = keep_used(m.scheduled_delay_histogram, out.buckets);
      t.idle = keep_used(m.idle_duration_histogram, out.buckets);
      ScrapeReading::TaskTotals& r = t.metrics;
      r.instrumented_count = m.instrumented_count;
      r.dropped_count = m.dropped_count;
      r.first_poll_count = m.first_poll_count;
      r.total_first_poll_delay = m.total_first_poll_delay;
      r.total_idled_count = m.total_idled_count;
      r.total_idle_duration = m.total_idle_duration;
      r.max_idle_duration = m.max_idle_duration;
      r.total_fast_poll_count = m.total_fast_poll_count;
      r.total_fast_poll_duration = m.total_fast_poll_duration;
      r.total_slow_poll_count = m.total_slow_poll_count;
      r.total_slow_poll_duration = m.total_slow_poll_duration;
      r.total_short_delay_count = m.total_short_delay_count;
      r.total_short_delay_duration = m.total_short_delay_duration;
      r.total_long_delay_count = m.total_long_delay_count;
      r.total_long_delay_duration = m.total_long_delay_duration;
      r.total_wake_count = m.total_wake_count;
      r.total_self_wake_count = m.total_self_wake_count;
      r.total_never_yielded_count = m.total_never_yielded_count;
      r.delay_blame = std::move(m.delay_blame);
    } catch (const std::exception&) {
      // As above, for one monitor (a half-made reading is dropped).
      if (!out.tasks.empty() && out.tasks.back().name == &monitor.name()) out.tasks.pop_back();
    }
  }
}

std::unique_ptr<ScrapeReading> ReadingPool::take() {
  std::unique_ptr<ScrapeReading> r;
  {
    MutexLock lock(mu_);
    r = std::move(spare_);
  }
  return r != nullptr ? std::move(r) : std::make_unique<ScrapeReading>();
}

void ReadingPool::give_back(std::unique_ptr<ScrapeReading> r) noexcept {
  if (r == nullptr) return;
  r->snapshot.runtimes.clear();
  r->snapshot.monitors.clear();
  r->runtimes.clear();
  r->tasks.clear();
  r->buckets.clear();
  MutexLock lock(mu_);
  if (spare_ == nullptr) spare_ = std::move(r);
}

Histogram ScrapeReading::histogram(const SparseHistogram& h) const noexcept {
  Histogram out;
  for (std::size_t i = 0; i < h.size; ++i) out.add_bucket(h.lo + i, buckets[h.offset + i]);
  out.add_sum(h.sum);
  return out;
}

void read_sources(const Sources& sources, ScrapeReading& out) {
  read_sources(sources.snapshot(), out);
  for (ScrapeReading::Task& t : out.tasks) {
    t.blame = sources.exported_blame(*t.name, t.metrics.delay_blame);
  }
}

std::vector<MetricFamily> build_families(const ScrapeReading& reading,
                                         const std::map<std::string, std::string>& c) {
  std::vector<MetricFamily> out;
  for (std::size_t i = 0; i < kRuntimeFamilyCount; ++i) {
    const RuntimeSeries s = runtime_series(static_cast<RuntimeFamily>(i));
    MetricFamily f = new_family(kRuntimeSpecs[i]);
    for (const RuntimeReading& r : reading.runtimes) {
      const std::size_t n = series_of(s, r);
      for (std::size_t w = 0; w < n; ++w) {
        const bool per_worker = s.scope == Scope::kWorker || s.scope == Scope::kWorkerIfStalls;
        ClientMetric& m = f.metric.emplace_back();
        m.label = labels_of("runtime", *r.name, per_worker ? "worker" : "",
                            per_worker ? std::to_string(w) : std::string(), c);
        if (s.histogram != nullptr) {
          set_histogram(m, s.histogram(r));
        } else {
          set_value(m, f.type, s.value(r, w));
        }
      }
    }
    if (!f.metric.empty()) out.push_back(std::move(f));
  }
  if (reading.tasks.empty()) return out;
  for (std::size_t i = 0; i < kTaskFamilyCount; ++i) {
    const TaskSeriesSet s = task_series(static_cast<TaskFamily>(i));
    MetricFamily f = new_family(kTaskSpecs[i]);
    f.metric.reserve(reading.tasks.size() * 2);
    for (const TaskReading& t : reading.tasks) {
      if (s.histogram != nullptr) {
        ClientMetric& m = f.metric.emplace_back();
        m.label = labels_of("monitor", *t.name, "", "", c);
        set_histogram(m, reading.histogram(s.histogram(t)));
        continue;
      }
      for (const TaskSeries& series : s.scalars) {
        if (series.value == nullptr) continue;
        ClientMetric& m = f.metric.emplace_back();
        m.label = labels_of("monitor", *t.name, series.kind.empty() ? "" : "kind", series.kind, c);
        set_value(m, f.type, series.value(t));
      }
    }
    out.push_back(std::move(f));
  }
  // Delay blame: only monitors that have some, and only when one has.
  MetricFamily blame = new_family(kDelayBlame);
  for (const TaskReading& t : reading.tasks) {
    for (const DelayBlame& b : t.blame) {
      ClientMetric& m = blame.metric.emplace_back();
      m.label = labels_of("monitor", *t.name, "culprit", b.culprit, c);
      set_value(m, kCounter, seconds(b.duration));
    }
  }
  if (!blame.metric.empty()) out.push_back(std::move(blame));
  return out;
}

namespace {

/// How a writer below uses its string: appends to it, writes over it from
/// `offset`, or (with a sink) uses it as the scratch of a chunked LineWriter.
struct WriteMode {
  std::optional<std::size_t> offset;  // overwrite from here
  const ChunkSink* sink = nullptr;    // chunked
};

void start_writer(std::optional<LineWriter>& writer, std::string& out, std::size_t estimate,
                  const WriteMode& mode) {
  if (mode.sink != nullptr) {
    writer.emplace(out, *mode.sink);
  } else if (mode.offset) {
    writer.emplace(out, *mode.offset, estimate, LineWriter::Overwrite{});
  } else {
    writer.emplace(out, estimate);
  }
}

// Writes the reading's text into `out` as `mode` says. Returns where it
// ends (0 when chunked: everything went to the sink).
std::size_t write_scrape(const ScrapeReading& reading, const std::map<std::string, std::string>& c,
                         std::string& out, const WriteMode& mode) {
  const std::string consts = const_label_text(c);
  // Every source's own label, escaped once: runtimes first, then monitors.
  LabelTexts own;
  std::size_t own_bytes = 0;
  for (const RuntimeReading& r : reading.runtimes) own.add("runtime", *r.name);
  for (const TaskReading& t : reading.tasks) own_bytes += own[own.add("monitor", *t.name)].size();
  const std::size_t first_task = reading.runtimes.size();
  std::size_t most_workers = 0;
  for (const RuntimeReading& r : reading.runtimes) {
    most_workers = std::max(most_workers, r.counters.workers.size());
  }
  LabelTexts workers;
  for (std::size_t w = 0; w < most_workers; ++w) workers.add("worker", std::to_string(w));

  // The task families are most of the text: ~123 lines per monitor.
  std::size_t task_line_bytes = 0;
  std::size_t task_lines = 0;
  for (const FamilySpec& spec : kTaskSpecs) {
    const std::size_t lines = spec.type == kHistogram ? kLeBuckets + 2 : 2;
    task_lines += lines;
    task_line_bytes += lines * (spec.name.size() + consts.size() + kLineSlack);
  }
  const std::size_t estimate =
      reading.tasks.size() * task_line_bytes + own_bytes * task_lines + 16384;
  std::optional<LineWriter> writer;
  start_writer(writer, out, estimate, mode);
  LineWriter& w = *writer;
  NumberBuffer value;

  for (std::size_t i = 0; i < kRuntimeFamilyCount; ++i) {
    const RuntimeSeries s = runtime_series(static_cast<RuntimeFamily>(i));
    const FamilySpec& spec = kRuntimeSpecs[i];
    bool any = false;
    for (const RuntimeReading& r : reading.runtimes) any = any || series_of(s, r) != 0;
    if (!any) continue;
    w.family(spec.name, spec.help, type_name(spec.type));
    for (std::size_t k = 0; k < reading.runtimes.size(); ++k) {
      const RuntimeReading& r = reading.runtimes[k];
      const std::size_t n = series_of(s, r);
      for (std::size_t wk = 0; wk < n; ++wk) {
        if (s.histogram != nullptr) {
          write_histogram(w, spec.name, own[k], consts, s.histogram(r));
          continue;
        }
        const bool per_worker = s.scope == Scope::kWorker || s.scope == Scope::kWorkerIfStalls;
        w.sample(spec.name, {}, {own[k], per_worker ? workers[wk] : std::string_view(), consts, {}},
                 format_value(value, s.value(r, wk)));
      }
    }
  }
  if (reading.tasks.empty()) {
    w.flush();
    return w.end();
  }
  std::array<TaskSeriesSet, kTaskFamilyCount> sets{};
  for (std::size_t i = 0; i < kTaskFamilyCount; ++i) {
    sets[i] = task_series(static_cast<TaskFamily>(i));
  }
  for (std::size_t i = 0; i < kTaskFamilyCount; ++i) {
    const TaskSeriesSet& s = sets[i];
    const FamilySpec& spec = kTaskSpecs[i];
    w.family(spec.name, spec.help, type_name(spec.type));
    if (s.histogram != nullptr) {
      for (std::size_t k = 0; k < reading.tasks.size(); ++k) {
        write_histogram(w, spec.name, own[first_task + k], consts,
                        reading.histogram(s.histogram(reading.tasks[k])));
      }
      continue;
    }
    std::array<std::array<char, 32>, 2> kind_buf{};
    const std::array<std::string_view, 2> kinds = {kind_label(kind_buf[0], s.scalars[0].kind),
                                                   kind_label(kind_buf[1], s.scalars[1].kind)};
    for (std::size_t k = 0; k < reading.tasks.size(); ++k) {
      for (std::size_t j = 0; j < s.scalars.size(); ++j) {
        if (s.scalars[j].value == nullptr) continue;
        w.sample(spec.name, {}, {own[first_task + k], kinds[j], consts, {}},
                 format_value(value, s.scalars[j].value(reading.tasks[k])));
      }
    }
  }
  bool any_blame = false;
  for (const TaskReading& t : reading.tasks) any_blame = any_blame || !t.blame.empty();
  if (any_blame) {
    w.family(kDelayBlame.name, kDelayBlame.help, type_name(kDelayBlame.type));
    LabelTexts culprits;
    for (std::size_t k = 0; k < reading.tasks.size(); ++k) {
      for (const DelayBlame& b : reading.tasks[k].blame) {
        const std::size_t i = culprits.add("culprit", b.culprit);
        w.sample(kDelayBlame.name, {}, {own[first_task + k], culprits[i], consts, {}},
                 format_value(value, seconds(b.duration)));
      }
    }
  }
  w.flush();
  return w.end();
}

constexpr FamilySpec kRejectedConnections = {
    "spindle_exporter_rejected_connections_total", kCounter,
    "Connections the exporter's HTTP server closed because Options::max_connections were open: "
    "a new connection refused, or the one that had waited longest for a request closed to make "
    "room. Any increase means more clients than the cap, or clients that hold connections "
    "without sending requests."};

constexpr FamilySpec kScrapes = {
    "spindle_exporter_scrapes_total", kCounter,
    "Scrapes the exporter's HTTP server answered (200) before this one, by the body's "
    "encoding: encoding=\"gzip\" for clients that accept it (Prometheus does), "
    "encoding=\"identity\" for the others; the two sum to all scrapes."};

std::size_t write_exporter(const ExporterStats& stats, const std::map<std::string, std::string>& c,
                           std::string& out, const WriteMode& mode) {
  const std::string consts = const_label_text(c);
  const std::size_t estimate = kRejectedConnections.help.size() + kScrapes.help.size() +
                               4 * (kRejectedConnections.name.size() + consts.size()) + 256;
  std::optional<LineWriter> writer;
  start_writer(writer, out, estimate, mode);
  LineWriter& w = *writer;
  NumberBuffer value;
  w.family(kRejectedConnections.name, kRejectedConnections.help,
           type_name(kRejectedConnections.type));
  w.sample(kRejectedConnections.name, {}, {consts, {}, {}, {}},
           format_value(value, as_double(stats.rejected_connections)));
  w.family(kScrapes.name, kScrapes.help, type_name(kScrapes.type));
  w.sample(kScrapes.name, {}, {"encoding=\"gzip\"", consts, {}, {}},
           format_value(value, as_double(stats.scrapes_gzip)));
  w.sample(kScrapes.name, {}, {"encoding=\"identity\"", consts, {}, {}},
           format_value(value, as_double(stats.scrapes_identity)));
  w.flush();
  return w.end();
}

}  // namespace

void append_scrape_text(const ScrapeReading& reading, const std::map<std::string, std::string>& c,
                        std::string& out) {
  write_scrape(reading, c, out, {});
}

std::size_t write_scrape_text_over(const ScrapeReading& reading,
                                   const std::map<std::string, std::string>& c, std::string& out,
                                   std::size_t offset) {
  return write_scrape(reading, c, out, {.offset = offset});
}

void write_scrape_text_chunks(const ScrapeReading& reading,
                              const std::map<std::string, std::string>& c, std::string& scratch,
                              const ChunkSink& sink) {
  write_scrape(reading, c, scratch, {.offset = std::nullopt, .sink = &sink});
}

void append_exporter_families(const ExporterStats& stats,
                              const std::map<std::string, std::string>& c, std::string& out) {
  write_exporter(stats, c, out, {});
}

std::size_t write_exporter_families_over(const ExporterStats& stats,
                                         const std::map<std::string, std::string>& c,
                                         std::string& out, std::size_t offset) {
  return write_exporter(stats, c, out, {.offset = offset});
}

void write_exporter_families_chunks(const ExporterStats& stats,
                                    const std::map<std::string, std::string>& c,
                                    std::string& scratch, const ChunkSink& sink) {
  write_exporter(stats, c, scratch, {.offset = std::nullopt, .sink = &sink});
}

// ---- the same families, series by series (FamilyVisitor) ----------------------

void visit_families(const ScrapeReading& reading, FamilyVisitor& v) {
  // The walk of build_families(), with the values handed over as they are.
  for (std::size_t i = 0; i < kRuntimeFamilyCount; ++i) {
    const RuntimeSeries s = runtime_series(static_cast<RuntimeFamily>(i));
    bool any = false;
    for (const RuntimeReading& r : reading.runtimes) any = any || series_of(s, r) != 0;
    if (!any) continue;
    v.family(kRuntimeSpecs[i]);
    const bool per_worker = s.scope == Scope::kWorker || s.scope == Scope::kWorkerIfStalls;
    for (const RuntimeReading& r : reading.runtimes) {
      const std::size_t n = series_of(s, r);
      for (std::size_t w = 0; w < n; ++w) {
        const std::string worker = per_worker ? std::to_string(w) : std::string();
        const SeriesLabels labels{"runtime", *r.name, per_worker ? "worker" : "", worker};
        if (s.histogram != nullptr) {
          v.histogram(labels, s.histogram(r));
        } else {
          v.value(labels, s.value(r, w));
        }
      }
    }
  }
  if (reading.tasks.empty()) return;
  for (std::size_t i = 0; i < kTaskFamilyCount; ++i) {
    const TaskSeriesSet s = task_series(static_cast<TaskFamily>(i));
    v.family(kTaskSpecs[i]);
    for (const TaskReading& t : reading.tasks) {
      if (s.histogram != nullptr) {
        v.histogram({"monitor", *t.name, "", ""}, reading.histogram(s.histogram(t)));
        continue;
      }
      for (const TaskSeries& series : s.scalars) {
        if (series.value == nullptr) continue;
        v.value({"monitor", *t.name, series.kind.empty() ? "" : "kind", series.kind},
                series.value(t));
      }
    }
  }
  bool any_blame = false;
  for (const TaskReading& t : reading.tasks) any_blame = any_blame || !t.blame.empty();
  if (!any_blame) return;
  v.family(kDelayBlame);
  for (const TaskReading& t : reading.tasks) {
    for (const DelayBlame& b : t.blame) {
      v.value({"monitor", *t.name, "culprit", b.culprit}, seconds(b.duration));
    }
  }
}

void visit_exporter_families(const ExporterStats& stats, FamilyVisitor& v) {
  v.family(kRejectedConnections);
  v.value({}, as_double(stats.rejected_connections));
  v.family(kScrapes);
  v.value({"", "", "encoding", "gzip"}, as_double(stats.scrapes_gzip));
  v.value({"", "", "encoding", "identity"}, as_double(stats.scrapes_identity));
}

}  // namespace spindle::detail
