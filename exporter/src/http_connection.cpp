#include "http_connection.hpp"

#include <algorithm>
#include <array>
#include <asio/buffer.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "content_negotiation.hpp"
#include "http_request.hpp"
#include "http_response.hpp"

namespace spindle::detail {

namespace {
constexpr std::string_view kNoTraceBody =
    "404 Not Found: no registered runtime has a flight recorder "
    "(Runtime::Builder::flight_recorder), or none has the name given in ?runtime=\n";
}  // namespace

namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;

// The first byte of a TLS connection: a handshake record (RFC 8446 §5.1).
constexpr unsigned char kTlsHandshakeRecord = 0x16;
// Lingering close: how long, and how much, is read and dropped.
constexpr std::chrono::milliseconds kLingerTime = 1000ms;
constexpr std::size_t kLingerBytes = 64 * 1024;
// Bytes read at once.
constexpr std::size_t kReadBuffer = 8 * 1024;

/// One connection over `Stream`: tcp::socket, or asio::ssl::stream<tcp::socket>.
template <class Stream>
class StreamConnection final : public Connection,
                               public std::enable_shared_from_this<StreamConnection<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

 public:
  template <class... Args>
  explicit StreamConnection(ConnectionHost& host, Args&&... stream_args)
      : host_(host), stream_(std::forward<Args>(stream_args)...), timer_(socket().get_executor()) {}

  void start() override {
    host_.enter_waiting(*this);
    arm(host_.settings().header_timeout);
    request_deadline_ = true;  // the first request's runs from now
    if constexpr (kTls) {
      state_ = State::kHandshake;
      peek_first_byte();
    } else {
      state_ = State::kReading;
      read_more();
    }
  }

  void close() noexcept override {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    timer_.cancel();
    asio::error_code ignored;
    socket().close(ignored);  // pending operations complete with operation_aborted
    body_.reset();
    host_.closed(*this);
  }

  void send_scrape(std::shared_ptr<const ScrapeBody> body, bool gzip) override {
    if (state_ != State::kResponding) return;  // closed meanwhile
    if (body == nullptr) {
      respond(closing_reply(500));
      return;
    }
    try {
      std::string headers = "Content-Type: ";
      headers += content_type(scrape_.format);
      headers += "\r\n";
      if (gzip) headers += "Content-Encoding: gzip\r\n";
      // The body depends on Accept too when protobuf may be served.
      headers += host_.settings().protobuf ? "Vary: Accept, Accept-Encoding\r\n"
                                           : "Vary: Accept-Encoding\r\n";
      head_.clear();
      append_head(head_, 200, host_.date(), headers, body->size, scrape_.keep_alive,
                  scrape_.http10);
    } catch (const std::exception&) {
      close();
      return;
    }
    keep_alive_ = scrape_.keep_alive;
    fixed_body_ = {};
    if (!scrape_.head_only) body_ = std::move(body);
    write();
  }

  [[nodiscard]] bool is_open() const noexcept override { return state_ != State::kClosed; }

 private:
  enum class State { kHandshake, kReading, kResponding, kLingering, kClosed };

  tcp::socket& socket() noexcept {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  std::shared_ptr<StreamConnection> self() { return this->shared_from_this(); }

  // Sets the one deadline: closing when `d` has passed, unless re-armed.
  void arm(std::chrono::milliseconds d) {
    const std::uint64_t generation = ++timer_generation_;
    timer_.expires_after(d);  // cancels the previous wait
    timer_.async_wait([self = self(), generation](const asio::error_code& ec) {
      // A wait that completed before it was re-armed is stale: the
      // generation tells.
      if (ec || generation != self->timer_generation_) return;
      self->close();
    });
  }

  // ---- TLS ----------------------------------------------------------------

  void peek_first_byte() {
    socket().async_receive(
        asio::buffer(peek_), tcp::socket::message_peek,
        [self = self()](const asio::error_code& ec, std::size_t n) {
          if (self->state_ == State::kClosed) return;
          if (ec || n == 0) {
            self->close();
            return;
          }
          if (static_cast<unsigned char>(self->peek_[0]) != kTlsHandshakeRecord) {
            self->plain_http_on_tls_port();
            return;
          }
          self->handshake();
        });
  }

  void handshake() {
    if constexpr (kTls) {
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = self()](const asio::error_code& ec) {
                                if (self->state_ == State::kClosed) return;
                                if (ec) {
                                  self->host_.tls_failed(ec.message());
                                  self->close();
                                  return;
                                }
                                self->state_ = State::kReading;
                                self->read_more();
                              });
    }
  }

  // A plain-text 400 on the bare socket, then close.
  void plain_http_on_tls_port() {
    host_.leave_waiting(*this);
    state_ = State::kResponding;
    arm(host_.settings().write_timeout);
    const Reply r = closing_reply(400);
    try {
      head_.clear();
      append_head(head_, r.status, host_.date(), r.headers, r.body.size(), false, false);
    } catch (const std::exception&) {
      close();
      return;
    }
    fixed_body_ = r.body;
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head_),
                                                       asio::buffer(fixed_body_)};
    asio::async_write(socket(), buffers, [self = self()](const asio::error_code& ec, std::size_t) {
      if (self->state_ == State::kClosed) return;
      if (ec) {
        self->close();
        return;
      }
      self->linger();
    });
  }

  // ---- reading --------------------------------------------------------------

  void read_more() {
    stream_.async_read_some(
        asio::buffer(buffer_.data() + end_, buffer_.size() - end_),
        [self = self()](const asio::error_code& ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const asio::error_code& ec, std::size_t n) {
    if (state_ == State::kClosed) return;
    if (ec) {  // the client closed (or the connection broke): nothing to answer
      close();
      return;
    }
    end_ += n;
    if (!request_deadline_) {  // the first byte of a request on a kept-alive connection
      arm(host_.settings().header_timeout);
      request_deadline_ = true;
    }
    consume();
  }

  // Parses what was read; answers a complete request or reads on.
  void consume() {
    while (begin_ < end_) {
      const RequestParser::Result r = parser_.feed(buffer_.data() + begin_, end_ - begin_);
      begin_ += r.used;
      if (r.status == RequestParser::Status::kNeedMore) break;
      if (r.status == RequestParser::Status::kRequestComplete) {
        if (begin_ == end_) begin_ = end_ = 0;
        on_request();
        return;
      }
      host_.leave_waiting(*this);
      respond(error_reply(r.status));
      return;
    }
    begin_ = end_ = 0;  // everything was parsed
    read_more();
  }

  void on_request() {
    host_.leave_waiting(*this);
    try {
      const ServerSettings& s = host_.settings();
      Reply reply =
          route(parser_.request(), s.path, s.auth ? &*s.auth : nullptr, s.trace_path, s.protobuf);
      if (reply.trace) {
        send_trace(reply);
        return;
      }
      if (reply.scrape) {
        state_ = State::kResponding;
        arm(s.write_timeout);
        scrape_ = std::move(reply);
        host_.want_scrape(self(), scrape_.format, scrape_.gzip);
        return;
      }
      respond(reply);
    } catch (const std::exception&) {
      close();  // out of memory for this request
    }
  }

  // ---- writing --------------------------------------------------------------

  // Answers a trace request: the JSON, written here on the server's thread
  // (it copies the workers' rings; it never blocks them), or 404.
  void send_trace(const Reply& reply) {
    std::optional<std::string> json = host_.trace(reply.trace_runtime);
    if (!json) {
      Reply none = reply;
      none.trace = false;
      none.status = 404;
      none.body = kNoTraceBody;
      none.headers = "Content-Type: text/plain; charset=utf-8\r\n";
      respond(none);
      return;
    }
    auto body = std::make_shared<ScrapeBody>();
    body->size = json->size();
    body->bytes = std::move(*json);
    state_ = State::kResponding;
    arm(host_.settings().write_timeout);
    head_.clear();
    append_head(head_, 200, host_.date(), "Content-Type: application/json\r\n", body->size,
                reply.keep_alive, reply.http10);
    keep_alive_ = reply.keep_alive;
    fixed_body_ = {};
    if (reply.head_only) {
      body_.reset();
    } else {
      body_ = std::move(body);
    }
    write();
  }

  // Writes a fixed reply.
  void respond(const Reply& reply) {
    state_ = State::kResponding;
    arm(host_.settings().write_timeout);
    try {
      head_.clear();
      append_head(head_, reply.status, host_.date(), reply.headers, reply.body.size(),
                  reply.keep_alive, reply.http10);
    } catch (const std::exception&) {
      close();
      return;
    }
    keep_alive_ = reply.keep_alive;
    fixed_body_ = reply.head_only ? std::string_view() : reply.body;
    body_.reset();
    write();
  }

  void write() {
    const std::array<asio::const_buffer, 2> buffers = {
        asio::buffer(head_),
        body_ ? asio::buffer(body_->bytes.data(), body_->size) : asio::buffer(fixed_body_)};
    asio::async_write(
        stream_, buffers,
        [self = self()](const asio::error_code& ec, std::size_t /*n*/) { self->on_written(ec); });
  }

  void on_written(const asio::error_code& ec) {
    if (state_ == State::kClosed) return;
    body_.reset();
    if (ec) {
      close();
      return;
    }
    if (!keep_alive_) {
      linger();
      return;
    }
    // Ready for the next request on this connection.
    parser_.reset();
    state_ = State::kReading;
    host_.enter_waiting(*this);
    if (begin_ < end_) {  // it is already (partly) here: pipelined
      arm(host_.settings().header_timeout);
      request_deadline_ = true;
      consume();
    } else {
      arm(host_.settings().idle_timeout);
      request_deadline_ = false;
      read_more();
    }
  }

  // ---- closing --------------------------------------------------------------

  void linger() {
    state_ = State::kLingering;
    host_.enter_waiting(*this);
    asio::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      close();
      return;
    }
    arm(std::min(kLingerTime, host_.settings().header_timeout));
    lingered_ = 0;
    drop_input();
  }

  void drop_input() {
    socket().async_read_some(asio::buffer(buffer_),
                             [self = self()](const asio::error_code& ec, std::size_t n) {
                               if (self->state_ == State::kClosed) return;
                               self->lingered_ += n;
                               if (ec || self->lingered_ > kLingerBytes) {
                                 self->close();  // the client closed too (or sends too much)
                                 return;
                               }
                               self->drop_input();
                             });
  }

  ConnectionHost& host_;                    // the server
  Stream stream_;                           // the socket (under TLS when kTls)
  asio::steady_timer timer_;                // the current state's deadline
  std::uint64_t timer_generation_ = 0;      // which arm() the pending wait belongs to
  State state_ = State::kReading;           // see the state table
  bool request_deadline_ = false;           // the current request's header deadline is armed
  RequestParser parser_;                    // the request being read
  std::array<char, kReadBuffer> buffer_{};  // bytes read; [begin_, end_) not parsed yet
  std::size_t begin_ = 0;                   // first byte not parsed
  std::size_t end_ = 0;                     // end of the bytes read
  std::array<char, 1> peek_{};              // TLS: the peeked first byte
  Reply scrape_;                            // the scrape being answered (flags)
  std::string head_;                        // the answer's status line and headers
  std::shared_ptr<const ScrapeBody> body_;  // a scrape body being written (shared)
  std::string_view fixed_body_;             // or a fixed reply's static body
  bool keep_alive_ = false;                 // the answer being written keeps the connection
  std::size_t lingered_ = 0;                // bytes dropped while lingering
};

}  // namespace

std::shared_ptr<Connection> make_connection(ConnectionHost& host, tcp::socket socket,
                                            asio::ssl::context* tls) {
  if (tls != nullptr) {
    return std::make_shared<StreamConnection<asio::ssl::stream<tcp::socket>>>(
        host, std::move(socket), *tls);
  }
  return std::make_shared<StreamConnection<tcp::socket>>(host, std::move(socket));
}

}  // namespace spindle::detail
