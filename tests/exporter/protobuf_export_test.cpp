// The protobuf exposition (MetricsCollectable::protobuf()), decoded with
// the code protoc generated from exporter/proto/prometheus_metrics.proto:
// the same families, series, labels and values as the text, histograms
// with their classic buckets and native buckets whose quantiles agree with
// the in-process ones (protobuf_endpoint_test.cpp: the same over HTTP). A
// current_thread runtime on a manual clock makes every duration exact.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "monitor/monitor_support.hpp"
#include "protobuf_scrape.hpp"
#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Histogram;
using spindle::Task;
using spindle::TaskMonitor;
using spindle::test::decode_delimited;
using spindle::test::find_family;
using spindle::test::find_metric;
using spindle::test::ManualClock;
using spindle::test::native_quantile;
using spindle::test::NativeView;
namespace pb = io::prometheus::client;

constexpr const char* kPollDuration = "spindle_task_poll_duration_seconds";

double seconds(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e9; }

/// `n` polls that each last `d` by the manual clock (no poll of zero length at the end).
Task<void> polls(ManualClock* clock, int n, std::chrono::nanoseconds d) {
  for (int i = 0; i < n; ++i) {
    clock->advance(d);
    if (i + 1 < n) co_await spindle::yield_now();
  }
}

/// Two modes in one task: `fast` polls of 40 µs, then `slow` of 30 ms.
Task<void> two_modes(ManualClock* clock, int fast, int slow) {
  co_await polls(clock, fast, 40us);
  co_await spindle::yield_now();
  co_await polls(clock, slow, 30ms);
}

/// The point masses of the issue: 150 ns to 3 s.
const std::vector<std::chrono::nanoseconds>& masses() {
  static const std::vector<std::chrono::nanoseconds> m = {150ns,  1us,  7300ns, 50us,  333us,
                                                          2500us, 17ms, 120ms,  900ms, 3s};
  return m;
}
constexpr int kPollsPerMass = 20;

/// A runtime with poll timing, a flight recorder and a stall detector;
/// one monitor per point mass, a two-mode monitor, delay blame, and a
/// collectable exporting all of it.
struct Setting : spindle::test::ClockedRuntime {
  Setting()
      : ClockedRuntime(true, 1 << 14),
        stalls(std::make_shared<spindle::StallDetector>(rt.handle(), spindle::test::manual_scan())),
        collectable(spindle::MetricsCollectable::Options{.const_labels = {{"service", "pb"}}}) {
    collectable.add_runtime(rt.handle(), "main", stalls);
    for (std::size_t i = 0; i < masses().size(); ++i) {
      mass.push_back(monitor("mass_" + std::to_string(i)));
      collectable.add_monitor(mass.back());
      auto h = rt.spawn(mass.back().instrument(polls(clock.get(), kPollsPerMass, masses()[i])));
      join(h);
    }
    collectable.add_monitor(mix);
    auto m = rt.spawn(mix.instrument(two_modes(clock.get(), 985, 15)));
    join(m);
    // The victim waits for a worker while the hog polls for 5 ms: delay blame.
    collectable.add_monitor(victim);
    collectable.add_monitor(hog);
    auto v = rt.spawn(victim.instrument(spindle::test::spin(clock.get(), 1, 0ns)));
    auto g = rt.spawn(hog.instrument(spindle::test::spin(clock.get(), 2, 5ms)));
    join(v);
    join(g);
  }

  std::shared_ptr<spindle::StallDetector> stalls;
  std::vector<TaskMonitor> mass;
  TaskMonitor mix = monitor("mix");
  TaskMonitor victim = monitor("victim");
  TaskMonitor hog = monitor("hog");
  spindle::MetricsCollectable collectable;
};

pb::MetricType proto_type(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter:
      return pb::COUNTER;
    case prometheus::MetricType::Gauge:
      return pb::GAUGE;
    case prometheus::MetricType::Histogram:
      return pb::HISTOGRAM;
    default:
      return pb::UNTYPED;
  }
}

TEST(ExporterProtobuf, EveryFamilyOfTheTextWithTheSameSeriesAndValues) {
  Setting c;
  const auto decoded = decode_delimited(c.collectable.protobuf());
  const auto families = c.collectable.Collect();  // prometheus-cpp's: what the text is made of
  ASSERT_EQ(decoded.size(), families.size());
  // Every family the text serves, by the same name.
  const auto text = spindle::test::parse_scrape(c.collectable.text());
  std::set<std::string> text_names;
  for (const auto& [name, type] : text.types) text_names.insert(name);
  std::set<std::string> proto_names;
  for (const pb::MetricFamily& f : decoded) proto_names.insert(f.name());
  EXPECT_EQ(proto_names, text_names);
  EXPECT_TRUE(proto_names.count("spindle_task_polls_total")) << "counters keep _total";
  EXPECT_TRUE(proto_names.count("spindle_task_delay_blame_seconds_total"));
  EXPECT_TRUE(proto_names.count("spindle_runtime_stalls_total"));
  EXPECT_TRUE(proto_names.count("spindle_runtime_poll_duration_seconds"));

  std::size_t histograms = 0;
  for (std::size_t i = 0; i < families.size(); ++i) {
    const prometheus::MetricFamily& want = families[i];
    const pb::MetricFamily& got = decoded[i];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name(), want.name);
    EXPECT_EQ(got.help(), want.help);
    EXPECT_EQ(got.type(), proto_type(want.type));
    ASSERT_EQ(static_cast<std::size_t>(got.metric_size()), want.metric.size());
    for (std::size_t k = 0; k < want.metric.size(); ++k) {
      const prometheus::ClientMetric& w = want.metric[k];
      const pb::Metric& g = got.metric(static_cast<int>(k));
      ASSERT_EQ(static_cast<std::size_t>(g.label_size()), w.label.size());
      for (std::size_t l = 0; l < w.label.size(); ++l) {
        EXPECT_EQ(g.label(static_cast<int>(l)).name(), w.label[l].name);
        EXPECT_EQ(g.label(static_cast<int>(l)).value(), w.label[l].value);
      }
      EXPECT_FALSE(g.has_timestamp_ms());
      switch (want.type) {
        case prometheus::MetricType::Counter:
          ASSERT_TRUE(g.has_counter());
          EXPECT_FALSE(g.has_gauge());
          EXPECT_EQ(g.counter().value(), w.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          ASSERT_TRUE(g.has_gauge());
          EXPECT_FALSE(g.has_counter());
          EXPECT_EQ(g.gauge().value(), w.gauge.value);
          break;
        case prometheus::MetricType::Histogram: {
          ++histograms;
          ASSERT_TRUE(g.has_histogram());
          const pb::Histogram& h = g.histogram();
          EXPECT_EQ(h.sample_count(), w.histogram.sample_count);
          EXPECT_EQ(h.sample_sum(), w.histogram.sample_sum);
          // The classic buckets: the text's, without +Inf (implied by the count).
          ASSERT_EQ(static_cast<std::size_t>(h.bucket_size()) + 1, w.histogram.bucket.size());
          for (int b = 0; b < h.bucket_size(); ++b) {
            const auto& wb = w.histogram.bucket[static_cast<std::size_t>(b)];
            EXPECT_EQ(h.bucket(b).cumulative_count(), wb.cumulative_count) << "bucket " << b;
            EXPECT_EQ(h.bucket(b).upper_bound(), wb.upper_bound) << "bucket " << b;
          }
          EXPECT_TRUE(std::isinf(w.histogram.bucket.back().upper_bound));
          EXPECT_EQ(w.histogram.bucket.back().cumulative_count, h.sample_count());
          // The native buckets hold every observation.
          EXPECT_EQ(h.schema(), 5);
          EXPECT_DOUBLE_EQ(h.zero_threshold(), 64e-9);
          EXPECT_GE(h.positive_span_size(), 1);  // the no-op span when nothing is above 64 ns
          std::uint64_t native_total = 0;
          for (const auto& b : spindle::test::native_buckets(NativeView::of(h))) {
            native_total += b.count;
          }
          EXPECT_EQ(native_total, h.sample_count());
          break;
        }
        default:
          ADD_FAILURE() << "a type spindle does not export";
      }
    }
  }
  EXPECT_GT(histograms, 3 * c.mass.size());
}

TEST(ExporterProtobuf, NativeQuantilesAgreeWithTheInProcessOnes) {
  Setting c;
  const auto decoded = decode_delimited(c.collectable.protobuf());
  const pb::MetricFamily* f = find_family(decoded, kPollDuration);
  ASSERT_NE(f, nullptr);
  for (std::size_t i = 0; i < masses().size(); ++i) {
    const std::chrono::nanoseconds d = masses()[i];
    SCOPED_TRACE(std::to_string(d.count()) + " ns");
    const pb::Metric* m = find_metric(*f, {{"monitor", c.mass[i].name()}, {"service", "pb"}});
    ASSERT_NE(m, nullptr);
    const Histogram in_process = c.mass[i].cumulative().poll_duration_histogram;
    EXPECT_EQ(m->histogram().sample_count(), static_cast<std::uint64_t>(kPollsPerMass));
    EXPECT_NEAR(m->histogram().sample_sum(), kPollsPerMass * seconds(d), 1e-9 * seconds(d));
    for (const double q : {0.5, 0.99}) {
      const double native = native_quantile(NativeView::of(m->histogram()), q);
      const double expected = seconds(in_process.quantile(q));
      EXPECT_LT(std::abs(native - expected), 0.10 * expected) << "q = " << q;
      EXPECT_LT(std::abs(native - seconds(d)), 0.10 * seconds(d)) << "q = " << q;
    }
  }
  // The two-mode mix: its p99 is the slow mode's, on both sides.
  const pb::Metric* m = find_metric(*f, {{"monitor", "mix"}});
  ASSERT_NE(m, nullptr);
  const Histogram in_process = c.mix.cumulative().poll_duration_histogram;
  EXPECT_EQ(m->histogram().sample_count(), 1000u);
  const double p99 = seconds(in_process.quantile(0.99));
  EXPECT_LT(std::abs(p99 - 0.030), 0.003) << "the in-process p99 is the slow mode's";
  const double native_p99 = native_quantile(NativeView::of(m->histogram()), 0.99);
  EXPECT_LT(std::abs(native_p99 - p99), 0.10 * p99) << native_p99 << " vs " << p99;
  const double native_p50 = native_quantile(NativeView::of(m->histogram()), 0.5);
  EXPECT_LT(std::abs(native_p50 - 40e-6), 0.10 * 40e-6) << "the fast mode";
}

TEST(ExporterProtobuf, AHistogramWithoutObservationsIsStillNative) {
  spindle::MetricsCollectable c;
  const TaskMonitor idle = TaskMonitor::Builder().name("idle").build();
  c.add_monitor(idle);
  const auto decoded = decode_delimited(c.protobuf());
  const pb::MetricFamily* f = find_family(decoded, kPollDuration);
  ASSERT_NE(f, nullptr);
  const pb::Metric* m = find_metric(*f, {{"monitor", "idle"}});
  ASSERT_NE(m, nullptr);
  const pb::Histogram& h = m->histogram();
  EXPECT_EQ(h.sample_count(), 0u);
  EXPECT_GT(h.zero_threshold(), 0.0);
  // The no-op span that marks a native histogram with no buckets yet.
  ASSERT_EQ(h.positive_span_size(), 1);
  EXPECT_EQ(h.positive_span(0).offset(), 0);
  EXPECT_EQ(h.positive_span(0).length(), 0u);
  EXPECT_EQ(h.positive_delta_size(), 0);
}

}  // namespace
