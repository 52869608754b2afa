#include "validate.hpp"

#include <array>
#include <cstdint>

#include "spindle/runtime/errors.hpp"

namespace spindle::detail {

namespace {

// Labels spindle sets itself, and those Prometheus reserves for histograms
// and summaries: a constant label with one of these names would collide.
constexpr std::array<std::string_view, 8> kOwnLabels = {
    "runtime", "worker", "monitor", "kind", "culprit", "encoding", "le", "quantile"};

bool is_ascii_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_digit(char c) noexcept { return c >= '0' && c <= '9'; }

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07u;
    } else {
      return false;  // a continuation byte first, or 0xf8..0xff
    }
    if (i + extra >= s.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    // Overlong encodings, UTF-16 surrogates and code points past U+10FFFF.
    static constexpr std::array<std::uint32_t, 4> kMin = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  if (!is_ascii_alpha(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!is_ascii_alpha(c) && !is_ascii_digit(c) && c != '_') return false;
  }
  return name.substr(0, 2) != "__";
}

void check_const_labels(const std::map<std::string, std::string>& labels) {
  for (const auto& [name, value] : labels) {
    if (!is_valid_label_name(name)) {
      throw ConfigError("spindle exporter: constant label name " + quoted(name) +
                        " is not a valid Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                        "not starting with \"__\")");
    }
    for (std::string_view own : kOwnLabels) {
      if (name == own) {
        throw ConfigError("spindle exporter: constant label \"" + name +
                          "\" collides with a label spindle sets itself (runtime, worker, "
                          "monitor, kind) or one Prometheus reserves (le, quantile)");
      }
    }
    if (!is_valid_utf8(value)) {
      throw ConfigError("spindle exporter: the value of constant label \"" + name +
                        "\" is not valid UTF-8");
    }
  }
}

void check_source_name(std::string_view name, std::string_view what) {
  if (name.empty()) {
    throw UsageError("spindle exporter: a " + std::string(what) +
                     " needs a non-empty name: it becomes the `" + std::string(what) +
                     "` label of its series" +
                     (what == "monitor" ? " (TaskMonitor::Builder().name(...))" : ""));
  }
  if (!is_valid_utf8(name)) {
    throw UsageError("spindle exporter: the " + std::string(what) + " name " + quoted(name) +
                     " is not valid UTF-8 (Prometheus label values must be)");
  }
}

void check_bind_address(std::string_view address) {
  const auto fail = [&](std::string_view why) {
    throw ConfigError("spindle exporter: Options::bind_address " + quoted(address) +
                      " is invalid: " + std::string(why) +
                      "; expected \"HOST:PORT\" (e.g. \"127.0.0.1:9464\", \"0.0.0.0:9464\", "
                      "\"[::1]:9464\", port 0 for any free port) or \"PORT\"");
  };
  if (address.empty()) fail("it is empty");
  std::string_view host;
  std::string_view port = address;
  if (address.front() == '[') {
    const std::size_t close = address.find(']');
    if (close == std::string_view::npos) fail("'[' without ']'");
    host = address.substr(1, close - 1);
    if (host.empty()) fail("the host is empty");
    for (char c : host) {
      if (!is_ascii_digit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F') && c != ':' &&
          c != '.') {
        fail("the IPv6 address holds a character that is not a hex digit, ':' or '.'");
      }
    }
    if (close + 1 >= address.size() || address[close + 1] != ':') fail("no \":PORT\" after ']'");
    port = address.substr(close + 2);
  } else if (const std::size_t colon = address.rfind(':'); colon != std::string_view::npos) {
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.empty()) fail("the host before ':' is empty");
    for (char c : host) {
      if (!is_ascii_alpha(c) && !is_ascii_digit(c) && c != '.' && c != '-') {
        fail(c == ':' ? "IPv6 addresses must be written in brackets, \"[::1]:9464\""
                      : "the host holds a character other than letters, digits, '.' and '-'");
      }
    }
  }
  if (port.empty()) fail("the port is empty");
  if (port.size() > 5) fail("the port is not a number in 0..65535");
  std::uint32_t value = 0;
  for (char c : port) {
    if (!is_ascii_digit(c)) fail("the port is not a number in 0..65535");
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value > 65535) fail("the port is not a number in 0..65535");
}

void check_path(std::string_view path, std::string_view field) {
  if (path.empty() || path.front() != '/') {
    throw ConfigError("spindle exporter: Options::" + std::string(field) + " " + quoted(path) +
                      " is invalid: it must start with '/' (e.g. \"/metrics\")");
  }
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '?' || c == '#') {
      throw ConfigError("spindle exporter: Options::" + std::string(field) + " " + quoted(path) +
                        " is invalid: it holds a space, a control character, '?' or '#'");
    }
  }
}

}  // namespace spindle::detail
