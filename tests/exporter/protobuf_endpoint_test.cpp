// The endpoint's protobuf exposition: a scrape whose Accept header prefers
// it (Prometheus with --enable-feature=native-histograms) gets the
// delimited MetricFamily stream with the exact Content-Type Prometheus
// expects, gzipped when accepted, with the exporter's own series; every
// other scrape gets the text; Options::protobuf = false turns it off.

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "http_client.hpp"
#include "protobuf_scrape.hpp"
#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"

namespace {

using spindle::TaskMonitor;
using spindle::test::decode_delimited;
using spindle::test::find_family;
using spindle::test::find_metric;
namespace pb = io::prometheus::client;

constexpr const char* kPollDuration = "spindle_task_poll_duration_seconds";
constexpr std::string_view kProtobufType =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
constexpr std::string_view kTextType = "text/plain; version=0.0.4; charset=utf-8";
// What Prometheus 2.42 sends with and without --enable-feature=native-histograms.
constexpr const char* kPrometheusNativeAccept =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
    "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
constexpr const char* kPrometheusAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

class ExporterProtobufHttp : public ::testing::Test {
 protected:
  explicit ExporterProtobufHttp(bool protobuf = true)
      : exporter_({.bind_address = "127.0.0.1:0",
                   .const_labels = {{"service", "h"}},
                   .protobuf = protobuf}) {
    for (int i = 0; i < 5; ++i) {
      monitors_.push_back(TaskMonitor::Builder().name("m" + std::to_string(i)).build());
      exporter_.add_monitor(monitors_.back());
    }
  }
  /// One request with these extra header lines (each ending in \r\n).
  spindle::test::HttpResponse request(const std::string& headers, const char* method = "GET") {
    const std::string req = std::string(method) +
                            " /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers +
                            "\r\n";
    const bool head = std::string_view(method) == "HEAD";
    const auto r = spindle::test::parse_responses(
        spindle::test::http_exchange(exporter_.port(), req),
        head ? std::vector<std::size_t>{0} : std::vector<std::size_t>{});
    EXPECT_EQ(r.size(), 1u);
    return r.empty() ? spindle::test::HttpResponse{} : r.front();
  }
  static std::string accept(const std::string& value) { return "Accept: " + value + "\r\n"; }

  std::vector<TaskMonitor> monitors_;
  spindle::PrometheusExporter exporter_;
};

TEST_F(ExporterProtobufHttp, PrometheusWithNativeHistogramsGetsTheDelimitedProtobuf) {
  const auto r = request(accept(kPrometheusNativeAccept));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), kProtobufType);
  EXPECT_EQ(r.headers.count("content-encoding"), 0u);
  EXPECT_EQ(r.headers.at("vary"), "Accept, Accept-Encoding");
  const auto families = decode_delimited(r.body);
  const pb::MetricFamily* polls = find_family(families, "spindle_task_polls_total");
  ASSERT_NE(polls, nullptr);
  EXPECT_EQ(polls->type(), pb::COUNTER);
  EXPECT_EQ(polls->metric_size(), 10);  // 5 monitors, fast and slow
  ASSERT_NE(find_metric(*polls, {{"monitor", "m3"}, {"kind", "slow"}, {"service", "h"}}), nullptr);
  // The exporter's own series, after the collectable's, as in the text.
  ASSERT_GE(families.size(), 2u);
  EXPECT_EQ(families[families.size() - 2].name(), "spindle_exporter_rejected_connections_total");
  const pb::MetricFamily& scrapes = families.back();
  EXPECT_EQ(scrapes.name(), "spindle_exporter_scrapes_total");
  ASSERT_NE(find_metric(scrapes, {{"encoding", "gzip"}, {"service", "h"}}), nullptr);
  ASSERT_NE(find_metric(scrapes, {{"encoding", "identity"}}), nullptr);
}

TEST_F(ExporterProtobufHttp, GzipAppliesToProtobufToo) {
  const auto plain = request(accept(kPrometheusNativeAccept));
  const auto zipped = request(accept(kPrometheusNativeAccept) + "Accept-Encoding: gzip\r\n");
  ASSERT_EQ(zipped.status, 200);
  EXPECT_EQ(zipped.headers.at("content-type"), kProtobufType);
  EXPECT_EQ(zipped.headers.at("content-encoding"), "gzip");
  const auto body = spindle::test::gunzip(zipped.body);
  ASSERT_TRUE(body.has_value());
  const auto families = decode_delimited(*body);
  EXPECT_EQ(families.size(), decode_delimited(plain.body).size());
  EXPECT_NE(find_family(families, kPollDuration), nullptr);
  EXPECT_LT(zipped.body.size(), plain.body.size());
  // Counted as a gzip scrape (the next scrape tells): one of each before it.
  const auto next = decode_delimited(request(accept(kPrometheusNativeAccept)).body);
  const pb::Metric* gz = find_metric(next.back(), {{"encoding", "gzip"}});
  const pb::Metric* id = find_metric(next.back(), {{"encoding", "identity"}});
  ASSERT_NE(gz, nullptr);
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(gz->counter().value(), 1);
  EXPECT_EQ(id->counter().value(), 1);
}

TEST_F(ExporterProtobufHttp, TheTextUnlessProtobufIsPreferred) {
  for (const std::string& headers :
       {std::string(), accept(kPrometheusAccept), accept("*/*"), accept("application/json"),
        accept("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
               "encoding=delimited;q=0.4,text/plain;q=0.5")}) {
    SCOPED_TRACE(headers);
    const auto r = request(headers);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.at("content-type"), kTextType);
    EXPECT_EQ(r.headers.at("vary"), "Accept, Accept-Encoding");
    EXPECT_NE(r.body.find("# TYPE spindle_task_polls_total counter"), std::string::npos);
  }
}

TEST_F(ExporterProtobufHttp, SeveralAcceptHeadersAreOneList) {
  const auto r = request(accept("text/plain;q=0.5") +
                         accept("application/vnd.google.protobuf;proto=io.prometheus.client."
                                "MetricFamily;encoding=delimited;q=0.7"));
  EXPECT_EQ(r.headers.at("content-type"), kProtobufType);
}

TEST_F(ExporterProtobufHttp, HeadNegotiatesTheSameWay) {
  const auto r = request(accept(kPrometheusNativeAccept), "HEAD");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), kProtobufType);
  EXPECT_GT(std::stoul(r.headers.at("content-length")), 0u);
  EXPECT_TRUE(r.body.empty());
}

class ExporterProtobufOff : public ExporterProtobufHttp {
 protected:
  ExporterProtobufOff() : ExporterProtobufHttp(false) {}
};

TEST_F(ExporterProtobufOff, OptionsProtobufFalseServesTheTextToEveryone) {
  const auto r = request(accept(kPrometheusNativeAccept) + "Accept-Encoding: gzip\r\n");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), kTextType);
  EXPECT_EQ(r.headers.at("vary"), "Accept-Encoding");
  const auto text = spindle::test::gunzip(r.body);
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find("spindle_task_poll_duration_seconds_bucket"), std::string::npos);
}

}  // namespace
