// Internal: which exposition format a scrape gets, from its Accept header.
//
//   spindle::detail::ScrapeFormat         the text format or the delimited protobuf one
//   spindle::detail::negotiate_format     an Accept header's value -> the format to serve
//   spindle::detail::content_type         a format's Content-Type
//
// Example:
//   ScrapeFormat f = negotiate_format(request.accept);   // "" (no Accept): kText
//   headers += "Content-Type: " + std::string(content_type(f)) + "\r\n";
//
// The rules (RFC 9110 §12.5.1 content negotiation, as Prometheus uses it):
// the value is a comma-separated list of media ranges, each with
// parameters after ';' and an optional weight q (0 to 1, default 1; q=0:
// not acceptable). Types, subtypes and parameter names are compared
// without case, parameter values exactly (quotes removed).
//   - protobuf is acceptable through a range
//     `application/vnd.google.protobuf` whose parameters say
//     proto=io.prometheus.client.MetricFamily and encoding=delimited (the
//     only protobuf spindle writes); without them, or with others
//     (encoding=text, compact-text), that range does not select it. A
//     wildcard (`*/*`, `application/*`) never selects protobuf.
//   - the text format is acceptable through `text/plain` (without a version
//     or version=0.0.4), `text/*` or `*/*`.
//   - each format takes the q of the most specific range that accepts it
//     (`text/plain;q=0` overrides `*/*`); the format with the higher q wins;
//     on a tie, the one whose range is more specific (protobuf's is always
//     an exact type), then the one listed first.
//   - anything else (no Accept header, an empty one, only unknown types such
//     as application/openmetrics-text or application/json, only q=0, a
//     malformed range, which is skipped): the text format, the default. A
//     scrape is never refused for its Accept header (no 406).
// Prometheus 2.42 started with --enable-feature=native-histograms sends
//   application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,
//   application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;
//   version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1
// (protobuf at q=1: served), and without the flag the same list without
// the protobuf range (text/plain at q=0.5: the text).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace spindle::detail {

/// The exposition format of a scrape's body.
enum class ScrapeFormat : std::uint8_t {
  kText,      // text/plain; version=0.0.4
  kProtobuf,  // delimited io.prometheus.client.MetricFamily messages
};

/// The format to serve for a request whose Accept header values are
/// `accept` (several headers joined with ", "; empty: none). Never fails.
[[nodiscard]] ScrapeFormat negotiate_format(std::string_view accept) noexcept;

/// The Content-Type of `format`.
[[nodiscard]] std::string_view content_type(ScrapeFormat format) noexcept;

}  // namespace spindle::detail
