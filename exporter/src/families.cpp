#include "families.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

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

double seconds(std::chrono::nanoseconds d) noexcept { return static_cast<double>(d.count()) / 1e9; }

double as_double(std::uint64_t n) noexcept { return static_cast<double>(n); }

// The `le` bounds in seconds, computed once.
const std::array<double, Histogram::kFiniteBuckets>& bucket_bounds() {
  static const std::array<double, Histogram::kFiniteBuckets> bounds = [] {
    std::array<double, Histogram::kFiniteBuckets> b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = seconds(Histogram::upper_bound(i));
    return b;
  }();
  return bounds;
}

ClientMetric& new_series(MetricFamily& f, LabelList labels) {
  ClientMetric& m = f.metric.emplace_back();
  m.label = std::move(labels);
  return m;
}

void add_counter(MetricFamily& f, LabelList labels, double v) {
  new_series(f, std::move(labels)).counter.value = v;
}

void add_gauge(MetricFamily& f, LabelList labels, double v) {
  new_series(f, std::move(labels)).gauge.value = v;
}

void add_histogram(MetricFamily& f, LabelList labels, const Histogram& h) {
  ClientMetric& m = new_series(f, std::move(labels));
  const auto& bounds = bucket_bounds();
  m.histogram.bucket.resize(Histogram::kBuckets);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBuckets; ++i) {
    cumulative += h.bucket_count(i);
    m.histogram.bucket[i].cumulative_count = cumulative;
    m.histogram.bucket[i].upper_bound =
        i < Histogram::kFiniteBuckets ? bounds[i] : std::numeric_limits<double>::infinity();
  }
  // _count equals the +Inf bucket, as Prometheus requires.
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = seconds(h.sum());
}

}  // namespace

FamilyTable::FamilyTable(std::span<const FamilySpec> specs) {
  families_.resize(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    families_[i].name = std::string(specs[i].name);
    families_[i].help = std::string(specs[i].help);
    families_[i].type = specs[i].type;
  }
}

void FamilyTable::reserve(std::size_t n) {
  for (MetricFamily& f : families_) f.metric.reserve(n);
}

void FamilyTable::move_nonempty_to(std::vector<MetricFamily>& out) {
  for (MetricFamily& f : families_) {
    if (!f.metric.empty()) out.push_back(std::move(f));
  }
}

SeriesLabels::SeriesLabels(std::string_view label, std::string_view value,
                           const std::map<std::string, std::string>& constant) {
  base_.reserve(constant.size() + 2);  // room for with()'s extra label
  base_.push_back({std::string(label), std::string(value)});
  for (const auto& [name, v] : constant) base_.push_back({name, v});
}

LabelList SeriesLabels::with(std::string_view name, std::string_view value) const {
  LabelList l;
  l.reserve(base_.size() + 1);
  l.push_back(base_.front());
  l.push_back({std::string(name), std::string(value)});
  l.insert(l.end(), base_.begin() + 1, base_.end());
  return l;
}

FamilyTable make_task_families() { return FamilyTable(kTaskSpecs); }

void append_task_series(FamilyTable& t, const SeriesLabels& labels, const TaskMetrics& m,
                        std::chrono::nanoseconds slow_poll_threshold,
                        std::chrono::nanoseconds long_delay_threshold) {
  const LabelList& base = labels.base();
  add_counter(t[kTaskInstrumented], base, as_double(m.instrumented_count));
  add_counter(t[kTaskDropped], base, as_double(m.dropped_count));
  // The two counters are read one after the other while tasks run: never
  // report a negative number of tasks.
  add_gauge(t[kTaskLive], base,
            m.instrumented_count > m.dropped_count
                ? as_double(m.instrumented_count - m.dropped_count)
                : 0.0);
  add_counter(t[kTaskFirstPolls], base, as_double(m.first_poll_count));
  add_counter(t[kTaskFirstPollDelay], base, seconds(m.total_first_poll_delay));
  add_counter(t[kTaskPolls], labels.with("kind", "fast"), as_double(m.total_fast_poll_count));
  add_counter(t[kTaskPolls], labels.with("kind", "slow"), as_double(m.total_slow_poll_count));
  add_counter(t[kTaskPollTime], labels.with("kind", "fast"), seconds(m.total_fast_poll_duration));
  add_counter(t[kTaskPollTime], labels.with("kind", "slow"), seconds(m.total_slow_poll_duration));
  add_histogram(t[kTaskPollDuration], base, m.poll_duration_histogram);
  add_counter(t[kTaskScheduled], labels.with("kind", "short"),
              as_double(m.total_short_delay_count));
  add_counter(t[kTaskScheduled], labels.with("kind", "long"), as_double(m.total_long_delay_count));
  add_counter(t[kTaskScheduledTime], labels.with("kind", "short"),
              seconds(m.total_short_delay_duration));
  add_counter(t[kTaskScheduledTime], labels.with("kind", "long"),
              seconds(m.total_long_delay_duration));
  add_histogram(t[kTaskScheduledDelay], base, m.scheduled_delay_histogram);
  add_counter(t[kTaskIdled], base, as_double(m.total_idled_count));
  add_counter(t[kTaskIdleTime], base, seconds(m.total_idle_duration));
  add_histogram(t[kTaskIdleDuration], base, m.idle_duration_histogram);
  add_gauge(t[kTaskMaxIdle], base, seconds(m.max_idle_duration));
  const std::uint64_t self_wakes = std::min(m.total_self_wake_count, m.total_wake_count);
  add_counter(t[kTaskWakes], labels.with("kind", "self"), as_double(self_wakes));
  add_counter(t[kTaskWakes], labels.with("kind", "other"),
              as_double(m.total_wake_count - self_wakes));
  add_counter(t[kTaskNeverYielded], base, as_double(m.total_never_yielded_count));
  add_gauge(t[kTaskSlowPollThreshold], base, seconds(slow_poll_threshold));
  add_gauge(t[kTaskLongDelayThreshold], base, seconds(long_delay_threshold));
}

FamilyTable make_runtime_families() { return FamilyTable(kRuntimeSpecs); }

void append_runtime_series(FamilyTable& t, const SeriesLabels& labels, const RuntimeCounters& c,
                           const RuntimeExtras& extras) {
  const LabelList& base = labels.base();
  add_gauge(t[kRtWorkers], base, as_double(c.workers.size()));
  add_gauge(t[kRtLiveTasks], base, as_double(c.live_tasks));
  add_counter(t[kRtSpawned], base, as_double(c.spawned_tasks));
  Histogram polls;
  Histogram delays;
  for (std::size_t i = 0; i < c.workers.size(); ++i) {
    const WorkerCounters& w = c.workers[i];
    const std::string worker = std::to_string(i);
    add_counter(t[kRtPolls], labels.with("worker", worker), as_double(w.polls));
    add_counter(t[kRtBusy], labels.with("worker", worker), seconds(w.busy));
    add_counter(t[kRtParks], labels.with("worker", worker), as_double(w.parks));
    add_counter(t[kRtNoops], labels.with("worker", worker), as_double(w.noops));
    add_counter(t[kRtSteals], labels.with("worker", worker), as_double(w.steals));
    add_counter(t[kRtStealOps], labels.with("worker", worker), as_double(w.steal_operations));
    add_counter(t[kRtLocalSchedules], labels.with("worker", worker), as_double(w.local_schedules));
    add_counter(t[kRtOverflows], labels.with("worker", worker), as_double(w.overflows));
    add_counter(t[kRtForcedYields], labels.with("worker", worker),
                as_double(w.budget_forced_yields));
    add_counter(t[kRtIoReady], labels.with("worker", worker), as_double(w.io_driver_ready));
    add_gauge(t[kRtLocalQueue], labels.with("worker", worker), as_double(w.local_queue_depth));
    if (extras.stalls != nullptr) {
      const std::uint64_t n = i < extras.stalls->size() ? (*extras.stalls)[i] : 0;
      add_counter(t[kRtStalls], labels.with("worker", worker), as_double(n));
    }
    polls += w.poll_durations;
    delays += w.scheduled_delays;
  }
  add_counter(t[kRtRemoteSchedules], base, as_double(c.remote_schedules));
  add_gauge(t[kRtGlobalQueue], base, as_double(c.global_queue_depth));
  add_gauge(t[kRtBlockingThreads], base, as_double(c.blocking_threads));
  add_gauge(t[kRtIdleBlockingThreads], base, as_double(c.idle_blocking_threads));
  add_gauge(t[kRtBlockingQueue], base, as_double(c.blocking_queue_depth));
  add_gauge(t[kRtMaxBlockingThreads], base, as_double(extras.max_blocking_threads));
  add_counter(t[kRtUnhandled], base, as_double(c.unhandled_exceptions));
  add_gauge(t[kRtUptime], base, seconds(c.elapsed));
  if (extras.poll_timing) {
    add_histogram(t[kRtPollDuration], base, polls);
    add_histogram(t[kRtScheduledDelay], base, delays);
  }
}

}  // namespace spindle::detail
