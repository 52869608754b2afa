// The mapping of spindle's 302 log-linear buckets onto native schema-5
// buckets (exporter/src/native_histogram.hpp): each bucket gets its own
// native bucket, holding its representative value, in order; and
// histogram_quantile() over the native buckets stays within 10% (7.5% by
// the header's bound) of Histogram::quantile() for a point mass in every
// bucket, at its edges and its middle, and for mixtures.

#include "native_histogram.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "protobuf_scrape.hpp"
#include "spindle/runtime/histogram.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Histogram;
using spindle::detail::native_index;
using spindle::detail::native_lower_bound;
using spindle::detail::native_representative;
using spindle::detail::native_upper_bound;
using spindle::detail::NativeBuckets;
using spindle::detail::NativeSpan;
using spindle::test::native_quantile;
using spindle::test::NativeView;

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

double relative_error(double a, double b) { return std::abs(a - b) / b; }

/// The native quantile of `h` (through the exporter's mapping) against Histogram::quantile().
double native_vs_in_process(const Histogram& h, double q) {
  NativeBuckets nb;
  spindle::detail::to_native(h, nb);
  const double native = native_quantile(NativeView::of(nb, h.count()), q);
  return relative_error(native, seconds(h.quantile(q)));
}

TEST(NativeHistogram, EveryBucketHasItsOwnNativeBucketInOrder) {
  for (std::size_t b = 1; b < Histogram::kBuckets; ++b) {
    const double rep = native_representative(b);
    const std::int32_t i = native_index(b);
    // The representative lies in its native bucket ...
    EXPECT_GT(rep, native_lower_bound(i)) << "bucket " << b;
    EXPECT_LE(rep, native_upper_bound(i)) << "bucket " << b;
    // ... and in its own spindle bucket (the +Inf bucket's is its lower bound, 2^36 ns).
    EXPECT_GE(rep, seconds(Histogram::lower_bound(b))) << "bucket " << b;
    if (b < Histogram::kFiniteBuckets) {
      EXPECT_LE(rep, seconds(Histogram::upper_bound(b))) << "bucket " << b;
    }
    // Above the zero bucket, whose bound is bucket 0's.
    EXPECT_GT(native_lower_bound(i), spindle::detail::kNativeZeroThreshold) << "bucket " << b;
    if (b > 1) {
      EXPECT_GT(i, native_index(b - 1)) << "bucket " << b << " shares a native bucket";
    }
  }
  EXPECT_DOUBLE_EQ(spindle::detail::kNativeZeroThreshold, seconds(Histogram::upper_bound(0)));
  // Schema 5: a native bucket is 2^(1/32) times as wide as the one before.
  EXPECT_NEAR(native_upper_bound(10) / native_lower_bound(10), std::exp2(1.0 / 32), 1e-12);
  EXPECT_DOUBLE_EQ(native_upper_bound(0), 1.0);
  EXPECT_DOUBLE_EQ(native_upper_bound(-32), 0.5);
}

TEST(NativeHistogram, SpansAndDeltasGiveBackEveryBucketsCount) {
  Histogram h;
  // Counts in buckets far apart (new spans), next to each other (one span)
  // and two apart (a gap filled with zeros), the zero and +Inf buckets too.
  const std::vector<std::pair<std::size_t, std::uint64_t>> counts = {
      {0, 4}, {1, 3}, {2, 1}, {4, 7}, {40, 2}, {41, 9}, {200, 1}, {300, 5}, {301, 6}};
  for (const auto& [b, n] : counts) h.add_bucket(b, n);
  NativeBuckets nb;
  spindle::detail::to_native(h, nb);
  EXPECT_EQ(nb.zero_count, 4u);
  const auto buckets = spindle::test::native_buckets(NativeView::of(nb, h.count()));
  std::uint64_t total = 0;
  for (const auto& [b, n] : counts) {
    if (b == 0) continue;
    bool found = false;
    for (const auto& v : buckets) {
      if (v.lower < native_representative(b) && native_representative(b) <= v.upper) {
        EXPECT_EQ(v.count, n) << "spindle bucket " << b;
        found = true;
      }
    }
    EXPECT_TRUE(found) << "spindle bucket " << b;
  }
  for (const auto& v : buckets) total += v.count;
  EXPECT_EQ(total, h.count());
  // Buckets 1, 2 and 4 are within a few native buckets: one span (with
  // zeros in the gaps); 40-41, 200, 300-301 further away: spans of their own.
  EXPECT_LT(nb.spans.size(), counts.size() - 1);
  EXPECT_GT(nb.spans.size(), 1u);
  for (std::size_t s = 1; s < nb.spans.size(); ++s) {
    EXPECT_GT(nb.spans[s].offset, spindle::detail::kMaxFilledGap) << "span " << s;
  }
}

TEST(NativeHistogram, AnEmptyHistogramHasNoSpans) {
  NativeBuckets nb;
  nb.spans.push_back({3, 1});  // written over
  nb.deltas.push_back(1);
  spindle::detail::to_native(Histogram{}, nb);
  EXPECT_EQ(nb.zero_count, 0u);
  EXPECT_TRUE(nb.spans.empty());
  EXPECT_TRUE(nb.deltas.empty());
}

TEST(NativeHistogram, APointMassInAnyBucketKeepsItsQuantilesWithinTenPercent) {
  double worst = 0;
  for (std::size_t b = 1; b < Histogram::kFiniteBuckets; ++b) {
    const auto lo = Histogram::lower_bound(b);
    const auto hi = Histogram::upper_bound(b);
    for (const auto d : {lo + 1ns, (lo + hi) / 2, hi}) {
      Histogram h;
      for (int i = 0; i < 100; ++i) h.record(d);
      for (const double q : {0.01, 0.5, 0.9, 0.99, 1.0}) {
        const double e = native_vs_in_process(h, q);
        worst = std::max(worst, e);
        ASSERT_LT(e, 0.10) << d.count() << " ns, q = " << q;
      }
    }
  }
  // The header's bound: 7.5%.
  EXPECT_LT(worst, 0.075);
}

TEST(NativeHistogram, PointMassesFrom150NanosecondsTo3Seconds) {
  for (const std::chrono::nanoseconds d :
       {150ns, 999ns, 1000ns, 7300ns, 50'000ns, 333'000ns, 2'500'000ns, 17'000'000ns, 120'000'000ns,
        900'000'000ns, 3'000'000'000ns}) {
    Histogram h;
    for (int i = 0; i < 1000; ++i) h.record(d);
    for (const double q : {0.5, 0.99}) {
      EXPECT_LT(native_vs_in_process(h, q), 0.10) << d.count() << " ns, q = " << q;
      // And against the truth (the point itself).
      NativeBuckets nb;
      spindle::detail::to_native(h, nb);
      EXPECT_LT(relative_error(native_quantile(NativeView::of(nb, h.count()), q), seconds(d)), 0.10)
          << d.count() << " ns, q = " << q;
    }
  }
}

TEST(NativeHistogram, ATwoModeMixKeepsItsSlowP99) {
  // 98.5% at 40 µs, 1.5% at 30 ms: the p99 is in the slow mode.
  Histogram h;
  for (int i = 0; i < 985; ++i) h.record(40us);
  for (int i = 0; i < 15; ++i) h.record(30ms);
  const double p99 = seconds(h.quantile(0.99));
  EXPECT_LT(relative_error(p99, 0.030), 0.10) << "in-process p99 " << p99;
  EXPECT_LT(native_vs_in_process(h, 0.99), 0.10);
  EXPECT_LT(native_vs_in_process(h, 0.5), 0.10);  // the fast mode
  // Every quantile of a wide spread of durations, too.
  Histogram wide;
  for (std::int64_t ns = 70; ns < 60'000'000'000; ns = ns * 21 / 20 + 1) wide.record(ns * 1ns);
  for (double q = 0.01; q < 1.0; q += 0.01) {
    EXPECT_LT(native_vs_in_process(wide, q), 0.10) << "q = " << q;
  }
}

TEST(NativeHistogram, TheZeroAndOverflowBucketsReportWhatSpindleReports) {
  Histogram zero;
  for (int i = 0; i < 10; ++i) zero.record(10ns);
  zero.record(1ms);  // a positive bucket, so PromQL takes 0 as the zero bucket's lower bound
  NativeBuckets nb;
  spindle::detail::to_native(zero, nb);
  const double p50 = native_quantile(NativeView::of(nb, zero.count()), 0.5);
  EXPECT_GE(p50, 0.0);
  EXPECT_LE(p50, 64e-9);
  Histogram overflow;
  for (int i = 0; i < 10; ++i) overflow.record(100s);
  EXPECT_LT(native_vs_in_process(overflow, 0.99), 0.025);  // 68.72 s on both sides, ±2.19%
}

}  // namespace
