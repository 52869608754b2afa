#include "text_format.hpp"

#include <prometheus/client_metric.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace spindle::detail {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Doubles with a magnitude below 2^53 that are whole numbers are exactly an
// int64_t: written as one, they read better ("1000000" rather than "1e+06").
constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53

// Bytes assumed per line besides the name and labels: a suffix
// ("_bucket"), the space, the value, the newline. With the next constant,
// a spindle scrape's estimate is about 20% over; an underestimate costs
// a doubling of the string and a copy of the text written so far.
constexpr std::size_t kLineSlack = 24;
// Bytes assumed for an added `le="..."` or `quantile="..."` label.
constexpr std::size_t kExtraLabelSlack = 16;

// Writes +Inf, -Inf or NaN for a non-finite `v` and returns the end; null
// for a finite one.
char* write_non_finite(char* p, double v) noexcept {
  std::string_view s;
  if (std::isnan(v)) {
    s = "NaN";
  } else if (std::isinf(v)) {
    s = v > 0 ? "+Inf" : "-Inf";
  } else {
    return nullptr;
  }
  for (const char c : s) *p++ = c;
  return p;
}

// Copies `s` to `p` (which has room); returns the end.
char* put(char* p, std::string_view s) noexcept {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Copies `s` to `p` (which has room for 2 * s.size()), escaping '\' and
// newline, and '"' too when `quote` (label values escape all three, HELP
// text the first two); returns the end.
char* put_escaped(char* p, std::string_view s, bool quote) noexcept {
  for (const char c : s) {
    switch (c) {
      case '\\':
        *p++ = '\\';
        *p++ = '\\';
        break;
      case '\n':
        *p++ = '\\';
        *p++ = 'n';
        break;
      case '"':
        if (quote) *p++ = '\\';
        *p++ = '"';
        break;
      default:
        *p++ = c;
        break;
    }
  }
  return p;
}

// What the text of `families` will take, on the high side.
std::size_t estimated_size(std::span<const MetricFamily> families) noexcept {
  std::size_t total = 0;
  for (const MetricFamily& f : families) {
    total += 2 * f.name.size() + f.help.size() + 32;  // # HELP and # TYPE lines
    for (const ClientMetric& m : f.metric) {
      std::size_t labels = 2;  // the braces
      for (const ClientMetric::Label& l : m.label) labels += l.name.size() + l.value.size() + 4;
      std::size_t lines = 1;
      std::size_t extra = 0;  // lines that carry le or quantile
      if (f.type == MetricType::Histogram) {
        extra = m.histogram.bucket.size() + 1;
        lines = extra + 2;
      } else if (f.type == MetricType::Summary) {
        extra = m.summary.quantile.size();
        lines = extra + 2;
      }
      total += lines * (f.name.size() + labels + kLineSlack) + extra * kExtraLabelSlack;
    }
  }
  return total;
}

/// Writes prometheus-cpp families through a LineWriter; holds what is
/// reused from line to line.
class FamilyWriter {
 public:
  explicit FamilyWriter(LineWriter& w) : w_(w) { labels_.reserve(256); }

  void family(const MetricFamily& f) {
    w_.family(f.name, f.help, type_name(f.type));
    for (const ClientMetric& m : f.metric) metric(f, m);
  }

 private:
  /// The `le="..."` label of one bucket bound, formatted once.
  struct BoundLabel {
    std::uint64_t bits = 0;                     // the bound's bit pattern
    std::array<char, kNumberChars + 8> text{};  // le="<bound>"
    std::size_t size = 0;                       // characters used in `text`; 0: none yet
  };

  void metric(const MetricFamily& f, const ClientMetric& m) {
    start_metric(m);
    NumberBuffer value;
    switch (f.type) {
      case MetricType::Counter:
        sample(f.name, {}, {}, format_value(value, m.counter.value));
        break;
      case MetricType::Gauge:
        sample(f.name, {}, {}, format_value(value, m.gauge.value));
        break;
      case MetricType::Untyped:
        sample(f.name, {}, {}, format_value(value, m.untyped.value));
        break;
      case MetricType::Histogram:
        histogram(f.name, m.histogram);
        break;
      case MetricType::Summary:
        summary(f.name, m.summary);
        break;
    }
  }

  // Escapes the metric's labels into labels_ and formats its timestamp.
  void start_metric(const ClientMetric& m) {
    labels_.clear();
    for (const ClientMetric::Label& l : m.label) {
      if (!labels_.empty()) labels_ += ',';
      append_label(labels_, l.name, l.value);
    }
    timestamp_ = {};
    if (m.timestamp_ms != 0) {
      char* const ts = timestamp_buf_.data();
      const auto r = std::to_chars(ts, ts + timestamp_buf_.size(), m.timestamp_ms);
      timestamp_ = std::string_view(ts, static_cast<std::size_t>(r.ptr - ts));
    }
  }

  void sample(std::string_view name, std::string_view suffix, std::string_view extra,
              std::string_view value) {
    w_.sample(name, suffix, {labels_, extra, {}, {}}, value, timestamp_);
  }

  void histogram(std::string_view name, const ClientMetric::Histogram& h) {
    NumberBuffer value;
    bool has_inf = false;  // whether the last bucket is the +Inf one
    if (bounds_.size() < h.bucket.size()) bounds_.resize(h.bucket.size());
    for (std::size_t i = 0; i < h.bucket.size(); ++i) {
      const double bound = h.bucket[i].upper_bound;
      sample(name, "_bucket", bound_label(i, bound),
             format_count(value, h.bucket[i].cumulative_count));
      has_inf = bound == std::numeric_limits<double>::infinity();
    }
    // Prometheus needs the +Inf bucket; it holds every sample.
    if (!has_inf) sample(name, "_bucket", "le=\"+Inf\"", format_count(value, h.sample_count));
    sample(name, "_sum", {}, format_value(value, h.sample_sum));
    sample(name, "_count", {}, format_count(value, h.sample_count));
  }

  void summary(std::string_view name, const ClientMetric::Summary& s) {
    NumberBuffer value;
    for (const ClientMetric::Quantile& q : s.quantile) {
      std::array<char, kNumberChars + 16> label{};
      NumberBuffer number;
      char* p = put(label.data(), "quantile=\"");
      p = put(p, format_label_number(number, q.quantile));
      *p++ = '"';
      sample(name, {}, std::string_view(label.data(), static_cast<std::size_t>(p - label.data())),
             format_value(value, q.value));
    }
    sample(name, "_sum", {}, format_value(value, s.sample_sum));
    sample(name, "_count", {}, format_count(value, s.sample_count));
  }

  // The le="..." label of bucket `i` (< bounds_.size()) with bound
  // `bound`. Every series of a family (and every spindle histogram) has the
  // same bounds: the text made for an earlier series' bucket `i` is reused
  // when its bound is the same.
  std::string_view bound_label(std::size_t i, double bound) {
    const auto bits = std::bit_cast<std::uint64_t>(bound);
    BoundLabel& b = bounds_[i];  // sized by histogram()
    if (b.size != 0 && b.bits == bits) return {b.text.data(), b.size};
    b.bits = bits;
    NumberBuffer number;
    char* p = put(b.text.data(), "le=\"");
    p = put(p, format_label_number(number, bound));
    *p++ = '"';
    b.size = static_cast<std::size_t>(p - b.text.data());
    return {b.text.data(), b.size};
  }

  LineWriter& w_;                   // where the lines go
  std::string labels_;              // the current metric's labels, escaped
  NumberBuffer timestamp_buf_{};    // the current metric's timestamp's digits
  std::string_view timestamp_;      // into timestamp_buf_; empty: none
  std::vector<BoundLabel> bounds_;  // le labels by bucket index
};

}  // namespace

std::string_view type_name(MetricType t) noexcept {
  switch (t) {
    case MetricType::Counter:
      return "counter";
    case MetricType::Gauge:
      return "gauge";
    case MetricType::Summary:
      return "summary";
    case MetricType::Histogram:
      return "histogram";
    case MetricType::Untyped:
      break;
  }
  return "untyped";
}

std::string_view format_value(NumberBuffer& buf, double v) noexcept {
  char* const first = buf.data();
  char* const last = first + buf.size();
  if (char* end = write_non_finite(first, v)) return {first, static_cast<std::size_t>(end - first)};
  if (v > -kExactIntegerLimit && v < kExactIntegerLimit) {
    const auto i = static_cast<std::int64_t>(v);
    // -0.0 goes to the general case, which keeps its sign.
    if (static_cast<double>(i) == v && !(i == 0 && std::signbit(v))) {
      return {first, static_cast<std::size_t>(std::to_chars(first, last, i).ptr - first)};
    }
  }
  return {first, static_cast<std::size_t>(std::to_chars(first, last, v).ptr - first)};
}

std::string_view format_label_number(NumberBuffer& buf, double v) noexcept {
  char* const first = buf.data();
  if (char* end = write_non_finite(first, v)) return {first, static_cast<std::size_t>(end - first)};
  const auto r = std::to_chars(first, first + buf.size(), v, std::chars_format::general, 16);
  return {first, static_cast<std::size_t>(r.ptr - first)};
}

std::string_view format_count(NumberBuffer& buf, std::uint64_t n) noexcept {
  char* const first = buf.data();
  return {first, static_cast<std::size_t>(std::to_chars(first, first + buf.size(), n).ptr - first)};
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
  const std::size_t start = out.size();
  out.resize(start + name.size() + 2 * value.size() + 3);  // name="value", every byte escaped
  char* p = out.data() + start;
  p = put(p, name);
  *p++ = '=';
  *p++ = '"';
  p = put_escaped(p, value, /*quote=*/true);
  *p++ = '"';
  out.resize(static_cast<std::size_t>(p - out.data()));
}

LineWriter::LineWriter(std::string& out, std::size_t estimate)
    : out_(out), end_(out.size()), grow_by_(0) {
  out_.resize(end_ + estimate);
}

LineWriter::LineWriter(std::string& out, std::size_t offset, std::size_t estimate,
                       Overwrite /*tag*/)
    : out_(out), end_(std::min(offset, out.size())), grow_by_(std::max<std::size_t>(estimate, 1)) {}

LineWriter::LineWriter(std::string& buffer, const ChunkSink& sink)
    : out_(buffer), end_(0), grow_by_(kChunkBytes), sink_(&sink) {
  if (out_.size() < kChunkBytes) out_.resize(kChunkBytes);
}

LineWriter::~LineWriter() {
  if (grow_by_ == 0) out_.resize(end_);  // shrinking: never throws
}

void LineWriter::flush() {
  if (sink_ == nullptr || end_ == 0) return;
  (*sink_)(std::string_view(out_.data(), end_));
  end_ = 0;
}

char* LineWriter::room(std::size_t n) {
  if (sink_ != nullptr && end_ + n > kChunkBytes) flush();
  if (out_.size() - end_ < n) {
    const std::size_t at_least =
        grow_by_ == 0 ? out_.size() * 2 : out_.size() + std::max(grow_by_, out_.size() / 2);
    out_.resize(std::max(at_least, end_ + n));
  }
  return out_.data() + end_;
}

void LineWriter::commit(const char* p) noexcept {
  end_ = static_cast<std::size_t>(p - out_.data());
}

void LineWriter::family(std::string_view name, std::string_view help, std::string_view type) {
  char* p = room(2 * name.size() + 2 * help.size() + type.size() + 18);
  if (!help.empty()) {
    p = put(p, "# HELP ");
    p = put(p, name);
    *p++ = ' ';
    p = put_escaped(p, help, /*quote=*/false);
    *p++ = '\n';
  }
  p = put(p, "# TYPE ");
  p = put(p, name);
  *p++ = ' ';
  p = put(p, type);
  *p++ = '\n';
  commit(p);
}

void LineWriter::sample(std::string_view name, std::string_view suffix, const LabelParts& labels,
                        std::string_view value, std::string_view timestamp) {
  std::size_t labels_size = 0;
  for (const std::string_view part : labels) labels_size += part.size() + 1;
  char* p = room(name.size() + suffix.size() + labels_size + value.size() + timestamp.size() + 6);
  p = put(p, name);
  p = put(p, suffix);
  bool first = true;
  for (const std::string_view part : labels) {
    if (part.empty()) continue;
    *p++ = first ? '{' : ',';
    first = false;
    p = put(p, part);
  }
  if (!first) *p++ = '}';
  *p++ = ' ';
  p = put(p, value);
  if (!timestamp.empty()) {
    *p++ = ' ';
    p = put(p, timestamp);
  }
  *p++ = '\n';
  commit(p);
}

void append_text_format(std::span<const MetricFamily> families, std::string& out) {
  LineWriter w(out, estimated_size(families));
  FamilyWriter fw(w);
  for (const MetricFamily& f : families) fw.family(f);
}

std::string text_format(std::span<const MetricFamily> families) {
  std::string out;
  append_text_format(families, out);
  return out;
}

}  // namespace spindle::detail
