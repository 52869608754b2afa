// The exporter's /debug/trace: a registered runtime's flight recorder as
// Chrome trace-event JSON, behind the same authentication as /metrics; 404
// without a recorder; ?runtime= picks one; the path is configurable or off.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/runtime.hpp"

namespace {

using spindle::PrometheusExporter;
using spindle::Runtime;
using spindle::test::basic_authorization;
using spindle::test::http_get;

spindle::Task<int> yielder() {
  co_await spindle::yield_now();
  co_return 1;
}

TEST(ExporterTrace, ServesTheFlightRecorderOfARegisteredRuntimeAsJson) {
  auto plain = Runtime::Builder().worker_threads(1).build();
  auto traced = Runtime::Builder().worker_threads(2).flight_recorder(1024).build();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(traced.spawn(yielder()).join(), 1);
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  exporter.add_runtime(plain.handle(), "plain");
  exporter.add_runtime(traced.handle(), "traced");

  const auto r = http_get(exporter.port(), "/debug/trace");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  const nlohmann::json trace = nlohmann::json::parse(r.body);
  int polls = 0;
  for (const auto& e : trace.at("traceEvents")) polls += e.at("ph") == "X" ? 1 : 0;
  EXPECT_GE(polls, 20) << "10 tasks, 2 polls each: the first runtime with a recorder";

  EXPECT_EQ(http_get(exporter.port(), "/debug/trace?runtime=traced").status, 200);
  const auto none = http_get(exporter.port(), "/debug/trace?runtime=plain");
  EXPECT_EQ(none.status, 404);
  EXPECT_NE(none.body.find("flight recorder"), std::string::npos) << none.body;
  EXPECT_EQ(http_get(exporter.port(), "/debug/trace?runtime=nope").status, 404);
  EXPECT_EQ(http_get(exporter.port(), "/debug/trace/x").status, 404) << "exact path";
  EXPECT_EQ(http_get(exporter.port(), "/metrics").status, 200) << "metrics unchanged";
}

TEST(ExporterTrace, NoRuntimeWithARecorderIs404) {
  auto plain = Runtime::Builder().worker_threads(1).build();
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  EXPECT_EQ(http_get(exporter.port(), "/debug/trace").status, 404);
  exporter.add_runtime(plain.handle());
  EXPECT_EQ(http_get(exporter.port(), "/debug/trace").status, 404);
}

TEST(ExporterTrace, NeedsTheSameCredentialsAsTheMetrics) {
  auto traced = Runtime::Builder().worker_threads(1).flight_recorder(64).build();
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0",
                               .basic_auth = PrometheusExporter::BasicAuth{"prom", "pw"}});
  exporter.add_runtime(traced.handle());
  EXPECT_EQ(http_get(exporter.port(), "/debug/trace").status, 401);
  EXPECT_EQ(http_get(exporter.port(), "/debug/trace", basic_authorization("prom", "no")).status,
            401);
  EXPECT_EQ(http_get(exporter.port(), "/debug/trace", basic_authorization("prom", "pw")).status,
            200);
}

TEST(ExporterTrace, ThePathIsConfigurableOrOff) {
  auto traced = Runtime::Builder().worker_threads(1).flight_recorder(64).build();
  {
    PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .trace_path = "/trace.json"});
    exporter.add_runtime(traced.handle());
    EXPECT_EQ(http_get(exporter.port(), "/trace.json").status, 200);
    EXPECT_EQ(http_get(exporter.port(), "/debug/trace").status, 404);
  }
  {
    PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .trace_path = ""});
    exporter.add_runtime(traced.handle());
    EXPECT_EQ(http_get(exporter.port(), "/debug/trace").status, 404);
  }
  EXPECT_THROW(PrometheusExporter({.bind_address = "127.0.0.1:0", .trace_path = "debug"}),
               spindle::ConfigError);
  EXPECT_THROW(PrometheusExporter({.bind_address = "127.0.0.1:0", .trace_path = "/metrics"}),
               spindle::ConfigError);
}

}  // namespace
