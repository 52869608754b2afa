// spindle::Histogram: the documented bucket bounds, quantiles on known data,
// merging and interval subtraction.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <spindle/runtime/histogram.hpp>

#include "monitor/monitor_support.hpp"

namespace {

using spindle::Histogram;
using spindle::test::buckets;
using namespace std::chrono_literals;

TEST(Histogram, HasTwentyFiveFiniteBucketsAndAnInfiniteOne) {
  EXPECT_EQ(Histogram::kFiniteBuckets, 25U);
  EXPECT_EQ(Histogram::kBuckets, 26U);
  EXPECT_EQ(Histogram::upper_bound(0), 1us);
  EXPECT_EQ(Histogram::upper_bound(1), 2us);
  EXPECT_EQ(Histogram::upper_bound(10), 1024us);
  EXPECT_EQ(Histogram::upper_bound(24), std::chrono::microseconds(1 << 24));  // 16.777216 s
}

TEST(Histogram, BucketBoundsAreExactlyAsDocumented) {
  EXPECT_EQ(Histogram::bucket_for(0ns), 0U);
  EXPECT_EQ(Histogram::bucket_for(-5ns), 0U);
  EXPECT_EQ(Histogram::bucket_for(1ns), 0U);
  EXPECT_EQ(Histogram::bucket_for(1us), 0U);      // ≤ 1 µs
  EXPECT_EQ(Histogram::bucket_for(1'001ns), 1U);  // the least duration above 1 µs
  EXPECT_EQ(Histogram::bucket_for(2us), 1U);      // (1, 2] µs
  EXPECT_EQ(Histogram::bucket_for(2'001ns), 2U);  // 2.001 µs
  EXPECT_EQ(Histogram::bucket_for(4us), 2U);
  EXPECT_EQ(Histogram::bucket_for(4'001ns), 3U);
  EXPECT_EQ(Histogram::bucket_for(std::chrono::microseconds(1 << 24)), 24U);
  EXPECT_EQ(Histogram::bucket_for(std::chrono::microseconds(1 << 24) + 1ns), 25U);  // +Inf
  EXPECT_EQ(Histogram::bucket_for(std::chrono::hours(24 * 365)), 25U);
  // Every finite bound belongs to its own bucket; a nanosecond more to the next.
  for (std::size_t i = 0; i < Histogram::kFiniteBuckets; ++i) {
    EXPECT_EQ(Histogram::bucket_for(Histogram::upper_bound(i)), i) << i;
    EXPECT_EQ(Histogram::bucket_for(Histogram::upper_bound(i) + 1ns), i + 1) << i;
    if (i > 0) {
      EXPECT_EQ(Histogram::bucket_for(Histogram::upper_bound(i - 1) + 1ns), i) << i;
    }
  }
}

TEST(Histogram, BucketsAreExactAtNanosecondResolutionAboveOneMicrosecond) {
  // 1.000001 µs is 1000.001 ns: below the nanosecond resolution, so the
  // smallest duration above 1 µs is 1001 ns (checked above). The bound
  // between two buckets is exact to the nanosecond everywhere, e.g. around
  // 8.192 ms (2^13 µs):
  EXPECT_EQ(Histogram::bucket_for(8'192'000ns), 13U);
  EXPECT_EQ(Histogram::bucket_for(8'192'001ns), 14U);
  EXPECT_EQ(Histogram::bucket_for(8'191'999ns), 13U);
  EXPECT_EQ(Histogram::bucket_for(4'096'001ns), 13U);
}

TEST(Histogram, RecordCountsAndSums) {
  Histogram h;
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.sum(), 0ns);
  h.record(500ns);
  h.record(1500ns);
  h.record(1500ns);
  h.record(20s);
  EXPECT_EQ(buckets(h), "{0:1 1:2 25:1}");
  EXPECT_EQ(h.count(), 4U);
  EXPECT_EQ(h.sum(), 20s + 3500ns);
  EXPECT_EQ(h.cumulative_count(0), 1U);
  EXPECT_EQ(h.cumulative_count(1), 3U);
  EXPECT_EQ(h.cumulative_count(24), 3U);
  EXPECT_EQ(h.cumulative_count(25), 4U);
  EXPECT_EQ(h.cumulative_count(1000), 4U);  // clamped to the last bucket
}

TEST(Histogram, QuantileOfAnEmptyHistogramIsZero) {
  Histogram h;
  EXPECT_EQ(h.quantile(0.0), 0ns);
  EXPECT_EQ(h.quantile(0.5), 0ns);
  EXPECT_EQ(h.quantile(1.0), 0ns);
}

TEST(Histogram, QuantilesInterpolateLinearlyInsideTheirBucket) {
  Histogram h;
  for (int i = 0; i < 4; ++i) h.record(1500ns);  // four in (1, 2] µs
  EXPECT_EQ(h.quantile(0.0), 1000ns);
  EXPECT_EQ(h.quantile(0.25), 1250ns);
  EXPECT_EQ(h.quantile(0.5), 1500ns);
  EXPECT_EQ(h.quantile(1.0), 2000ns);

  Histogram mixed;
  mixed.record(100ns);  // bucket 0: (0, 1] µs
  mixed.record(900ns);  // bucket 0
  mixed.record(5us);    // bucket 3: (4, 8] µs
  mixed.record(7us);    // bucket 3
  EXPECT_EQ(buckets(mixed), "{0:2 3:2}");
  EXPECT_EQ(mixed.quantile(0.25), 500ns);   // rank 1 of 2 in [0, 1000]
  EXPECT_EQ(mixed.quantile(0.5), 1000ns);   // rank 2: the top of bucket 0
  EXPECT_EQ(mixed.quantile(0.75), 6000ns);  // rank 3: halfway through (4, 8] µs
  EXPECT_EQ(mixed.quantile(1.0), 8000ns);
  // q outside [0, 1] is clamped.
  EXPECT_EQ(mixed.quantile(-1.0), mixed.quantile(0.0));
  EXPECT_EQ(mixed.quantile(2.0), mixed.quantile(1.0));
}

TEST(Histogram, QuantilesInTheInfiniteBucketReportTheLastFiniteBound) {
  Histogram h;
  h.record(1us);
  h.record(30s);
  EXPECT_EQ(h.quantile(1.0), Histogram::upper_bound(24));
  EXPECT_EQ(h.quantile(0.5), 1us);
}

TEST(Histogram, QuantilesAreMonotonicInQ) {
  Histogram h;
  for (int i = 1; i <= 1000; ++i) h.record(std::chrono::microseconds(i * 7));
  std::chrono::nanoseconds last{0};
  for (int i = 0; i <= 100; ++i) {
    auto q = h.quantile(i / 100.0);
    EXPECT_GE(q, last) << i;
    last = q;
  }
}

TEST(Histogram, MergeAddsCountsAndSums) {
  Histogram a;
  a.record(1us);
  a.record(3us);
  Histogram b;
  b.record(3us);
  b.record(1ms);
  Histogram m = a + b;
  EXPECT_EQ(buckets(m), "{0:1 2:2 10:1}");
  EXPECT_EQ(m.sum(), 1us + 3us + 3us + 1ms);
  EXPECT_EQ(m.count(), 4U);
  Histogram acc;
  acc += a;
  acc += b;
  EXPECT_EQ(acc, m);
  EXPECT_EQ(a + b, b + a);
}

TEST(Histogram, SubtractingAnEarlierReadingLeavesTheInterval) {
  Histogram earlier;
  earlier.record(3us);
  Histogram later = earlier;
  later.record(3us);
  later.record(100us);
  Histogram delta = later - earlier;
  EXPECT_EQ(buckets(delta), "{2:1 7:1}");
  EXPECT_EQ(delta.sum(), 103us);
  EXPECT_EQ(delta + earlier, later);
  EXPECT_EQ(later - later, Histogram());
  // A reading that is not earlier never yields negative counts.
  Histogram clamped = earlier - later;
  EXPECT_EQ(clamped.count(), 0U);
  EXPECT_EQ(clamped.sum(), 0ns);
}

TEST(Histogram, AddBucketAndAddSumBuildAHistogramFromCounters) {
  Histogram h;
  h.add_bucket(5, 3);
  h.add_bucket(Histogram::kFiniteBuckets, 1);
  h.add_sum(100us);
  EXPECT_EQ(buckets(h), "{5:3 25:1}");
  EXPECT_EQ(h.count(), 4U);
  EXPECT_EQ(h.sum(), 100us);
}

}  // namespace
