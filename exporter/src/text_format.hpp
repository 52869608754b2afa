// Internal: spindle's own writer of the Prometheus text exposition format (0.0.4).
//
//   spindle::detail::append_text_format  appends prometheus-cpp metric families to a std::string
//   spindle::detail::text_format         the same, into a new string
//   spindle::detail::LineWriter          the line-level writer both of them, and the scrape
//                                        writer (scrape_writer.hpp), write through
//   spindle::detail::format_value / format_label_number / format_count  numbers as text
//   spindle::detail::append_label        `name="escaped value"`, for ready-made label blocks
//   spindle::detail::kTextFormatContentType  the Content-Type of what they write
//
// Why not prometheus::TextSerializer: it writes through an ostream
// (stream insertions, printf-style doubles, allocations per line), which
// made it ~90% of a scrape (100 monitors: ~10,600 lines, ~980 KB).
// append_text_format() keeps prometheus-cpp's data model (the MetricFamily
// vector that MetricsCollectable::Collect() returns) and only replaces the
// text; the endpoint does not even build that vector (scrape_writer.hpp).
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
// Cost: the string grows ahead (by an estimate, or doubling), then the
// lines are plain copies of ready pieces into that room (the unused rest
// is cut at the end). Each metric's label block is escaped once and reused
// by all of its lines (34 for a spindle histogram); `le` values are
// formatted once per distinct bucket bound, not per line. Nothing is
// allocated per line.
//
// Thread safety: the functions keep no state between calls; concurrent
// calls on distinct strings are safe. A LineWriter is used by one thread.
#pragma once

#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace spindle::detail {

/// The HTTP Content-Type of the text format this file writes.
inline constexpr std::string_view kTextFormatContentType =
    "text/plain; version=0.0.4; charset=utf-8";

/// Room for any number this file writes: the longest are a shortest-form
/// double ("-2.2250738585072014e-308", 24 chars) and INT64_MIN (20).
inline constexpr std::size_t kNumberChars = 32;
using NumberBuffer = std::array<char, kNumberChars>;

/// A sample value: the shortest text that reads back as `v` (see above).
[[nodiscard]] std::string_view format_value(NumberBuffer& buf, double v) noexcept;
/// A bucket bound or quantile as prometheus-cpp's serializer writes it (%.16g).
[[nodiscard]] std::string_view format_label_number(NumberBuffer& buf, double v) noexcept;
/// An exact unsigned integer.
[[nodiscard]] std::string_view format_count(NumberBuffer& buf, std::uint64_t n) noexcept;

/// Appends `name="value"` to `out`, the value escaped ('\', '"', newline).
/// `name` must be a valid label name. Throws what growing `out` throws.
void append_label(std::string& out, std::string_view name, std::string_view value);

/// The "counter", "gauge", ... of a # TYPE line.
[[nodiscard]] std::string_view type_name(prometheus::MetricType t) noexcept;

/// Up to four ready-made label pieces of one line (each `a="x"` or
/// `a="x",b="y"`, already escaped; empty ones are skipped), joined with ','.
using LabelParts = std::array<std::string_view, 4>;

/// Receives text in pieces (a LineWriter's chunked mode). May throw.
using ChunkSink = std::function<void(std::string_view chunk)>;

/// Writes lines into one string. The string is grown ahead, the lines are
/// copied into that room, and the destructor cuts what was not used (also
/// when a growth throws: the string then holds the whole lines written so
/// far). In overwrite mode the string is neither cut nor cleared: a buffer
/// kept at its largest size from scrape to scrape is written over without
/// std::string's zero-filling of every byte it grows by (for 1,000
/// monitors, 10 MB more to write per scrape); end() tells where the text
/// ends.
class LineWriter {
 public:
  /// Overwrite mode, see above.
  struct Overwrite {};
  /// How much a chunked LineWriter holds before it hands the text on.
  static constexpr std::size_t kChunkBytes = 128 * 1024;

  /// Writes after `out`'s contents, growing it by `estimate` bytes first.
  /// Throws what growing `out` throws (`out` then is as it was).
  LineWriter(std::string& out, std::size_t estimate);
  /// Writes over `out` from `offset` (<= out.size()), growing it only when
  /// the text goes beyond its size, by at least `estimate`.
  LineWriter(std::string& out, std::size_t offset, std::size_t estimate, Overwrite tag);
  /// Chunked mode: `buffer` is only scratch; every ~kChunkBytes of text,
  /// and at flush(), what was written goes to `sink` and the buffer is
  /// written over again. The whole text is never in memory at once, and
  /// the scratch stays in the CPU's cache.
  LineWriter(std::string& buffer, const ChunkSink& sink);
  ~LineWriter();  // cuts the room left over (not in overwrite mode); never throws

  /// Where the text written so far ends in the string.
  [[nodiscard]] std::size_t end() const noexcept { return end_; }
  /// Chunked mode: hands what is buffered to the sink (call it at the end;
  /// the destructor does not, as the sink may throw). Throws what it throws.
  void flush();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  /// # HELP (when `help` is not empty) and # TYPE of a family.
  void family(std::string_view name, std::string_view help, std::string_view type);
  /// <name><suffix>{<labels>} <value>[ <timestamp>]\n (no braces without labels).
  void sample(std::string_view name, std::string_view suffix, const LabelParts& labels,
              std::string_view value, std::string_view timestamp = {});

 private:
  // Room for `n` more bytes after what was written; returns where they go.
  char* room(std::size_t n);
  // Marks everything before `p` (in the room) as written.
  void commit(const char* p) noexcept;

  std::string& out_;                 // where the text goes: [0, end_) written, then room
  std::size_t end_;                  // the end of what was written
  std::size_t grow_by_;              // overwrite mode: the least growth; 0: append mode
  const ChunkSink* sink_ = nullptr;  // chunked mode: where full chunks go
};

/// Appends `families` to `out` in the text format (see above). Metric and
/// label names are written as they are: they must be valid Prometheus
/// names (spindle's are). Throws only what growing `out` throws
/// (std::bad_alloc, std::length_error); `out` then holds a prefix.
void append_text_format(std::span<const prometheus::MetricFamily> families, std::string& out);

/// `families` in the text format, in a string sized ahead. Throws as append_text_format.
[[nodiscard]] std::string text_format(std::span<const prometheus::MetricFamily> families);

}  // namespace spindle::detail
