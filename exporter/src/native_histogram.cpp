#include "native_histogram.hpp"

#include <array>
#include <cmath>

namespace spindle::detail {

namespace {

constexpr double kBucketsPerOctave = 1 << kNativeSchema;  // 32

double seconds(std::chrono::nanoseconds d) noexcept { return static_cast<double>(d.count()) / 1e9; }

// The native index of `v` seconds (> 0): the i with 2^((i-1)/32) < v ≤ 2^(i/32).
std::int32_t index_of(double v) noexcept {
  auto i = static_cast<std::int32_t>(std::ceil(std::log2(v) * kBucketsPerOctave));
  // log2 rounds: settle the bound comparisons exactly as the bounds are computed.
  while (native_upper_bound(i) < v) ++i;
  while (native_lower_bound(i) >= v) --i;
  return i;
}

struct Table {
  std::array<double, Histogram::kBuckets> representative{};  // seconds; [0] unused
  std::array<std::int32_t, Histogram::kBuckets> index{};     // [0] unused (the zero bucket)
};

const Table& table() {
  static const Table t = [] {
    Table out;
    for (std::size_t b = 1; b < Histogram::kBuckets; ++b) {
      // The +Inf bucket: where Histogram::quantile() reports its ranks.
      const double v =
          b == Histogram::kFiniteBuckets
              ? seconds(Histogram::upper_bound(Histogram::kFiniteBuckets - 1))
              : (seconds(Histogram::lower_bound(b)) + seconds(Histogram::upper_bound(b))) / 2;
      out.representative[b] = v;
      out.index[b] = index_of(v);
    }
    return out;
  }();
  return t;
}

}  // namespace

double native_upper_bound(std::int32_t index) noexcept {
  return std::exp2(static_cast<double>(index) / kBucketsPerOctave);
}

double native_lower_bound(std::int32_t index) noexcept { return native_upper_bound(index - 1); }

std::int32_t native_index(std::size_t b) noexcept { return table().index[b]; }

double native_representative(std::size_t b) noexcept { return table().representative[b]; }

void to_native(const Histogram& h, NativeBuckets& out) {
  const Table& t = table();
  out.zero_count = h.bucket_count(0);
  out.spans.clear();
  out.deltas.clear();
  std::int64_t previous_count = 0;  // the last bucket's count (deltas run across spans)
  std::int32_t previous_index = 0;  // its index
  for (std::size_t b = 1; b < Histogram::kBuckets; ++b) {
    const std::uint64_t n = h.bucket_count(b);
    if (n == 0) continue;
    const std::int32_t i = t.index[b];
    if (out.spans.empty()) {
      out.spans.push_back({i, 1});
    } else {
      const std::int32_t gap = i - previous_index - 1;  // ≥ 0: indexes strictly increase
      if (gap <= kMaxFilledGap) {
        for (std::int32_t z = 0; z < gap; ++z) {
          out.deltas.push_back(-previous_count);
          previous_count = 0;
        }
        out.spans.back().length += static_cast<std::uint32_t>(gap) + 1;
      } else {
        out.spans.push_back({gap, 1});
      }
    }
    const auto count = static_cast<std::int64_t>(n);
    out.deltas.push_back(count - previous_count);
    previous_count = count;
    previous_index = i;
  }
}

}  // namespace spindle::detail
