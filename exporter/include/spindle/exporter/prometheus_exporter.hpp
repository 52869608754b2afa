// spindle/exporter/prometheus_exporter.hpp — an HTTP /metrics endpoint for spindle.
//
//   spindle::PrometheusExporter             serves spindle's metrics over HTTP (civetweb)
//   spindle::PrometheusExporter::Options    address, path, constant labels, auth, TLS, cap
//   spindle::PrometheusExporter::BasicAuth  user and password a scrape must present
//   spindle::PrometheusExporter::Tls        certificate and key (only where tls_supported())
//
// Example:
//   auto rt = spindle::Runtime::Builder().worker_threads(4).build();
//   auto checkout = spindle::TaskMonitor::Builder().name("checkout").build();
//   spindle::StallDetector stalls(rt.handle());
//
//   spindle::PrometheusExporter exporter(
//       {.bind_address = "0.0.0.0:9464",
//        .const_labels = {{"service", "checkout"}},
//        .basic_auth = spindle::PrometheusExporter::BasicAuth{"prometheus", secret}});
//   exporter.add_runtime(rt.handle(), "main", &stalls);
//   exporter.add_monitor(checkout);
//
// Serving: the constructor starts an HTTP server (civetweb, two threads)
// on `bind_address`; each GET of `path` calls MetricsCollectable::Collect()
// and answers with MetricsCollectable::text(): spindle's own writer of the
// Prometheus text format (version 0.0.4, Content-Type
// `text/plain; version=0.0.4; charset=utf-8`, not compressed), an order
// of magnitude faster than prometheus-cpp's TextSerializer (a scrape of
// 100 monitors: ~1 MB of text, ~1 ms; exporter/README.md has the figures). A
// scrape carries exactly the spindle_* series of exporter/METRICS.md:
// there are no exposer_* self-metrics (prometheus-cpp's Exposer is not
// used); Prometheus records each scrape's health itself (`up`,
// `scrape_duration_seconds`, `scrape_samples_scraped`).
// With basic_auth set, a request without the right credentials gets 401
// with a `WWW-Authenticate: Basic realm="spindle"` challenge; the
// credentials are compared in constant time.
// Basic auth sends the password in the clear: use it on a private network
// (or behind a TLS-terminating proxy where tls_supported() is false).
//
// Thread safety: every member function except the destructor is safe to
// call from any thread, concurrently with scrapes.
#pragma once

#include <cstddef>
#include <cstdint>
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

class CivetServer;

namespace spindle {

namespace detail {
class BasicAuthHandler;
class MetricsHandler;
}  // namespace detail

class PrometheusExporter {
 public:
  /// Credentials a scrape must present (HTTP basic authentication).
  struct BasicAuth {
    std::string username{};  ///< non-empty, without ':'
    std::string password{};
  };
  /// HTTPS settings. Only usable where tls_supported() is true.
  struct Tls {
    std::string certificate_file{};  ///< PEM: the certificate chain
    std::string private_key_file{};  ///< PEM: its private key
  };
  struct Options {
    /// "HOST:PORT" (IPv4 address or host name) or "PORT" (every interface).
    /// Port 0 picks a free port; port() tells which.
    std::string bind_address = "127.0.0.1:9464";
    /// The URL path that serves the metrics; starts with '/'.
    std::string path = "/metrics";
    /// Labels on every spindle series, e.g. {{"service", "checkout"}} (see
    /// MetricsCollectable::Options::const_labels for what is accepted).
    std::map<std::string, std::string> const_labels{};
    /// When set, scrapes without these credentials get 401 Unauthorized.
    std::optional<BasicAuth> basic_auth{};
    /// When set, serve HTTPS. Throws ConfigError where tls_supported() is false.
    std::optional<Tls> tls{};
    /// The most task monitors registered at once.
    std::size_t max_monitors = 1000;
  };

  /// Serves with the default Options (127.0.0.1:9464, /metrics).
  PrometheusExporter();
  /// Validates `options` and starts serving before it returns. Throws
  /// ConfigError for an invalid option (what() names it) and ExporterError
  /// when the server cannot listen (port in use, an address that is not
  /// this machine's, no permission).
  explicit PrometheusExporter(Options options);
  /// Stops serving: waits for scrapes in progress, then closes the port.
  /// Blocks up to about 2 s: civetweb's listener notices the stop at its
  /// next poll timeout. A scrape already being served is answered in
  /// full first; later ones get a refused or closed connection.
  ~PrometheusExporter();
  PrometheusExporter(const PrometheusExporter&) = delete;
  PrometheusExporter& operator=(const PrometheusExporter&) = delete;

  /// See MetricsCollectable::add_runtime (same errors; `stalls` must
  /// outlive the registration).
  void add_runtime(const Handle& runtime, std::string name = "main",
                   const StallDetector* stalls = nullptr);
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

  /// Whether this build can serve HTTPS (Options::tls). False with Debian's
  /// civetweb 1.15: it loads OpenSSL 1.1 symbols at run time and cannot use
  /// OpenSSL 3; terminate TLS in a proxy in front of the exporter instead.
  [[nodiscard]] static bool tls_supported() noexcept;

 private:
  std::string path_;                                         // the metrics URL path
  std::shared_ptr<MetricsCollectable> collectable_;          // what every scrape reads
  std::unique_ptr<detail::MetricsHandler> metrics_handler_;  // serves GET path_
  std::unique_ptr<detail::BasicAuthHandler> auth_handler_;   // checks credentials; null: none
  std::unique_ptr<CivetServer> server_;  // the HTTP server; destroyed first (declared last)
  std::uint16_t port_ = 0;               // the listening port
};

}  // namespace spindle
