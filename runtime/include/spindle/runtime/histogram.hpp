// spindle/runtime/histogram.hpp — the fixed duration buckets every spindle distribution uses.
//
//   spindle::Histogram  counts of durations in 25 log-spaced buckets from 1 µs to 16.8 s, plus +Inf
//
// Bucket i (0 ≤ i < 25) counts durations d with 2^(i-1) µs < d ≤ 2^i µs
// (bucket 0: d ≤ 1 µs); the last bucket counts everything above 2^24 µs
// (16.8 s). The bounds are the same everywhere (runtime, monitors,
// Prometheus `le` labels), so histograms merge by adding counts, and their
// memory is fixed. Finding a bucket is one division and one bit scan.
//
// Example:
//   spindle::Histogram h;
//   h.record(std::chrono::microseconds(70));
//   h.record(std::chrono::milliseconds(3));
//   auto p99 = h.quantile(0.99);   // an estimate within the bucket holding the 99th percentile
//
// quantile() interpolates linearly inside the bucket that holds the
// requested rank, so its error is at most that bucket's width (a factor of
// two).
//
// Thread safety: a plain value type. The runtime and monitors keep their
// live counts in per-thread atomics and build Histograms from them when read.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace spindle {

class Histogram {
 public:
  /// 25 finite buckets (≤ 1 µs … ≤ 16.777216 s) and one +Inf bucket.
  static constexpr std::size_t kFiniteBuckets = 25;
  static constexpr std::size_t kBuckets = kFiniteBuckets + 1;

  /// The inclusive upper bound of finite bucket `i` (< kFiniteBuckets): 2^i µs.
  static constexpr std::chrono::nanoseconds upper_bound(std::size_t i) noexcept {
    return std::chrono::nanoseconds(std::int64_t{1000} << i);
  }

  /// The bucket a duration falls in.
  static constexpr std::size_t bucket_for(std::int64_t ns) noexcept {
    if (ns <= 1000) return 0;
    auto us_ceil_minus_one = static_cast<std::uint64_t>(ns - 1) / 1000;  // ≥ 1
    std::size_t b = static_cast<std::size_t>(std::bit_width(us_ceil_minus_one));
    return std::min(b, kFiniteBuckets);
  }
  static constexpr std::size_t bucket_for(std::chrono::nanoseconds d) noexcept {
    return bucket_for(d.count());
  }

  /// Adds one observation.
  void record(std::chrono::nanoseconds d) noexcept {
    ++counts_[bucket_for(d)];
    sum_ += d;
  }
  /// Adds `n` observations to bucket `b` with total duration `sum` (for
  /// building a Histogram from live counters).
  void add_bucket(std::size_t b, std::uint64_t n) noexcept { counts_[b] += n; }
  void add_sum(std::chrono::nanoseconds sum) noexcept { sum_ += sum; }

  /// Observations in bucket `b` (not cumulative).
  [[nodiscard]] std::uint64_t bucket_count(std::size_t b) const noexcept { return counts_[b]; }
  /// Observations in buckets 0..b (the Prometheus `le` count for upper_bound(b)).
  [[nodiscard]] std::uint64_t cumulative_count(std::size_t b) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i <= b && i < kBuckets; ++i) n += counts_[i];
    return n;
  }
  /// All observations.
  [[nodiscard]] std::uint64_t count() const noexcept { return cumulative_count(kBuckets - 1); }
  /// Sum of the observed durations.
  [[nodiscard]] std::chrono::nanoseconds sum() const noexcept { return sum_; }

  /// An estimate of the q-quantile (0 ≤ q ≤ 1) by linear interpolation in
  /// its bucket; zero when empty. Values in the +Inf bucket are reported as
  /// the last finite bound (2^24 µs).
  [[nodiscard]] std::chrono::nanoseconds quantile(double q) const noexcept {
    const std::uint64_t total = count();
    if (total == 0) return std::chrono::nanoseconds(0);
    q = std::clamp(q, 0.0, 1.0);
    const double rank = q * static_cast<double>(total);
    double seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      const auto n = static_cast<double>(counts_[i]);
      if (n > 0 && seen + n >= rank) {
        if (i == kFiniteBuckets) return upper_bound(kFiniteBuckets - 1);
        const double lo = i == 0 ? 0.0 : static_cast<double>(upper_bound(i - 1).count());
        const double hi = static_cast<double>(upper_bound(i).count());
        const double frac = (rank - seen) / n;
        return std::chrono::nanoseconds(static_cast<std::int64_t>(lo + (hi - lo) * frac));
      }
      seen += n;
    }
    return upper_bound(kFiniteBuckets - 1);
  }

  Histogram& operator+=(const Histogram& o) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    sum_ += o.sum_;
    return *this;
  }
  /// Subtracts an earlier reading of the same live histogram (interval deltas).
  Histogram& operator-=(const Histogram& o) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] -= std::min(counts_[i], o.counts_[i]);
    sum_ -= std::min(sum_, o.sum_);
    return *this;
  }
  friend Histogram operator+(Histogram a, const Histogram& b) noexcept { return a += b; }
  friend Histogram operator-(Histogram a, const Histogram& b) noexcept { return a -= b; }
  friend bool operator==(const Histogram&, const Histogram&) = default;

 private:
  std::array<std::uint64_t, kBuckets> counts_{};  // per bucket, not cumulative
  std::chrono::nanoseconds sum_{0};               // total of the observed durations
};

}  // namespace spindle
