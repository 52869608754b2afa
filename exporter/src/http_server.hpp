// Internal: the exporter's HTTP server — one thread, one io_context, many connections.
//
//   spindle::detail::HttpServerOptions  address, settings, TLS, log, the body writer
//   spindle::detail::HttpServer         listens, serves until destroyed
//
// Example:
//   HttpServer server({.bind_address = "127.0.0.1:0", .settings = {.path = "/metrics"},
//                      .write_metrics = [&](std::string& buffer, const ChunkSink* sink,
//                                           const ExporterStats& s) { ... }});
//   server.port();
//
// Why its own thread and not the runtime's workers: the endpoint must
// answer while every worker is stalled (that is when it is needed most),
// and a scrape must never take a worker from the tasks. Why one thread:
// nothing on it blocks (non-blocking sockets, one steady_timer deadline
// per connection), so a thousand idle or dripping connections cost memory,
// not threads, and cannot delay a scrape beyond the time to write others'.
//
// Accepting: at most ServerSettings::max_connections are open. A new
// connection beyond the cap first closes the connection that has waited
// longest for its client (idle, dripping its request, or lingering), so
// that clients that send nothing cannot hold every slot; when every open
// connection is being answered, the new one is refused (a plain-text 503
// on plain HTTP, then closed). Both count as rejected connections
// (ExporterStats, spindle_exporter_rejected_connections_total) and are
// logged at most once per 10 s. When accept() fails for want of file
// descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), accepting
// pauses for 100 ms (logged at most once per 10 s) instead of retrying at
// once, which would spin the thread at 100% while the listening socket
// stays readable.
//
// Scrapes: requests for the metrics that are complete at the same moment
// share one body per format: the first one posts a flush to the end of the
// thread's queue, and the flush writes the text once (and gzips it once,
// when one of them asked for gzip) for all those that arrived meanwhile,
// and the same for the protobuf format when one of them negotiated it
// (ServerSettings::protobuf; written whole, then gzipped). When all of
// them asked for gzip (Prometheus does), the text is compressed as it is
// written, 128 KiB at a time, and never exists whole. The bodies' memory is
// reused by the next scrape once every answer that carried it is written.
//
// Stopping (the destructor): closes the listening socket and every
// connection (answers being written are cut off), then joins the thread:
// it returns as soon as a scrape body being written at that moment is
// done.
//
// Thread safety: construct and destroy on any thread; port() from any
// thread. write_metrics and log are called on the server's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "families.hpp"
#include "http_connection.hpp"
#include "rate_limited_log.hpp"
#include "text_format.hpp"

namespace spindle::detail {

struct HttpServerOptions {
  /// "HOST:PORT", "[IPv6]:PORT" or "PORT" (0.0.0.0), validated by check_bind_address.
  std::string bind_address;
  ServerSettings settings;
  /// Serve TLS with this context; null: plain HTTP.
  std::shared_ptr<asio::ssl::context> tls;
  /// Where messages go (one line each); must not throw.
  LogSink log;
  /// Writes a scrape's body: with `sink` null, over `buffer` from its
  /// start (the buffer keeps an earlier body's size; it only grows),
  /// returning the body's length; with a sink, in pieces to it, `buffer`
  /// being their scratch (returns 0). May throw: the scrape is then
  /// answered 500.
  std::function<std::size_t(std::string& buffer, const ChunkSink* sink, const ExporterStats& stats)>
      write_metrics;
  /// Writes a scrape's body in the protobuf format over `buffer` from its
  /// start, returning its length (may throw: 500). Empty: protobuf is
  /// never served (settings.protobuf is then taken as false).
  std::function<std::size_t(std::string& buffer, const ExporterStats& stats)> write_protobuf;
  /// The flight-recorder trace for ServerSettings::trace_path (see
  /// MetricsCollectable::trace); empty: 404.
  std::function<std::optional<std::string>(std::string_view runtime)> write_trace;
};

class HttpServer {
 public:
  /// Listens on options.bind_address and starts serving on a new thread.
  /// Throws ExporterError when it cannot listen (what() names the address
  /// and the reason: in use, not this machine's, permission, an unknown
  /// host name).
  explicit HttpServer(HttpServerOptions options);
  /// Stops serving (see above); returns once the thread has ended.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// The port listened on.
  [[nodiscard]] std::uint16_t port() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;  // the io_context, its thread and every connection
};

}  // namespace spindle::detail
