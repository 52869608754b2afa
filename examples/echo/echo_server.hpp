// examples/echo/echo_server.hpp — a TCP echo server written with spindle::use_task,
// shared by the spindle-echo example and its test (tests/io/echo_test.cpp).
//
//   echo::Config           where to listen and the size of each connection's buffer
//   echo::Stats            counters the server keeps (connections, bytes, errors)
//   echo::serve            the acceptor task: listens, then spawns one task per connection
//   echo::echo_connection  one connection's task: read some, write it back, until EOF
//   echo::Server           starts serve() on a runtime from outside it, and stops it
//
// Example (inside a task):
//   auto stats = std::make_shared<echo::Stats>();
//   auto [tx, rx] = spindle::sync::oneshot<std::uint16_t>();
//   auto server = spindle::spawn(echo::serve({.port = 0}, stats, std::move(tx)));
//   std::uint16_t port = co_await rx;   // listening now
//   ...
//   server.abort();                     // stops accepting
//
// Example (from outside a multi_thread runtime, as the test does):
//   echo::Server server = echo::Server::start(rt.handle(), {.port = 0});
//   connect to 127.0.0.1:server.port() ...
//   server.stop();
//
// Structure. serve() creates the acceptor on spindle::this_executor() (the
// worker it runs on), binds it, reports the bound port through a oneshot and
// accepts in a loop. Each accepted socket is created on a worker chosen
// round-robin (Handle::executor()), so the connections' I/O is spread over
// the workers, and gets its own task, detached: the acceptor never waits for
// a connection. Every await uses spindle::use_task, so every error arrives
// as an asio::system_error thrown inside the connection's own task; it ends
// that connection only (EOF is the normal end). Stopping is cancellation:
// aborting the acceptor task destroys its frame, which closes the acceptor;
// open connections end when their clients close, or when the runtime shuts
// down (which destroys their frames and so closes their sockets).
//
// Thread safety: Stats may be read from any thread. A Server is used by one
// thread at a time; start() and stop() block and must not be called on one
// of the runtime's workers.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <spindle/runtime.hpp>
#include <string>
#include <utility>
#include <vector>

namespace echo {

/// Where and how the server listens.
struct Config {
  std::string address = "127.0.0.1";  ///< local address to bind
  std::uint16_t port = 0;             ///< 0: let the kernel pick (see Server::port())
  std::size_t buffer_size = 4096;     ///< bytes read per async_read_some
};

/// What the server has done so far. Shared with every connection task.
struct Stats {
  std::atomic<std::uint64_t> accepted{0};           ///< connections accepted
  std::atomic<std::uint64_t> active{0};             ///< connection tasks alive now
  std::atomic<std::uint64_t> bytes_echoed{0};       ///< bytes written back
  std::atomic<std::uint64_t> connection_errors{0};  ///< connections ended by an error, not EOF
  std::atomic<std::uint64_t> accept_errors{0};      ///< failed accepts (the server carries on)
};

namespace detail {
/// Counts a connection task as active for the lifetime of its frame, also
/// when the frame is destroyed without finishing (abort, runtime shutdown).
class ActiveConnection {
 public:
  explicit ActiveConnection(Stats& stats) noexcept : stats_(&stats) { stats_->active.fetch_add(1); }
  ActiveConnection(const ActiveConnection&) = delete;
  ActiveConnection& operator=(const ActiveConnection&) = delete;
  ~ActiveConnection() { stats_->active.fetch_sub(1); }

 private:
  Stats* stats_;  // outlives us: the task holds a shared_ptr to it
};
}  // namespace detail

/// Echoes everything read from `socket` back to it until the peer closes
/// (EOF) or an error ends this connection. Never throws.
inline spindle::Task<void> echo_connection(asio::ip::tcp::socket socket,
                                           std::shared_ptr<Stats> stats, std::size_t buffer_size) {
  detail::ActiveConnection active(*stats);
  std::vector<char> buffer(buffer_size);
  try {
    for (;;) {
      std::size_t n = co_await socket.async_read_some(asio::buffer(buffer), spindle::use_task);
      co_await asio::async_write(socket, asio::buffer(buffer.data(), n), spindle::use_task);
      stats->bytes_echoed.fetch_add(n, std::memory_order_relaxed);
    }
  } catch (const asio::system_error& e) {
    // EOF: the client closed its side; anything else (a reset, a broken
    // pipe) ends this connection only.
    if (e.code() != asio::error::eof) stats->connection_errors.fetch_add(1);
  }
}

/// The acceptor task: binds `cfg.address:cfg.port` on the calling worker,
/// sends the bound port through `bound`, then accepts connections until it
/// is aborted. Throws asio::system_error when it cannot bind or listen (then
/// `bound` is dropped unsent, so its receiver gets RecvError).
inline spindle::Task<void> serve(Config cfg, std::shared_ptr<Stats> stats,
                                 spindle::sync::Sender<std::uint16_t> bound) {
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(cfg.address), cfg.port);
  asio::ip::tcp::acceptor acceptor(spindle::this_executor());
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  bound.send(acceptor.local_endpoint().port());

  const spindle::Handle runtime = spindle::Handle::current();
  for (;;) {
    asio::ip::tcp::socket socket(runtime.executor());  // a worker chosen round-robin
    auto [ec] = co_await acceptor.async_accept(socket, spindle::as_result(spindle::use_task));
    if (ec) {
      // E.g. out of file descriptors: count it, give the system a moment, go on.
      stats->accept_errors.fetch_add(1);
      co_await spindle::sleep(std::chrono::milliseconds(10));
      continue;
    }
    stats->accepted.fetch_add(1);
    spindle::spawn(echo_connection(std::move(socket), stats, cfg.buffer_size)).detach();
  }
}

/// An echo server started on a multi_thread runtime from outside it.
class Server {
 public:
  /// Spawns serve() on `runtime` and waits until it listens. Blocks; call it
  /// from a thread that is not one of the runtime's workers (on a
  /// current_thread runtime nothing runs outside block_on: spawn serve()
  /// from a task instead). Throws asio::system_error when the address
  /// cannot be bound.
  static Server start(const spindle::Handle& runtime, Config cfg) {
    auto stats = std::make_shared<Stats>();
    auto [tx, rx] = spindle::sync::oneshot<std::uint16_t>();
    spindle::JoinHandle<void> acceptor = runtime.spawn(serve(std::move(cfg), stats, std::move(tx)));
    std::uint16_t port = 0;
    try {
      port = rx.blocking_recv();
    } catch (const spindle::sync::RecvError&) {
      acceptor.join();  // rethrows why serve() failed
      throw;
    }
    return Server(std::move(acceptor), std::move(stats), port);
  }

  Server(Server&&) noexcept = default;
  Server& operator=(Server&&) noexcept = default;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  /// Stops accepting (see stop()).
  ~Server() { stop(); }

  /// The port the server listens on.
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// The server's counters.
  [[nodiscard]] const Stats& stats() const noexcept { return *stats_; }
  /// The same counters, kept alive as long as the caller holds them (the
  /// connection tasks update them until they end).
  [[nodiscard]] std::shared_ptr<const Stats> shared_stats() const noexcept { return stats_; }

  /// Stops accepting: aborts the acceptor task and waits until its frame,
  /// and with it the listening socket, is gone. Open connections go on until
  /// their clients close or the runtime shuts down. Idempotent. Blocks; not
  /// on one of the runtime's workers.
  void stop() {
    if (!acceptor_.valid()) return;
    acceptor_.abort();
    try {
      acceptor_.join();
    } catch (const spindle::Cancelled&) {
      // the expected end of an aborted acceptor
    }
    acceptor_ = {};
  }

 private:
  Server(spindle::JoinHandle<void> acceptor, std::shared_ptr<Stats> stats, std::uint16_t port)
      : acceptor_(std::move(acceptor)), stats_(std::move(stats)), port_(port) {}

  spindle::JoinHandle<void> acceptor_;  // the serve() task; empty once stopped
  std::shared_ptr<Stats> stats_;        // shared with the server's tasks
  std::uint16_t port_ = 0;              // where it listens
};

}  // namespace echo
