// examples/demo/http.cpp — the http-parser glue of spindle-demo (see http.hpp).
//
// http-parser is a push parser: http_parser_execute() walks the bytes it is given and
// calls back at each event (a message begins, a piece of the target, a piece of the body,
// the message is complete). Callbacks find their C++ object through parser->data and
// return non-zero to stop the parser (which then reports HPE_CB_<callback>); the limits
// below use that. The parser keeps its state between calls, so a request split over many
// reads, or many requests in one read (pipelining), need nothing special here.
#include "http.hpp"

#include <string>

namespace demo::http {

namespace {

// "HPE_INVALID_METHOD: invalid HTTP method" for the parser's current error.
std::string describe(const http_parser& parser) {
  const auto err = static_cast<http_errno>(parser.http_errno);
  return std::string(http_errno_name(err)) + ": " + http_errno_description(err);
}

// The text of one parsed URL field, or nullopt when the URL has none.
std::optional<std::string_view> url_field(const std::string& url, const http_parser_url& u,
                                          http_parser_url_fields field) {
  if ((u.field_set & (1U << field)) == 0) return std::nullopt;
  return std::string_view(url).substr(u.field_data[field].off, u.field_data[field].len);
}

}  // namespace

// ---- RequestParser ------------------------------------------------------------------

RequestParser::RequestParser() {
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &RequestParser::on_message_begin;
  settings_.on_url = &RequestParser::on_url;
  settings_.on_headers_complete = &RequestParser::on_headers_complete;
  settings_.on_body = &RequestParser::on_body;
  settings_.on_message_complete = &RequestParser::on_message_complete;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

bool RequestParser::feed(const char* data, std::size_t size) {
  if (failed()) return false;
  if (upgraded_) return true;  // the rest is another protocol; the connection is closing
  http_parser_execute(&parser_, &settings_, data, size);
  if (parser_.upgrade != 0) {
    upgraded_ = true;  // on_message_complete marked that request !keep_alive
    return true;
  }
  if (static_cast<http_errno>(parser_.http_errno) != HPE_OK) {
    if (error_status_ == 0) {  // else a callback already chose 413 or 414
      error_status_ = 400;
      error_text_ = describe(parser_);
    }
    return false;
  }
  return true;
}

std::optional<Request> RequestParser::pop() {
  if (ready_.empty()) return std::nullopt;
  Request r = std::move(ready_.front());
  ready_.pop_front();
  return r;
}

int RequestParser::on_message_begin(http_parser* p) {
  auto* self = static_cast<RequestParser*>(p->data);
  self->target_.clear();
  self->body_bytes_ = 0;
  self->phase_ = Phase::kHead;
  ++self->begun_;
  return 0;
}

int RequestParser::on_url(http_parser* p, const char* at, std::size_t length) {
  auto* self = static_cast<RequestParser*>(p->data);
  if (self->target_.size() + length > kMaxTarget) {
    self->error_status_ = 414;
    self->error_text_ =
        "the request target is longer than " + std::to_string(kMaxTarget) + " bytes";
    return 1;
  }
  self->target_.append(at, length);
  return 0;
}

int RequestParser::on_headers_complete(http_parser* p) {
  auto* self = static_cast<RequestParser*>(p->data);
  // A request without a body completes right after this, in the same feed().
  self->phase_ = Phase::kBody;
  return 0;  // 0: a body follows if the headers say so (1 would mean "no body")
}

int RequestParser::on_body(http_parser* p, const char* /*at*/, std::size_t length) {
  auto* self = static_cast<RequestParser*>(p->data);
  self->body_bytes_ += length;
  if (self->body_bytes_ > kMaxBody) {
    self->error_status_ = 413;
    self->error_text_ = "the request body is longer than " + std::to_string(kMaxBody) + " bytes";
    return 1;
  }
  return 0;  // bodies are not used by any route: counted, not kept
}

int RequestParser::on_message_complete(http_parser* p) {
  auto* self = static_cast<RequestParser*>(p->data);
  self->phase_ = Phase::kBetween;
  Request r;
  r.method = static_cast<http_method>(p->method);
  r.http_minor = p->http_minor;
  // After an Upgrade (or CONNECT) the bytes that follow are not HTTP: answer, then close.
  r.keep_alive = http_should_keep_alive(p) != 0 && p->upgrade == 0;
  r.target = std::move(self->target_);
  self->target_.clear();

  http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(r.target.data(), r.target.size(), r.method == HTTP_CONNECT ? 1 : 0,
                            &u) != 0) {
    r.bad_target = true;
  } else {
    r.path = std::string(url_field(r.target, u, UF_PATH).value_or("/"));
    r.query = std::string(url_field(r.target, u, UF_QUERY).value_or(""));
  }
  self->ready_.push_back(std::move(r));
  return 0;
}

// ---- responses ------------------------------------------------------------------------

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string serialize(const Response& response, const Framing& framing) {
  std::string out;
  out.reserve(192 + response.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\nServer: spindle-demo\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ";
  out += std::to_string(response.body.size());
  out += "\r\n";
  if (!framing.keep_alive) {
    out += "Connection: close\r\n";
  } else if (framing.http_minor == 0) {
    out += "Connection: keep-alive\r\n";  // HTTP/1.0 closes unless told otherwise
  }
  for (const auto& [name, value] : response.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += "\r\n";
  if (!framing.head) out += response.body;
  return out;
}

// ---- ResponseParser -----------------------------------------------------------------

ResponseParser::ResponseParser() {
  http_parser_settings_init(&settings_);
  settings_.on_body = &ResponseParser::on_body;
  settings_.on_message_complete = &ResponseParser::on_message_complete;
  reset();
}

void ResponseParser::reset() {
  http_parser_init(&parser_, HTTP_RESPONSE);
  parser_.data = this;
  body_.clear();
  status_ = 0;
  keep_alive_ = false;
  complete_ = false;
  error_.clear();
}

std::size_t ResponseParser::feed(const char* data, std::size_t size) {
  if (complete_ || failed()) return 0;
  const std::size_t used = http_parser_execute(&parser_, &settings_, data, size);
  const auto err = static_cast<http_errno>(parser_.http_errno);
  // HPE_PAUSED: on_message_complete paused the parser right after this response's last
  // byte, so `used` is exactly this response's share of the bytes.
  if (err != HPE_OK && err != HPE_PAUSED && error_.empty()) error_ = describe(parser_);
  return used;
}

void ResponseParser::feed_eof() {
  if (complete_ || failed()) return;
  http_parser_execute(&parser_, &settings_, nullptr, 0);  // completes an EOF-delimited body
  if (complete_) return;
  const auto err = static_cast<http_errno>(parser_.http_errno);
  error_ = err != HPE_OK
               ? describe(parser_)
               : std::string("the server closed the connection before the response ended");
}

int ResponseParser::on_body(http_parser* p, const char* at, std::size_t length) {
  auto* self = static_cast<ResponseParser*>(p->data);
  if (self->body_.size() + length > kMaxBody) {
    self->error_ = "the response body is longer than " + std::to_string(kMaxBody) + " bytes";
    return 1;
  }
  self->body_.append(at, length);
  return 0;
}

int ResponseParser::on_message_complete(http_parser* p) {
  auto* self = static_cast<ResponseParser*>(p->data);
  self->status_ = static_cast<int>(p->status_code);
  self->keep_alive_ = http_should_keep_alive(p) != 0;
  self->complete_ = true;
  http_parser_pause(p, 1);  // stop here: what follows belongs to the next response
  return 0;
}

// ---- query strings --------------------------------------------------------------------

std::optional<std::string_view> query_value(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace demo::http
