// examples/demo/load.hpp — spindle-demo's built-in load generator (--load).
//
//   demo::LoadPlan       what to send to one route: connections, rate, bursts
//   demo::LoadCounts     per route: answered, failed, latency as the client saw it
//   demo::CheckResult    one protocol self-check (404, 400, 405, pipelining, HTTP/1.0 ...)
//   demo::LoadGenerator  runs the clients on a spindle runtime of its own (one worker)
//
// Example:
//   demo::LoadGenerator load(demo::LoadGenerator::default_options(*routes, server.endpoint(),
//                                                                  /*quick=*/false));
//   ... every second:  std::vector<demo::LoadCounts> last = load.take_interval();
//   load.stop();
//
// Each client task owns one keep-alive connection and sends one request at a time, paced
// by a spindle::Interval (a late answer skips the missed ticks: a closed loop, so a slow
// service gets less load, never an unbounded queue). Clients of a route start at spread
// phases, except for the lock routes, whose connections fire together so that their
// requests contend for the lock, and blocking-sleep and big-loop, whose pairs of
// connections fire together so that both workers are stuck at once now and then. Responses are
// parsed with http-parser. A failed connection is counted and re-opened after 200 ms, at the next tick
// (a client connects at the tick of its first request, never earlier). Besides the
// steady load, one client sends /blocking-sleep?ms=150 and /big-loop?ms=150 in turn every few
// seconds, so that the stall detector has something to report, and a checker runs the protocol
// self-checks once at start. The default plan is about 135 requests/s; the causes
// keep the service's workers busy (or blocked) about a fifth of the time.
//
// Thread safety: the member functions may be called from any thread except the
// load generator's own worker.
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <spindle/runtime.hpp>
#include <string>
#include <utility>
#include <vector>

#include "routes.hpp"

namespace demo {

/// What to send to one route.
struct LoadPlan {
  std::size_t route = 0;         ///< its index in RouteTable::routes()
  std::string target;            ///< the request target, e.g. "/lock"
  int clients = 1;               ///< keep-alive connections, one request in flight on each
  double rate_per_client = 1.0;  ///< requests per second on each connection
  bool burst = false;            ///< the connections fire together (contention)
};

/// What the clients saw for one route.
struct LoadCounts {
  std::uint64_t ok = 0;        ///< answered 200
  std::uint64_t failed = 0;    ///< answered otherwise, or the connection failed
  spindle::Histogram latency;  ///< request written → response read, for answered requests

  LoadCounts& operator+=(const LoadCounts& o) noexcept {
    ok += o.ok;
    failed += o.failed;
    latency += o.latency;
    return *this;
  }
};

/// One protocol self-check.
struct CheckResult {
  std::string name;     ///< what it checks, e.g. "an unknown path is 404"
  bool passed = false;  ///< the server answered as expected
  std::string detail;   ///< what it got, or the error
};

class LoadShared;  // the state the client tasks share (load.cpp)

/// Drives every route of the demo over real HTTP connections. Not copyable or movable.
class LoadGenerator {
 public:
  struct Options {
    asio::ip::tcp::endpoint server;  ///< where to connect (a concrete address, not 0.0.0.0)
    std::size_t routes = 0;          ///< number of routes (size of the counts)
    std::vector<LoadPlan> plans;     ///< the steady load
    /// Requests sent in turn, one every stall_period, to trip the stall detector:
    /// {route index, target}.
    std::vector<std::pair<std::size_t, std::string>> stall_shots;
    std::chrono::nanoseconds stall_period{std::chrono::seconds(5)};  ///< > 0
    bool self_checks = true;  ///< run the protocol self-checks once at start
  };

  /// The demo's plan for `routes` (see the file comment); `quick` sends the stall shots
  /// every 2 s instead of 5 s.
  static Options default_options(const RouteTable& routes, const asio::ip::tcp::endpoint& server,
                                 bool quick);

  /// Starts the clients on a runtime of their own and returns. Throws what
  /// Runtime::Builder::build() throws.
  explicit LoadGenerator(Options options);
  /// Stops (see stop()).
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  /// Shuts the clients' runtime down (their connections close). Returns true when it shut
  /// down cleanly within 5 s. Idempotent (later calls return the first result).
  bool stop();

  /// Per route: the counts since the previous call (the first: since start).
  std::vector<LoadCounts> take_interval();
  /// Per route: the counts since start.
  [[nodiscard]] std::vector<LoadCounts> totals() const;
  /// The self-checks finished so far.
  [[nodiscard]] std::vector<CheckResult> checks() const;
  /// How many self-checks there are (0 when Options::self_checks is false).
  [[nodiscard]] std::size_t expected_checks() const noexcept { return expected_checks_; }
  /// Requests per second of the steady plan.
  [[nodiscard]] double planned_rate() const noexcept { return planned_rate_; }

 private:
  std::shared_ptr<LoadShared> shared_;       // counts and results; shared with the client tasks
  std::optional<spindle::Runtime> runtime_;  // the clients' runtime; empty once stopped
  std::size_t expected_checks_ = 0;          // self-checks started
  double planned_rate_ = 0;                  // sum of clients × rate
  bool stopped_cleanly_ = true;              // the result of the first stop()
};

}  // namespace demo
