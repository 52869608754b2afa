// gzip on the exporter's endpoint: which Accept-Encoding values get it
// (exporter/src/gzip.hpp), that compressed bodies decompress (zlib's
// inflate, in the test) to the same text, and the headers that say so.
#include "gzip.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"

namespace {

using spindle::detail::accepts_gzip;
using spindle::test::gunzip;
using spindle::test::http_exchange;
using spindle::test::parse_responses;
using ::testing::HasSubstr;

TEST(Gzip, AcceptEncodingValuesThatAllowIt) {
  for (const char* yes :
       {"gzip", "GZip", "gzip, deflate, br", "deflate, gzip;q=0.5", " gzip ", "x-gzip", "*",
        "br;q=1.0, *;q=0.1", "gzip;q=0.001", "gzip; Q=1", "identity, gzip"}) {
    SCOPED_TRACE(yes);
    EXPECT_TRUE(accepts_gzip(yes));
  }
  for (const char* no : {"", "identity", "deflate, br", "gzip;q=0", "gzip; q=0.000", "gzipx",
                         "*;q=0", "gzip;q=0, *", "zstd", "gz ip"}) {
    SCOPED_TRACE(no);
    EXPECT_FALSE(accepts_gzip(no));
  }
}

TEST(Gzip, CompressedBytesDecompressToTheInput) {
  std::mt19937 rng(7);
  std::string random(300'000, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  std::string text;
  for (int i = 0; i < 20'000; ++i)
    text += "spindle_task_polls_total{monitor=\"m" + std::to_string(i) + "\"} 42\n";
  std::string out = "previous contents";
  for (const std::string* in : {&text, &random}) {
    for (const int level : {1, 6, 9}) {
      spindle::detail::gzip_compress(*in, out, level);
      ASSERT_GE(out.size(), 18u);
      EXPECT_EQ(static_cast<unsigned char>(out[0]), 0x1f) << "gzip magic";
      EXPECT_EQ(static_cast<unsigned char>(out[1]), 0x8b);
      EXPECT_EQ(gunzip(out), *in) << "level " << level;
    }
  }
  spindle::detail::gzip_compress(text, out);
  EXPECT_LT(out.size(), text.size() / 8) << "the text format compresses well";
  spindle::detail::gzip_compress("", out);
  EXPECT_EQ(gunzip(out), "");
  EXPECT_EQ(gunzip("not gzip"), std::nullopt) << "the test's decoder does check";
}

TEST(Gzip, AStreamFedInPiecesIsOneGzipOfTheirConcatenation) {
  std::string whole;
  for (int i = 0; i < 50'000; ++i) whole += "line " + std::to_string(i * 7919 % 100'003) + "\n";
  std::string out(10, 'x');  // written over from its start
  spindle::detail::GzipStream stream(out);
  for (std::size_t at = 0; at < whole.size(); at += 1'000) {
    stream.write(std::string_view(whole).substr(at, 1'000));
  }
  const std::size_t size = stream.finish();
  EXPECT_EQ(gunzip(std::string_view(out.data(), size)), whole);
  EXPECT_GE(out.size(), size);
}

class ExporterGzip : public ::testing::Test {
 protected:
  ExporterGzip() : exporter_({.bind_address = "127.0.0.1:0", .const_labels = {{"service", "z"}}}) {
    for (int i = 0; i < 20; ++i) {
      monitors_.push_back(spindle::TaskMonitor::Builder().name("m" + std::to_string(i)).build());
      exporter_.add_monitor(monitors_.back());
    }
  }
  spindle::test::HttpResponse get(const std::string& accept_encoding) {
    std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    if (!accept_encoding.empty()) request += "Accept-Encoding: " + accept_encoding + "\r\n";
    const auto r = parse_responses(http_exchange(exporter_.port(), request + "\r\n"));
    EXPECT_EQ(r.size(), 1u);
    return r.empty() ? spindle::test::HttpResponse{} : r.front();
  }
  // The body without the scrape counters, which differ from scrape to scrape.
  static std::string without_scrape_counts(const std::string& text) {
    std::string out;
    std::size_t start = 0;
    while (start < text.size()) {
      const std::size_t end = text.find('\n', start);
      const std::string line = text.substr(start, end - start + 1);
      if (line.rfind("spindle_exporter_scrapes_total{", 0) != 0) out += line;
      start = end == std::string::npos ? text.size() : end + 1;
    }
    return out;
  }

  std::vector<spindle::TaskMonitor> monitors_;
  spindle::PrometheusExporter exporter_;
};

TEST_F(ExporterGzip, AcceptEncodingGzipGetsAGzipBodyOfTheSameText) {
  const auto plain = get("");
  const auto zipped = get("gzip");  // what Prometheus sends
  ASSERT_EQ(plain.status, 200);
  ASSERT_EQ(zipped.status, 200);
  EXPECT_EQ(plain.headers.count("content-encoding"), 0u);
  EXPECT_EQ(plain.headers.at("vary"), "Accept, Accept-Encoding");  // protobuf may be served
  EXPECT_EQ(zipped.headers.at("content-encoding"), "gzip");
  EXPECT_EQ(zipped.headers.at("vary"), "Accept, Accept-Encoding");
  EXPECT_EQ(zipped.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto text = gunzip(zipped.body);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(without_scrape_counts(*text), without_scrape_counts(plain.body));
  EXPECT_LT(zipped.body.size(), plain.body.size() / 5);
  // The counters tell the two kinds apart: one of each before this scrape.
  const auto s = spindle::test::parse_scrape(*gunzip(get("gzip").body));
  EXPECT_EQ(s.value("spindle_exporter_scrapes_total", {{"encoding", "gzip"}}), 1);
  EXPECT_EQ(s.value("spindle_exporter_scrapes_total", {{"encoding", "identity"}}), 1);
  const auto check = spindle::test::promtool_check(*text);
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST_F(ExporterGzip, RefusedOrUnknownEncodingsGetTheText) {
  for (const char* value : {"gzip;q=0", "br", "identity"}) {
    SCOPED_TRACE(value);
    const auto r = get(value);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.count("content-encoding"), 0u);
    EXPECT_THAT(r.body, HasSubstr("spindle_task_live_tasks{monitor=\"m0\",service=\"z\"} 0"));
  }
}

TEST_F(ExporterGzip, ConcurrentScrapesOfBothKindsAreEachWhole) {
  constexpr int kThreads = 8;
  constexpr int kEach = 10;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const bool zip = (t + i) % 2 == 0;
        const auto r = get(zip ? "gzip" : "");
        const std::optional<std::string> text = zip ? gunzip(r.body) : std::optional(r.body);
        if (r.status != 200 || !text ||
            text->find("spindle_task_live_tasks{monitor=\"m19\",service=\"z\"} 0") ==
                std::string::npos) {
          bad.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
