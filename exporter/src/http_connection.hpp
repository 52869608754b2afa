// Internal: one client connection of the exporter's HTTP server — its state machine.
//
//   spindle::detail::ServerSettings   what every connection of a server shares
//   spindle::detail::ConnectionHost   what a connection asks of its server (the server implements
//   it) spindle::detail::Connection       one connection, plain or TLS, as the server sees it
//   spindle::detail::make_connection  a plain (or, with an SSL context, TLS) connection
//
// Example (the server's accept handler):
//   std::shared_ptr<Connection> c = make_connection(host, std::move(socket), tls_context);
//   register(c);  c->start();
//
// States and deadlines (one steady_timer per connection, re-armed at each
// transition; when it fires the connection is closed):
//
//   kHandshake   TLS only: the first byte is peeked (not 0x16, a TLS
//                handshake record: plain HTTP on the TLS port, answered
//                with a plain-text 400 and closed), then the handshake.
//                Counts against the first request's header timeout.
//   kReading     reading a request. Its deadline: the header timeout from
//                the moment the connection was accepted (first request) or
//                its first byte arrived (later ones): a request must fully
//                arrive within it, however slowly its bytes drip. Between
//                requests of a keep-alive connection, the idle timeout.
//   kResponding  the request is complete; the answer is written (a
//                scrape waits first for the server's body). Deadline: the
//                write timeout. No read is pending: a pipelined request
//                waits in the buffer until the answer is out.
//   kLingering   after an answer with `Connection: close`: the sending side
//                is shut down and what the client still sends is read and
//                dropped until it closes (at most 1 s, 64 KiB), so that
//                closing with unread input (which makes the kernel send a
//                reset) cannot destroy the answer in flight.
//   kClosed      the socket is closed and the server has forgotten it.
//
// In kHandshake, kReading and kLingering a connection is "waiting" (for
// the client): the server may close the one that has waited longest to
// make room for a new connection at its cap.
//
// Ownership: each pending operation's handler holds a shared_ptr to the
// connection; the server holds only raw pointers, to open connections
// (close() removes them at once), and a shared_ptr while a scrape body is
// being made for it.
//
// Thread safety: everything runs on the server's one thread.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "basic_auth.hpp"
#include "content_negotiation.hpp"

namespace spindle::detail {

/// What every connection of a server shares (read-only once serving).
struct ServerSettings {
  std::string path;                                // the metrics path (exact match)
  std::string trace_path;                          // the trace's path; empty: none
  std::optional<BasicAuth> auth;                   // credentials a request needs; none: open
  std::chrono::milliseconds header_timeout{5000};  // a request must fully arrive within it
  std::chrono::milliseconds idle_timeout{10000};   // keep-alive: the wait for the next request
  std::chrono::milliseconds write_timeout{10000};  // the time to write one answer
  std::size_t max_connections = 512;               // open connections at most
  bool protobuf = false;                           // may serve protobuf (Accept header)
};

/// A scrape's body, shared by every connection it answers: `bytes` is kept
/// at its largest size from scrape to scrape (so that it is not zero-filled
/// again each time); its first `size` bytes are the body.
struct ScrapeBody {
  std::string bytes;     // the body, then unused room
  std::size_t size = 0;  // the body's length
};

class Connection;

/// What a connection asks of its server. All calls on the server's thread.
class ConnectionHost {
 public:
  [[nodiscard]] virtual const ServerSettings& settings() const noexcept = 0;
  /// The Date header's value now.
  [[nodiscard]] virtual std::string_view date() = 0;
  /// `c` starts or stops waiting for its client (see the state table).
  virtual void enter_waiting(Connection& c) noexcept = 0;
  virtual void leave_waiting(Connection& c) noexcept = 0;
  /// `c` closed its socket: forget it.
  virtual void closed(Connection& c) noexcept = 0;
  /// `c` needs a scrape body in `format` (gzip-compressed when `gzip`): the
  /// server calls c->send_scrape() soon, once for each call. Throws
  /// std::bad_alloc.
  virtual void want_scrape(std::shared_ptr<Connection> c, ScrapeFormat format, bool gzip) = 0;
  /// The flight-recorder trace of `runtime` (empty: the first with one),
  /// or nullopt. Throws std::bad_alloc.
  virtual std::optional<std::string> trace(std::string_view runtime) = 0;
  /// A TLS handshake failed (for the rate-limited log).
  virtual void tls_failed(std::string_view why) noexcept = 0;

 protected:
  ~ConnectionHost() = default;
};

class Connection {
 public:
  virtual ~Connection() = default;
  /// Starts the first request's deadline and reading (or the TLS handshake).
  virtual void start() = 0;
  /// Closes the socket now (cancelling what is pending) and tells the
  /// host. Idempotent; never throws.
  virtual void close() noexcept = 0;
  /// Answers the scrape this connection asked for with `body` (its bytes,
  /// in the format it asked for; null: it could not be made, 500),
  /// gzip-compressed when `gzip`.
  /// Throws std::bad_alloc (the caller then closes it).
  virtual void send_scrape(std::shared_ptr<const ScrapeBody> body, bool gzip) = 0;
  [[nodiscard]] virtual bool is_open() const noexcept = 0;

  // The server's bookkeeping, touched only by the server.
  std::list<Connection*>::iterator all_pos{};      // its place among the open connections
  std::list<Connection*>::iterator waiting_pos{};  // its place among the waiting ones
  bool waiting = false;                            // whether waiting_pos is valid
};

/// A connection over `socket`, speaking TLS with `tls` when not null
/// (which must outlive it). Not started. Throws std::bad_alloc.
[[nodiscard]] std::shared_ptr<Connection> make_connection(ConnectionHost& host,
                                                          asio::ip::tcp::socket socket,
                                                          asio::ssl::context* tls);

}  // namespace spindle::detail
