// examples/demo/server.cpp — the acceptor and connection tasks of spindle-demo (see server.hpp).
#include "server.hpp"

#include <array>
#include <asio/write.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "format.hpp"
#include "http.hpp"

namespace demo {

namespace {

// Counts a connection task as open for the lifetime of its frame, also when the frame is
// destroyed without finishing (runtime shutdown).
class OpenConnection {
 public:
  explicit OpenConnection(ServerStats& stats) noexcept : stats_(&stats) {
    stats_->open.fetch_add(1, std::memory_order_relaxed);
  }
  OpenConnection(const OpenConnection&) = delete;
  OpenConnection& operator=(const OpenConnection&) = delete;
  ~OpenConnection() { stats_->open.fetch_sub(1, std::memory_order_relaxed); }

 private:
  ServerStats* stats_;  // outlives us: the task holds a shared_ptr to it
};

http::Response text(int status, std::string body) {
  return http::Response{.status = status, .body = std::move(body), .headers = {}};
}

// Answers one request. Awaited inline by the connection task: the references outlive it.
spindle::Task<http::Response> answer(const RouteTable& routes, const http::Request& request,
                                     ServerStats& stats) {
  if (request.bad_target) {
    stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    co_return text(400, "bad request target '" + request.target + "'\n");
  }
  if (request.method != HTTP_GET && request.method != HTTP_HEAD) {
    http::Response r = text(
        405, std::string(request.method_name()) + " is not served here; " + "use GET or HEAD\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    co_return r;
  }
  if (request.path == "/") co_return text(200, routes.index_text());
  const Route* route = routes.find(request.path);
  if (route == nullptr) {
    stats.not_found.fetch_add(1, std::memory_order_relaxed);
    co_return text(404, "no route " + request.path + "; GET / lists them\n");
  }
  std::string error;
  const std::optional<RouteArgs> args = RouteArgs::parse(request.query, error);
  if (!args) {
    stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    co_return text(400, route->name + ": " + error + "\n");
  }

  const auto start = std::chrono::steady_clock::now();
  std::string what;
  try {
    // The request's work, as a root task under the route's monitor.
    what = co_await routes.spawn(*route, *args);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  if (!error.empty()) {
    stats.handler_errors.fetch_add(1, std::memory_order_relaxed);
    co_return text(500, route->name + ": failed: " + error + "\n");
  }
  co_return text(200, route->name + ": " + what + "; took " + format_duration(took) + "\n");
}

// One connection: answers its requests in order until the client closes, a response
// says "Connection: close", or an error. Never throws.
spindle::Task<void> serve_connection(asio::ip::tcp::socket socket,
                                     std::shared_ptr<const RouteTable> routes,
                                     std::shared_ptr<ServerStats> stats) {
  const OpenConnection open(*stats);
  http::RequestParser parser;
  std::array<char, 8192> buffer{};
  std::string out;
  try {
    asio::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    for (;;) {
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer),
                                                     spindle::as_result(spindle::use_task));
      if (ec) {
        // EOF (or a reset) between requests is the client's normal goodbye.
        if (ec != asio::error::eof && ec != asio::error::connection_reset) {
          stats->connection_errors.fetch_add(1, std::memory_order_relaxed);
        }
        co_return;
      }
      const bool well_formed = parser.feed(buffer.data(), n);
      while (std::optional<http::Request> request = parser.pop()) {
        stats->requests.fetch_add(1, std::memory_order_relaxed);
        const http::Response response = co_await answer(*routes, *request, *stats);
        const bool keep_alive = request->keep_alive && !request->bad_target;
        out = http::serialize(response, {.keep_alive = keep_alive,
                                         .head = request->method == HTTP_HEAD,
                                         .http_minor = request->http_minor});
        co_await asio::async_write(socket, asio::buffer(out), spindle::use_task);
        if (!keep_alive) {
          socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
          co_return;
        }
      }
      if (!well_formed) {
        stats->bad_requests.fetch_add(1, std::memory_order_relaxed);
        out = http::serialize(text(parser.error_status(), parser.error_text() + "\n"),
                              {.keep_alive = false, .head = false, .http_minor = 1});
        co_await asio::async_write(socket, asio::buffer(out), spindle::use_task);
        socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        co_return;
      }
    }
  } catch (const std::exception&) {
    // A broken pipe, a reset mid-response, out of memory: this connection only.
    stats->connection_errors.fetch_add(1, std::memory_order_relaxed);
  }
}

// The acceptor: binds on the calling worker, reports the bound endpoint through `bound`,
// then accepts until aborted. Throws asio::system_error when it cannot bind or listen
// (then `bound` is dropped unsent).
spindle::Task<void> accept_loop(asio::ip::tcp::endpoint endpoint,
                                std::shared_ptr<const RouteTable> routes,
                                std::shared_ptr<ServerStats> stats,
                                spindle::sync::Sender<asio::ip::tcp::endpoint> bound) {
  asio::ip::tcp::acceptor acceptor(spindle::this_executor());
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  bound.send(acceptor.local_endpoint());

  const spindle::Handle runtime = spindle::Handle::current();
  for (;;) {
    asio::ip::tcp::socket socket(runtime.executor());  // a worker chosen round-robin
    auto [ec] = co_await acceptor.async_accept(socket, spindle::as_result(spindle::use_task));
    if (ec) {
      // E.g. out of file descriptors: count it, give the system a moment, go on.
      stats->accept_errors.fetch_add(1, std::memory_order_relaxed);
      co_await spindle::sleep(std::chrono::milliseconds(10));
      continue;
    }
    stats->accepted.fetch_add(1, std::memory_order_relaxed);
    spindle::spawn(serve_connection(std::move(socket), routes, stats)).detach();
  }
}

}  // namespace

Server Server::start(const spindle::Handle& runtime, const asio::ip::tcp::endpoint& endpoint,
                     std::shared_ptr<const RouteTable> routes) {
  auto stats = std::make_shared<ServerStats>();
  auto [tx, rx] = spindle::sync::oneshot<asio::ip::tcp::endpoint>();
  spindle::JoinHandle<void> acceptor =
      runtime.spawn(accept_loop(endpoint, std::move(routes), stats, std::move(tx)));
  asio::ip::tcp::endpoint bound;
  try {
    bound = rx.blocking_recv();
  } catch (const spindle::sync::RecvError&) {
    acceptor.join();  // rethrows why accept_loop() could not listen
    throw;
  }
  return Server(std::move(acceptor), std::move(stats), bound);
}

void Server::stop() {
  if (!acceptor_.valid()) return;
  acceptor_.abort();
  try {
    acceptor_.join();
  } catch (const spindle::Cancelled&) {
    // the expected end of an aborted acceptor
  } catch (const std::exception&) {
    // it had failed already (e.g. the runtime shut down first): it is gone either way
  }
  acceptor_ = {};
}

}  // namespace demo
