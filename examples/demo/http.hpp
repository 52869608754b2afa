// examples/demo/http.hpp — HTTP/1.1 messages for spindle-demo, parsed by Debian's http-parser.
//
//   demo::http::Request         one parsed request: method, target, path, query, keep-alive
//   demo::http::RequestParser   the server's side: feeds a connection's bytes to http-parser
//                               and queues every complete request (pipelining works); says
//                               which part of the next request it waits for (phase())
//   demo::http::Response        status, body and extra headers of an answer
//   demo::http::serialize()     a Response as the bytes to write
//   demo::http::ResponseParser  the load generator's side: one response at a time
//   demo::http::query_value()   the value of `key` in a query string (the routes' `?ms=`)
//
// Example (a connection's read loop, simplified):
//   demo::http::RequestParser parser;
//   bool ok = parser.feed(buffer, n);              // false once the stream is malformed
//   while (auto request = parser.pop()) answer(*request);
//   if (!ok) send(serialize({.status = parser.error_status(), .body = parser.error_text()},
//                           {.keep_alive = false}));
//
// Every decision about the protocol — the request line, headers, Content-Length and
// chunked bodies, HTTP/1.0 vs 1.1 keep-alive rules, where one pipelined request ends and
// the next begins — is http-parser's (nodejs/http-parser 2.9, libhttp-parser-dev,
// <http_parser.h>); the classes here only collect what its callbacks report and map its
// errors to status codes. Limits: the target is capped at 8 KiB (414), a request body at
// 1 MiB (413; bodies are counted, never stored), headers at http-parser's 80 KiB (400).
//
// Thread safety: plain objects, used by one task at a time. The parsers hold a pointer to
// themselves inside http-parser's state, so they can be neither copied nor moved.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace demo::http {

/// One request, as http-parser read it.
struct Request {
  http_method method = HTTP_GET;  ///< the request method
  std::string target;             ///< the request target as sent ("/big-loop?ms=5")
  std::string path;               ///< its path ("/big-loop"); "/" when it had none
  std::string query;              ///< its query string without '?' ("ms=5"), or empty
  bool keep_alive = true;         ///< http_should_keep_alive(): more requests may follow
  bool bad_target = false;        ///< http_parser_parse_url() rejected the target (answer 400)
  unsigned short http_minor = 1;  ///< 1 for HTTP/1.1, 0 for HTTP/1.0

  /// The method's name ("GET").
  [[nodiscard]] std::string_view method_name() const { return http_method_str(method); }
};

/// Parses the requests of one connection, in order. Not copyable or movable.
class RequestParser {
 public:
  static constexpr std::size_t kMaxTarget = 8 * 1024;   ///< longer targets: 414
  static constexpr std::size_t kMaxBody = 1024 * 1024;  ///< longer bodies: 413

  /// Which part of a request the parser waits for (the server times each part).
  enum class Phase {
    kBetween,  ///< no request in progress: the last one ended (or none began yet)
    kHead,     ///< a request began; its request line and headers are not complete
    kBody,     ///< a request's head is complete; its body (Content-Length or chunked) is not
  };

  RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  /// Parses the next `size` bytes of the connection; each request they complete is queued
  /// for pop(). Returns false once the stream is malformed (see error_status()); requests
  /// completed before the error stay queued and should be answered first. Bytes after an
  /// Upgrade request are ignored (that request is marked !keep_alive). Never throws
  /// except std::bad_alloc.
  bool feed(const char* data, std::size_t size);

  /// The oldest complete request not yet taken, or nullopt.
  std::optional<Request> pop();

  /// Where the parser is in the request being read, after the bytes fed so far.
  [[nodiscard]] Phase phase() const noexcept { return phase_; }
  /// How many requests have begun so far (the first byte of each, CR/LF between requests
  /// aside): tells one request's head from the next one's.
  [[nodiscard]] std::uint64_t requests_begun() const noexcept { return begun_; }

  /// True once feed() returned false.
  [[nodiscard]] bool failed() const noexcept { return error_status_ != 0; }
  /// The status to answer a malformed stream with: 400, 413 or 414 (0 while none).
  [[nodiscard]] int error_status() const noexcept { return error_status_; }
  /// Why, in one line (http-parser's error name and description).
  [[nodiscard]] const std::string& error_text() const noexcept { return error_text_; }

 private:
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, std::size_t length);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, std::size_t length);
  static int on_message_complete(http_parser* p);

  http_parser parser_{};             // http-parser's state; parser_.data points at this
  http_parser_settings settings_{};  // the callbacks above
  std::string target_;               // the target of the request being read
  std::size_t body_bytes_ = 0;       // body bytes of the request being read
  std::deque<Request> ready_;        // complete requests, oldest first
  Phase phase_ = Phase::kBetween;    // which part of a request the parser waits for
  std::uint64_t begun_ = 0;          // requests begun (on_message_begin calls)
  bool upgraded_ = false;            // an Upgrade/CONNECT request ended the HTTP stream
  int error_status_ = 0;             // 0, or the status to answer a malformed stream with
  std::string error_text_;           // why the stream is malformed
};

/// An answer. The body is plain text.
struct Response {
  int status = 200;                                          ///< e.g. 200, 404
  std::string body;                                          ///< text/plain; charset=utf-8
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers, e.g. Allow
};

/// How to frame a Response for the request it answers.
struct Framing {
  bool keep_alive = true;         ///< false: "Connection: close" (the server then closes)
  bool head = false;              ///< a HEAD request: headers only
  unsigned short http_minor = 1;  ///< HTTP/1.0 clients get "Connection: keep-alive" spelled out
};

/// The status line, headers (Content-Type, Content-Length, Connection, Server) and body.
std::string serialize(const Response& response, const Framing& framing);

/// "OK", "Not Found", ... for the statuses the demo uses; "Unknown" otherwise.
std::string_view reason_phrase(int status) noexcept;

/// Reads one response at a time from a client connection (the load generator's side).
/// Not copyable or movable.
class ResponseParser {
 public:
  static constexpr std::size_t kMaxBody = 64 * 1024;  ///< longer bodies are a parse error

  ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  /// Starts over for the next response on the same connection.
  void reset();
  /// Parses up to `size` bytes and returns how many belong to the current response: when
  /// it completes inside them, the rest belongs to the next one (pipelined answers). Sets
  /// failed() on malformed input.
  std::size_t feed(const char* data, std::size_t size);
  /// Tells the parser the server closed the connection (ends a body delimited by EOF).
  void feed_eof();

  [[nodiscard]] bool complete() const noexcept { return complete_; }
  [[nodiscard]] bool failed() const noexcept { return !error_.empty(); }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  /// The status code (valid once complete()).
  [[nodiscard]] int status() const noexcept { return status_; }
  /// The body (valid once complete()).
  [[nodiscard]] const std::string& body() const noexcept { return body_; }
  /// Whether the server keeps the connection open after this response.
  [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_; }

 private:
  static int on_body(http_parser* p, const char* at, std::size_t length);
  static int on_message_complete(http_parser* p);

  http_parser parser_{};             // http-parser's state; parser_.data points at this
  http_parser_settings settings_{};  // the callbacks above
  std::string body_;                 // the body read so far
  int status_ = 0;                   // the status code, once complete
  bool keep_alive_ = false;          // http_should_keep_alive() at completion
  bool complete_ = false;            // the response is complete
  std::string error_;                // why the response is malformed, or empty
};

/// The value of the first `key=value` pair in `query` (pairs separated by '&'), or
/// nullopt. Values are returned as sent (the demo's keys take plain numbers).
std::optional<std::string_view> query_value(std::string_view query, std::string_view key);

}  // namespace demo::http
