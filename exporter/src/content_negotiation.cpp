#include "content_negotiation.hpp"

#include <cstddef>

#include "protobuf_format.hpp"
#include "text_format.hpp"

namespace spindle::detail {

namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The next piece of `s` up to `sep` outside double quotes (removed from `s`).
std::string_view next_piece(std::string_view& s, char sep) noexcept {
  bool quoted = false;
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted && c == '\\' && i + 1 < s.size()) {
      ++i;  // a quoted pair
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == sep && !quoted) {
      break;
    }
  }
  const std::string_view piece = s.substr(0, i);
  s.remove_prefix(i < s.size() ? i + 1 : s.size());
  return piece;
}

std::string_view unquote(std::string_view v) noexcept {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return v;
}

// An RFC 9110 qvalue: "0", "0.x", "0.xx", "0.xxx", "1", "1.0"... (in
// thousandths); -1 when malformed.
int parse_q(std::string_view v) noexcept {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
  int q = (v[0] - '0') * 1000;
  if (v.size() == 1) return q;
  if (v[1] != '.' || v.size() > 5) return -1;
  int scale = 100;
  for (std::size_t i = 2; i < v.size(); ++i, scale /= 10) {
    if (v[i] < '0' || v[i] > '9') return -1;
    q += (v[i] - '0') * scale;
  }
  return q <= 1000 ? q : -1;
}

// The range that decides a format's weight: its q, how specific it is, and
// where it stands in the list.
struct Match {
  int q = 0;                        // thousandths; 0: not acceptable
  int specificity = -1;             // 2 exact type, 1 type/*, 0 */*; -1: no range
  std::size_t position = SIZE_MAX;  // the range's index in the header
};

// Whether format weighted `a` is preferred to `b`: the higher q, then the
// more specific range, then the one listed first.
bool better(const Match& a, const Match& b) noexcept {
  if (a.q != b.q) return a.q > b.q;
  if (a.specificity != b.specificity) return a.specificity > b.specificity;
  return a.position < b.position;
}

// A format's weight is that of the most specific range that matches it
// (RFC 9110: `text/plain;q=0` overrides `*/*`); of equally specific ones,
// the first.
void consider(Match& best, const Match& m) noexcept {
  if (m.specificity > best.specificity) best = m;
}

}  // namespace

ScrapeFormat negotiate_format(std::string_view accept) noexcept {
  Match text;
  Match protobuf;
  std::size_t position = 0;
  while (!accept.empty()) {
    std::string_view range = next_piece(accept, ',');
    const std::size_t index = position++;
    const std::string_view media = trim(next_piece(range, ';'));
    const std::size_t slash = media.find('/');
    if (media.empty() || slash == 0 || slash == std::string_view::npos ||
        slash + 1 == media.size()) {
      continue;  // not type/subtype: skipped
    }
    const std::string_view type = media.substr(0, slash);
    const std::string_view subtype = media.substr(slash + 1);
    int q = 1000;
    bool malformed = false;
    std::string_view proto;
    std::string_view encoding;
    std::string_view version;
    while (!range.empty()) {
      const std::string_view param = trim(next_piece(range, ';'));
      if (param.empty()) continue;
      const std::size_t eq = param.find('=');
      if (eq == std::string_view::npos) {
        malformed = true;
        break;
      }
      const std::string_view name = trim(param.substr(0, eq));
      const std::string_view value = unquote(trim(param.substr(eq + 1)));
      if (iequals(name, "q")) {
        q = parse_q(value);
        malformed = q < 0;
        break;  // what follows q are extensions, not media type parameters
      }
      if (iequals(name, "proto")) {
        proto = value;
      } else if (iequals(name, "encoding")) {
        encoding = value;
      } else if (iequals(name, "version")) {
        version = value;
      }
    }
    if (malformed) continue;
    if (iequals(type, "application") && iequals(subtype, "vnd.google.protobuf")) {
      if (proto == "io.prometheus.client.MetricFamily" && encoding == "delimited") {
        consider(protobuf, {q, 2, index});
      }
    } else if (iequals(type, "text") && iequals(subtype, "plain")) {
      if (version.empty() || version == "0.0.4") consider(text, {q, 2, index});
    } else if (iequals(type, "text") && subtype == "*") {
      consider(text, {q, 1, index});
    } else if (type == "*" && subtype == "*") {
      consider(text, {q, 0, index});
    }
  }
  if (protobuf.q > 0 && (text.q == 0 || better(protobuf, text))) return ScrapeFormat::kProtobuf;
  return ScrapeFormat::kText;
}

std::string_view content_type(ScrapeFormat format) noexcept {
  return format == ScrapeFormat::kProtobuf ? kProtobufContentType : kTextFormatContentType;
}

}  // namespace spindle::detail
