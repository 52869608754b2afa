// Basic authentication on the exporter's endpoint.
#include <gtest/gtest.h>

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
  EXPECT_NE(r.headers.at("www-authenticate").find("Basic"), std::string::npos);
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
}

}  // namespace
