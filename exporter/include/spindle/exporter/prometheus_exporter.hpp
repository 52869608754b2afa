// spindle/exporter/prometheus_exporter.hpp — an HTTP(S) /metrics endpoint for spindle.
//
//   spindle::PrometheusExporter             serves spindle's metrics over HTTP or HTTPS
//   spindle::PrometheusExporter::Options    address, path, labels, auth, TLS, timeouts, cap, log
//   spindle::PrometheusExporter::BasicAuth  user and password a scrape must present
//   spindle::PrometheusExporter::Tls        certificate, key, and the client CAs of mutual TLS
//
// Example:
//   auto rt = spindle::Runtime::Builder().worker_threads(4).build();
//   auto checkout = spindle::TaskMonitor::Builder().name("checkout").build();
//   auto stalls = std::make_shared<spindle::StallDetector>(rt.handle());
//
//   spindle::PrometheusExporter exporter(
//       {.bind_address = "0.0.0.0:9464",
//        .const_labels = {{"service", "checkout"}},
//        .basic_auth = spindle::PrometheusExporter::BasicAuth{"prometheus", secret},
//        .tls = spindle::PrometheusExporter::Tls{.certificate_file = "/etc/spindle/tls.crt",
//                                                .private_key_file = "/etc/spindle/tls.key"}});
//   exporter.add_runtime(rt.handle(), "main", stalls);
//   exporter.add_monitor(checkout);
//
// Serving: the constructor starts an HTTP/1.1 server on a thread of its
// own (one Asio io_context, non-blocking sockets; never on the runtime's
// workers, so it answers while every worker is stalled). Each GET or HEAD
// of exactly `path` (a query string is ignored; `/metrics/x`, `//metrics`,
// `/METRICS` or `/%6detrics` are 404) is answered with
// MetricsCollectable::text() followed by the server's own
// spindle_exporter_* series: the Prometheus text format (version 0.0.4,
// Content-Type `text/plain; version=0.0.4; charset=utf-8`), written by
// spindle's own writer from the monitors' figures at that moment. With
// `Accept-Encoding: gzip` (Prometheus always sends it) the body is
// gzip-compressed (`Content-Encoding: gzip`; `Vary: Accept, Accept-Encoding`,
// or `Vary: Accept-Encoding` with Options::protobuf = false).
//
// Native histograms: a scrape whose Accept header prefers Prometheus'
// delimited protobuf exposition (Prometheus started with
// --enable-feature=native-histograms sends it first) gets
// MetricsCollectable::protobuf() and the same spindle_exporter_* series
// instead, with Content-Type `application/vnd.google.protobuf;
// proto=io.prometheus.client.MetricFamily; encoding=delimited` (gzipped
// too when accepted): the same families, with every histogram also as a
// native histogram (exporter/METRICS.md, "Native histograms"). q-values
// are honoured; no Accept header, `*/*` alone or only unknown types get
// the text. Prometheus 2.42 stores such histograms as native series only
// (no _bucket, _sum, _count). Options::protobuf = false serves the text to
// every scrape.
// Other methods get 405 with `Allow: GET, HEAD`. Connections are kept
// alive between requests (HTTP/1.1; HTTP/1.0 when asked).
//
// Slow and idle clients cannot silence it: a request must fully arrive
// within `header_timeout` (default 5 s) of the connection (or of its first
// byte, on a kept-alive connection), a kept-alive connection may wait
// `idle_timeout` (10 s) for its next request, an answer must be written
// within `write_timeout` (10 s); at most `max_connections` (512) are
// open: beyond that, the connection that has waited longest for its
// client is closed to make room, or, when every connection is being
// answered, the new one is refused (503 on plain HTTP). Each such
// connection counts in spindle_exporter_rejected_connections_total and
// the event is logged at most once per 10 s. When the process runs out
// of file descriptors, accepting pauses for 100 ms at a time instead of
// spinning. Requests whose line and headers exceed 16 KiB get 431, bodies
// over 64 KiB 413, malformed requests 400; each then closes.
//
// With basic_auth set, a request without the right credentials gets 401
// with a `WWW-Authenticate: Basic realm="spindle"` challenge; the
// credentials are compared in constant time. Basic auth sends the
// password in the clear: use it with `tls`, or on a private network.
//
// TLS (OpenSSL 3): Tls::certificate_file and private_key_file (PEM) serve
// HTTPS, TLS 1.2 or later. With Tls::client_ca_file, clients must present
// a certificate signed by one of those CAs (mutual TLS); without one, or
// with another, the handshake fails and the connection is closed. Plain
// HTTP sent to a TLS port gets a plain-text 400 and is closed. The files
// are read once, by the constructor, and not reloaded when they change:
// to serve a renewed certificate, construct a new exporter (or restart).
//
// Thread safety: every member function except the destructor is safe to
// call from any thread, concurrently with scrapes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "spindle/exporter/errors.hpp"
#include "spindle/exporter/metrics_collectable.hpp"
#include "spindle/monitor/stall_detector.hpp"
#include "spindle/monitor/task_monitor.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle {

namespace detail {
class HttpServer;
}  // namespace detail

class PrometheusExporter {
 public:
  /// Credentials a scrape must present (HTTP basic authentication).
  struct BasicAuth {
    std::string username{};  ///< non-empty, without ':'
    std::string password{};
  };
  /// HTTPS settings (PEM files, read once by the constructor).
  struct Tls {
    std::string certificate_file{};  ///< the server's certificate, then its chain
    std::string private_key_file{};  ///< its private key (not encrypted)
    /// When not empty: CAs a client certificate must chain to (mutual
    /// TLS); clients without such a certificate are refused.
    std::string client_ca_file{};
  };
  struct Options {
    /// "HOST:PORT" (an IPv4 address or a host name), "[IPV6]:PORT"
    /// (e.g. "[::1]:9464") or "PORT" (every IPv4 interface). Port 0 picks
    /// a free port; port() tells which.
    std::string bind_address = "127.0.0.1:9464";
    /// The URL path that serves the metrics; starts with '/'.
    std::string path = "/metrics";
    /// The URL path that serves the flight recorder of a registered runtime
    /// (Handle::write_trace: Chrome trace-event JSON, for ui.perfetto.dev),
    /// behind the same authentication as the metrics: the first runtime
    /// registered with a recorder, or `?runtime=<name>`. 404 when none has
    /// one. Empty: not served. Starts with '/', differs from `path`.
    std::string trace_path = "/debug/trace";
    /// Labels on every spindle series, e.g. {{"service", "checkout"}} (see
    /// MetricsCollectable::Options::const_labels for what is accepted).
    std::map<std::string, std::string> const_labels{};
    /// When set, scrapes without these credentials get 401 Unauthorized.
    std::optional<BasicAuth> basic_auth{};
    /// When set, serve HTTPS (and, with a client CA file, only to clients
    /// with a certificate).
    std::optional<Tls> tls{};
    /// The most task monitors registered at once.
    std::size_t max_monitors = 1000;
    /// A request (line, headers, body) must fully arrive within this time
    /// of its connection (or of its first byte on a kept-alive one); TLS
    /// handshakes count in the first request's. 1 ms .. 1 h.
    std::chrono::milliseconds header_timeout = std::chrono::seconds(5);
    /// How long a kept-alive connection may wait for its next request. 1 ms .. 1 h.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(10);
    /// How long writing one answer may take (a client that reads it
    /// slower is closed). 1 ms .. 1 h.
    std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
    /// The most connections open at once (1 .. 1,048,576); keep it below
    /// the process' file descriptor limit.
    std::size_t max_connections = 512;
    /// Serve the protobuf exposition (with native histograms) to scrapes
    /// that ask for it in their Accept header. false: the text format to
    /// every scrape, whatever it asks for (a Prometheus with native
    /// histograms enabled then ingests the classic `_bucket` series).
    bool protobuf = true;
    /// Receives the server's messages (one line each, without newline:
    /// connections refused at the cap, accept() failures, failed TLS
    /// handshakes; each kind at most once per 10 s). Called on the
    /// server's thread; must not throw or block. Empty: stderr.
    std::function<void(std::string_view line)> log{};
  };

  /// Serves with the default Options (127.0.0.1:9464, /metrics).
  PrometheusExporter();
  /// Validates `options` and starts serving before it returns. Throws
  /// ConfigError for an invalid option (what() names it; for TLS, the file
  /// and OpenSSL's reason) and ExporterError when the server cannot listen
  /// (port in use, an address that is not this machine's, no permission).
  explicit PrometheusExporter(Options options);
  /// Stops serving and returns within milliseconds: closes the port and
  /// every connection (idle ones, half-sent requests, and answers being
  /// written, which the client sees cut off), after the scrape body being
  /// written at that moment, if any, is done.
  ~PrometheusExporter();
  PrometheusExporter(const PrometheusExporter&) = delete;
  PrometheusExporter& operator=(const PrometheusExporter&) = delete;

  /// See MetricsCollectable::add_runtime (same errors; the registration
  /// shares `stalls`, which may be dropped by the caller at any time).
  void add_runtime(const Handle& runtime, std::string name = "main",
                   std::shared_ptr<const StallDetector> stalls = nullptr);
  /// See MetricsCollectable::remove_runtime.
  bool remove_runtime(std::string_view name);
  /// See MetricsCollectable::add_monitor (same errors).
  void add_monitor(const TaskMonitor& monitor);
  /// See MetricsCollectable::remove_monitor.
  bool remove_monitor(const TaskMonitor& monitor);
  bool remove_monitor(std::string_view name);

  /// The port the server listens on (the chosen one when bind_address
  /// asked for port 0).
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// The path that serves the metrics.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// The collectable behind the endpoint (to register into another Exposer as well).
  [[nodiscard]] const std::shared_ptr<MetricsCollectable>& collectable() const noexcept {
    return collectable_;
  }

  /// Whether this build can serve HTTPS (Options::tls): true (OpenSSL 3).
  [[nodiscard]] static bool tls_supported() noexcept;

 private:
  std::string path_;                                 // the metrics URL path
  std::shared_ptr<MetricsCollectable> collectable_;  // what every scrape reads
  std::unique_ptr<detail::HttpServer> server_;  // the endpoint; destroyed first (declared last)
  std::uint16_t port_ = 0;                      // the listening port
};

}  // namespace spindle
