// spindle/exporter/metrics_collectable.hpp — spindle's metrics as a prometheus::Collectable.
//
//   spindle::MetricsCollectable           reads runtimes and task monitors when scraped
//   spindle::MetricsCollectable::Options  constant labels and the monitor cap
//
// A service that already runs a prometheus-cpp Exposer registers this next
// to its own Registry; PrometheusExporter uses the same class internally.
// The text differs only in who writes it: an Exposer serializes Collect()
// with prometheus-cpp's TextSerializer, PrometheusExporter and text() with
// spindle's own writer, twenty times faster (100 monitors: ~6.5 ms against
// ~0.3 ms on a 2-core machine; bench/README.md has the figures). Both are
// the Prometheus text format with the same series, labels and values;
// text() writes it straight from what it read, without building
// prometheus-cpp objects (a scrape of 1,000 monitors costs about ten times
// one of 100).
//
// protobuf() is the same reading in Prometheus' protobuf exposition
// (delimited io.prometheus.client.MetricFamily messages), where every
// histogram is also a native histogram (schema 5; exporter/METRICS.md,
// "Native histograms"): what a Prometheus started with
// --enable-feature=native-histograms asks for. A prometheus-cpp Exposer
// serves only the text, so its histograms stay classic.
//
// Example:
//   prometheus::Exposer exposer("0.0.0.0:8080");
//   auto registry = std::make_shared<prometheus::Registry>();   // the service's own metrics
//   exposer.RegisterCollectable(registry);
//
//   auto spindle_metrics = std::make_shared<spindle::MetricsCollectable>(
//       spindle::MetricsCollectable::Options{.const_labels = {{"service", "checkout"}}});
//   spindle_metrics->add_runtime(rt.handle());
//   spindle_metrics->add_monitor(checkout_monitor);
//   exposer.RegisterCollectable(spindle_metrics);   // the Exposer keeps a weak_ptr: keep it alive
//
// What a scrape returns: the series of exporter/METRICS.md. Collect() reads
// every registered source at that moment: TaskMonitor::cumulative() for the
// task counters and histograms, Handle::counters() for the runtime's. Each
// family is present only when it has a series (no monitor: no spindle_task_*
// family; a runtime without poll_timing(true): no runtime histograms; no
// stall detector: no spindle_runtime_stalls_total). Names only ever become
// label values, which the text serializer escapes, so any valid UTF-8 name
// is accepted.
//
// Lifetime: the collectable holds a TaskMonitor copy and a Handle for each
// source, which keep their shared state alive: a scrape after the runtime
// was destroyed reads its final counters. A StallDetector is shared
// (std::shared_ptr): the registration keeps it alive, so dropping the
// caller's pointer first is safe; it is released by remove_runtime() or
// the collectable's destruction (which then stops its watchdog thread if
// it was the last owner).
//
// Thread safety: every member function is safe to call from any thread,
// concurrently with scrapes (Collect()). A mutex guards the set of sources;
// Collect() copies the sources under it and reads them after releasing it,
// so adds and removes never wait for a scrape's reading of the monitors.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/monitor/stall_detector.hpp"
#include "spindle/monitor/task_monitor.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle {

namespace detail {
class Sources;
class ReadingPool;
}  // namespace detail

class MetricsCollectable final : public prometheus::Collectable {
 public:
  struct Options {
    /// Labels added to every series, e.g. {{"service", "checkout"}}. Names
    /// must be valid Prometheus label names, not reserved (`__` prefix,
    /// `le`, `quantile`) and not one of spindle's own labels (`runtime`,
    /// `worker`, `monitor`, `kind`, `culprit`, `encoding`); values must be valid UTF-8.
    std::map<std::string, std::string> const_labels{};
    /// The most task monitors that may be registered at once (bounds the
    /// `monitor` label's cardinality).
    std::size_t max_monitors = 1000;
  };

  /// No constant labels, at most 1,000 monitors.
  MetricsCollectable();
  /// Throws ConfigError naming the first invalid constant label.
  explicit MetricsCollectable(Options options);
  ~MetricsCollectable() override;
  MetricsCollectable(const MetricsCollectable&) = delete;
  MetricsCollectable& operator=(const MetricsCollectable&) = delete;

  /// Exports `runtime`'s counters under the label runtime="<name>", and the
  /// per-worker stall counts of `stalls` when given (it must watch the same
  /// runtime; the registration shares it, see Lifetime). Throws UsageError
  /// for an empty Handle, an empty or non-UTF-8 name, a name already
  /// registered, a runtime already registered under another name, or a
  /// detector of another runtime.
  void add_runtime(const Handle& runtime, std::string name = "main",
                   std::shared_ptr<const StallDetector> stalls = nullptr);
  /// Stops exporting the runtime named `name`; false when there is none.
  /// Once it returns, its stall detector is no longer read nor shared.
  bool remove_runtime(std::string_view name);

  /// Exports `monitor` under monitor="<its name>". Throws UsageError when
  /// its name is empty or not UTF-8, when this monitor is already
  /// registered, when another monitor with the same name is, or when
  /// max_monitors monitors are registered.
  void add_monitor(const TaskMonitor& monitor);
  /// Stops exporting `monitor` (its series disappear from the next
  /// scrape); false when it was not registered.
  bool remove_monitor(const TaskMonitor& monitor);
  /// Stops exporting the monitor named `name`; false when there is none.
  bool remove_monitor(std::string_view name);

  /// Monitors and runtimes registered now.
  [[nodiscard]] std::size_t monitor_count() const;
  [[nodiscard]] std::size_t runtime_count() const;
  /// The constant labels and cap this collectable was built with.
  [[nodiscard]] const Options& options() const noexcept { return options_; }

  /// Reads every source now and returns its metric families (prometheus-cpp
  /// calls this on each scrape). Never throws: a source that cannot be read
  /// is left out of this scrape. Does not block the runtime's workers.
  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override;

  /// The same reading in the Prometheus text format (version 0.0.4),
  /// written by spindle's own serializer straight from the runtimes' and
  /// monitors' figures: the same bytes as serializing Collect(), the
  /// spindle_* part of what PrometheusExporter serves, and usable to serve
  /// the metrics from another HTTP server. Throws std::bad_alloc when the
  /// text cannot be allocated.
  [[nodiscard]] std::string text() const;
  /// The flight-recorder trace (Handle::write_trace) of the registered
  /// runtime named `runtime`, or of the first registered runtime that has a
  /// recorder when `runtime` is empty; nullopt when there is none.
  [[nodiscard]] std::optional<std::string> trace(std::string_view runtime = {}) const;
  /// text() appended to `out`: a server that keeps `out` from scrape to
  /// scrape reuses its memory. Throws as text() (`out` then holds a prefix
  /// of whole lines).
  void append_text(std::string& out) const;
  /// The text written over `buffer` from `offset` (<= buffer.size()),
  /// which only grows; returns where the text ends (the bytes after it are
  /// left as they were). For a server that keeps one buffer at its largest
  /// size from scrape to scrape: std::string zero-fills every byte it grows
  /// by, and appending to a cleared string grows it by the whole text
  /// (10 MB for 1,000 monitors) on every scrape. PrometheusExporter does
  /// this. Throws as text().
  std::size_t write_text_over(std::string& buffer, std::size_t offset = 0) const;
  /// The text in pieces of ~128 KiB to `sink`, `scratch` being the buffer
  /// they are written in: for a server that compresses or streams the
  /// text, which then never exists whole (and whose pieces stay in the
  /// CPU's cache). PrometheusExporter does this for gzip scrapes. Throws
  /// what text() or `sink` throw.
  void write_text_in_chunks(std::string& scratch,
                            const std::function<void(std::string_view chunk)>& sink) const;

  /// The HTTP Content-Type of protobuf(): Prometheus' delimited protobuf
  /// exposition, exactly as Prometheus names it in its Accept header.
  static constexpr std::string_view kProtobufContentType =
      "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
      "encoding=delimited";
  /// The same reading in Prometheus' protobuf exposition format: a stream
  /// of io.prometheus.client.MetricFamily messages, each preceded by its
  /// length (varint), with the same families, series, labels and values as
  /// text(), and each histogram as a native histogram too (schema 5;
  /// exporter/METRICS.md, "Native histograms": the mapping of spindle's
  /// buckets and its error bound) next to its classic buckets. What
  /// PrometheusExporter serves to a Prometheus started with
  /// --enable-feature=native-histograms; serve it with
  /// kProtobufContentType from another HTTP server when the client's
  /// Accept header asks for it. Throws std::bad_alloc.
  [[nodiscard]] std::string protobuf() const;
  /// protobuf() written over `buffer` from `offset` (<= buffer.size()),
  /// which only grows; returns where it ends (as write_text_over). Throws
  /// std::bad_alloc.
  std::size_t write_protobuf_over(std::string& buffer, std::size_t offset = 0) const;

 private:
  Options options_;                                // validated constant labels and cap
  std::unique_ptr<detail::Sources> sources_;       // the registered runtimes and monitors
  std::unique_ptr<detail::ReadingPool> readings_;  // a scrape's reading, kept for the next
};

}  // namespace spindle
