// tests/exporter/protobuf_scrape.hpp — reading the protobuf exposition the way Prometheus does.
//
//   spindle::test::decode_delimited  a delimited MetricFamily stream, parsed by the generated code
//   spindle::test::find_family       a decoded family by name
//   spindle::test::find_metric       a family's metric whose labels include given pairs
//   spindle::test::labels_of         a decoded metric's labels as a map
//   spindle::test::NativeView        a native histogram's fields, from a message or NativeBuckets
//   spindle::test::native_quantile   histogram_quantile(q, ·) over a native histogram
//
// Example:
//   auto families = spindle::test::decode_delimited(collectable.protobuf());
//   const auto* f = spindle::test::find_family(families, "spindle_task_poll_duration_seconds");
//   const auto* m = spindle::test::find_metric(*f, {{"monitor", "checkout"}});
//   double p99 = spindle::test::native_quantile(NativeView::of(m->histogram()), 0.99);
//
// native_quantile() is PromQL's histogram_quantile() over a native
// histogram, written here from its documented behaviour (Prometheus 2.42):
// rank = q · count; walk the zero bucket, then the positive buckets by
// index, to the first whose cumulative count reaches the rank; interpolate
// linearly inside it; the zero bucket's lower bound is 0 when there are no
// negative buckets. Bucket bounds come from the schema alone, computed here
// and not by the exporter's code: bucket i is (2^((i-1)·2^-s), 2^(i·2^-s)].
// The real Prometheus check is prometheus_scrape_test.sh --native-histograms.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "native_histogram.hpp"
#include "prometheus_metrics.pb.h"
#include "scrape_support.hpp"

namespace spindle::test {

namespace pb = io::prometheus::client;

/// The families of a delimited stream, in order. Fails the test (and
/// returns those decoded before) on a truncated or malformed message.
std::vector<pb::MetricFamily> decode_delimited(std::string_view body);

/// The family named `name`, or null.
const pb::MetricFamily* find_family(const std::vector<pb::MetricFamily>& families,
                                    std::string_view name);
/// The metrics of `family` whose labels include every pair of `match`.
std::vector<const pb::Metric*> find_metrics(const pb::MetricFamily& family, const LabelMap& match);
/// The one such metric; fails the test (and returns null) when there is not exactly one.
const pb::Metric* find_metric(const pb::MetricFamily& family, const LabelMap& match);
/// A metric's labels.
LabelMap labels_of(const pb::Metric& m);

/// A native histogram, as histogram_quantile() sees it.
struct NativeView {
  std::int32_t schema = 0;
  double zero_threshold = 0;
  std::uint64_t zero_count = 0;
  std::uint64_t count = 0;                                    // all observations
  std::vector<std::pair<std::int32_t, std::uint32_t>> spans;  // offset, length
  std::vector<std::int64_t> deltas;                           // count deltas, across spans

  static NativeView of(const pb::Histogram& h);
  /// The exporter's mapping (detail::to_native), with schema and threshold
  /// as the exporter writes them.
  static NativeView of(const detail::NativeBuckets& b, std::uint64_t count);
};

/// One native bucket: (lower, upper] and its count (the zero bucket first).
struct NativeBucketValue {
  double lower = 0;
  double upper = 0;
  std::uint64_t count = 0;
};
/// The buckets of `h`, decoded from its spans and deltas (negative
/// absolute counts fail the test).
std::vector<NativeBucketValue> native_buckets(const NativeView& h);

/// histogram_quantile(q, h) as PromQL computes it (see above); NaN when empty.
double native_quantile(const NativeView& h, double q);

}  // namespace spindle::test
