// Bad input: each a clear exception at the call that caused it, while the
// exporter keeps serving what it had.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"

namespace {

using spindle::PrometheusExporter;
using ::testing::HasSubstr;

spindle::TaskMonitor named(const std::string& name) {
  return spindle::TaskMonitor::Builder().name(name).build();
}

/// Runs `f`, expects an exception of type E, returns its message.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no exception";
  return {};
}

/// The monitors a live exporter serves right now, over HTTP.
std::set<std::string> served_monitors(const PrometheusExporter& exporter) {
  const auto r = spindle::test::http_get(exporter.port(), exporter.path());
  EXPECT_EQ(r.status, 200);
  std::set<std::string> names;
  for (const auto& s : spindle::test::parse_scrape(r.body).find("spindle_task_live_tasks")) {
    names.insert(s.labels.at("monitor"));
  }
  return names;
}

TEST(ExporterBadInput, PortAlreadyInUseThrowsAndTheFirstExporterKeepsServing) {
  PrometheusExporter first({.bind_address = "127.0.0.1:0"});
  auto mon = named("checkout");
  first.add_monitor(mon);
  ASSERT_NE(first.port(), 0);
  const std::string address = "127.0.0.1:" + std::to_string(first.port());
  const std::string msg = message_of<spindle::ExporterError>(
      [&] { PrometheusExporter second({.bind_address = address}); });
  EXPECT_THAT(msg, HasSubstr(address));
  EXPECT_THAT(msg, HasSubstr("already in use"));
  EXPECT_EQ(served_monitors(first), std::set<std::string>{"checkout"});
}

TEST(ExporterBadInput, MalformedBindAddressesAreConfigErrorsNamingTheAddress) {
  for (const char* address :
       {"", ":9464", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:http", "127.0.0.1:9464s",
        "::1:9464", "[::1", "host name:80", "127.0.0.1:9464,127.0.0.1:9465"}) {
    SCOPED_TRACE(address);
    const std::string msg =
        message_of<spindle::ConfigError>([&] { PrometheusExporter e({.bind_address = address}); });
    EXPECT_THAT(msg, HasSubstr("bind_address"));
    EXPECT_THAT(msg, HasSubstr(std::string("\"") + address + "\""));
  }
}

TEST(ExporterBadInput, AnAddressThatIsNotThisMachinesIsAnExporterError) {
  // 192.0.2.0/24 is reserved for documentation (RFC 5737): never local.
  const std::string msg = message_of<spindle::ExporterError>(
      [&] { PrometheusExporter e({.bind_address = "192.0.2.1:0"}); });
  EXPECT_THAT(msg, HasSubstr("192.0.2.1:0"));
  EXPECT_THAT(msg, HasSubstr("not one of this machine's"));
}

TEST(ExporterBadInput, InvalidPathIsAConfigError) {
  for (const char* path : {"", "metrics", "/me trics", "/metrics?x=1"}) {
    SCOPED_TRACE(path);
    EXPECT_THAT(message_of<spindle::ConfigError>(
                    [&] { PrometheusExporter e({.bind_address = "127.0.0.1:0", .path = path}); }),
                HasSubstr("Options::path"));
  }
}

TEST(ExporterBadInput, InvalidOrCollidingConstantLabelNamesAreConfigErrors) {
  for (const char* name : {"", "1abc", "a-b", "sérvice", "__name__", "__x"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(
        message_of<spindle::ConfigError>([&] {
          PrometheusExporter e({.bind_address = "127.0.0.1:0", .const_labels = {{name, "x"}}});
        }),
        HasSubstr("not a valid Prometheus label name"));
  }
  for (const char* name : {"monitor", "runtime", "worker", "kind", "culprit", "encoding", "le", "quantile"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(message_of<spindle::ConfigError>([&] {
                  spindle::MetricsCollectable c({.const_labels = {{name, "x"}}});
                }),
                HasSubstr("collides"));
  }
  EXPECT_THAT(message_of<spindle::ConfigError>([&] {
                spindle::MetricsCollectable c({.const_labels = {{"service", "\xff"}}});
              }),
              HasSubstr("not valid UTF-8"));
  // Valid names and any UTF-8 value are accepted.
  spindle::MetricsCollectable ok({.const_labels = {{"service", "ch\"eck\\out\n"}, {"_zone", "ü"}}});
}

TEST(ExporterBadInput, MonitorNamesMustBeNonEmptyAndUnique) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  auto checkout = named("checkout");
  exporter.add_monitor(checkout);

  EXPECT_THAT(message_of<spindle::UsageError>([&] { exporter.add_monitor(named("")); }),
              HasSubstr("non-empty name"));
  EXPECT_THAT(
      message_of<spindle::UsageError>([&] { exporter.add_monitor(spindle::TaskMonitor()); }),
      HasSubstr("non-empty name"));
  EXPECT_THAT(message_of<spindle::UsageError>([&] { exporter.add_monitor(named("check\xc3")); }),
              HasSubstr("not valid UTF-8"));
  // Re-adding the same monitor, and a different monitor with the same name,
  // are both errors, with messages that tell them apart.
  const std::string twice =
      message_of<spindle::UsageError>([&] { exporter.add_monitor(checkout); });
  EXPECT_THAT(twice, HasSubstr("\"checkout\" is already registered"));
  EXPECT_THAT(twice, HasSubstr("same monitor"));
  auto impostor = named("checkout");
  const std::string other =
      message_of<spindle::UsageError>([&] { exporter.add_monitor(impostor); });
  EXPECT_THAT(other, HasSubstr("another monitor named \"checkout\""));

  EXPECT_EQ(exporter.collectable()->monitor_count(), 1u);
  EXPECT_EQ(served_monitors(exporter), std::set<std::string>{"checkout"});
  // The impostor is not registered: removing it removes nothing.
  EXPECT_FALSE(exporter.remove_monitor(impostor));
  EXPECT_EQ(served_monitors(exporter), std::set<std::string>{"checkout"});
}

TEST(ExporterBadInput, MoreMonitorsThanMaxMonitorsIsAnError) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .max_monitors = 2});
  auto a = named("a");
  auto b = named("b");
  auto c = named("c");
  exporter.add_monitor(a);
  exporter.add_monitor(b);
  const std::string msg = message_of<spindle::UsageError>([&] { exporter.add_monitor(c); });
  EXPECT_THAT(msg, HasSubstr("max_monitors (2)"));
  EXPECT_EQ(served_monitors(exporter), (std::set<std::string>{"a", "b"}));
  // Room again after a removal.
  EXPECT_TRUE(exporter.remove_monitor("a"));
  exporter.add_monitor(c);
  EXPECT_EQ(served_monitors(exporter), (std::set<std::string>{"b", "c"}));
}

TEST(ExporterBadInput, RuntimeRegistrationErrors) {
  auto rt = spindle::Runtime::Builder().worker_threads(1).build();
  auto other = spindle::Runtime::Builder().worker_threads(1).build();
  auto other_stalls =
      std::make_shared<spindle::StallDetector>(other.handle(), spindle::test::manual_scan());
  spindle::MetricsCollectable c;
  c.add_runtime(rt.handle());

  EXPECT_THAT(message_of<spindle::UsageError>([&] { c.add_runtime(spindle::Handle()); }),
              HasSubstr("empty Handle"));
  EXPECT_THAT(message_of<spindle::UsageError>([&] { c.add_runtime(other.handle(), ""); }),
              HasSubstr("non-empty name"));
  EXPECT_THAT(message_of<spindle::UsageError>([&] { c.add_runtime(other.handle(), "main"); }),
              HasSubstr("\"main\" is already registered"));
  EXPECT_THAT(message_of<spindle::UsageError>([&] { c.add_runtime(rt.handle(), "again"); }),
              HasSubstr("already registered as \"main\""));
  auto rt_stalls =
      std::make_shared<spindle::StallDetector>(rt.handle(), spindle::test::manual_scan());
  EXPECT_THAT(
      message_of<spindle::UsageError>([&] { c.add_runtime(other.handle(), "other", rt_stalls); }),
      HasSubstr("different runtime"));
  EXPECT_EQ(c.runtime_count(), 1u);
  // The failed calls changed nothing; the right detector is accepted.
  c.add_runtime(other.handle(), "other", other_stalls);
  EXPECT_EQ(c.runtime_count(), 2u);
  EXPECT_TRUE(c.remove_runtime("other"));
  EXPECT_FALSE(c.remove_runtime("other"));
}

TEST(ExporterBadInput, TimeoutsAndTheConnectionCapMustBeInRange) {
  using std::chrono::milliseconds;
  const auto with = [](auto set) {
    PrometheusExporter::Options o{.bind_address = "127.0.0.1:0"};
    set(o);
    return o;
  };
  using Case = std::pair<PrometheusExporter::Options, std::string>;
  for (const Case& c : std::vector<Case>{
           {with([](auto& o) { o.header_timeout = milliseconds(0); }), "header_timeout"},
           {with([](auto& o) { o.header_timeout = milliseconds(-5); }), "header_timeout"},
           {with([](auto& o) { o.idle_timeout = milliseconds(0); }), "idle_timeout"},
           {with([](auto& o) { o.write_timeout = std::chrono::hours(2); }), "write_timeout"},
           {with([](auto& o) { o.max_connections = 0; }), "max_connections"},
           {with([](auto& o) { o.max_connections = std::size_t{1} << 21; }), "max_connections"}}) {
    SCOPED_TRACE(c.second);
    const std::string msg =
        message_of<spindle::ConfigError>([&] { PrometheusExporter e(c.first); });
    EXPECT_THAT(msg, HasSubstr("Options::" + c.second));
  }
  // The bounds themselves are accepted.
  PrometheusExporter ok(with([](auto& o) {
    o.header_timeout = milliseconds(1);
    o.idle_timeout = std::chrono::hours(1);
    o.max_connections = 1;
  }));
  EXPECT_NE(ok.port(), 0);
}

TEST(ExporterBadInput, BasicAuthNeedsAUsernameWithoutColon) {
  EXPECT_THAT(message_of<spindle::ConfigError>([&] {
                PrometheusExporter e({.bind_address = "127.0.0.1:0",
                                      .basic_auth = PrometheusExporter::BasicAuth{"", "pw"}});
              }),
              HasSubstr("empty username"));
  EXPECT_THAT(message_of<spindle::ConfigError>([&] {
                PrometheusExporter e({.bind_address = "127.0.0.1:0",
                                      .basic_auth = PrometheusExporter::BasicAuth{"a:b", "pw"}});
              }),
              HasSubstr("':'"));
}

}  // namespace
