// tests/exporter/scrape_support.hpp — scraping an exporter the way Prometheus does.
//
//   spindle::test::http_get      a blocking HTTP/1.1 GET over an Asio socket
//   spindle::test::parse_scrape  the Prometheus text format, parsed into families and samples
//   spindle::test::promtool_check  `promtool check metrics` on a scrape body
//   spindle::test::ParkedTasks   instrumented tasks that poll a known number of times, then wait
//
// Example:
//   auto r = spindle::test::http_get(exporter.port(), "/metrics");
//   ASSERT_EQ(r.status, 200);
//   auto scrape = spindle::test::parse_scrape(r.body);
//   EXPECT_EQ(scrape.type("spindle_task_polls_total"), "counter");
//
// Thread safety: the functions are safe from any thread; a ParkedTasks is
// used by one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"
#include "spindle/sync/notify.hpp"

namespace spindle::test {

struct HttpResponse {
  int status = 0;                              // e.g. 200, 401
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

/// GETs http://127.0.0.1:`port``path`. `authorization` is sent as the
/// Authorization header when given. Throws std::system_error when the
/// connection fails.
HttpResponse http_get(std::uint16_t port, const std::string& path,
                      const std::optional<std::string>& authorization = std::nullopt);

/// "Basic base64(user:password)".
std::string basic_authorization(std::string_view user, std::string_view password);

using LabelMap = std::map<std::string, std::string>;

struct Sample {
  std::string name;  // with _bucket / _sum / _count for histogram lines
  LabelMap labels;   // label values unescaped
  double value = 0;
};

struct Scrape {
  std::map<std::string, std::string> types;  // family name -> counter|gauge|histogram|...
  std::map<std::string, std::string> helps;  // family name -> help text (unescaped)
  std::vector<Sample> samples;               // in order

  /// The family's # TYPE ("" when absent).
  [[nodiscard]] std::string type(const std::string& family) const;
  /// Samples named `name` whose labels include every pair of `match`.
  [[nodiscard]] std::vector<Sample> find(const std::string& name, const LabelMap& match = {}) const;
  /// The value of the one sample named `name` matching `match`; fails the
  /// test (and returns NaN) when there is not exactly one.
  [[nodiscard]] double value(const std::string& name, const LabelMap& match = {}) const;
  /// Sum over every matching sample.
  [[nodiscard]] double sum(const std::string& name, const LabelMap& match = {}) const;
};

/// Parses the Prometheus text exposition format. Fails the test on a line
/// it cannot parse.
Scrape parse_scrape(std::string_view text);

struct PromtoolResult {
  int exit_code = -1;  // promtool's exit status; -1 when it could not run
  std::string output;  // its stdout and stderr
};

/// Runs `promtool check metrics` with `body` on its standard input.
PromtoolResult promtool_check(const std::string& body);

/// StallDetector options without the watchdog thread: the test calls scan().
inline StallDetector::Options manual_scan() {
  StallDetector::Options o;
  o.start_thread = false;
  return o;
}

/// `n` tasks instrumented by `monitor`, each polled `yields + 1` times (it
/// yields `yields` times), then waiting on a Notify until release(): idle,
/// alive, and not changing the monitor's figures.
class ParkedTasks {
 public:
  ParkedTasks(const Handle& rt, const TaskMonitor& monitor, int n, int yields);
  ~ParkedTasks();
  ParkedTasks(const ParkedTasks&) = delete;
  ParkedTasks& operator=(const ParkedTasks&) = delete;

  /// Waits until every task has made its polls and is waiting (fails the test on a hang).
  [[nodiscard]] bool wait_parked() const;
  /// Lets the tasks finish and joins them (idempotent).
  void release();

 private:
  TaskMonitor monitor_;                  // their monitor
  std::uint64_t expected_polls_;         // polls of all tasks until parked, plus earlier ones
  sync::Notify notify_;                  // what the parked tasks wait on
  std::atomic<bool> released_{false};    // release() was called
  std::vector<JoinHandle<void>> tasks_;  // the tasks
};

}  // namespace spindle::test
