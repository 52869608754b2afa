// Internal: spindle's own writer of the Prometheus text exposition format (0.0.4).
//
//   spindle::detail::append_text_format  appends metric families to a std::string
//   spindle::detail::text_format         the same, into a new string
//   spindle::detail::kTextFormatContentType  the Content-Type of what they write
//
// Why not prometheus::TextSerializer: it writes through an ostream
// (stream insertions, printf-style doubles, allocations per line), which
// made it ~90% of a scrape (100 monitors: ~10,600 lines, ~980 KB). This writer
// keeps prometheus-cpp's data model (the MetricFamily vector that
// MetricsCollectable::Collect() returns) and only replaces the text.
//
// Example:
//   std::string body = spindle::detail::text_format(collectable.Collect());
//
// What it writes, per family (in order) and per metric (in order):
//   # HELP <name> <help, with '\' as \\ and newline as \n>   (left out when help is empty)
//   # TYPE <name> counter|gauge|histogram|summary|untyped
//   <name>{<labels>} <value>[ <timestamp ms>]
// Labels keep their order; a value's '\', '"' and newline are escaped as
// \\, \" and \n; a metric without labels has no braces. A histogram writes
// <name>_bucket{<labels>,le="<bound>"} per bucket (adding le="+Inf" with
// the sample count when the last bound is finite, as Prometheus requires),
// then <name>_sum and <name>_count; a summary writes
// <name>{<labels>,quantile="<q>"} per quantile, then _sum and _count.
//
// Numbers: sample values are the shortest text that reads back as the same
// double (std::to_chars; TextSerializer rounds to 16 digits, which can
// change a value and turns DBL_MAX into a number Prometheus rejects),
// integral values below 2^53 in plain digits ("1000000", not "1e+06");
// +Inf, -Inf and NaN as Prometheus spells them; counts (bucket and sample
// counts, uint64) and timestamps as exact integers. The `le` and
// `quantile` label values, which name a series,
// are written as prometheus-cpp writes them (printf's %.16g): the same
// bucket keeps the same series in Prometheus across the switch.
//
// Cost: one pass over the families to estimate the size, one growth of
// `out` by that much, then plain copies of ready pieces into that room
// (the unused rest is cut at the end). Each metric's label block is
// escaped once and reused by all of its lines (28 for a spindle
// histogram); `le` values are formatted once per distinct bucket bound,
// not per line. Nothing is allocated per line.
//
// Thread safety: the functions keep no state between calls; concurrent
// calls on distinct strings are safe.
#pragma once

#include <prometheus/metric_family.h>

#include <span>
#include <string>

namespace spindle::detail {

/// The HTTP Content-Type of the text format this file writes (a C string,
/// for civetweb).
inline constexpr char kTextFormatContentType[] = "text/plain; version=0.0.4; charset=utf-8";

/// Appends `families` to `out` in the text format (see above). Metric and
/// label names are written as they are: they must be valid Prometheus
/// names (spindle's are). Throws only what growing `out` throws
/// (std::bad_alloc, std::length_error); `out` then holds a prefix.
void append_text_format(std::span<const prometheus::MetricFamily> families, std::string& out);

/// `families` in the text format, in a string sized ahead. Throws as append_text_format.
[[nodiscard]] std::string text_format(std::span<const prometheus::MetricFamily> families);

}  // namespace spindle::detail
