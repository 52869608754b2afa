// examples/demo/load.cpp — the load generator's clients and self-checks (see load.hpp).
#include "load.hpp"

#include <mutex>

#include <array>
#include <asio/write.hpp>
#include <cmath>
#include <exception>
#include <stdexcept>

#include "http.hpp"

namespace demo {

using std::chrono::nanoseconds;
using Clock = std::chrono::steady_clock;

// The state the client tasks share with the LoadGenerator. Its mutex is held only
// between awaits, for a few stores.
class LoadShared {
 public:
  LoadShared(const asio::ip::tcp::endpoint& server, std::size_t routes)
      : server_(server),
        host_(server.address().is_v6() ? "[" + server.address().to_string() + "]"
                                       : server.address().to_string()),
        interval_(routes),
        total_(routes) {
    host_ += ":" + std::to_string(server.port());
  }

  [[nodiscard]] const asio::ip::tcp::endpoint& server() const noexcept { return server_; }

  /// A GET of `target` with keep-alive (HTTP/1.1's default).
  [[nodiscard]] std::string get(const std::string& target) const {
    return "GET " + target + " HTTP/1.1\r\nHost: " + host_ +
           "\r\nUser-Agent: spindle-demo-load\r\n\r\n";
  }
  [[nodiscard]] const std::string& host() const noexcept { return host_; }

  void record(std::size_t route, bool ok, nanoseconds latency) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* counts : {&interval_[route], &total_[route]}) {
      (ok ? counts->ok : counts->failed) += 1;
      if (ok) counts->latency.record(latency);
    }
  }
  void record_failure(std::size_t route) {
    std::lock_guard<std::mutex> lock(mu_);
    interval_[route].failed += 1;
    total_[route].failed += 1;
  }
  void add_check(CheckResult result) {
    std::lock_guard<std::mutex> lock(mu_);
    checks_.push_back(std::move(result));
  }
  std::vector<LoadCounts> take_interval() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<LoadCounts> out(interval_.size());
    out.swap(interval_);
    return out;
  }
  std::vector<LoadCounts> totals() const {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }
  std::vector<CheckResult> checks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return checks_;
  }

 private:
  const asio::ip::tcp::endpoint server_;                   // where to connect
  std::string host_;                                       // the Host header's value
  mutable std::mutex mu_;                                       // guards the counts and results
  std::vector<LoadCounts> interval_;  // per route, since take_interval()
  std::vector<LoadCounts> total_;     // per route, since start
  std::vector<CheckResult> checks_;   // finished self-checks
};

namespace {

// One response, as the client read it.
struct Reply {
  int status = 0;           // the status code
  std::string body;         // the body
  bool keep_alive = false;  // the server keeps the connection open
};

// One client connection: writes requests, reads responses with http-parser. Lives in its
// task's frame; its member coroutines are awaited inline, so `this` outlives them.
class HttpClient {
 public:
  explicit HttpClient(const spindle::Executor& executor) : socket_(executor) {}
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Throws asio::system_error when the connection is refused.
  spindle::Task<void> connect(asio::ip::tcp::endpoint server) {
    co_await socket_.async_connect(server, spindle::use_task);
    asio::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  }

  // Writes `bytes` whole. Throws asio::system_error.
  spindle::Task<void> send(std::string bytes) {
    co_await asio::async_write(socket_, asio::buffer(bytes), spindle::use_task);
  }

  // Reads the next response (bytes past its end are kept for the one after). Throws
  // asio::system_error on I/O errors, std::runtime_error on a malformed response.
  spindle::Task<Reply> receive() {
    parser_.reset();
    for (;;) {
      if (!pending_.empty()) {
        const std::size_t used = parser_.feed(pending_.data(), pending_.size());
        pending_.erase(0, used);
        if (parser_.failed()) throw std::runtime_error("bad response: " + parser_.error());
        if (parser_.complete()) co_return reply();
      }
      auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer_),
                                                      spindle::as_result(spindle::use_task));
      if (ec == asio::error::eof) {
        parser_.feed_eof();
        if (parser_.complete()) co_return reply();
        throw std::runtime_error("bad response: " + parser_.error());
      }
      if (ec) throw asio::system_error(ec);
      pending_.append(buffer_.data(), n);
    }
  }

  // After a "Connection: close" answer: true when the server then closed (EOF or reset).
  spindle::Task<bool> closed_by_server() {
    if (!pending_.empty()) co_return false;
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer_),
                                                    spindle::as_result(spindle::use_task));
    co_return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  Reply reply() const { return Reply{parser_.status(), parser_.body(), parser_.keep_alive()}; }

  asio::ip::tcp::socket socket_;     // the connection
  http::ResponseParser parser_;      // the response being read
  std::string pending_;              // bytes read but not yet parsed
  std::array<char, 4096> buffer_{};  // one read's worth
};

// One request a client sends.
struct Shot {
  std::size_t route;    // counted under this route
  std::string request;  // the bytes to write
};

// A client: one connection at a time, one request per tick (the shots in turn), until
// the runtime shuts down. Never throws.
spindle::Task<void> client(std::shared_ptr<LoadShared> shared, std::vector<Shot> shots,
                           nanoseconds period, nanoseconds phase) {
  spindle::Interval ticks(period, spindle::MissedTick::kSkip, Clock::now() + phase);
  std::size_t next = 0;
  for (;;) {
    bool failed = false;
    std::size_t route = shots[next % shots.size()].route;
    try {
      // The tick before connecting: a connection opened up to a period ahead of its first
      // request (5 s for the stall client) would race the server's header timeout, which
      // runs from the accept, and lose now and then (a 408, counted as a failure).
      co_await ticks.tick();
      HttpClient conn(spindle::this_executor());
      co_await conn.connect(shared->server());
      for (bool first = true;; first = false) {
        if (!first) co_await ticks.tick();
        const Shot& shot = shots[next++ % shots.size()];
        route = shot.route;
        const auto start = Clock::now();
        co_await conn.send(shot.request);
        const Reply reply = co_await conn.receive();
        shared->record(shot.route, reply.status == 200, Clock::now() - start);
        if (!reply.keep_alive) break;  // the server closes: open a new connection
      }
    } catch (const std::exception&) {
      failed = true;
    }
    if (failed) {
      shared->record_failure(route);
      co_await spindle::sleep(std::chrono::milliseconds(200));
    }
  }
}

// A protocol self-check: raw request bytes and the statuses expected back, in order.
struct Check {
  std::string name;           // what it checks
  std::string request;        // the bytes to write (possibly several requests)
  std::vector<int> statuses;  // the statuses expected, in order
  bool closes = false;        // the server must close the connection afterwards
  std::string body_contains;  // the first body must contain this
};

std::vector<Check> self_checks(const std::string& host) {
  const std::string h = "Host: " + host + "\r\n";
  return {
      {"GET / lists the routes",
       "GET / HTTP/1.1\r\n" + h + "\r\n",
       {200},
       false,
       "/slow-downstream"},
      {"an unknown path is 404", "GET /no-such-route HTTP/1.1\r\n" + h + "\r\n", {404}, false, ""},
      {"a malformed request is 400 and closes", "NOT HTTP AT ALL\r\n\r\n", {400}, true, ""},
      {"POST is 405",
       "POST /healthy HTTP/1.1\r\n" + h + "Content-Length: 5\r\n\r\nhello",
       {405},
       false,
       ""},
      {"a bad ?ms= is 400",
       "GET /big-loop?ms=soon HTTP/1.1\r\n" + h + "\r\n",
       {400},
       false,
       "ms must be"},
      {"pipelined requests are answered in order",
       "GET /healthy?ms=0 HTTP/1.1\r\n" + h + "\r\nGET /nope HTTP/1.1\r\n" + h +
           "Connection: close\r\n\r\n",
       {200, 404},
       true,
       "healthy"},
      {"HTTP/1.0 without keep-alive closes after the answer",
       "GET /healthy?ms=0 HTTP/1.0\r\n\r\n",
       {200},
       true,
       "healthy"},
  };
}

std::string join(const std::vector<int>& v) {
  std::string out;
  for (int x : v) out += (out.empty() ? "" : " ") + std::to_string(x);
  return out.empty() ? "nothing" : out;
}

// Runs the checks one after the other, each on a fresh connection. Never throws.
spindle::Task<void> run_checks(std::shared_ptr<LoadShared> shared, std::vector<Check> checks) {
  for (const Check& check : checks) {
    CheckResult result{.name = check.name, .passed = false, .detail = {}};
    try {
      HttpClient conn(spindle::this_executor());
      co_await conn.connect(shared->server());
      co_await conn.send(check.request);
      std::vector<int> got;
      std::string first_body;
      bool keep_alive = true;
      for (std::size_t i = 0; i < check.statuses.size(); ++i) {
        const Reply reply = co_await conn.receive();
        got.push_back(reply.status);
        if (i == 0) first_body = reply.body;
        keep_alive = reply.keep_alive;
      }
      result.detail = "got " + join(got);
      result.passed =
          got == check.statuses && first_body.find(check.body_contains) != std::string::npos;
      if (check.closes) {
        bool closed = false;
        if (!keep_alive) closed = co_await conn.closed_by_server();
        if (!closed) {
          result.passed = false;
          result.detail += ", but the connection stayed open";
        }
      }
    } catch (const std::exception& e) {
      result.detail = e.what();
    }
    shared->add_check(std::move(result));
  }
}

}  // namespace

LoadGenerator::Options LoadGenerator::default_options(const RouteTable& routes,
                                                      const asio::ip::tcp::endpoint& server,
                                                      bool quick) {
  struct Spec {
    const char* name;
    int clients;
    double rate;
    bool burst;
  };
  // ~135 requests/s. blocking-sleep and big-loop come in pairs, so that now and then
  // both workers are stuck at once (20 ms, or 10 ms, five times a second): work stealing
  // cannot hide that, and every route's scheduled delay shows it. What the causes cost
  // the workers, per second: blocking-sleep 10 × 20 ms (sleeping), big-loop 10 × 10 ms,
  // file-read 5 × ~3 ms, lock's blocked waits a few ms per burst, the stall shots
  // 150 ms every 5 s: about a fifth of two workers — disturbed, not saturated. The fixed
  // twins get the same load. victim is requested often (its work is 0.4 ms) so that its
  // tasks are queued behind those hogs now and then: the starved route of the verdict.
  static constexpr Spec kSpecs[] = {
      {"healthy", 2, 10, false},
      {"blocking-sleep", 2, 5, true},
      {"blocking-sleep-fixed", 2, 5, true},
      {"file-read", 1, 5, false},
      {"file-read-fixed", 1, 5, false},
      {"big-loop", 2, 5, true},
      {"big-loop-fixed", 2, 5, true},
      {"lock", 3, 4, true},
      {"lock-fixed", 3, 4, true},
      {"slow-downstream", 2, 10, false},
      {"victim", 2, 10, false},
  };
  Options o;
  o.server = server;
  o.routes = routes.routes().size();
  for (const Spec& s : kSpecs) {
    const std::optional<std::size_t> index = routes.index_of(s.name);
    if (!index) continue;
    o.plans.push_back(LoadPlan{.route = *index,
                               .target = routes.routes()[*index].path,
                               .clients = s.clients,
                               .rate_per_client = s.rate,
                               .burst = s.burst});
  }
  for (const char* name : {"blocking-sleep", "big-loop"}) {
    if (const std::optional<std::size_t> index = routes.index_of(name)) {
      o.stall_shots.emplace_back(*index, routes.routes()[*index].path + "?ms=150");
    }
  }
  o.stall_period = quick ? std::chrono::seconds(2) : std::chrono::seconds(5);
  return o;
}

LoadGenerator::LoadGenerator(Options options)
    : shared_(std::make_shared<LoadShared>(options.server, options.routes)) {
  runtime_.emplace(spindle::Runtime::Builder().worker_threads(1).thread_name("demo-load").build());
  const spindle::Handle rt = runtime_->handle();
  std::size_t n = 0;  // clients started, for spreading their phases
  for (const LoadPlan& plan : options.plans) {
    if (plan.clients <= 0 || !(plan.rate_per_client > 0)) continue;
    const auto period = std::chrono::duration_cast<nanoseconds>(
        std::chrono::duration<double>(1.0 / plan.rate_per_client));
    for (int k = 0; k < plan.clients; ++k) {
      // Golden-ratio spread of the start phases; one shared phase for a burst route.
      const double frac =
          std::fmod(0.618033988749895 * static_cast<double>(plan.burst ? n : n + k), 1.0);
      const auto phase = std::chrono::duration_cast<nanoseconds>(period * frac);
      rt.spawn(client(shared_, {Shot{plan.route, shared_->get(plan.target)}}, period, phase))
          .detach();
    }
    n += static_cast<std::size_t>(plan.clients);
    planned_rate_ += plan.clients * plan.rate_per_client;
  }
  if (!options.stall_shots.empty() && options.stall_period.count() > 0) {
    std::vector<Shot> shots;
    for (const auto& [route, target] : options.stall_shots) {
      shots.push_back(Shot{route, shared_->get(target)});
    }
    rt.spawn(client(shared_, std::move(shots), options.stall_period, options.stall_period))
        .detach();
  }
  if (options.self_checks) {
    std::vector<Check> checks = self_checks(shared_->host());
    expected_checks_ = checks.size();
    rt.spawn(run_checks(shared_, std::move(checks))).detach();
  }
}

LoadGenerator::~LoadGenerator() { stop(); }

bool LoadGenerator::stop() {
  if (runtime_) {
    stopped_cleanly_ = runtime_->shutdown_timeout(std::chrono::seconds(5));
    runtime_.reset();
  }
  return stopped_cleanly_;
}

std::vector<LoadCounts> LoadGenerator::take_interval() { return shared_->take_interval(); }
std::vector<LoadCounts> LoadGenerator::totals() const { return shared_->totals(); }
std::vector<CheckResult> LoadGenerator::checks() const { return shared_->checks(); }

}  // namespace demo
