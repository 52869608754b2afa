// <spindle/exporter.hpp> — spindle's metrics for Prometheus, read at scrape time.
//
//   spindle::PrometheusExporter   serves /metrics over HTTP or HTTPS on its own thread
//                                 (Asio, http-parser, OpenSSL, zlib; spindle's text writer)
//                                 (spindle/exporter/prometheus_exporter.hpp)
//   spindle::MetricsCollectable   the same metrics as a prometheus::Collectable, for a
//                                 service that runs its own Exposer
//                                 (spindle/exporter/metrics_collectable.hpp)
//   spindle::ExporterError        the exporter could not listen (spindle/exporter/errors.hpp)
//
// The series, their types, labels and meaning are the contract in
// exporter/METRICS.md (prefix `spindle_`, seconds, counters ending in
// `_total`, histograms with the power-of-two `le` bounds of spindle::Histogram,
// its classic view).
//
// Example:
//   #include <spindle/exporter.hpp>
//
//   spindle::PrometheusExporter exporter({.bind_address = "0.0.0.0:9464",
//                                         .const_labels = {{"service", "checkout"}}});
//   exporter.add_runtime(rt.handle());
//   exporter.add_monitor(checkout_monitor);
//   // curl http://host:9464/metrics
//
//   // curl --compressed http://host:9464/metrics   (gzip, as Prometheus asks)
//
// Or, with the service's own prometheus-cpp Exposer:
//   auto spindle_metrics = std::make_shared<spindle::MetricsCollectable>();
//   spindle_metrics->add_runtime(rt.handle());
//   exposer.RegisterCollectable(spindle_metrics);
//
// Nothing is pushed from the tasks' hot path: a scrape reads the monitors'
// and the runtime's counters, which never blocks a worker.
#pragma once

#include "spindle/exporter/errors.hpp"
#include "spindle/exporter/metrics_collectable.hpp"
#include "spindle/exporter/prometheus_exporter.hpp"
