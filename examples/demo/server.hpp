// examples/demo/server.hpp — spindle-demo's HTTP/1.1 server: an acceptor task and one task
// per connection, on spindle workers and Asio sockets.
//
//   demo::ServerStats  what the server has done (connections, requests, errors)
//   demo::Server       starts the acceptor on a runtime from outside it, and stops it
//
// Example (from main, outside the runtime):
//   auto routes = std::make_shared<const demo::RouteTable>(demo::Timings::normal());
//   demo::Server server = demo::Server::start(rt.handle(), {asio::ip::make_address("127.0.0.1"),
//                                             0}, routes);
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
// Thread safety: ServerStats may be read from any thread. A Server is used by one thread
// at a time; start() and stop() block and must not be called on one of the runtime's
// workers.
#pragma once

#include <asio/ip/tcp.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <spindle/runtime.hpp>

#include "routes.hpp"

namespace demo {

/// Counters of the server, updated by its tasks.
struct ServerStats {
  std::atomic<std::uint64_t> accepted{0};           ///< connections accepted
  std::atomic<std::uint64_t> open{0};               ///< connection tasks alive now
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
  /// the kernel picks one; see endpoint()). Blocks; not on one of the runtime's workers.
  /// Throws asio::system_error when the address cannot be bound (e.g. the port is in use).
  static Server start(const spindle::Handle& runtime, const asio::ip::tcp::endpoint& endpoint,
                      std::shared_ptr<const RouteTable> routes);

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

  /// Stops accepting: aborts the acceptor task and waits until the listening socket is
  /// closed. Open connections go on until their clients close or the runtime shuts down.
  /// Idempotent. Blocks; not on one of the runtime's workers.
  void stop();

 private:
  Server(spindle::JoinHandle<void> acceptor, std::shared_ptr<ServerStats> stats,
         asio::ip::tcp::endpoint endpoint)
      : acceptor_(std::move(acceptor)), stats_(std::move(stats)), endpoint_(endpoint) {}

  spindle::JoinHandle<void> acceptor_;  // the acceptor task; empty once stopped
  std::shared_ptr<ServerStats> stats_;  // shared with the connection tasks
  asio::ip::tcp::endpoint endpoint_;    // where it listens
};

}  // namespace demo
