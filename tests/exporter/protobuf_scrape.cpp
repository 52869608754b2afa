#include "protobuf_scrape.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace spindle::test {

std::vector<pb::MetricFamily> decode_delimited(std::string_view body) {
  std::vector<pb::MetricFamily> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    // The size prefix: a base-128 varint, low groups first.
    std::uint64_t size = 0;
    int shift = 0;
    bool done = false;
    while (pos < body.size() && shift < 35) {
      const auto byte = static_cast<unsigned char>(body[pos++]);
      size |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) {
        done = true;
        break;
      }
    }
    if (!done || size > body.size() - pos) {
      ADD_FAILURE() << "truncated delimited stream at byte " << pos << " of " << body.size();
      return out;
    }
    pb::MetricFamily f;
    if (!f.ParseFromArray(body.data() + pos, static_cast<int>(size))) {
      ADD_FAILURE() << "a MetricFamily that does not parse at byte " << pos;
      return out;
    }
    pos += size;
    out.push_back(std::move(f));
  }
  return out;
}

const pb::MetricFamily* find_family(const std::vector<pb::MetricFamily>& families,
                                    std::string_view name) {
  for (const pb::MetricFamily& f : families) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

LabelMap labels_of(const pb::Metric& m) {
  LabelMap out;
  for (const pb::LabelPair& l : m.label()) out[l.name()] = l.value();
  return out;
}

std::vector<const pb::Metric*> find_metrics(const pb::MetricFamily& family, const LabelMap& match) {
  std::vector<const pb::Metric*> out;
  for (const pb::Metric& m : family.metric()) {
    const LabelMap labels = labels_of(m);
    bool all = true;
    for (const auto& [k, v] : match) {
      const auto it = labels.find(k);
      all = all && it != labels.end() && it->second == v;
    }
    if (all) out.push_back(&m);
  }
  return out;
}

const pb::Metric* find_metric(const pb::MetricFamily& family, const LabelMap& match) {
  const auto found = find_metrics(family, match);
  if (found.size() != 1) {
    ADD_FAILURE() << found.size() << " metrics of " << family.name() << " match";
    return nullptr;
  }
  return found.front();
}

NativeView NativeView::of(const pb::Histogram& h) {
  NativeView v;
  v.schema = h.schema();
  v.zero_threshold = h.zero_threshold();
  v.zero_count = h.zero_count();
  v.count = h.sample_count();
  for (const pb::BucketSpan& s : h.positive_span()) v.spans.emplace_back(s.offset(), s.length());
  v.deltas.assign(h.positive_delta().begin(), h.positive_delta().end());
  return v;
}

NativeView NativeView::of(const detail::NativeBuckets& b, std::uint64_t count) {
  NativeView v;
  v.schema = detail::kNativeSchema;
  v.zero_threshold = detail::kNativeZeroThreshold;
  v.zero_count = b.zero_count;
  v.count = count;
  for (const detail::NativeSpan& s : b.spans) v.spans.emplace_back(s.offset, s.length);
  v.deltas = b.deltas;
  return v;
}

std::vector<NativeBucketValue> native_buckets(const NativeView& h) {
  std::vector<NativeBucketValue> out;
  out.push_back({-h.zero_threshold, h.zero_threshold, h.zero_count});
  const double per_octave = std::exp2(static_cast<double>(h.schema));
  std::int64_t index = 0;
  std::int64_t count = 0;
  std::size_t d = 0;
  bool first = true;
  for (const auto& [offset, length] : h.spans) {
    index += first ? offset : offset + 1;  // the first span starts at its offset
    first = false;
    for (std::uint32_t k = 0; k < length; ++k, ++index) {
      if (d >= h.deltas.size()) {
        ADD_FAILURE() << "fewer deltas than the spans' buckets";
        return out;
      }
      count += h.deltas[d++];
      EXPECT_GE(count, 0) << "a negative bucket count at index " << index;
      out.push_back({std::exp2(static_cast<double>(index - 1) / per_octave),
                     std::exp2(static_cast<double>(index) / per_octave),
                     static_cast<std::uint64_t>(count)});
    }
    --index;  // the next span's offset counts from the bucket after this one's last
  }
  EXPECT_EQ(d, h.deltas.size()) << "more deltas than the spans' buckets";
  return out;
}

double native_quantile(const NativeView& h, double q) {
  if (h.count == 0) return std::numeric_limits<double>::quiet_NaN();
  const double rank = q * static_cast<double>(h.count);
  const std::vector<NativeBucketValue> buckets = native_buckets(h);
  double cumulative = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    NativeBucketValue b = buckets[i];
    cumulative += static_cast<double>(b.count);
    if (cumulative < rank) continue;
    if (i == 0) b.lower = 0;  // the zero bucket, no negative buckets
    const double before = cumulative - static_cast<double>(b.count);
    return b.lower + (b.upper - b.lower) * ((rank - before) / static_cast<double>(b.count));
  }
  return buckets.back().upper;
}

}  // namespace spindle::test
