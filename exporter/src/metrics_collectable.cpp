#include "spindle/exporter/metrics_collectable.hpp"

#include <exception>
#include <utility>

#include "families.hpp"
#include "sources.hpp"
#include "text_format.hpp"
#include "validate.hpp"

namespace spindle {

namespace {

MetricsCollectable::Options validated(MetricsCollectable::Options options) {
  detail::check_const_labels(options.const_labels);
  return options;
}

}  // namespace

MetricsCollectable::MetricsCollectable() : MetricsCollectable(Options{}) {}

MetricsCollectable::MetricsCollectable(Options options)
    : options_(validated(std::move(options))),
      sources_(std::make_unique<detail::Sources>(options_.max_monitors)) {}

MetricsCollectable::~MetricsCollectable() = default;

void MetricsCollectable::add_runtime(const Handle& runtime, std::string name,
                                     const StallDetector* stalls) {
  sources_->add_runtime(runtime, std::move(name), stalls);
}

bool MetricsCollectable::remove_runtime(std::string_view name) {
  return sources_->remove_runtime(name);
}

void MetricsCollectable::add_monitor(const TaskMonitor& monitor) { sources_->add_monitor(monitor); }

bool MetricsCollectable::remove_monitor(const TaskMonitor& monitor) {
  return sources_->remove_monitor(monitor);
}

bool MetricsCollectable::remove_monitor(std::string_view name) {
  return sources_->remove_monitor(name);
}

std::size_t MetricsCollectable::monitor_count() const { return sources_->monitor_count(); }

std::size_t MetricsCollectable::runtime_count() const { return sources_->runtime_count(); }

std::vector<prometheus::MetricFamily> MetricsCollectable::Collect() const {
  // prometheus-cpp calls this on a civetweb thread, which an exception would
  // terminate: whatever fails is left out of this scrape instead.
  std::vector<prometheus::MetricFamily> out;
  try {
    const detail::Sources::Snapshot snap = sources_->snapshot();

    detail::FamilyTable runtime_families = detail::make_runtime_families();
    runtime_families.reserve(snap.runtimes.size());
    for (const detail::Sources::RuntimeReading& r : snap.runtimes) {
      try {
        // Handle reads the runtime's shared state, which outlives its
        // workers: during and after shutdown these are the final values.
        const RuntimeCounters counters = r.handle.counters();
        detail::RuntimeExtras extras;
        extras.max_blocking_threads = r.handle.max_blocking_threads();
        extras.poll_timing = r.handle.poll_timing();
        extras.stalls = r.stalls ? &*r.stalls : nullptr;
        append_runtime_series(runtime_families,
                              detail::SeriesLabels("runtime", r.name, options_.const_labels),
                              counters, extras);
      } catch (const std::exception&) {
        // This runtime could not be read now; the others still are.
      }
    }

    detail::FamilyTable task_families = detail::make_task_families();
    task_families.reserve(snap.monitors.size() * 2);  // kind-split families have two series
    for (const TaskMonitor& m : snap.monitors) {
      try {
        append_task_series(task_families,
                           detail::SeriesLabels("monitor", m.name(), options_.const_labels),
                           m.cumulative(), m.slow_poll_threshold(), m.long_delay_threshold());
      } catch (const std::exception&) {
        // As above, for one monitor.
      }
    }

    runtime_families.move_nonempty_to(out);
    task_families.move_nonempty_to(out);
  } catch (const std::exception&) {
    out.clear();  // out of memory: an empty scrape rather than a dead server
  }
  return out;
}

std::string MetricsCollectable::text() const { return detail::text_format(Collect()); }

}  // namespace spindle
