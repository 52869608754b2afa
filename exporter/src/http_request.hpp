// Internal: reading one HTTP/1.x request with http-parser (Debian's libhttp-parser-dev).
//
//   spindle::detail::HttpRequest    what the exporter needs of a request
//   spindle::detail::RequestParser  bytes in, a request (or why not) out; one per connection
//
// Example:
//   RequestParser parser;
//   auto [used, status] = parser.feed(data, size);
//   if (status == RequestParser::Status::kRequestComplete) serve(parser.request());
//   // data[used...] is the start of the next (pipelined) request: parser.reset(), feed again
//
// http-parser is a push parser: http_parser_execute() walks the bytes it is
// given and calls back on the URL, each header field and value (possibly in
// pieces, when they straddle two reads), the body and the message's end.
// The callbacks keep only what the exporter needs — the method, the
// request target, the Authorization, Accept and Accept-Encoding values — and
// count the head's bytes: a head (request line and headers) longer than
// kMaxHeadBytes is refused (431), a body longer than kMaxBodyBytes too
// (413; a scrape has none); malformed input is a 400. At the end of a
// message the parser is paused, so bytes after it (the next request of a
// pipelining client) are left for the next feed().
//
// Thread safety: a RequestParser is used by one thread (its connection's).
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace spindle::detail {

/// One parsed request.
struct HttpRequest {
  http_method method = HTTP_GET;             // as parsed
  std::string target;                        // the request target, as sent ("/metrics?x=1")
  std::optional<std::string> authorization;  // the one Authorization value; none if 0 or 2+
  std::string accept;                        // every Accept value, ", "-joined
  std::string accept_encoding;               // every Accept-Encoding value, ", "-joined
  bool keep_alive = false;                   // whether the connection may carry another request
  bool http10 = false;                       // an HTTP/1.0 request (keep-alive must be said)
};

class RequestParser {
 public:
  /// The most bytes of a request's line and headers together.
  static constexpr std::size_t kMaxHeadBytes = 16 * 1024;
  /// The most bytes of a request's body.
  static constexpr std::size_t kMaxBodyBytes = 64 * 1024;

  enum class Status {
    kNeedMore,         // every byte was used; the request is not complete yet
    kRequestComplete,  // request() is ready; bytes after `used` are the next request's
    kBadRequest,       // not HTTP/1.x (400)
    kHeadTooLarge,     // line and headers beyond kMaxHeadBytes (431)
    kBodyTooLarge,     // body beyond kMaxBodyBytes (413)
  };
  struct Result {
    std::size_t used = 0;  // bytes of the input that belong to this request
    Status status = Status::kNeedMore;
  };

  RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  /// Parses `size` more bytes of the request. After kRequestComplete or an error,
  /// reset() before feeding again. Never throws: out of memory for the
  /// kept header values is a kHeadTooLarge.
  Result feed(const char* data, std::size_t size) noexcept;
  /// The request, after kRequestComplete.
  [[nodiscard]] const HttpRequest& request() const noexcept { return request_; }
  /// Whether any byte of the current request was fed.
  [[nodiscard]] bool started() const noexcept { return started_; }
  /// Forgets the request, for the next one on the connection.
  void reset() noexcept;

 private:
  /// The header whose value is being read.
  enum class Field { kOther, kAuthorization, kAccept, kAcceptEncoding };

  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, std::size_t n);
  static int on_header_field(http_parser* p, const char* at, std::size_t n);
  static int on_header_value(http_parser* p, const char* at, std::size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, std::size_t n);
  static int on_message_complete(http_parser* p);
  static RequestParser& self(http_parser* p) noexcept {
    return *static_cast<RequestParser*>(p->data);
  }
  // Counts `n` more head bytes; false past the limit.
  bool count_head(std::size_t n) noexcept;
  // The field name read so far is complete: which one it is.
  void end_field_name() noexcept;

  http_parser parser_{};              // http-parser's state
  http_parser_settings settings_{};   // the callbacks above
  HttpRequest request_;               // the request being read
  bool started_ = false;              // a byte of it was fed
  bool complete_ = false;             // on_message_complete ran
  bool head_too_large_ = false;       // a callback stopped the parser for the head's size
  bool body_too_large_ = false;       // ... for the body's
  std::size_t head_bytes_ = 0;        // URL, field and value bytes so far
  std::size_t body_bytes_ = 0;        // body bytes so far
  std::string field_;                 // the current field name, lower-cased (up to 32 chars)
  bool in_value_ = false;             // the last callback was a header value
  Field field_kind_ = Field::kOther;  // what the current value belongs to
  int authorizations_ = 0;            // Authorization headers seen
};

}  // namespace spindle::detail
