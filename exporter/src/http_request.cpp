#include "http_request.hpp"

#include <exception>

namespace spindle::detail {

namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Field names kept in full; longer ones are none the exporter reads.
constexpr std::size_t kMaxFieldName = 32;

}  // namespace

RequestParser::RequestParser() {
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &on_message_begin;
  settings_.on_url = &on_url;
  settings_.on_header_field = &on_header_field;
  settings_.on_header_value = &on_header_value;
  settings_.on_headers_complete = &on_headers_complete;
  settings_.on_body = &on_body;
  settings_.on_message_complete = &on_message_complete;
  field_.reserve(kMaxFieldName + 1);  // on_header_field never allocates
  reset();
}

void RequestParser::reset() noexcept {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  request_.method = HTTP_GET;
  request_.target.clear();
  request_.authorization.reset();
  request_.accept.clear();
  request_.accept_encoding.clear();
  request_.keep_alive = false;
  request_.http10 = false;
  started_ = false;
  complete_ = false;
  head_too_large_ = false;
  body_too_large_ = false;
  head_bytes_ = 0;
  body_bytes_ = 0;
  field_.clear();
  in_value_ = false;
  field_kind_ = Field::kOther;
  authorizations_ = 0;
}

RequestParser::Result RequestParser::feed(const char* data, std::size_t size) noexcept {
  if (size == 0) return {0, Status::kNeedMore};
  started_ = true;
  const std::size_t used = http_parser_execute(&parser_, &settings_, data, size);
  // on_message_complete pauses the parser (HPE_PAUSED) right after the
  // request's last byte.
  if (complete_) return {used, Status::kRequestComplete};
  if (head_too_large_) return {used, Status::kHeadTooLarge};
  if (body_too_large_) return {used, Status::kBodyTooLarge};
  const auto err = static_cast<http_errno>(parser_.http_errno);
  if (err == HPE_HEADER_OVERFLOW) return {used, Status::kHeadTooLarge};
  if (err != HPE_OK) return {used, Status::kBadRequest};
  return {used, Status::kNeedMore};
}

bool RequestParser::count_head(std::size_t n) noexcept {
  head_bytes_ += n;
  if (head_bytes_ <= kMaxHeadBytes) return true;
  head_too_large_ = true;
  return false;
}

void RequestParser::end_field_name() noexcept {
  if (field_ == "authorization") {
    field_kind_ = Field::kAuthorization;
  } else if (field_ == "accept") {
    field_kind_ = Field::kAccept;
  } else if (field_ == "accept-encoding") {
    field_kind_ = Field::kAcceptEncoding;
  } else {
    field_kind_ = Field::kOther;
  }
}

int RequestParser::on_message_begin(http_parser* /*p*/) { return 0; }

int RequestParser::on_url(http_parser* p, const char* at, std::size_t n) {
  RequestParser& s = self(p);
  if (!s.count_head(n)) return 1;
  try {
    s.request_.target.append(at, n);
  } catch (const std::exception&) {
    s.head_too_large_ = true;
    return 1;
  }
  return 0;
}

int RequestParser::on_header_field(http_parser* p, const char* at, std::size_t n) {
  RequestParser& s = self(p);
  if (!s.count_head(n)) return 1;
  if (s.in_value_ || s.field_.empty()) {  // a new field begins
    // Its ": " and CRLF count too: many small headers are a large head.
    if (!s.count_head(4)) return 1;
    s.in_value_ = false;
    s.field_.clear();
  }
  for (std::size_t i = 0; i < n && s.field_.size() <= kMaxFieldName; ++i) {
    s.field_.push_back(lower(at[i]));  // within the reserved capacity: no allocation
  }
  return 0;
}

int RequestParser::on_header_value(http_parser* p, const char* at, std::size_t n) {
  RequestParser& s = self(p);
  if (!s.count_head(n)) return 1;
  try {
    if (!s.in_value_) {  // the first piece of this field's value
      s.in_value_ = true;
      s.end_field_name();
      if (s.field_kind_ == Field::kAuthorization) {
        if (++s.authorizations_ == 1) s.request_.authorization.emplace();
      } else if (s.field_kind_ == Field::kAccept && !s.request_.accept.empty()) {
        s.request_.accept += ", ";
      } else if (s.field_kind_ == Field::kAcceptEncoding && !s.request_.accept_encoding.empty()) {
        s.request_.accept_encoding += ", ";
      }
    }
    if (s.field_kind_ == Field::kAuthorization && s.authorizations_ == 1) {
      s.request_.authorization->append(at, n);
    } else if (s.field_kind_ == Field::kAccept) {
      s.request_.accept.append(at, n);
    } else if (s.field_kind_ == Field::kAcceptEncoding) {
      s.request_.accept_encoding.append(at, n);
    }
  } catch (const std::exception&) {
    s.head_too_large_ = true;
    return 1;
  }
  return 0;
}

int RequestParser::on_headers_complete(http_parser* p) {
  RequestParser& s = self(p);
  // Two Authorization headers: neither is believed.
  if (s.authorizations_ > 1) s.request_.authorization.reset();
  return 0;
}

int RequestParser::on_body(http_parser* p, const char* /*at*/, std::size_t n) {
  RequestParser& s = self(p);
  s.body_bytes_ += n;
  if (s.body_bytes_ <= kMaxBodyBytes) return 0;
  s.body_too_large_ = true;
  return 1;
}

int RequestParser::on_message_complete(http_parser* p) {
  RequestParser& s = self(p);
  s.complete_ = true;
  s.request_.method = static_cast<http_method>(p->method);
  // An Upgrade or CONNECT request hands the connection to another
  // protocol, which the exporter does not speak: answer, then close.
  s.request_.keep_alive = http_should_keep_alive(p) != 0 && p->upgrade == 0;
  s.request_.http10 = p->http_major == 1 && p->http_minor == 0;
  http_parser_pause(p, 1);  // stop here: what follows belongs to the next request
  return 0;
}

}  // namespace spindle::detail
