// Internal: spindle's metric families — one definition, two writers.
//
//   spindle::detail::ScrapeReading        what one scrape read from the runtimes and monitors
//   spindle::detail::read_sources         takes that reading from a Sources::Snapshot
//   spindle::detail::build_families       the reading as prometheus-cpp MetricFamilies
//                                         (MetricsCollectable::Collect(), for an Exposer)
//   spindle::detail::append_scrape_text   the reading straight to the text format (the endpoint
//                                         and MetricsCollectable::text())
//   spindle::detail::append_exporter_families  the HTTP server's own series
//   spindle::detail::FamilyVisitor        the same families, series by series, for other
//                                         writers (the protobuf exposition: protobuf_format.hpp)
//   spindle::detail::visit_families / visit_exporter_families  walk them in that order
//
// The names, types and help texts here are the contract of
// exporter/METRICS.md. Each family is a row of a table (families.cpp): its
// spec and how to get each of its series' values from a reading. Both
// writers walk the same table in the same order — families in table order,
// then sources in order (runtimes as registered, monitors by name), then a
// family's series of that source — so build_families() followed by
// text_format() and append_scrape_text() write the same bytes
// (tests/exporter/text_format_test.cpp checks it). A family is never
// emitted empty.
//
// Why two: an Exposer needs prometheus-cpp objects, and building them
// costs more than writing the text (1,000 monitors: ~24,000 ClientMetrics,
// each with its own label vector, and megabytes that malloc gives back to
// the kernel and faults in again on every scrape). The endpoint writes the
// text from the reading, with each source's label block escaped once.
//
// Values: counts as they are; durations in seconds; histograms in the
// classic view: one bucket per power-of-two bound of spindle::Histogram
// (le = 2^k ns for k = 6…36, in seconds: Histogram::classic_bucket()) plus
// the +Inf bucket, as prometheus-cpp's own histograms do.
//
// Thread safety: the functions keep no state between calls.
#pragma once

#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sources.hpp"
#include "spindle/monitor/task_metrics.hpp"
#include "spindle/runtime/counters.hpp"
#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/histogram.hpp"
#include "text_format.hpp"

namespace spindle::detail {

/// A family's fixed parts.
struct FamilySpec {
  std::string_view name;        // spindle_..., see METRICS.md
  prometheus::MetricType type;  // counter, gauge or histogram
  std::string_view help;        // what it means and how to read it
};

/// What one scrape read. Holds the snapshot, whose TaskMonitor copies own
/// the names the task readings point to.
struct ScrapeReading {
  struct Runtime {
    const std::string* name = nullptr;                   // the `runtime` label (in the snapshot)
    RuntimeCounters counters;                            // Handle::counters()
    std::size_t max_blocking_threads = 0;                // the blocking pool's cap
    bool poll_timing = false;                            // whether the histograms are kept
    const std::vector<std::uint64_t>* stalls = nullptr;  // per-worker reports, or none
    Histogram polls;                                     // every worker's poll durations
    Histogram delays;                                    // every worker's scheduled delays
  };
  /// A task histogram without its empty ends: the counts of buckets
  /// [lo, lo + size) sit in ScrapeReading::buckets from `offset`. A
  /// monitor's durations cluster in a few dozen of Histogram's 302
  /// buckets, so a reading of 1,000 monitors is ~0.5 MB instead of 7 MB
  /// (three whole histograms each), and stays in the caches while the
  /// families walk it (see histogram()).
  struct SparseHistogram {
    std::size_t offset = 0;           // into ScrapeReading::buckets
    std::uint16_t lo = 0;             // the first bucket kept
    std::uint16_t size = 0;           // buckets kept
    std::chrono::nanoseconds sum{0};  // the sum of the observations
  };
  /// A monitor's cumulative figures: TaskMetrics without its histograms
  /// (those are in `poll`, `scheduled`, `idle`).
  struct TaskTotals {
    std::uint64_t instrumented_count = 0;
    std::uint64_t dropped_count = 0;
    std::uint64_t first_poll_count = 0;
    std::chrono::nanoseconds total_first_poll_delay{0};
    std::uint64_t total_idled_count = 0;
    std::chrono::nanoseconds total_idle_duration{0};
    std::chrono::nanoseconds max_idle_duration{0};
    std::uint64_t total_fast_poll_count = 0;
    std::chrono::nanoseconds total_fast_poll_duration{0};
    std::uint64_t total_slow_poll_count = 0;
    std::chrono::nanoseconds total_slow_poll_duration{0};
    std::uint64_t total_short_delay_count = 0;
    std::chrono::nanoseconds total_short_delay_duration{0};
    std::uint64_t total_long_delay_count = 0;
    std::chrono::nanoseconds total_long_delay_duration{0};
    std::uint64_t total_wake_count = 0;
    std::uint64_t total_self_wake_count = 0;
    std::uint64_t total_never_yielded_count = 0;
    std::vector<DelayBlame> delay_blame;  // all of it, largest first
  };
  struct Task {
    const std::string* name = nullptr;  // the `monitor` label (in the snapshot)
    TaskTotals metrics;                 // TaskMonitor::cumulative(), less its histograms
    SparseHistogram poll;               // its poll_duration_histogram
    SparseHistogram scheduled;          // its scheduled_delay_histogram
    SparseHistogram idle;               // its idle_duration_histogram
    std::chrono::nanoseconds slow_poll_threshold{0};
    std::chrono::nanoseconds long_delay_threshold{0};
    std::vector<DelayBlame> blame;  // as exported (Sources::exported_blame); empty: none
  };

  /// The whole Histogram of `h` (a Task's, of this reading).
  [[nodiscard]] Histogram histogram(const SparseHistogram& h) const noexcept;

  Sources::Snapshot snapshot;          // keeps the sources (and their names) alive
  std::vector<Runtime> runtimes;       // those that could be read, in registration order
  std::vector<Task> tasks;             // those that could be read, by name
  std::vector<std::uint64_t> buckets;  // the tasks' histograms' kept bucket counts
};

/// A ScrapeReading kept from one scrape to the next, so that a scrape of
/// 1,000 monitors reuses the last one's ~1 MB of vectors instead of
/// getting them from malloc, which hands such sizes back to the kernel on
/// free (the next scrape then page-faults all of it in again). One is
/// kept; concurrent scrapes beyond it get a new one. Thread-safe.
class ReadingPool {
 public:
  /// A reading to fill (its vectors empty, their capacity kept). Throws std::bad_alloc.
  [[nodiscard]] std::unique_ptr<ScrapeReading> take();
  /// Gives `r` back: its snapshot is released now (the TaskMonitor and
  /// Handle copies must not outlive the scrape), its memory kept.
  void give_back(std::unique_ptr<ScrapeReading> r) noexcept;

 private:
  Mutex mu_;                                                      // guards spare_
  std::unique_ptr<ScrapeReading> spare_ SPINDLE_GUARDED_BY(mu_);  // the kept one, or null
};

/// take() and give_back() around a scope.
class PooledReading {
 public:
  explicit PooledReading(ReadingPool& pool) : pool_(pool), r_(pool.take()) {}
  ~PooledReading() { pool_.give_back(std::move(r_)); }
  PooledReading(const PooledReading&) = delete;
  PooledReading& operator=(const PooledReading&) = delete;
  ScrapeReading& operator*() const noexcept { return *r_; }

 private:
  ReadingPool& pool_;
  std::unique_ptr<ScrapeReading> r_;
};

/// Reads every source of `snapshot` now (a source that throws is left
/// out). Throws std::bad_alloc.
void read_sources(Sources::Snapshot snapshot, ScrapeReading& out);
/// The same, and the exported delay blame (needs the Sources' culprit choice).
void read_sources(const Sources& sources, ScrapeReading& out);

/// The reading as prometheus-cpp families: runtime families, then task
/// families, the empty ones left out. Throws std::bad_alloc.
[[nodiscard]] std::vector<prometheus::MetricFamily> build_families(
    const ScrapeReading& reading, const std::map<std::string, std::string>& const_labels);

/// Appends the reading in the text format: exactly
/// text_format(build_families(reading, const_labels)). Throws what growing
/// `out` throws (`out` then holds a prefix of whole lines).
void append_scrape_text(const ScrapeReading& reading,
                        const std::map<std::string, std::string>& const_labels, std::string& out);
/// The same text written over `out` from `offset` (LineWriter's overwrite
/// mode: `out` only grows); returns where the text ends. Throws the same.
std::size_t write_scrape_text_over(const ScrapeReading& reading,
                                   const std::map<std::string, std::string>& const_labels,
                                   std::string& out, std::size_t offset);
/// The same text in pieces of ~128 KiB to `sink`, with `scratch` as the
/// buffer (LineWriter's chunked mode). Throws what growing `scratch` or
/// `sink` throw.
void write_scrape_text_chunks(const ScrapeReading& reading,
                              const std::map<std::string, std::string>& const_labels,
                              std::string& scratch, const ChunkSink& sink);

/// The HTTP server's own figures (PrometheusExporter's endpoint only).
struct ExporterStats {
  std::uint64_t rejected_connections = 0;  // closed because max_connections were open
  std::uint64_t scrapes_identity = 0;      // scrapes answered (200) with the text as is
  std::uint64_t scrapes_gzip = 0;          // ... gzip-compressed
};

/// Appends spindle_exporter_* (METRICS.md, "The exporter's own endpoint")
/// with the constant labels. Throws what growing `out` throws.
void append_exporter_families(const ExporterStats& stats,
                              const std::map<std::string, std::string>& const_labels,
                              std::string& out);
/// The same written over `out` from `offset`; returns where it ends.
std::size_t write_exporter_families_over(const ExporterStats& stats,
                                         const std::map<std::string, std::string>& const_labels,
                                         std::string& out, std::size_t offset);
/// The same in pieces to `sink`.
void write_exporter_families_chunks(const ExporterStats& stats,
                                    const std::map<std::string, std::string>& const_labels,
                                    std::string& scratch, const ChunkSink& sink);

/// One series' labels before the constant ones: its source's label
/// (`runtime` or `monitor`) and, in some families, one more (`worker`,
/// `kind`, `culprit`, `encoding`; extra_name empty: none). The views are
/// valid during the call that receives them.
struct SeriesLabels {
  std::string_view source_name;   // "runtime" or "monitor"; empty for the exporter's own
  std::string_view source_value;  // the runtime's or monitor's name
  std::string_view extra_name;    // the second label's name, or empty
  std::string_view extra_value;   // its value
};

/// Receives the families of a reading as the writers above write them:
/// the same families (empty ones left out), names, types, help texts,
/// series and values, in the same order. The visitor adds the constant
/// labels itself. Its calls may throw; the walk then stops.
class FamilyVisitor {
 public:
  /// A family begins; its series follow until the next family() or the end.
  virtual void family(const FamilySpec& spec) = 0;
  /// A series of a counter or gauge family, with its value.
  virtual void value(const SeriesLabels& labels, double v) = 0;
  /// A series of a histogram family: the Histogram itself (nanoseconds;
  /// the writers export seconds).
  virtual void histogram(const SeriesLabels& labels, const Histogram& h) = 0;

 protected:
  ~FamilyVisitor() = default;
};

/// Walks the reading's families (those of append_scrape_text) through `v`.
void visit_families(const ScrapeReading& reading, FamilyVisitor& v);
/// Walks the exporter's own families (those of append_exporter_families).
void visit_exporter_families(const ExporterStats& stats, FamilyVisitor& v);

}  // namespace spindle::detail
