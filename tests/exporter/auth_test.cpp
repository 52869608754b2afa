// Basic authentication on the exporter's endpoint, and its pieces
// (exporter/src/basic_auth.hpp): base64 decoding, the header check.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "basic_auth.hpp"
#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"

namespace {

using spindle::PrometheusExporter;
using spindle::test::basic_authorization;
using spindle::test::http_get;

class ExporterBasicAuth : public ::testing::Test {
 protected:
  ExporterBasicAuth()
      : exporter_({.bind_address = "127.0.0.1:0",
                   .basic_auth = PrometheusExporter::BasicAuth{"prometheus", "s3cret:pw"}}) {
    exporter_.add_monitor(monitor_);
  }

  spindle::TaskMonitor monitor_ = spindle::TaskMonitor::Builder().name("checkout").build();
  PrometheusExporter exporter_;
};

TEST_F(ExporterBasicAuth, RequestWithoutCredentialsGets401WithAChallenge) {
  const auto r = http_get(exporter_.port(), "/metrics");
  EXPECT_EQ(r.status, 401);
  ASSERT_NE(r.headers.count("www-authenticate"), 0u);
  EXPECT_EQ(r.headers.at("www-authenticate"), "Basic realm=\"spindle\"");
  EXPECT_EQ(r.body.find("spindle_"), std::string::npos);
}

TEST_F(ExporterBasicAuth, WrongPasswordOrUserGets401) {
  for (const auto& [user, password] :
       std::vector<std::pair<std::string, std::string>>{{"prometheus", "wrong"},
                                                        {"prometheus", "s3cret:p"},
                                                        {"prometheus", "s3cret:pw2"},
                                                        {"grafana", "s3cret:pw"},
                                                        {"", ""}}) {
    SCOPED_TRACE(user + ":" + password);
    const auto r = http_get(exporter_.port(), "/metrics", basic_authorization(user, password));
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.body.find("spindle_"), std::string::npos);
  }
  EXPECT_EQ(http_get(exporter_.port(), "/metrics", std::string("Basic !!notbase64")).status, 401);
  EXPECT_EQ(http_get(exporter_.port(), "/metrics", std::string("Bearer token")).status, 401);
}

TEST_F(ExporterBasicAuth, RightCredentialsGet200AndTheMetrics) {
  const auto r =
      http_get(exporter_.port(), "/metrics", basic_authorization("prometheus", "s3cret:pw"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("spindle_task_polls_total{monitor=\"checkout\""), std::string::npos);
  // The scheme is case-insensitive (RFC 7617).
  std::string lower = basic_authorization("prometheus", "s3cret:pw");
  lower.replace(0, 5, "basic");
  EXPECT_EQ(http_get(exporter_.port(), "/metrics", lower).status, 200);
}

TEST(BasicAuthDecoding, Base64DecodesWhatWasEncodedWithOrWithoutPadding) {
  // basic_authorization() encodes "user:password" independently of the exporter.
  for (const std::string& password :
       {std::string(""), std::string("a"), std::string("ab"), std::string("abc"),
        std::string("p\xff\x00\x01w:with:colons", 17), std::string("ü 日本")}) {
    SCOPED_TRACE(password);
    const std::string header = basic_authorization("u", password);
    const std::string encoded = header.substr(6);  // after "Basic "
    EXPECT_EQ(spindle::detail::decode_base64(encoded), "u:" + password);
    std::string unpadded = encoded;
    while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
    EXPECT_EQ(spindle::detail::decode_base64(unpadded), "u:" + password);
    EXPECT_TRUE(spindle::detail::basic_credentials_match(header, "u", password));
    EXPECT_FALSE(spindle::detail::basic_credentials_match(header, "u", password + "x"));
    EXPECT_FALSE(spindle::detail::basic_credentials_match(header, "v", password));
  }
  EXPECT_EQ(spindle::detail::decode_base64(""), "");
  EXPECT_EQ(spindle::detail::decode_base64("+/+/"), "\xfb\xff\xbf");
}

TEST(BasicAuthDecoding, MalformedBase64AndHeadersAreRejected) {
  for (const char* bad :
       {"a", "abcde", "ab=c", "=abc", "a===", "ab!c", "ab c", "abc=d===", "YQ=", "Y===", "-_-_"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(spindle::detail::decode_base64(bad), std::nullopt);
  }
  using spindle::detail::basic_credentials_match;
  const std::string good = basic_authorization("u", "pw");
  EXPECT_TRUE(basic_credentials_match(good, "u", "pw"));
  EXPECT_FALSE(basic_credentials_match("", "u", "pw"));
  EXPECT_FALSE(basic_credentials_match("Basic", "u", "pw"));
  EXPECT_FALSE(basic_credentials_match("Bearer " + good.substr(6), "u", "pw"));
  EXPECT_FALSE(basic_credentials_match("Basic " + std::string("dXB3"), "u", "pw"))
      << "\"upw\" has no ':'";
}

TEST(BasicAuthDecoding, ConstantTimeComparisonIsStillAComparison) {
  using spindle::detail::equal_in_constant_time;
  EXPECT_TRUE(equal_in_constant_time("", ""));
  EXPECT_TRUE(equal_in_constant_time("s3cret", "s3cret"));
  EXPECT_FALSE(equal_in_constant_time("s3cret", "s3cre"));
  EXPECT_FALSE(equal_in_constant_time("s3cre", "s3cret"));
  EXPECT_FALSE(equal_in_constant_time("s3cret", "S3cret"));
  EXPECT_FALSE(equal_in_constant_time(std::string_view("a\0", 2), "a"));
}

}  // namespace
