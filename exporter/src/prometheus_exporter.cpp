#include "spindle/exporter/prometheus_exporter.hpp"

#include <CivetServer.h>

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "basic_auth.hpp"
#include "metrics_handler.hpp"
#include "server_start.hpp"
#include "validate.hpp"

namespace spindle {

namespace {

void check_options(const PrometheusExporter::Options& o) {
  detail::check_bind_address(o.bind_address, detail::civetweb_has_ipv6());
  detail::check_path(o.path);
  if (o.basic_auth) {
    if (o.basic_auth->username.empty()) {
      throw ConfigError("spindle exporter: Options::basic_auth has an empty username");
    }
    if (o.basic_auth->username.find(':') != std::string::npos) {
      throw ConfigError(
          "spindle exporter: Options::basic_auth username contains ':', which HTTP basic "
          "authentication cannot carry");
    }
  }
  if (o.tls && !PrometheusExporter::tls_supported()) {
    throw ConfigError(
        "spindle exporter: Options::tls is set, but this build has no working TLS: Debian's "
        "civetweb 1.15 loads OpenSSL 1.1 functions at run time and cannot use the system's "
        "OpenSSL 3. Serve plain HTTP on a private address and terminate TLS in a proxy in "
        "front of the exporter");
  }
}

}  // namespace

bool PrometheusExporter::tls_supported() noexcept { return false; }

PrometheusExporter::PrometheusExporter() : PrometheusExporter(Options{}) {}

PrometheusExporter::PrometheusExporter(Options options) {
  check_options(options);
  path_ = options.path;
  collectable_ = std::make_shared<MetricsCollectable>(MetricsCollectable::Options{
      .const_labels = std::move(options.const_labels), .max_monitors = options.max_monitors});

  metrics_handler_ = std::make_unique<detail::MetricsHandler>(collectable_);
  if (options.basic_auth) {
    auth_handler_ = std::make_unique<detail::BasicAuthHandler>(
        options.basic_auth->username, options.basic_auth->password, "spindle");
  }
  server_ = detail::start_server(options.bind_address,
                                 {"listening_ports", options.bind_address,
                                  // Scrapes are rare and short: two threads serve them.
                                  "num_threads", "2"});
  // Authentication first, so that the endpoint never serves spindle's
  // metrics without it (until the handler is added, requests get 404).
  if (auth_handler_) server_->addAuthHandler(path_, auth_handler_.get());
  server_->addHandler(path_, metrics_handler_.get());
  const std::vector<int> ports = server_->getListeningPorts();
  port_ = ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

PrometheusExporter::~PrometheusExporter() {
  // CivetServer's destructor stops civetweb, waiting for requests in
  // progress; only then may the handlers they run go.
  server_.reset();
}

void PrometheusExporter::add_runtime(const Handle& runtime, std::string name,
                                     const StallDetector* stalls) {
  collectable_->add_runtime(runtime, std::move(name), stalls);
}

bool PrometheusExporter::remove_runtime(std::string_view name) {
  return collectable_->remove_runtime(name);
}

void PrometheusExporter::add_monitor(const TaskMonitor& monitor) {
  collectable_->add_monitor(monitor);
}

bool PrometheusExporter::remove_monitor(const TaskMonitor& monitor) {
  return collectable_->remove_monitor(monitor);
}

bool PrometheusExporter::remove_monitor(std::string_view name) {
  return collectable_->remove_monitor(name);
}

}  // namespace spindle
