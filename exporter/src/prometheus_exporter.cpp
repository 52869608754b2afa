#include "spindle/exporter/prometheus_exporter.hpp"

#include <string_view>
#include <utility>

#include "families.hpp"
#include "http_server.hpp"
#include "protobuf_format.hpp"
#include "tls_context.hpp"
#include "validate.hpp"

namespace spindle {

namespace {

using namespace std::chrono_literals;

void check_duration(std::chrono::milliseconds d, std::string_view name) {
  if (d < 1ms || d > std::chrono::hours(1)) {
    throw ConfigError("spindle exporter: Options::" + std::string(name) + " (" +
                      std::to_string(d.count()) + " ms) must be between 1 ms and 1 hour");
  }
}

void check_options(const PrometheusExporter::Options& o) {
  detail::check_bind_address(o.bind_address);
  detail::check_path(o.path);
  if (!o.trace_path.empty()) {
    detail::check_path(o.trace_path, "trace_path");
    if (o.trace_path == o.path) {
      throw ConfigError("spindle exporter: Options::trace_path and Options::path are both \"" +
                        o.path + "\": the trace needs a path of its own (or \"\" for none)");
    }
  }
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
  check_duration(o.header_timeout, "header_timeout");
  check_duration(o.idle_timeout, "idle_timeout");
  check_duration(o.write_timeout, "write_timeout");
  constexpr std::size_t kMostConnections = std::size_t{1} << 20;
  if (o.max_connections < 1 || o.max_connections > kMostConnections) {
    throw ConfigError("spindle exporter: Options::max_connections (" +
                      std::to_string(o.max_connections) + ") must be between 1 and " +
                      std::to_string(kMostConnections));
  }
}

}  // namespace

bool PrometheusExporter::tls_supported() noexcept { return true; }

PrometheusExporter::PrometheusExporter() : PrometheusExporter(Options{}) {}

PrometheusExporter::PrometheusExporter(Options options) {
  check_options(options);
  std::shared_ptr<asio::ssl::context> tls;
  if (options.tls) {
    tls = detail::make_tls_context({.certificate_file = options.tls->certificate_file,
                                    .private_key_file = options.tls->private_key_file,
                                    .client_ca_file = options.tls->client_ca_file});
  }
  path_ = options.path;
  collectable_ = std::make_shared<MetricsCollectable>(MetricsCollectable::Options{
      .const_labels = std::move(options.const_labels), .max_monitors = options.max_monitors});

  detail::HttpServerOptions server;
  server.bind_address = options.bind_address;
  server.settings.path = options.path;
  server.settings.trace_path = options.trace_path;
  if (options.basic_auth) {
    server.settings.auth.emplace(options.basic_auth->username, options.basic_auth->password,
                                 "spindle");
  }
  server.settings.header_timeout = options.header_timeout;
  server.settings.idle_timeout = options.idle_timeout;
  server.settings.write_timeout = options.write_timeout;
  server.settings.max_connections = options.max_connections;
  server.settings.protobuf = options.protobuf;
  server.tls = std::move(tls);
  server.log = std::move(options.log);
  // Runs on the server's thread; the collectable outlives the server.
  server.write_metrics = [collectable = collectable_](std::string& buffer,
                                                      const detail::ChunkSink* sink,
                                                      const detail::ExporterStats& stats) {
    const auto& labels = collectable->options().const_labels;
    if (sink != nullptr) {
      collectable->write_text_in_chunks(buffer, *sink);
      detail::write_exporter_families_chunks(stats, labels, buffer, *sink);
      return std::size_t{0};
    }
    const std::size_t end = collectable->write_text_over(buffer, 0);
    return detail::write_exporter_families_over(stats, labels, buffer, end);
  };
  server.write_protobuf = [collectable = collectable_](std::string& buffer,
                                                       const detail::ExporterStats& stats) {
    const std::size_t end = collectable->write_protobuf_over(buffer, 0);
    return detail::write_exporter_protobuf_over(stats, collectable->options().const_labels, buffer,
                                                end);
  };
  server.write_trace = [collectable = collectable_](std::string_view runtime) {
    return collectable->trace(runtime);
  };
  server_ = std::make_unique<detail::HttpServer>(std::move(server));
  port_ = server_->port();
}

PrometheusExporter::~PrometheusExporter() = default;  // server_ goes first: it is declared last

void PrometheusExporter::add_runtime(const Handle& runtime, std::string name,
                                     std::shared_ptr<const StallDetector> stalls) {
  collectable_->add_runtime(runtime, std::move(name), std::move(stalls));
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
