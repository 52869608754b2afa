#include "protobuf_format.hpp"

#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "native_histogram.hpp"
#include "prometheus_metrics.pb.h"

namespace spindle::detail {

namespace {

namespace pb = io::prometheus::client;
using google::protobuf::io::CodedOutputStream;

double seconds(std::chrono::nanoseconds d) noexcept { return static_cast<double>(d.count()) / 1e9; }

pb::MetricType proto_type(prometheus::MetricType t) noexcept {
  switch (t) {
    case prometheus::MetricType::Counter:
      return pb::COUNTER;
    case prometheus::MetricType::Gauge:
      return pb::GAUGE;
    case prometheus::MetricType::Histogram:
      return pb::HISTOGRAM;
    case prometheus::MetricType::Summary:
      return pb::SUMMARY;
    case prometheus::MetricType::Untyped:
      break;
  }
  return pb::UNTYPED;
}

// The classic bounds in seconds: the text's `le` values (families.cpp),
// Histogram's power-of-two bounds.
const std::array<double, Histogram::kClassicBounds>& classic_bounds() {
  static const std::array<double, Histogram::kClassicBounds> bounds = [] {
    std::array<double, Histogram::kClassicBounds> b{};
    for (std::size_t c = 0; c < b.size(); ++c) {
      b[c] = seconds(Histogram::upper_bound(Histogram::classic_bucket(c)));
    }
    return b;
  }();
  return bounds;
}

void set(pb::LabelPair& l, std::string_view name, std::string_view value) {
  l.set_name(name.data(), name.size());
  l.set_value(value.data(), value.size());
}

/// Builds each family in one reused message and serializes it into the
/// buffer when the next one begins (or at finish()).
class ProtobufWriter final : public FamilyVisitor {
 public:
  ProtobufWriter(const std::map<std::string, std::string>& const_labels, std::string& out,
                 std::size_t offset)
      : consts_(const_labels), out_(out), end_(std::min(offset, out.size())) {}

  void family(const FamilySpec& spec) override {
    flush();
    family_.set_name(spec.name.data(), spec.name.size());
    family_.set_help(spec.help.data(), spec.help.size());
    family_.set_type(proto_type(spec.type));
    type_ = spec.type;
    open_ = true;
  }

  void value(const SeriesLabels& labels, double v) override {
    pb::Metric& m = metric(labels);
    if (type_ == prometheus::MetricType::Counter) {
      m.mutable_counter()->set_value(v);
    } else {
      m.mutable_gauge()->set_value(v);
    }
  }

  void histogram(const SeriesLabels& labels, const Histogram& h) override {
    pb::Histogram& ph = *metric(labels).mutable_histogram();
    // The classic view: the text's buckets, without +Inf.
    const auto& bounds = classic_bounds();
    std::uint64_t cumulative = 0;
    std::size_t b = 0;
    for (std::size_t c = 0; c < Histogram::kClassicBounds; ++c) {
      for (const std::size_t last = Histogram::classic_bucket(c); b <= last; ++b) {
        cumulative += h.bucket_count(b);
      }
      pb::Bucket& bucket = *ph.add_bucket();
      bucket.set_cumulative_count(cumulative);
      bucket.set_upper_bound(bounds[c]);
    }
    for (; b < Histogram::kBuckets; ++b) cumulative += h.bucket_count(b);
    // _count is the +Inf bucket, as in the text (the same sum of the same counts).
    ph.set_sample_count(cumulative);
    ph.set_sample_sum(seconds(h.sum()));
    // The native view.
    to_native(h, native_);
    ph.set_schema(kNativeSchema);
    ph.set_zero_threshold(kNativeZeroThreshold);
    ph.set_zero_count(native_.zero_count);
    for (const NativeSpan& s : native_.spans) {
      pb::BucketSpan& span = *ph.add_positive_span();
      span.set_offset(s.offset);
      span.set_length(s.length);
    }
    if (native_.spans.empty()) {  // the no-op span: a native histogram without buckets yet
      pb::BucketSpan& span = *ph.add_positive_span();
      span.set_offset(0);
      span.set_length(0);
    }
    ph.mutable_positive_delta()->Reserve(static_cast<int>(native_.deltas.size()));
    for (const std::int64_t d : native_.deltas) ph.add_positive_delta(d);
  }

  /// Serializes the family being built, if any; returns where the bytes end.
  std::size_t finish() {
    flush();
    return end_;
  }

 private:
  // A new series of the current family, with its labels.
  pb::Metric& metric(const SeriesLabels& labels) {
    pb::Metric& m = *family_.add_metric();
    if (!labels.source_name.empty()) set(*m.add_label(), labels.source_name, labels.source_value);
    if (!labels.extra_name.empty()) set(*m.add_label(), labels.extra_name, labels.extra_value);
    for (const auto& [name, v] : consts_) set(*m.add_label(), name, v);
    return m;
  }

  // Writes the family into the buffer (size varint, then the message) and
  // clears it for the next one (keeping its sub-messages for reuse).
  void flush() {
    if (!open_) return;
    const std::size_t size = family_.ByteSizeLong();  // also caches every sub-message's size
    const std::size_t need =
        CodedOutputStream::VarintSize32(static_cast<std::uint32_t>(size)) + size;
    if (out_.size() - end_ < need) {
      // Grow ahead (by half at least), as the text's LineWriter does: a
      // kept buffer stops growing after the largest scrape.
      out_.resize(std::max(end_ + need, out_.size() + std::max(out_.size() / 2, kMinGrowth)));
    }
    auto* p = reinterpret_cast<std::uint8_t*>(out_.data() + end_);
    p = CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(size), p);
    p = family_.SerializeWithCachedSizesToArray(p);
    end_ = static_cast<std::size_t>(reinterpret_cast<char*>(p) - out_.data());
    family_.Clear();
    open_ = false;
  }

  static constexpr std::size_t kMinGrowth = 64 * 1024;  // the least a buffer grows by

  const std::map<std::string, std::string>& consts_;  // labels on every series
  std::string& out_;                                  // the buffer: [0, end_) written
  std::size_t end_;                                   // where the bytes written so far end
  pb::MetricFamily family_;                           // the family being built (reused)
  prometheus::MetricType type_ = prometheus::MetricType::Untyped;  // its type
  bool open_ = false;     // family_ holds a family not yet written
  NativeBuckets native_;  // a histogram's native buckets (reused)
};

}  // namespace

std::size_t write_scrape_protobuf_over(const ScrapeReading& reading,
                                       const std::map<std::string, std::string>& const_labels,
                                       std::string& out, std::size_t offset) {
  ProtobufWriter w(const_labels, out, offset);
  visit_families(reading, w);
  return w.finish();
}

std::size_t write_exporter_protobuf_over(const ExporterStats& stats,
                                         const std::map<std::string, std::string>& const_labels,
                                         std::string& out, std::size_t offset) {
  ProtobufWriter w(const_labels, out, offset);
  visit_exporter_families(stats, w);
  return w.finish();
}

}  // namespace spindle::detail
