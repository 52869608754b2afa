// Internal: spindle's families in Prometheus' protobuf exposition format, with native histograms.
//
//   spindle::detail::kProtobufContentType          the Content-Type of what it writes
//   spindle::detail::write_scrape_protobuf_over    a reading's families (MetricsCollectable)
//   spindle::detail::write_exporter_protobuf_over  the HTTP server's own spindle_exporter_*
//
// Example:
//   std::string buffer;   // kept from scrape to scrape
//   std::size_t end = write_scrape_protobuf_over(reading, const_labels, buffer, 0);
//   end = write_exporter_protobuf_over(stats, const_labels, buffer, end);
//   serve(std::string_view(buffer.data(), end), kProtobufContentType);
//
// The body is a stream of io.prometheus.client.MetricFamily messages
// (exporter/proto/prometheus_metrics.proto, generated with protoc as
// protobuf-lite), each preceded by its size as a varint ("delimited"). It
// holds exactly the families of the text format (families.hpp's
// FamilyVisitor walks the same table): the same names (a counter's ends in
// _total, which Prometheus keeps as the series name, as in the text), help
// texts (unescaped: protobuf needs no escaping), types, labels (the
// source's, the extra one, then the constant labels) and values. A
// histogram's Metric carries:
//   - sample_count and sample_sum (seconds), as the text's _count and _sum;
//   - the classic buckets: the text's `le` bounds (powers of two from 64 ns
//     to 2^36 ns, in seconds) and cumulative counts, without +Inf (implied
//     by sample_count, as the format allows);
//   - the native histogram: schema 5, zero_threshold 64 ns, zero_count,
//     positive spans and deltas (native_histogram.hpp: the mapping and its
//     error bound). zero_threshold > 0 and, with no observation above it,
//     the no-op span mark the message as a native histogram even before
//     the first observation, so that a series never changes kind.
//
// Cost: one MetricFamily message is reused for every family of a scrape
// (protobuf's Clear() keeps the sub-messages and repeated fields' room), so
// after the largest family nothing is allocated; each family is serialized
// into the buffer as soon as it is complete.
//
// Thread safety: the functions keep no state between calls.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "families.hpp"
#include "spindle/exporter/metrics_collectable.hpp"

namespace spindle::detail {

/// The HTTP Content-Type of the delimited protobuf exposition, as Prometheus expects it.
inline constexpr std::string_view kProtobufContentType = MetricsCollectable::kProtobufContentType;

/// The reading's families (see above) written over `out` from `offset`
/// (<= out.size()); `out` only grows, the bytes after the returned end are
/// left as they were. Throws std::bad_alloc (`out` then holds whole
/// families up to some point, and junk after).
std::size_t write_scrape_protobuf_over(const ScrapeReading& reading,
                                       const std::map<std::string, std::string>& const_labels,
                                       std::string& out, std::size_t offset);

/// The exporter's own families (spindle_exporter_*), written the same way.
std::size_t write_exporter_protobuf_over(const ExporterStats& stats,
                                         const std::map<std::string, std::string>& const_labels,
                                         std::string& out, std::size_t offset);

}  // namespace spindle::detail
