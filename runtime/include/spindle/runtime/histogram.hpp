// spindle/runtime/histogram.hpp — the fixed duration buckets every spindle distribution uses.
//
//   spindle::Histogram  counts of durations in 300 log-linear buckets from 64 ns to 68.7 s
//                       (10 per power of two), one bucket below and one (+Inf) above
//
// The buckets. Every power of two from 2^6 ns (64 ns) to 2^36 ns
// (68.719476736 s) is split into kSubBuckets = 10 equal parts, rounded up to
// whole nanoseconds. A bucket counts the durations d with
//
//   lower_bound(i) < d ≤ upper_bound(i)       (upper bounds are inclusive, as Prometheus `le`)
//
//   bucket 0          d ≤ 64 ns (zero and negative durations too: below the resolution)
//   bucket 1 + 10·(k−6) + j, for k = 6…35 and j = 0…9:
//                     upper_bound = 2^k + ⌈(j+1)·2^k / 10⌉ ns
//                     e.g. bucket 1 is (64, 71] ns, bucket 10 is (122, 128] ns,
//                     bucket 11 is (128, 141] ns, bucket 300 ends at 2^36 ns
//   bucket 301        d > 2^36 ns, the +Inf bucket (kFiniteBuckets)
//
// bucket_for() is a bit scan, a subtraction, a multiply and a shift (no
// loop, no division, no floating point), constexpr, and exact to the
// nanosecond at every bound. The bounds are the same everywhere (runtime,
// monitors, the exporter's `le` labels), so histograms merge by adding counts.
//
// Accuracy. A bucket in [2^k, 2^(k+1)] is at most ⌈2^k / 10⌉ ns wide, and
// its lower bound is at least 2^k, so for every bucket i ≥ 1
// (tests/monitor/histogram_test.cpp checks each one)
//
//   (upper_bound(i) − lower_bound(i) − 1) / (lower_bound(i) + 1) < 10%
//   (upper_bound(i) − lower_bound(i)) / upper_bound(i)           < 10%
//
// quantile(q) returns a value inside the bucket that holds the q-quantile,
// so for ANY set of observations it is within 10% of the true (nearest-rank)
// q-quantile whenever that lies in (64 ns, 2^36 ns]. Below 64 ns it only
// says "≤ 64 ns"; above 68.7 s it reports 68.719476736 s.
//
// Memory. kBuckets = 302 counters of 8 bytes plus the sum: sizeof(Histogram)
// is 2,424 bytes, fixed. A TaskMonitor keeps, per worker that polls its
// tasks, three of these distributions as live counters (poll, scheduled,
// idle: 3 × 2,416 bytes) in a 7,680-byte block with their bucket ranges and
// the other counters (monitor/src/monitor_core.hpp asserts ≤ 8 KiB); a
// runtime built with poll_timing(true) keeps two per worker (4,832 bytes).
//
// The classic Prometheus view. Exporting all 302 buckets would multiply
// the series count; the exporter exports the kClassicBounds = 31 bounds
// that are powers of two (64 ns, 128 ns, … 2^36 ns, see classic_bucket())
// plus +Inf. Each is an exact bucket bound, so its cumulative count is
// exact; only histogram_quantile()'s interpolation between them is coarser.
//
// Example:
//   spindle::Histogram h;
//   h.record(std::chrono::microseconds(70));
//   h.record(std::chrono::milliseconds(3));
//   auto p99 = h.quantile(0.99);   // within 10% of the 99th percentile (3 ms here)
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
  /// Buckets per power of two (the resolution: each is at most 10% wide).
  static constexpr std::size_t kSubBuckets = 10;
  /// The first split power of two is 2^kMinOctave ns (64 ns); the last
  /// finite bound is 2^(kMinOctave + kOctaves) ns (68.719476736 s).
  static constexpr unsigned kMinOctave = 6;
  static constexpr unsigned kOctaves = 30;
  /// 301 finite buckets (≤ 64 ns, then 300 log-linear ones up to 2^36 ns)
  /// and one +Inf bucket.
  static constexpr std::size_t kFiniteBuckets = 1 + kOctaves * kSubBuckets;
  static constexpr std::size_t kBuckets = kFiniteBuckets + 1;

  /// The inclusive upper bound of finite bucket `i` (precondition:
  /// i < kFiniteBuckets), in whole nanoseconds: 64 ns for bucket 0, else
  /// 2^k + ⌈(j+1)·2^k / 10⌉ for i = 1 + 10·(k−6) + j.
  static constexpr std::chrono::nanoseconds upper_bound(std::size_t i) noexcept {
    if (i == 0) return std::chrono::nanoseconds(std::int64_t{1} << kMinOctave);
    const std::size_t k = kMinOctave + (i - 1) / kSubBuckets;
    const std::uint64_t j = (i - 1) % kSubBuckets;
    const std::uint64_t base = std::uint64_t{1} << k;
    return std::chrono::nanoseconds(
        static_cast<std::int64_t>(base + ((j + 1) * base + kSubBuckets - 1) / kSubBuckets));
  }
  /// The exclusive lower bound of bucket `i` (precondition: i < kBuckets):
  /// the previous bucket's upper bound, 0 for bucket 0 (which also holds
  /// zero and negative durations).
  static constexpr std::chrono::nanoseconds lower_bound(std::size_t i) noexcept {
    return i == 0 ? std::chrono::nanoseconds(0) : upper_bound(i - 1);
  }

  /// The bucket a duration falls in (any value: never fails).
  static constexpr std::size_t bucket_for(std::int64_t ns) noexcept {
    constexpr std::int64_t kFirst = std::int64_t{1} << kMinOctave;
    constexpr std::uint64_t kLast = std::uint64_t{1} << (kMinOctave + kOctaves);
    if (ns <= kFirst) return 0;
    // Bucket i holds (lo, hi]; x = ns − 1 makes that [lo, hi), where the
    // bound formula is a floor: j = ⌊(x − 2^k)·10 / 2^k⌋, and
    // x − 2^k < ⌈(j+1)·2^k/10⌉ ⇔ (x − 2^k)·10 < (j+1)·2^k, so the result
    // is exact at every bound. (x − 2^k)·10 < 10·2^35: no overflow.
    const auto x = static_cast<std::uint64_t>(ns - 1);  // ≥ 64
    if (x >= kLast) return kFiniteBuckets;
    const auto k = static_cast<unsigned>(std::bit_width(x)) - 1;  // 2^k ≤ x < 2^(k+1), 6 ≤ k ≤ 35
    const std::uint64_t j = ((x - (std::uint64_t{1} << k)) * kSubBuckets) >> k;  // 0…9
    return 1 + (k - kMinOctave) * kSubBuckets + static_cast<std::size_t>(j);
  }
  static constexpr std::size_t bucket_for(std::chrono::nanoseconds d) noexcept {
    return bucket_for(d.count());
  }

  /// The bounds of the classic Prometheus view: the finite bounds that are
  /// powers of two, 2^(kMinOctave + c) ns for c < kClassicBounds.
  static constexpr std::size_t kClassicBounds = kOctaves + 1;
  /// The bucket whose upper bound is classic bound `c` (< kClassicBounds):
  /// cumulative_count(classic_bucket(c)) is the exact `le` count of 2^(6+c) ns.
  static constexpr std::size_t classic_bucket(std::size_t c) noexcept { return c * kSubBuckets; }

  /// Adds one observation.
  void record(std::chrono::nanoseconds d) noexcept {
    ++counts_[bucket_for(d)];
    sum_ += d;
  }
  /// Adds `n` observations to bucket `b` (< kBuckets) (for building a
  /// Histogram from live counters; add their total duration with add_sum).
  void add_bucket(std::size_t b, std::uint64_t n) noexcept { counts_[b] += n; }
  void add_sum(std::chrono::nanoseconds sum) noexcept { sum_ += sum; }

  /// Observations in bucket `b` (< kBuckets; not cumulative).
  [[nodiscard]] std::uint64_t bucket_count(std::size_t b) const noexcept { return counts_[b]; }
  /// Observations in buckets 0..b (the Prometheus `le` count for
  /// upper_bound(b)); b ≥ kBuckets counts them all.
  [[nodiscard]] std::uint64_t cumulative_count(std::size_t b) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i <= b && i < kBuckets; ++i) n += counts_[i];
    return n;
  }
  /// All observations.
  [[nodiscard]] std::uint64_t count() const noexcept { return cumulative_count(kBuckets - 1); }
  /// Sum of the observed durations.
  [[nodiscard]] std::chrono::nanoseconds sum() const noexcept { return sum_; }

  /// An estimate of the q-quantile (q clamped to [0, 1]); zero when empty.
  /// Finds the bucket holding rank q·count() and interpolates linearly
  /// between its bounds (as PromQL's histogram_quantile does), so the
  /// result lies in that bucket: within 10% of the true quantile in
  /// (64 ns, 2^36 ns] (see the top of this file). Values in the +Inf
  /// bucket are reported as the last finite bound (2^36 ns).
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
        const auto lo = static_cast<double>(lower_bound(i).count());
        const auto hi = static_cast<double>(upper_bound(i).count());
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

// The scheme's edges, as the overview states them.
static_assert(Histogram::upper_bound(0).count() == 64);
static_assert(Histogram::upper_bound(1).count() == 71);
static_assert(Histogram::upper_bound(300).count() == 68'719'476'736);  // 2^36 ns
static_assert(Histogram::kBuckets == 302);
static_assert(sizeof(Histogram) == (Histogram::kBuckets + 1) * 8, "2,424 bytes");

}  // namespace spindle
