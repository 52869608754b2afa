#include "http_response.hpp"

#include <array>
#include <charconv>

#include "gzip.hpp"

namespace spindle::detail {

namespace {

constexpr std::string_view kNotFoundBody = "404 Not Found\n";
constexpr std::string_view kUnauthorizedBody =
    "401 Unauthorized: this endpoint needs HTTP basic authentication.\n";
constexpr std::string_view kMethodNotAllowedBody =
    "405 Method Not Allowed: this endpoint serves GET and HEAD.\n";
constexpr std::string_view kBadRequestBody = "400 Bad Request\n";
constexpr std::string_view kPlainOnTlsBody =
    "400 Bad Request: this port speaks HTTPS; the request was plain HTTP.\n";
constexpr std::string_view kTooLargeBody = "413 Content Too Large: a scrape has no body.\n";
constexpr std::string_view kHeadTooLargeBody =
    "431 Request Header Fields Too Large: the request line and headers exceed 16 KiB.\n";
constexpr std::string_view kInternalErrorBody =
    "500 Internal Server Error: the scrape could not be written (out of memory).\n";
constexpr std::string_view kUnavailableBody =
    "503 Service Unavailable: too many connections; retry later.\n";

constexpr std::string_view kTextPlain = "Content-Type: text/plain; charset=utf-8\r\n";

Reply fixed(int status, std::string_view body, bool keep_alive) {
  Reply r;
  r.status = status;
  r.body = body;
  r.keep_alive = keep_alive;
  r.headers = kTextPlain;
  return r;
}

}  // namespace

Reply route(const HttpRequest& request, std::string_view path, const BasicAuth* auth,
            std::string_view trace_path, bool protobuf) {
  const bool head = request.method == HTTP_HEAD;
  const std::string_view target = target_path(request.target);
  const bool trace = !trace_path.empty() && target == trace_path;
  Reply r;
  if (target != path && !trace) {
    r = fixed(404, kNotFoundBody, request.keep_alive);
  } else if (auth != nullptr &&
             !auth->allows(request.authorization
                               ? std::optional<std::string_view>(*request.authorization)
                               : std::nullopt)) {
    r = fixed(401, kUnauthorizedBody, request.keep_alive);
    r.headers += "WWW-Authenticate: " + auth->challenge() + "\r\n";
  } else if (request.method != HTTP_GET && !head) {
    r = fixed(405, kMethodNotAllowedBody, request.keep_alive);
    r.headers += "Allow: GET, HEAD\r\n";
  } else if (trace) {
    r.trace = true;
    r.trace_runtime = query_value(request.target, "runtime");
    r.keep_alive = request.keep_alive;
  } else {
    r.scrape = true;
    r.gzip = accepts_gzip(request.accept_encoding);
    if (protobuf) r.format = negotiate_format(request.accept);
    r.keep_alive = request.keep_alive;
  }
  r.head_only = head;
  r.http10 = request.http10;
  return r;
}

Reply error_reply(RequestParser::Status status) {
  switch (status) {
    case RequestParser::Status::kHeadTooLarge:
      return fixed(431, kHeadTooLargeBody, false);
    case RequestParser::Status::kBodyTooLarge:
      return fixed(413, kTooLargeBody, false);
    case RequestParser::Status::kNeedMore:
    case RequestParser::Status::kRequestComplete:
    case RequestParser::Status::kBadRequest:
      break;
  }
  return fixed(400, kBadRequestBody, false);
}

Reply closing_reply(int status) {
  switch (status) {
    case 500:
      return fixed(500, kInternalErrorBody, false);
    case 503:
      return fixed(503, kUnavailableBody, false);
    default:
      return fixed(400, kPlainOnTlsBody, false);
  }
}

std::string query_value(std::string_view target, std::string_view name) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name && eq != std::string_view::npos) {
      // Percent-decoding of the value ('+' is a space, as in forms).
      auto hex = [](char c) {
        return c >= '0' && c <= '9'   ? c - '0'
               : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                      : -1;
      };
      std::string out;
      const std::string_view v = pair.substr(eq + 1);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          const int hi = hex(v[i + 1]);
          const int lo = hex(v[i + 2]);
          if (hi >= 0 && lo >= 0) {
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
            continue;
          }
        }
        out += v[i] == '+' ? ' ' : v[i];
      }
      return out;
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return {};
}

std::string_view target_path(std::string_view target) noexcept {
  if (!target.empty() && target.front() != '/') {
    // Absolute form: http://host[:port]/path?query
    http_parser_url url;
    http_parser_url_init(&url);
    if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0 ||
        (url.field_set & (1u << UF_PATH)) == 0) {
      return {};
    }
    target = target.substr(url.field_data[UF_PATH].off);
  }
  return target.substr(0, target.find_first_of("?#"));
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void append_head(std::string& out, int status, std::string_view date, std::string_view headers,
                 std::size_t content_length, bool keep_alive, bool http10) {
  std::array<char, 24> digits{};
  out += "HTTP/1.1 ";
  out.append(digits.data(),
             std::to_chars(digits.data(), digits.data() + digits.size(), status).ptr);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nDate: ";
  out += date;
  out += "\r\n";
  out += headers;
  out += "Content-Length: ";
  out.append(digits.data(),
             std::to_chars(digits.data(), digits.data() + digits.size(), content_length).ptr);
  out += "\r\n";
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

std::string http_date(std::time_t t) {
  static constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                            "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
      tm.tm_mon > 11) {
    return "Thu, 01 Jan 1970 00:00:00 GMT";
  }
  const auto two = [](std::string& s, int v) {
    s += static_cast<char>('0' + v / 10 % 10);
    s += static_cast<char>('0' + v % 10);
  };
  std::string s;
  s.reserve(29);
  s += kDays[static_cast<std::size_t>(tm.tm_wday)];
  s += ", ";
  two(s, tm.tm_mday);
  s += ' ';
  s += kMonths[static_cast<std::size_t>(tm.tm_mon)];
  s += ' ';
  const int year = tm.tm_year + 1900;
  two(s, year / 100);
  two(s, year % 100);
  s += ' ';
  two(s, tm.tm_hour);
  s += ':';
  two(s, tm.tm_min);
  s += ':';
  two(s, tm.tm_sec);
  s += " GMT";
  return s;
}

std::string_view HttpDate::now() {
  const std::time_t t = std::time(nullptr);
  if (t != second_) {
    text_ = http_date(t);
    second_ = t;
  }
  return text_;
}

}  // namespace spindle::detail
