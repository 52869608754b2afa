#include "spindle/exporter/prometheus_exporter.hpp"

#include <prometheus/exposer.h>

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>

#include "server_start.hpp"
#include "validate.hpp"

namespace spindle {

namespace {

// Compares without an early exit, so the time taken does not tell how many
// leading bytes of a guessed password were right.
bool equal_in_constant_time(std::string_view a, std::string_view b) noexcept {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto ca = static_cast<unsigned char>(i < a.size() ? a[i] : '\0');
    const auto cb = static_cast<unsigned char>(i < b.size() ? b[i] : '\0');
    diff |= static_cast<unsigned>(ca ^ cb);
  }
  return diff == 0;
}

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

  exposer_ = detail::start_exposer(options.bind_address,
                                   {"listening_ports", options.bind_address,
                                    // Scrapes are rare and short: two threads serve them.
                                    "num_threads", "2"});
  // Authentication first, so that the endpoint never serves spindle's
  // metrics without it.
  if (options.basic_auth) {
    exposer_->RegisterAuth(
        [user = options.basic_auth->username, password = options.basic_auth->password](
            const std::string& u, const std::string& p) {
          const bool user_ok = equal_in_constant_time(u, user);
          const bool password_ok = equal_in_constant_time(p, password);
          return user_ok && password_ok;
        },
        "spindle", path_);
  }
  exposer_->RegisterCollectable(collectable_, path_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

PrometheusExporter::~PrometheusExporter() {
  // The Exposer's destructor stops civetweb, waiting for scrapes in progress;
  // only then may the collectable go (it is also held by shared_ptr).
  exposer_.reset();
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
