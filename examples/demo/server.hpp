// examples/demo/server.hpp — spindle-demo's HTTP/1.1 server: an acceptor task and one task
// per connection, on spindle workers and Asio sockets.
//
//   demo::ServerOptions  its limits: header, idle and body timeouts, the connection cap
//   demo::ServerStats    what the server has done (connections, requests, errors, timeouts)
//   demo::Server         starts the acceptor on a runtime from outside it, and stops it
//
// Example (from main, outside the runtime):
//   auto routes = std::make_shared<const demo::RouteTable>(demo::Timings::normal());
//   demo::Server server = demo::Server::start(rt.handle(), {asio::ip::make_address("127.0.0.1"),
//                                             0}, routes, {.header_timeout = 2s});
//   std::printf("listening on port %u\n", server.endpoint().port());
//   ...
//   server.stop();   // stops accepting; open connections end with the runtime
//
// Structure. The acceptor task binds on spindle::this_executor() and accepts in a loop;
// each accepted socket is created on a worker chosen round-robin (Handle::executor()) and
// gets its own detached task. A connection task reads with use_task, feeds the bytes to
// http::RequestParser (http-parser) and answers the complete requests in order (so
// pipelined requests work), keeping the connection open as HTTP/1.1 keep-alive allows. A
// demo route's work is spawned as a root task under the route's TaskMonitor and awaited
// (RouteTable::spawn), so the monitor measures the request's handling and nothing else;
// `/` lists the routes, an unknown path is 404, a method other than GET/HEAD 405, a
// malformed request 400 (then the connection closes). Every error is an exception inside
// one connection's task and ends that connection only.
//
// Limits (ServerOptions), so that clients that connect and then send slowly or nothing
// cannot hold the server's sockets and descriptors forever:
//   - Timeouts. A connection task has one read path: every read is awaited under
//     spindle::timeout() with the time left until the deadline of what the connection
//     waits for, as RequestParser::phase() tells it:
//       between requests  idle_timeout from the end of the last response written;
//       a request's head  header_timeout from its first byte — for a connection's first
//                         request, from the accept: a client that connects and sends
//                         nothing is closed after header_timeout, as by nginx's
//                         client_header_timeout;
//       a request's body  body_timeout from the end of its head.
//     The clock of a phase is not reset by the bytes that arrive within it, so a client
//     that sends one byte at a time gains nothing. A timed-out read is cancelled (nothing
//     is consumed: see spindle/runtime/use_task.hpp) and the connection closes: silently
//     when no byte of a request came, after a best-effort `408` (one non-blocking send)
//     in a head or body. While a request is being answered nothing is read, so a slow
//     route is never a timeout; writing a response must finish within idle_timeout (a
//     client that does not read its responses is closed). Each kind of timeout has its
//     ServerStats counter.
//   - The connection cap. At most max_connections connections are open; one accepted
//     over the cap is answered `503` with one non-blocking send and closed at once
//     (counted in `rejected`). start() lowers the cap to fit the process's file
//     descriptor limit (RLIMIT_NOFILE, soft): the descriptors open at start() plus
//     kSpareDescriptors are kept for the rest of the process — the /metrics exporter's
//     sockets, the routes' file reads — so that a flood of idle connections meets the
//     cap (and a prompt 503) before it exhausts the descriptors and locks out /metrics.
//   - Out of descriptors anyway (EMFILE/ENFILE from accept(), e.g. something else in the
//     process holds them): the acceptor keeps one spare descriptor (an open /dev/null).
//     It closes it, accepts the waiting connection with it, answers it `503`, closes it
//     and opens the spare again — so a waiting client is refused at once instead of
//     sitting in the listen backlog — and counts it in `rejected` and `accept_errors`.
//     When that refuses nobody (the backlog is empty, or the spare could not be
//     reopened) the acceptor sleeps 10 ms before it accepts again, so a persistent error
//     costs about 100 wake-ups a second, never a spinning worker. Idle connections are
//     not closed early to make room (the exporter does that for /metrics); the timeouts
//     bound how long they hold their descriptors.
//
// Thread safety: ServerStats may be read from any thread. A Server is used by one thread
// at a time; start() and stop() block and must not be called on one of the runtime's
// workers.
#pragma once

#include <asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <spindle/runtime.hpp>

#include "routes.hpp"

namespace demo {

/// The server's limits (see "Limits" above). start() checks them.
struct ServerOptions {
  /// A request's head (request line and headers) must be complete within this of its
  /// first byte (the first request's: of the accept).
  std::chrono::milliseconds header_timeout{std::chrono::seconds(5)};
  /// A connection with no request in progress is closed after this; also the time a
  /// response's write may take.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(10)};
  /// A request's body (Content-Length or chunked) must be complete within this of the end
  /// of its head. The routes take none, but a body is read (and discarded) before the
  /// next request can be.
  std::chrono::milliseconds body_timeout{std::chrono::seconds(10)};
  /// At most this many connections open at once; start() may lower it to fit the file
  /// descriptor limit (Server::max_connections() says what it got).
  std::size_t max_connections = 512;
};

/// Descriptors that start() keeps out of the connection cap, besides those open then.
inline constexpr std::size_t kSpareDescriptors = 32;

/// Counters of the server, updated by its tasks.
struct ServerStats {
  std::atomic<std::uint64_t> accepted{0};           ///< connections accepted and served
  std::atomic<std::uint64_t> open{0};               ///< connections open now (<= the cap)
  std::atomic<std::uint64_t> rejected{0};           ///< closed at once with 503 (cap, EMFILE)
  std::atomic<std::uint64_t> idle_timeouts{0};      ///< closed idle between requests
  std::atomic<std::uint64_t> header_timeouts{0};    ///< a request's head came too slowly (408)
  std::atomic<std::uint64_t> body_timeouts{0};      ///< a request's body came too slowly (408)
  std::atomic<std::uint64_t> write_timeouts{0};     ///< a response was not taken in time
  std::atomic<std::uint64_t> requests{0};           ///< requests parsed
  std::atomic<std::uint64_t> bad_requests{0};       ///< answered 400/413/414 (http-parser errors)
  std::atomic<std::uint64_t> not_found{0};          ///< answered 404
  std::atomic<std::uint64_t> handler_errors{0};     ///< answered 500 (a route's task threw)
  std::atomic<std::uint64_t> connection_errors{0};  ///< connections ended by an I/O error
  std::atomic<std::uint64_t> accept_errors{0};      ///< failed accepts (the server carries on)
};

/// The demo's HTTP server, running on a multi_thread runtime.
class Server {
 public:
  /// Spawns the acceptor on `runtime` and waits until it listens on `endpoint` (port 0:
  /// the kernel picks one; see endpoint()), with the limits of `options` (the connection
  /// cap lowered to fit RLIMIT_NOFILE; see max_connections()). Blocks; not on one of the
  /// runtime's workers. Throws std::invalid_argument for a timeout that is not positive
  /// or a cap of 0, asio::system_error when the address cannot be bound (e.g. the port is
  /// in use).
  static Server start(const spindle::Handle& runtime, const asio::ip::tcp::endpoint& endpoint,
                      std::shared_ptr<const RouteTable> routes, ServerOptions options = {});

  Server(Server&&) noexcept = default;
  Server& operator=(Server&&) noexcept = default;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  /// Stops accepting (see stop()).
  ~Server() { stop(); }

  /// The address the server listens on, with the port it got.
  [[nodiscard]] const asio::ip::tcp::endpoint& endpoint() const noexcept { return endpoint_; }
  /// The server's counters.
  [[nodiscard]] const ServerStats& stats() const noexcept { return *stats_; }
  /// The connection cap in force: ServerOptions::max_connections, or less to fit the file
  /// descriptor limit.
  [[nodiscard]] std::size_t max_connections() const noexcept { return max_connections_; }

  /// Stops accepting: aborts the acceptor task and waits until the listening socket is
  /// closed. Open connections go on until their clients close or the runtime shuts down.
  /// Idempotent. Blocks; not on one of the runtime's workers.
  void stop();

 private:
  Server(spindle::JoinHandle<void> acceptor, std::shared_ptr<ServerStats> stats,
         asio::ip::tcp::endpoint endpoint, std::size_t max_connections)
      : acceptor_(std::move(acceptor)),
        stats_(std::move(stats)),
        endpoint_(endpoint),
        max_connections_(max_connections) {}

  spindle::JoinHandle<void> acceptor_;  // the acceptor task; empty once stopped
  std::shared_ptr<ServerStats> stats_;  // shared with the connection tasks
  asio::ip::tcp::endpoint endpoint_;    // where it listens
  std::size_t max_connections_;         // the cap in force
};

}  // namespace demo
