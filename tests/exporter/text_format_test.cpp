// spindle's own text-format writer (exporter/src/text_format.hpp) against
// prometheus-cpp's TextSerializer: the same samples (name, labels, value),
// HELP and TYPE for the same families, nasty label values and special
// numbers included; values that read back as exactly the written double;
// `le` labels that keep naming the same series; no allocation per line.
#include "text_format.hpp"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "families.hpp"
#include "scrape_support.hpp"
#include "sources.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"

// ---- allocation counting -----------------------------------------------------
// Global operator new/delete for this test binary (every form but the
// aligned ones, which keep the library's pair): they count allocations
// made on a thread while it has counting on, and otherwise only forward to
// malloc/free. Not in sanitizer builds: ThreadSanitizer's runtime defines
// these operators itself (a second definition does not link), and there the
// allocation test is skipped.

#if !defined(SPINDLE_SANITIZER_BUILD)
namespace {
thread_local bool t_count_allocations = false;
thread_local std::size_t t_allocations = 0;

void* counted_malloc(std::size_t n) noexcept {
  if (t_count_allocations) ++t_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace

// Not inlined: GCC would otherwise see free() of what `new` returned.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(std::size_t n, const std::nothrow_t& /*tag*/) noexcept {
  return counted_malloc(n);
}
[[gnu::noinline]] void* operator new[](std::size_t n, const std::nothrow_t& /*tag*/) noexcept {
  return counted_malloc(n);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t /*n*/) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t /*n*/) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t& /*tag*/) noexcept {
  std::free(p);
}
#else
namespace {
thread_local bool t_count_allocations = false;  // nothing counts: see above
thread_local std::size_t t_allocations = 0;
}  // namespace
#endif  // !SPINDLE_SANITIZER_BUILD

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using spindle::test::LabelMap;
using spindle::test::parse_scrape;
using spindle::test::Sample;
using spindle::test::Scrape;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string serialize_with_prometheus_cpp(const std::vector<MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

std::string serialize_with_spindle(const std::vector<MetricFamily>& families) {
  return spindle::detail::text_format(families);
}

ClientMetric with_labels(std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  return m;
}

// Label values a scrape must survive: quotes, backslashes, newlines,
// sequences that look like escapes, and UTF-8 of every length.
const std::vector<std::string> kNastyValues = {
    "plain",
    "",
    "with \"quotes\"",
    "back\\slash",
    "new\nline",
    "\\n is not a newline",
    "\\\"",
    "trailing backslash\\",
    "ü é ß",
    "日本語",
    "emoji 🦀",
    "{braces}, commas, = signs",
    "tab\tand\rreturn",
};

// Values whose text is easy to get wrong. (DBL_MAX is left out:
// TextSerializer's 16 digits round it up to a number Prometheus rejects;
// ValuesReadBackAsExactlyTheSameDouble covers it.)
const std::vector<double> kNastyNumbers = {
    0.0,
    1.0,
    -5.5,
    0.1 + 0.2,
    1e6,
    1e20,
    1e-7,
    0.0001,
    123456.789,
    9007199254740992.0,       // 2^53
    9007199254740994.0,       // 2^53 + 2: an integer past the exact range
    18446744073709551616.0,   // 2^64, a uint64 counter as double
    1.2345678901234567e17,    // 17 significant digits
    5e-324,                   // smallest denormal
    2.2250738585072014e-308,  // smallest normal
    1e300,
    -0.0,
    kInf,
    -kInf,
    kNaN,
};

/// Families of every type with nasty labels and numbers, each (name,
/// labels) pair once.
std::vector<MetricFamily> nasty_families() {
  std::vector<MetricFamily> families;

  MetricFamily counter{"nasty_things_total", "Counts nasty things.", MetricType::Counter, {}};
  for (std::size_t i = 0; i < kNastyNumbers.size(); ++i) {
    ClientMetric m =
        with_labels({{"i", std::to_string(i)}, {"value", kNastyValues[i % kNastyValues.size()]}});
    m.counter.value = kNastyNumbers[i];
    counter.metric.push_back(m);
  }
  families.push_back(counter);

  MetricFamily gauge{"nasty_level", "A gauge with \"quotes\" in its help.", MetricType::Gauge, {}};
  for (std::size_t i = 0; i < kNastyValues.size(); ++i) {
    ClientMetric m = with_labels({{"v", kNastyValues[i]}, {"z_last", "z"}});
    m.gauge.value = static_cast<double>(i) / 3.0;
    gauge.metric.push_back(m);
  }
  ClientMetric no_labels;
  no_labels.gauge.value = 42;
  gauge.metric.push_back(no_labels);
  families.push_back(gauge);

  MetricFamily hist{"nasty_duration_seconds", "A histogram.", MetricType::Histogram, {}};
  {
    // spindle's layout: 2^k ns for k = 6…36, then +Inf.
    ClientMetric m = with_labels({{"monitor", "we\"ird\\name\n"}, {"service", "ü"}});
    std::uint64_t cumulative = 0;
    for (int i = 0; i < 31; ++i) {
      cumulative += static_cast<std::uint64_t>(i * 7 % 5);
      m.histogram.bucket.push_back({cumulative, std::ldexp(1.0, 6 + i) / 1e9});
    }
    m.histogram.bucket.push_back({cumulative, kInf});
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = 0.1 + 0.2;
    hist.metric.push_back(m);
  }
  {
    // No +Inf bucket: both writers add one holding the count; odd bounds.
    ClientMetric m = with_labels({{"monitor", "odd"}});
    m.histogram.bucket = {{1, 1e-7}, {2, 0.0001}, {3, 0.1 + 0.2}, {4, 123.456}, {5, 1e6}};
    m.histogram.sample_count = 7;
    m.histogram.sample_sum = 1e20;
    hist.metric.push_back(m);
  }
  {
    // Counts above 2^53, as uint64.
    ClientMetric m = with_labels({{"monitor", "huge"}});
    m.histogram.bucket = {{(std::uint64_t{1} << 53) + 1, 1.0},
                          {std::numeric_limits<std::uint64_t>::max(), kInf}};
    m.histogram.sample_count = std::numeric_limits<std::uint64_t>::max();
    m.histogram.sample_sum = 1.8446744073709552e19;
    hist.metric.push_back(m);
  }
  families.push_back(hist);

  MetricFamily summary{"nasty_latency_seconds", "A summary.", MetricType::Summary, {}};
  {
    ClientMetric m = with_labels({{"path", "/a\"b"}});
    m.summary.quantile = {{0.5, 0.25}, {0.9, kNaN}, {0.99, 1e-7}, {0.999, 3.5}};
    m.summary.sample_count = 1000;
    m.summary.sample_sum = 12.5;
    summary.metric.push_back(m);
  }
  families.push_back(summary);

  MetricFamily untyped{"nasty_untyped", "Untyped.", MetricType::Untyped, {}};
  {
    ClientMetric m = with_labels({{"k", "v"}});
    m.untyped.value = -1.5e-300;
    untyped.metric.push_back(m);
    ClientMetric stamped = with_labels({{"k", "stamped"}});
    stamped.untyped.value = 7;
    stamped.timestamp_ms = 1700000000123;
    untyped.metric.push_back(stamped);
  }
  families.push_back(untyped);

  MetricFamily helpless{"nasty_helpless", "", MetricType::Gauge, {}};
  helpless.metric.push_back(with_labels({{"a", "b"}}));
  families.push_back(helpless);

  families.push_back(MetricFamily{"nasty_empty_total", "No series yet.", MetricType::Counter, {}});
  return families;
}

/// "name{k=v,...}" with the labels sorted: a sample's identity.
std::string key_of(const Sample& s) {
  std::string k = s.name + "{";
  for (const auto& [name, value] : s.labels) k += name + "=" + value + ",";
  return k + "}";
}

/// Samples by identity; fails the test on a duplicate.
std::map<std::string, double> by_key(const Scrape& s) {
  std::map<std::string, double> out;
  for (const Sample& sample : s.samples) {
    EXPECT_TRUE(out.emplace(key_of(sample), sample.value).second)
        << "duplicate sample " << key_of(sample);
  }
  return out;
}

/// TextSerializer prints 16 significant digits; spindle the shortest
/// exact text. Equal, or within that rounding, or both NaN.
bool same_value(double ours, double theirs) {
  if (std::isnan(ours) || std::isnan(theirs)) return std::isnan(ours) && std::isnan(theirs);
  if (ours == theirs) return true;
  return std::abs(ours - theirs) <= 1e-15 * std::max(std::abs(ours), std::abs(theirs));
}

/// Parses both texts and compares them sample by sample, and their HELP and TYPE lines.
void expect_same_samples(const std::string& ours, const std::string& theirs) {
  const Scrape a = parse_scrape(ours);
  const Scrape b = parse_scrape(theirs);
  EXPECT_EQ(a.types, b.types);
  EXPECT_EQ(a.helps, b.helps);
  const auto sa = by_key(a);
  const auto sb = by_key(b);
  ASSERT_EQ(sa.size(), sb.size());
  ASSERT_EQ(a.samples.size(), b.samples.size());
  for (const auto& [key, value] : sb) {
    const auto it = sa.find(key);
    if (it == sa.end()) {
      ADD_FAILURE() << "spindle's text lacks " << key;
      continue;
    }
    EXPECT_TRUE(same_value(it->second, value))
        << key << ": spindle " << it->second << ", prometheus-cpp " << value;
  }
}

/// The value token of every sample line (after the labels).
std::vector<std::string> value_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end == std::string::npos ? text.size() : end + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::size_t close = line.rfind('}');
    const std::size_t space = line.find(' ', close == std::string::npos ? 0 : close);
    const std::size_t after = line.find(' ', space + 1);
    out.push_back(
        line.substr(space + 1, after == std::string::npos ? std::string::npos : after - space - 1));
  }
  return out;
}

TEST(TextFormat, EverySampleMatchesPrometheusCppsSerializer) {
  const auto families = nasty_families();
  const std::string ours = serialize_with_spindle(families);
  expect_same_samples(ours, serialize_with_prometheus_cpp(families));
  // Sanity of the comparison itself: every nasty label value came through.
  const Scrape s = parse_scrape(ours);
  std::set<std::string> gauge_values;
  for (const Sample& sample : s.find("nasty_level")) {
    if (sample.labels.count("v") != 0) gauge_values.insert(sample.labels.at("v"));
  }
  EXPECT_EQ(gauge_values, std::set<std::string>(kNastyValues.begin(), kNastyValues.end()));
  EXPECT_EQ(s.type("nasty_empty_total"), "counter");
  EXPECT_EQ(s.helps.count("nasty_helpless"), 0u) << "no # HELP for an empty help text";
}

TEST(TextFormat, SpindlesOwnScrapeMatchesPrometheusCppSampleBySample) {
  auto rt = spindle::Runtime::Builder().worker_threads(2).poll_timing(true).build();
  auto stalls = std::make_shared<spindle::StallDetector>(rt.handle(), spindle::test::manual_scan());
  spindle::MetricsCollectable c({.const_labels = {{"service", "a\"b\\c\nd ü"}, {"zone", "eu-1"}}});
  c.add_runtime(rt.handle(), "main", stalls);
  std::vector<spindle::TaskMonitor> monitors;
  for (const char* name : {"checkout", "we\"ird\\name\n", "日本"}) {
    monitors.push_back(spindle::TaskMonitor::Builder().name(name).build());
    c.add_monitor(monitors.back());
  }
  std::vector<std::unique_ptr<spindle::test::ParkedTasks>> parked;
  for (const auto& m : monitors) {
    parked.push_back(std::make_unique<spindle::test::ParkedTasks>(rt.handle(), m, 3, 2));
    ASSERT_TRUE(parked.back()->wait_parked());
  }

  // One reading, two writers.
  const std::vector<MetricFamily> families = c.Collect();
  ASSERT_FALSE(families.empty());
  const std::string ours = serialize_with_spindle(families);
  expect_same_samples(ours, serialize_with_prometheus_cpp(families));
  EXPECT_EQ(parse_scrape(ours).find("spindle_task_poll_duration_seconds_bucket").size(),
            3 * (spindle::Histogram::kClassicBounds + 1));
  const auto check = spindle::test::promtool_check(ours);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(check.output, "") << "promtool findings:\n" << check.output;
}

// The endpoint writes the text straight from a reading (families.hpp's
// append_scrape_text); an Exposer gets prometheus-cpp families from the
// same reading. From one reading, both must give the same bytes.
std::string text_via_families(const spindle::detail::ScrapeReading& r,
                              const std::map<std::string, std::string>& labels) {
  return spindle::detail::text_format(spindle::detail::build_families(r, labels));
}

std::string text_direct(const spindle::detail::ScrapeReading& r,
                        const std::map<std::string, std::string>& labels) {
  std::string out = "kept\n";  // appends
  spindle::detail::append_scrape_text(r, labels, out);
  EXPECT_EQ(out.substr(0, 5), "kept\n");
  return out.substr(5);
}

TEST(ScrapeText, WritesTheSameBytesAsSerializingTheFamiliesOfTheSameReading) {
  auto rt = spindle::Runtime::Builder().worker_threads(2).poll_timing(true).build();
  auto plain_rt = spindle::Runtime::Builder().worker_threads(1).build();
  auto stalls = std::make_shared<spindle::StallDetector>(rt.handle(), spindle::test::manual_scan());
  spindle::detail::Sources sources(16);
  sources.add_runtime(rt.handle(), "main", stalls);
  sources.add_runtime(plain_rt.handle(), "plain \"rt\"", nullptr);
  std::vector<spindle::TaskMonitor> monitors;
  for (const char* name : {"checkout", "we\"ird\\name\n", "日本", "zz"}) {
    monitors.push_back(spindle::TaskMonitor::Builder().name(name).build());
    sources.add_monitor(monitors.back());
  }
  std::vector<std::unique_ptr<spindle::test::ParkedTasks>> parked;
  for (const auto& m : monitors) {
    parked.push_back(std::make_unique<spindle::test::ParkedTasks>(rt.handle(), m, 2, 3));
    ASSERT_TRUE(parked.back()->wait_parked());
  }
  for (const std::map<std::string, std::string>& labels :
       {std::map<std::string, std::string>{},
        std::map<std::string, std::string>{{"service", "a\"b\\c\nd ü"}, {"zone", "eu-1"}}}) {
    spindle::detail::ScrapeReading r;
    spindle::detail::read_sources(sources.snapshot(), r);
    ASSERT_EQ(r.tasks.size(), monitors.size());
    ASSERT_EQ(r.runtimes.size(), 2u);
    const std::string direct = text_direct(r, labels);
    EXPECT_EQ(direct, text_via_families(r, labels));
    // Not trivially equal: every family of the contract is there.
    const Scrape s = parse_scrape(direct);
    EXPECT_EQ(s.find("spindle_task_poll_duration_seconds_bucket").size(),
              monitors.size() * (spindle::Histogram::kClassicBounds + 1));
    EXPECT_EQ(s.find("spindle_runtime_stalls_total").size(), 2u) << "main's two workers only";
    EXPECT_EQ(s.find("spindle_runtime_poll_duration_seconds_count").size(), 1u);
    EXPECT_EQ(
        s.find("spindle_task_polls_total", {{"monitor", "checkout"}, {"kind", "fast"}}).size(), 1u);
  }
}

TEST(ScrapeText, EmptyAndRuntimeOnlyReadingsMatchToo) {
  spindle::detail::Sources sources(4);
  spindle::detail::ScrapeReading empty;
  spindle::detail::read_sources(sources.snapshot(), empty);
  EXPECT_EQ(text_direct(empty, {}), "");
  EXPECT_EQ(text_via_families(empty, {}), "");

  auto rt = spindle::Runtime::Builder().worker_threads(3).build();
  sources.add_runtime(rt.handle(), "only", nullptr);
  spindle::detail::ScrapeReading r;
  spindle::detail::read_sources(sources.snapshot(), r);
  const std::string direct = text_direct(r, {{"service", "x"}});
  EXPECT_EQ(direct, text_via_families(r, {{"service", "x"}}));
  const Scrape s = parse_scrape(direct);
  EXPECT_EQ(s.find("spindle_runtime_polls_total").size(), 3u);
  EXPECT_EQ(s.type("spindle_task_polls_total"), "");
  EXPECT_EQ(s.type("spindle_runtime_poll_duration_seconds"), "");
}

TEST(ScrapeText, OverwritingAndChunkedWritingGiveTheSameText) {
  spindle::MetricsCollectable c({.const_labels = {{"service", "s"}}, .max_monitors = 300});
  std::vector<spindle::TaskMonitor> monitors;
  for (int i = 0; i < 300; ++i) {  // ~3 MB: many chunks
    monitors.push_back(spindle::TaskMonitor::Builder().name("m" + std::to_string(i)).build());
    c.add_monitor(monitors.back());
  }
  const std::string text = c.text();
  ASSERT_GT(text.size(), 4 * spindle::detail::LineWriter::kChunkBytes);

  // Over a larger buffer: the text, then the old bytes untouched.
  std::string buffer(text.size() + 100, '#');
  const std::size_t end = c.write_text_over(buffer);
  EXPECT_EQ(end, text.size());
  EXPECT_EQ(buffer.substr(0, end), text);
  EXPECT_EQ(buffer.substr(end), std::string(100, '#'));
  // Over a smaller one, from an offset: it grows.
  std::string small = "keep";
  EXPECT_EQ(c.write_text_over(small, 4), 4 + text.size());
  EXPECT_EQ(small.substr(0, 4 + text.size()), "keep" + text);

  // In chunks: whole lines, none much over the chunk size, the same bytes.
  std::string scratch;
  std::string joined;
  std::size_t chunks = 0;
  c.write_text_in_chunks(scratch, [&](std::string_view chunk) {
    ++chunks;
    EXPECT_LE(chunk.size(), spindle::detail::LineWriter::kChunkBytes);
    EXPECT_EQ(chunk.back(), '\n');
    joined += chunk;
  });
  EXPECT_EQ(joined, text);
  EXPECT_GE(chunks, 4u);
  EXPECT_LE(scratch.size(), spindle::detail::LineWriter::kChunkBytes + 4096)
      << "never the whole text";
}

TEST(ScrapeText, MetricsCollectableTextIsTheDirectWriter) {
  // Monitors only: nothing changes between two readings.
  spindle::MetricsCollectable c({.const_labels = {{"service", "s"}}});
  std::vector<spindle::TaskMonitor> monitors;
  for (int i = 0; i < 5; ++i) {
    monitors.push_back(spindle::TaskMonitor::Builder().name("m" + std::to_string(i)).build());
    c.add_monitor(monitors.back());
  }
  const std::string text = c.text();
  EXPECT_EQ(text, serialize_with_spindle(c.Collect()));
  std::string appended = "x";
  c.append_text(appended);
  EXPECT_EQ(appended, "x" + text);
}

TEST(TextFormat, ValuesReadBackAsExactlyTheSameDouble) {
  std::vector<double> values = kNastyNumbers;
  values.push_back(std::numeric_limits<double>::max());
  values.push_back(-std::numeric_limits<double>::max());
  values.push_back(std::numeric_limits<double>::min());
  values.push_back(std::numeric_limits<double>::denorm_min());
  values.push_back(-9007199254740991.0);  // -(2^53 - 1), the exact-integer edge
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 5000; ++i) {
    const double d = std::bit_cast<double>(rng());
    if (!std::isnan(d)) values.push_back(d);
    values.push_back(static_cast<double>(rng()));                    // uint64 counters
    values.push_back(static_cast<double>(rng() % 100000000) / 1e9);  // durations in s
  }
  MetricFamily f{"roundtrip_value", "Values.", MetricType::Gauge, {}};
  for (std::size_t i = 0; i < values.size(); ++i) {
    ClientMetric m = with_labels({{"i", std::to_string(i)}});
    m.gauge.value = values[i];
    f.metric.push_back(m);
  }
  const std::string text = serialize_with_spindle({f});

  // Every value is a float literal Prometheus' parser takes.
  const std::regex literal(R"([+-]?(Inf|NaN|[0-9]+(\.[0-9]+)?(e[+-][0-9]+)?))");
  const std::vector<std::string> tokens = value_tokens(text);
  ASSERT_EQ(tokens.size(), values.size());
  for (const std::string& t : tokens) EXPECT_TRUE(std::regex_match(t, literal)) << t;

  const Scrape s = parse_scrape(text);
  ASSERT_EQ(s.samples.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double got = s.samples[i].value;
    if (std::isnan(values[i])) {
      EXPECT_TRUE(std::isnan(got)) << tokens[i];
    } else {
      EXPECT_EQ(std::bit_cast<std::uint64_t>(got), std::bit_cast<std::uint64_t>(values[i]))
          << tokens[i] << " read back as " << got << ", written from " << values[i];
    }
  }
  // Whole numbers in the exact range are plain digits.
  EXPECT_EQ(tokens[4], "1000000");
  EXPECT_EQ(tokens[9], "9007199254740992");
}

TEST(TextFormat, EscapesLabelValuesAndHelpTextExactly) {
  MetricFamily f{"escaped_total", "Back\\slash,\nnewline and \"quotes\".", MetricType::Counter, {}};
  ClientMetric m = with_labels({{"a", "x\"y\\z\nü"}, {"b", ""}});
  m.counter.value = 1;
  f.metric.push_back(m);
  ClientMetric bare;
  bare.counter.value = 2.5;
  f.metric.push_back(bare);
  EXPECT_EQ(serialize_with_spindle({f}),
            "# HELP escaped_total Back\\\\slash,\\nnewline and \"quotes\".\n"
            "# TYPE escaped_total counter\n"
            "escaped_total{a=\"x\\\"y\\\\z\\nü\",b=\"\"} 1\n"
            "escaped_total 2.5\n");
  const Scrape s = parse_scrape(serialize_with_spindle({f}));
  EXPECT_EQ(s.helps.at("escaped_total"), f.help);
}

TEST(TextFormat, HistogramWithoutAnInfBucketGetsOneHoldingTheCount) {
  MetricFamily f{"h_seconds", "H.", MetricType::Histogram, {}};
  ClientMetric m = with_labels({{"x", "1"}});
  m.histogram.bucket = {{2, 0.5}, {3, 1.0}};
  m.histogram.sample_count = 4;
  m.histogram.sample_sum = 3.25;
  m.timestamp_ms = 17;
  f.metric.push_back(m);
  EXPECT_EQ(serialize_with_spindle({f}),
            "# HELP h_seconds H.\n"
            "# TYPE h_seconds histogram\n"
            "h_seconds_bucket{x=\"1\",le=\"0.5\"} 2 17\n"
            "h_seconds_bucket{x=\"1\",le=\"1\"} 3 17\n"
            "h_seconds_bucket{x=\"1\",le=\"+Inf\"} 4 17\n"
            "h_seconds_sum{x=\"1\"} 3.25 17\n"
            "h_seconds_count{x=\"1\"} 4 17\n");
}

TEST(TextFormat, LeAndQuantileLabelsAreWrittenAsPrometheusCppWroteThem) {
  // `le` names the series: a different spelling of the same bound would
  // start new series in Prometheus when the exporter is upgraded.
  const auto families = nasty_families();
  const auto labels_of = [](const std::string& text, const char* name) {
    std::vector<std::string> out;
    for (const Sample& s : parse_scrape(text).samples) {
      if (s.labels.count(name) != 0) out.push_back(s.name + " " + s.labels.at(name));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  const std::string ours = serialize_with_spindle(families);
  const std::string theirs = serialize_with_prometheus_cpp(families);
  const auto le = labels_of(ours, "le");
  EXPECT_EQ(le.size(), 32u + 6u + 2u);
  EXPECT_EQ(le, labels_of(theirs, "le"));
  EXPECT_EQ(labels_of(ours, "quantile"), labels_of(theirs, "quantile"));
  EXPECT_NE(ours.find("le=\"6.4e-08\""), std::string::npos);
  EXPECT_NE(ours.find("le=\"1.024e-06\""), std::string::npos);
  EXPECT_NE(ours.find("le=\"0.000131072\""), std::string::npos);
  EXPECT_NE(ours.find("le=\"68.719476736\""), std::string::npos);
  EXPECT_NE(ours.find("le=\"1000000\""), std::string::npos);
}

TEST(TextFormat, CountsAboveTwoToThe53AreExactIntegers) {
  const std::string ours = serialize_with_spindle(nasty_families());
  EXPECT_NE(ours.find("nasty_duration_seconds_bucket{monitor=\"huge\",le=\"1\"} "
                      "9007199254740993\n"),
            std::string::npos);
  EXPECT_NE(ours.find("nasty_duration_seconds_count{monitor=\"huge\"} 18446744073709551615\n"),
            std::string::npos);
  EXPECT_NE(ours.find("nasty_duration_seconds_bucket{monitor=\"huge\",le=\"+Inf\"} "
                      "18446744073709551615\n"),
            std::string::npos);
  // A counter of 2^64 kept as a double reads back as 2^64.
  const Scrape s = parse_scrape(ours);
  EXPECT_EQ(s.value("nasty_things_total", {{"i", "11"}}), 18446744073709551616.0);
}

TEST(TextFormat, EmptyInputWritesNothingAndAppendKeepsWhatWasThere) {
  EXPECT_EQ(serialize_with_spindle({}), "");
  std::string out = "# prefix\n";
  MetricFamily f{"g", "", MetricType::Gauge, {}};
  f.metric.emplace_back().gauge.value = 1;
  spindle::detail::append_text_format(std::vector<MetricFamily>{f}, out);
  EXPECT_EQ(out, "# prefix\n# TYPE g gauge\ng 1\n");
}

/// What a spindle scrape of `monitors` monitors looks like, without a
/// runtime: 3 histograms and 20 other series per monitor.
std::vector<MetricFamily> monitor_like_families(int monitors) {
  MetricFamily hist{"spindle_task_poll_duration_seconds", "Polls.", MetricType::Histogram, {}};
  MetricFamily counter{"spindle_task_polls_total", "Polls.", MetricType::Counter, {}};
  for (int i = 0; i < monitors; ++i) {
    const std::vector<ClientMetric::Label> labels = {{"monitor", "monitor_" + std::to_string(i)},
                                                     {"service", "bench"}};
    for (int h = 0; h < 3; ++h) {
      ClientMetric m = with_labels(labels);
      for (int b = 0; b < 31; ++b) {  // 2^k ns for k = 6…36, as spindle exports
        m.histogram.bucket.push_back(
            {static_cast<std::uint64_t>(b * i), std::ldexp(1.0, 6 + b) / 1e9});
      }
      m.histogram.bucket.push_back({static_cast<std::uint64_t>(31 * i), kInf});
      m.histogram.sample_count = static_cast<std::uint64_t>(31 * i);
      m.histogram.sample_sum = 0.001 * i;
      hist.metric.push_back(m);
    }
    for (int c = 0; c < 20; ++c) {
      ClientMetric m = with_labels(labels);
      m.counter.value = 1.5 * i + c;
      counter.metric.push_back(m);
    }
  }
  return {hist, counter};
}

std::size_t allocations_while_writing(const std::vector<MetricFamily>& families,
                                      std::size_t* bytes) {
  t_allocations = 0;
  t_count_allocations = true;
  const std::string text = spindle::detail::text_format(families);
  t_count_allocations = false;
  *bytes = text.size();
  return t_allocations;
}

TEST(TextFormat, WritingAllocatesNothingPerLine) {
#if defined(SPINDLE_SANITIZER_BUILD)
  GTEST_SKIP() << "sanitizer build: operator new is the sanitizer's, allocations are not counted";
#endif
  std::size_t small_bytes = 0;
  std::size_t large_bytes = 0;
  const std::size_t small = allocations_while_writing(monitor_like_families(10), &small_bytes);
  const std::size_t large = allocations_while_writing(monitor_like_families(1000), &large_bytes);
  ASSERT_GT(large_bytes, 5'000'000u) << "about 100,000 lines";
  // The output (sized ahead once), the label scratch and the le table.
  EXPECT_LE(small, 4u);
  EXPECT_LE(large, 4u);
  EXPECT_EQ(small, large) << "allocations grow with the lines";
}

}  // namespace
