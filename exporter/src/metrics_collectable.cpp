#include "spindle/exporter/metrics_collectable.hpp"

#include <exception>
#include <sstream>
#include <utility>

#include "families.hpp"
#include "protobuf_format.hpp"
#include "sources.hpp"
#include "text_format.hpp"
#include "validate.hpp"

namespace spindle {

namespace {

MetricsCollectable::Options validated(MetricsCollectable::Options options) {
  detail::check_const_labels(options.const_labels);
  return options;
}

}  // namespace

MetricsCollectable::MetricsCollectable() : MetricsCollectable(Options{}) {}

MetricsCollectable::MetricsCollectable(Options options)
    : options_(validated(std::move(options))),
      sources_(std::make_unique<detail::Sources>(options_.max_monitors)),
      readings_(std::make_unique<detail::ReadingPool>()) {}

MetricsCollectable::~MetricsCollectable() = default;

void MetricsCollectable::add_runtime(const Handle& runtime, std::string name,
                                     std::shared_ptr<const StallDetector> stalls) {
  sources_->add_runtime(runtime, std::move(name), std::move(stalls));
}

bool MetricsCollectable::remove_runtime(std::string_view name) {
  return sources_->remove_runtime(name);
}

void MetricsCollectable::add_monitor(const TaskMonitor& monitor) { sources_->add_monitor(monitor); }

bool MetricsCollectable::remove_monitor(const TaskMonitor& monitor) {
  return sources_->remove_monitor(monitor);
}

bool MetricsCollectable::remove_monitor(std::string_view name) {
  return sources_->remove_monitor(name);
}

std::size_t MetricsCollectable::monitor_count() const { return sources_->monitor_count(); }

std::size_t MetricsCollectable::runtime_count() const { return sources_->runtime_count(); }

std::vector<prometheus::MetricFamily> MetricsCollectable::Collect() const {
  // prometheus-cpp calls this on its server's thread, which an exception
  // would terminate: whatever fails is left out of this scrape instead.
  try {
    detail::ScrapeReading reading;
    detail::read_sources(*sources_, reading);
    return detail::build_families(reading, options_.const_labels);
  } catch (const std::exception&) {
    return {};  // out of memory: an empty scrape rather than a dead server
  }
}

std::optional<std::string> MetricsCollectable::trace(std::string_view runtime) const {
  for (const detail::Sources::RuntimeReading& r : sources_->snapshot().runtimes) {
    if (!runtime.empty() && r.name != runtime) continue;
    if (r.handle.flight_recorder_events() == 0) {
      if (runtime.empty()) continue;
      return std::nullopt;
    }
    std::ostringstream out;
    r.handle.write_trace(out);
    return std::move(out).str();
  }
  return std::nullopt;
}

std::string MetricsCollectable::text() const {
  std::string out;
  append_text(out);
  return out;
}

std::size_t MetricsCollectable::write_text_over(std::string& buffer, std::size_t offset) const {
  const detail::PooledReading reading(*readings_);
  detail::read_sources(*sources_, *reading);
  return detail::write_scrape_text_over(*reading, options_.const_labels, buffer, offset);
}

void MetricsCollectable::write_text_in_chunks(
    std::string& scratch, const std::function<void(std::string_view chunk)>& sink) const {
  const detail::PooledReading reading(*readings_);
  detail::read_sources(*sources_, *reading);
  detail::write_scrape_text_chunks(*reading, options_.const_labels, scratch, sink);
}

void MetricsCollectable::append_text(std::string& out) const {
  const detail::PooledReading reading(*readings_);
  detail::read_sources(*sources_, *reading);
  detail::append_scrape_text(*reading, options_.const_labels, out);
}

std::string MetricsCollectable::protobuf() const {
  std::string out;
  out.resize(write_protobuf_over(out, 0));
  return out;
}

std::size_t MetricsCollectable::write_protobuf_over(std::string& buffer, std::size_t offset) const {
  const detail::PooledReading reading(*readings_);
  detail::read_sources(*sources_, *reading);
  return detail::write_scrape_protobuf_over(*reading, options_.const_labels, buffer, offset);
}

}  // namespace spindle
