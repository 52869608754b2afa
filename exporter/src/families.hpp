// Internal: turning spindle's figures into prometheus-cpp MetricFamilies.
//
// The names, types and help texts here are the contract of
// exporter/METRICS.md. Each scrape builds one FamilyTable per layer (task,
// runtime), appends a series per monitor / runtime / worker, and hands the
// families that got at least one series to the serializer: a family is
// never emitted empty.
//
// Values: counts as they are; durations in seconds; histograms with one
// bucket per finite spindle::Histogram bound (le = 2^i µs, in seconds) plus
// the +Inf bucket, as prometheus-cpp's own histograms do.
#pragma once

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/monitor/task_metrics.hpp"
#include "spindle/runtime/counters.hpp"
#include "spindle/runtime/histogram.hpp"

namespace spindle::detail {

using LabelList = std::vector<prometheus::ClientMetric::Label>;

/// A family's fixed parts.
struct FamilySpec {
  std::string_view name;        // spindle_..., see METRICS.md
  prometheus::MetricType type;  // counter, gauge or histogram
  std::string_view help;        // what it means and how to read it
};

/// Families under construction, in a fixed order.
class FamilyTable {
 public:
  explicit FamilyTable(std::span<const FamilySpec> specs);
  /// The family at index `i` of the specs.
  prometheus::MetricFamily& operator[](std::size_t i) { return families_[i]; }
  /// Reserves room for `n` series in each family.
  void reserve(std::size_t n);
  /// Moves the families that have series to the end of `out`.
  void move_nonempty_to(std::vector<prometheus::MetricFamily>& out);

 private:
  std::vector<prometheus::MetricFamily> families_;  // one per spec
};

/// The labels of one source's series: its own label first, then the constant labels.
class SeriesLabels {
 public:
  /// `label`="`value`" followed by `constant` (already validated).
  SeriesLabels(std::string_view label, std::string_view value,
               const std::map<std::string, std::string>& constant);
  /// The base labels.
  [[nodiscard]] const LabelList& base() const noexcept { return base_; }
  /// The base labels with `name`="`value`" after the source's own label.
  [[nodiscard]] LabelList with(std::string_view name, std::string_view value) const;

 private:
  LabelList base_;  // own label, then the constant labels
};

/// The families of spindle_task_*.
[[nodiscard]] FamilyTable make_task_families();
/// Appends one monitor's series (its cumulative metrics and thresholds).
void append_task_series(FamilyTable& families, const SeriesLabels& labels, const TaskMetrics& m,
                        std::chrono::nanoseconds slow_poll_threshold,
                        std::chrono::nanoseconds long_delay_threshold);

/// What the runtime families need besides the counters.
struct RuntimeExtras {
  std::size_t max_blocking_threads = 0;                // the pool's cap
  bool poll_timing = false;                            // whether the histograms are kept
  const std::vector<std::uint64_t>* stalls = nullptr;  // per-worker stall reports, or none
};

/// The families of spindle_runtime_*.
[[nodiscard]] FamilyTable make_runtime_families();
/// Appends one runtime's series.
void append_runtime_series(FamilyTable& families, const SeriesLabels& labels,
                           const RuntimeCounters& c, const RuntimeExtras& extras);

}  // namespace spindle::detail
