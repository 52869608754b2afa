#include "http_server.hpp"

#include <pthread.h>

#include <array>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <list>
#include <thread>
#include <utility>
#include <vector>

#include "gzip.hpp"
#include "http_response.hpp"
#include "spindle/exporter/errors.hpp"

namespace spindle::detail {

namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;

// How long accepting pauses after accept() failed for want of resources.
constexpr std::chrono::milliseconds kAcceptPause = 100ms;
// The least time between two log lines about the same kind of event.
constexpr std::chrono::seconds kLogInterval = 10s;

/// The host and port of a validated bind address.
struct HostPort {
  std::string host;  // "" for every interface
  std::string port;
};

HostPort split(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    const std::size_t close = address.find(']');
    return {address.substr(1, close - 1), address.substr(close + 2)};
  }
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos) return {"", address};
  return {address.substr(0, colon), address.substr(colon + 1)};
}

[[noreturn]] void cannot_listen(const std::string& address, std::string_view reason,
                                const asio::error_code& ec) {
  throw ExporterError("spindle exporter: cannot listen on " + address + ": " + std::string(reason) +
                      " (" + ec.message() + ")");
}

std::string_view reason_for(const asio::error_code& ec) {
  if (ec == asio::error::address_in_use) {
    return "the port is already in use (another process or exporter listens on it)";
  }
  if (ec.category() == asio::system_category() && ec.value() == EADDRNOTAVAIL)
    return "the address is not one of this machine's";
  if (ec == asio::error::access_denied || ec == asio::error::no_permission) {
    return "permission denied (ports below 1024 need privileges)";
  }
  if (ec == asio::error::address_family_not_supported) {
    return "this machine has no network of that address family (IPv6 disabled?)";
  }
  return "the socket could not be bound";
}

// accept() failed for want of descriptors or memory: retrying at once
// would find the same.
bool out_of_resources(const asio::error_code& ec) {
  return ec == asio::error::no_descriptors ||
         (ec.category() == asio::system_category() && ec.value() == ENFILE) ||
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

void log_to_stderr(std::string_view line) {
  std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace

namespace {

/// A scrape waiting for its body.
struct PendingScrape {
  std::shared_ptr<Connection> connection;     // who asked (kept alive until answered)
  ScrapeFormat format = ScrapeFormat::kText;  // the body it negotiated
  bool gzip = false;                          // the client accepts gzip
};

}  // namespace

class HttpServer::Impl final : public ConnectionHost {
 public:
  explicit Impl(HttpServerOptions options)
      : options_(with_settings_checked(std::move(options))),
        log_(options_.log ? options_.log : LogSink(&log_to_stderr)),
        cap_log_(log_, kLogInterval),
        accept_log_(log_, kLogInterval),
        tls_log_(log_, kLogInterval) {
    listen();
    accept();
    thread_ = std::thread([this] { run(); });
  }

  // Protobuf is negotiated only when there is a writer for it.
  static HttpServerOptions with_settings_checked(HttpServerOptions o) {
    if (!o.write_protobuf) o.settings.protobuf = false;
    return o;
  }

  ~Impl() {
    asio::post(io_, [this] { stop(); });
    thread_.join();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  // ---- ConnectionHost ----------------------------------------------------------

  [[nodiscard]] const ServerSettings& settings() const noexcept override {
    return options_.settings;
  }

  [[nodiscard]] std::string_view date() override { return date_.now(); }

  void enter_waiting(Connection& c) noexcept override {
    if (c.waiting) waiting_.erase(c.waiting_pos);  // waits anew, from now
    // std::list::insert allocates; a connection that cannot be listed is
    // simply not one that can be closed for room.
    try {
      c.waiting_pos = waiting_.insert(waiting_.end(), &c);
      c.waiting = true;
    } catch (const std::exception&) {
      c.waiting = false;
    }
  }

  void leave_waiting(Connection& c) noexcept override {
    if (!c.waiting) return;
    waiting_.erase(c.waiting_pos);
    c.waiting = false;
  }

  void closed(Connection& c) noexcept override {
    leave_waiting(c);
    all_.erase(c.all_pos);
  }

  std::optional<std::string> trace(std::string_view runtime) override {
    if (!options_.write_trace) return std::nullopt;
    return options_.write_trace(runtime);
  }

  void want_scrape(std::shared_ptr<Connection> c, ScrapeFormat format, bool gzip) override {
    pending_.push_back({std::move(c), format, gzip});
    if (flush_posted_) return;
    asio::post(io_, [this] { flush(); });
    flush_posted_ = true;
  }

  void tls_failed(std::string_view why) noexcept override {
    tls_log_.report("spindle exporter: a TLS handshake on " + options_.bind_address +
                    " failed: " + std::string(why));
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), "spindle-metrics");
    for (;;) {
      try {
        io_.run();
        return;  // stopped: nothing left to do
      } catch (const std::exception& e) {
        // A handler ran out of memory: that connection's deadline closes it.
        log_(std::string("spindle exporter: ") + e.what());
      }
    }
  }

  void listen() {
    const HostPort hp = split(options_.bind_address);
    tcp::endpoint endpoint;
    asio::error_code ec;
    if (hp.host.empty()) {
      endpoint = tcp::endpoint(tcp::v4(), static_cast<std::uint16_t>(std::stoul(hp.port)));
    } else if (const asio::ip::address a = asio::ip::make_address(hp.host, ec); !ec) {
      endpoint = tcp::endpoint(a, static_cast<std::uint16_t>(std::stoul(hp.port)));
    } else {
      tcp::resolver resolver(io_);
      const auto results = resolver.resolve(hp.host, hp.port, tcp::resolver::passive, ec);
      if (ec || results.empty()) {
        cannot_listen(options_.bind_address, "the host name does not resolve", ec);
      }
      endpoint = results.begin()->endpoint();
      for (const auto& r : results) {  // IPv4 first, as "localhost" is usually meant
        if (r.endpoint().address().is_v4()) {
          endpoint = r.endpoint();
          break;
        }
      }
    }
    acceptor_.open(endpoint.protocol(), ec);
    if (ec) cannot_listen(options_.bind_address, reason_for(ec), ec);
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor_.bind(endpoint, ec);
    if (ec) cannot_listen(options_.bind_address, reason_for(ec), ec);
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) cannot_listen(options_.bind_address, reason_for(ec), ec);
    port_ = acceptor_.local_endpoint(ec).port();
  }

  void accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
      on_accept(ec, std::move(socket));
    });
  }

  void on_accept(const asio::error_code& ec, tcp::socket socket) {
    if (stopping_ || ec == asio::error::operation_aborted) return;
    if (ec) {
      if (ec == asio::error::connection_aborted || ec == asio::error::try_again ||
          ec == asio::error::interrupted) {
        accept();  // that client gave up; the next one may not have
        return;
      }
      accept_log_.report("spindle exporter: cannot accept connections on " + options_.bind_address +
                         ": " + ec.message() + "; pausing for " +
                         std::to_string(kAcceptPause.count()) + " ms" +
                         (out_of_resources(ec) ? " (raise the file descriptor limit, or lower "
                                                 "Options::max_connections)"
                                               : ""));
      accept_pause_.expires_after(kAcceptPause);
      accept_pause_.async_wait([this](const asio::error_code& e) {
        if (!e && !stopping_) accept();
      });
      return;
    }
    if (all_.size() >= options_.settings.max_connections && !make_room()) {
      refuse(socket);
      accept();
      return;
    }
    try {
      asio::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::shared_ptr<Connection> c = make_connection(*this, std::move(socket), options_.tls.get());
      c->all_pos = all_.insert(all_.end(), c.get());
      c->start();
    } catch (const std::exception& e) {
      log_(std::string("spindle exporter: dropped a new connection: ") + e.what());
    }
    accept();
  }

  // At the cap: closes the connection that has waited longest for its
  // client. False when every open connection is being answered.
  bool make_room() {
    ++rejected_;
    const std::string cap = std::to_string(options_.settings.max_connections);
    if (waiting_.empty()) {
      cap_log_.report("spindle exporter: max_connections (" + cap + ") connections are open on " +
                      options_.bind_address + ", all being answered: refused a new connection");
      return false;
    }
    cap_log_.report("spindle exporter: max_connections (" + cap + ") connections are open on " +
                    options_.bind_address +
                    ": closed the one that had waited longest for its client to make room");
    waiting_.front()->close();
    return true;
  }

  void refuse(tcp::socket& socket) {
    asio::error_code ignored;
    if (!options_.tls) {
      // Best effort: whatever fits in the socket's buffer now.
      static const std::string kRefusal = [] {
        const Reply r = closing_reply(503);
        std::string s;
        append_head(s, r.status, http_date(std::time(nullptr)), r.headers, r.body.size(), false,
                    false);
        s += r.body;
        return s;
      }();
      socket.non_blocking(true, ignored);
      socket.send(asio::buffer(kRefusal), 0, ignored);
      socket.shutdown(tcp::socket::shutdown_both, ignored);
    }
    socket.close(ignored);
  }

  // Writes one body per format and encoding for every scrape that asked
  // since the last flush.
  void flush() {
    flush_posted_ = false;
    std::vector<PendingScrape> batch;
    batch.swap(pending_);
    // The bodies this batch needs, by format and encoding (0 identity, 1 gzip).
    std::array<std::array<bool, 2>, 2> wanted{};
    bool any = false;
    for (const PendingScrape& p : batch) {
      if (!p.connection->is_open()) continue;
      wanted[format_index(p.format)][p.gzip ? 1 : 0] = true;
      any = true;
    }
    if (!any) return;
    const ExporterStats stats{.rejected_connections = rejected_,
                              .scrapes_identity = scrapes_identity_,
                              .scrapes_gzip = scrapes_gzip_};
    // Null: not needed, or it failed (identity: 500; gzip: the identity body).
    std::array<std::array<std::shared_ptr<const ScrapeBody>, 2>, 2> bodies{};
    constexpr std::size_t kTextIndex = 0;
    constexpr std::size_t kProtobufIndex = 1;
    static_assert(kTextIndex == static_cast<std::size_t>(ScrapeFormat::kText));
    static_assert(kProtobufIndex == static_cast<std::size_t>(ScrapeFormat::kProtobuf));
    if (wanted[kTextIndex][0]) {
      bodies[kTextIndex][0] = write_text(stats);
      if (bodies[kTextIndex][0] && wanted[kTextIndex][1]) {
        bodies[kTextIndex][1] = compress(*bodies[kTextIndex][0], gzip_);
      }
    } else if (wanted[kTextIndex][1]) {
      bodies[kTextIndex][1] = write_gzip(stats);  // null: failed, and text is null too: 500
    }
    if (wanted[kProtobufIndex][0] || wanted[kProtobufIndex][1]) {
      // The protobuf is written whole, then compressed (it is ~2.5x smaller
      // than the text, and protobuf serializes a message at a time).
      bodies[kProtobufIndex][0] = write_protobuf(stats);
      if (bodies[kProtobufIndex][0] && wanted[kProtobufIndex][1]) {
        bodies[kProtobufIndex][1] = compress(*bodies[kProtobufIndex][0], protobuf_gzip_);
      }
    }
    for (const PendingScrape& p : batch) {
      try {
        if (!p.connection->is_open()) continue;
        const auto& [plain, zipped] = bodies[format_index(p.format)];
        if (p.gzip && zipped) {
          p.connection->send_scrape(zipped, true);
          ++scrapes_gzip_;
        } else {
          p.connection->send_scrape(plain, false);
          if (plain) ++scrapes_identity_;
        }
      } catch (const std::exception&) {
        p.connection->close();
      }
    }
  }

  static std::size_t format_index(ScrapeFormat f) noexcept { return static_cast<std::size_t>(f); }

  // The whole text in text_'s body; null when it cannot be written.
  std::shared_ptr<const ScrapeBody> write_text(const ExporterStats& stats) noexcept {
    try {
      ScrapeBody& t = reusable(text_);
      t.size = options_.write_metrics(t.bytes, nullptr, stats);
      // After a large drop in monitors, give the room back (once).
      if (t.bytes.size() > 4 * t.size + (std::size_t{1} << 20)) {
        t.bytes.resize(t.size);
        t.bytes.shrink_to_fit();
      }
      return text_;
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // The protobuf exposition whole in protobuf_'s body; null when it cannot be written.
  std::shared_ptr<const ScrapeBody> write_protobuf(const ExporterStats& stats) noexcept {
    try {
      ScrapeBody& b = reusable(protobuf_);
      b.size = options_.write_protobuf(b.bytes, stats);
      if (b.bytes.size() > 4 * b.size + (std::size_t{1} << 20)) {
        b.bytes.resize(b.size);
        b.bytes.shrink_to_fit();
      }
      return protobuf_;
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // `body` gzip-compressed in `slot`'s body; null when it cannot be.
  std::shared_ptr<const ScrapeBody> compress(const ScrapeBody& body,
                                             std::shared_ptr<ScrapeBody>& slot) noexcept {
    try {
      ScrapeBody& z = reusable(slot);
      z.size = gzip_compress_over(std::string_view(body.bytes.data(), body.size), z.bytes);
      return slot;
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // The text compressed as it is written, a piece at a time, into gzip_'s
  // body (the whole text never exists); null when it cannot be.
  std::shared_ptr<const ScrapeBody> write_gzip(const ExporterStats& stats) noexcept {
    try {
      ScrapeBody& z = reusable(gzip_);
      GzipStream stream(z.bytes);
      const ChunkSink sink = [&stream](std::string_view chunk) { stream.write(chunk); };
      options_.write_metrics(scratch_, &sink, stats);
      z.size = stream.finish();
      return gzip_;
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // `slot`'s body when no answer still holds it (written over: its bytes
  // keep their size); a new one otherwise.
  static ScrapeBody& reusable(std::shared_ptr<ScrapeBody>& slot) {
    if (slot == nullptr || slot.use_count() > 1) slot = std::make_shared<ScrapeBody>();
    slot->size = 0;
    return *slot;
  }

  void stop() {
    stopping_ = true;
    asio::error_code ignored;
    acceptor_.close(ignored);
    accept_pause_.cancel();
    // Close first, then drop the pending scrapes: a connection waiting for
    // a body is owned only by that list.
    const std::vector<Connection*> open(all_.begin(), all_.end());
    for (Connection* c : open) c->close();
    pending_.clear();
  }

  HttpServerOptions options_;                  // settings, TLS context, the body writer
  LogSink log_;                                // options_.log, or stderr
  asio::io_context io_{1};                     // the server's reactor (one thread)
  tcp::acceptor acceptor_{io_};                // the listening socket
  asio::steady_timer accept_pause_{io_};       // the pause after accept() ran out of resources
  std::uint16_t port_ = 0;                     // the port listened on
  std::list<Connection*> all_;                 // open connections (owned by their handlers)
  std::list<Connection*> waiting_;             // those waiting for their client, longest first
  std::vector<PendingScrape> pending_;         // scrapes to answer
  bool flush_posted_ = false;                  // a flush() is queued for pending_
  std::shared_ptr<ScrapeBody> text_;           // the last body (reused when no answer holds it)
  std::shared_ptr<ScrapeBody> gzip_;           // its gzip form
  std::shared_ptr<ScrapeBody> protobuf_;       // the last protobuf body (reused the same way)
  std::shared_ptr<ScrapeBody> protobuf_gzip_;  // its gzip form
  std::string scratch_;                 // where the text is written, a piece at a time, for gzip
  HttpDate date_;                       // the Date header, once a second
  std::uint64_t rejected_ = 0;          // connections closed or refused at the cap
  std::uint64_t scrapes_identity_ = 0;  // scrapes answered with the text as is
  std::uint64_t scrapes_gzip_ = 0;      // scrapes answered gzip-compressed
  RateLimitedLog cap_log_;              // "max_connections are open"
  RateLimitedLog accept_log_;           // "cannot accept"
  RateLimitedLog tls_log_;              // "a TLS handshake failed"
  bool stopping_ = false;               // stop() ran: accept nothing more
  std::thread thread_;                  // runs io_ (started last, joined first)
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() = default;

std::uint16_t HttpServer::port() const noexcept { return impl_->port(); }

}  // namespace spindle::detail
