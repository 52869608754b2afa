// Internal: what the exporter answers to a request, and the bytes of an answer's head.
//
//   spindle::detail::Reply         the answer to one request: a scrape, or a fixed response
//   spindle::detail::route         a parsed request -> its Reply
//   spindle::detail::error_reply   a request the parser refused -> its Reply (400, 413, 431)
//   spindle::detail::target_path   the path of a request target (no query, no fragment)
//   spindle::detail::append_head   an HTTP/1.1 status line and headers
//   spindle::detail::HttpDate      the Date header's value, formatted once a second
//
// Example:
//   Reply r = route(parser.request(), "/metrics", auth.get());
//   if (r.scrape) { ... } else { append_head(head, r.status, date.now(), r.headers,
//                                            r.body.size(), r.keep_alive); }
//
// The rules, in order: the path must equal Options::path exactly (no
// percent-decoding, no case folding, no slash merging: `/metrics/x`,
// `//metrics`, `/METRICS` and `/%6detrics` are 404; a query string is
// ignored); then the credentials when basic auth is on (401 with the
// challenge); then the method: GET and HEAD are served (HEAD: the same
// head, no body), anything else is 405 with `Allow: GET, HEAD`. A scrape's
// format comes from its Accept header when protobuf may be served
// (content_negotiation.hpp), else it is the text. A request the parser
// refused gets its 4xx and the connection is closed.
//
// Thread safety: the functions are pure; an HttpDate is used by one thread.
#pragma once

#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>

#include "basic_auth.hpp"
#include "content_negotiation.hpp"
#include "http_request.hpp"

namespace spindle::detail {

/// The answer to one request.
struct Reply {
  bool scrape = false;        // serve the metrics (the server writes the body)
  bool trace = false;         // serve the flight-recorder trace (trace_runtime: which)
  std::string trace_runtime;  // trace: ?runtime=<name>, or empty
  bool gzip = false;          // scrape: the client accepts a gzip body
  ScrapeFormat format{};      // scrape: the exposition format (kText: the text)
  bool head_only = false;     // HEAD: the head without the body
  bool keep_alive = false;    // the connection may carry the next request
  bool http10 = false;        // say "Connection: keep-alive" (HTTP/1.0 clients need it)
  int status = 200;           // fixed replies: the status
  std::string headers;        // fixed replies: extra header lines, each ending in \r\n
  std::string_view body;      // fixed replies: a static text
};

/// The Reply to `request` for metrics served at `path`, checking `auth`
/// when not null (see above); a scrape may get the protobuf format only
/// when `protobuf`. Throws std::bad_alloc.
[[nodiscard]] Reply route(const HttpRequest& request, std::string_view path, const BasicAuth* auth,
                          std::string_view trace_path = {}, bool protobuf = false);

/// The Reply to a request that failed with `status` (an error of
/// RequestParser: 400, 413 or 431), closing the connection.
[[nodiscard]] Reply error_reply(RequestParser::Status status);

/// A fixed reply with `status` and a short text body, closing the
/// connection (500 when a scrape cannot be written, 503 for a refused
/// connection, 400 for plain HTTP on a TLS port).
[[nodiscard]] Reply closing_reply(int status);

/// The path of an origin-form (`/a/b?q`) or absolute-form
/// (`http://host/a/b?q`) request target, without query and fragment; ""
/// when there is none.
[[nodiscard]] std::string_view target_path(std::string_view target) noexcept;
/// The percent-decoded value of query parameter `name` in `target`; empty
/// when it is absent.
[[nodiscard]] std::string query_value(std::string_view target, std::string_view name);

/// The status line's reason phrase ("OK", "Not Found", ...).
[[nodiscard]] std::string_view reason_phrase(int status) noexcept;

/// Appends a response head: status line, Date, `headers` (ready lines),
/// Content-Length, the Connection header when needed, the blank line.
void append_head(std::string& out, int status, std::string_view date, std::string_view headers,
                 std::size_t content_length, bool keep_alive, bool http10);

/// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") for `t`, written with
/// gmtime_r and fixed English names (not the locale's).
[[nodiscard]] std::string http_date(std::time_t t);

/// The current Date value, formatted again only when the second changes.
class HttpDate {
 public:
  /// Valid until the next call.
  [[nodiscard]] std::string_view now();

 private:
  std::time_t second_ = -1;  // the second text_ was made for
  std::string text_;         // its IMF-fixdate
};

}  // namespace spindle::detail
