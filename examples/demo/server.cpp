// examples/demo/server.cpp — the acceptor and connection tasks of spindle-demo (see server.hpp).
#include "server.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "format.hpp"
#include "http.hpp"

namespace demo {

namespace {

using Clock = std::chrono::steady_clock;

// Counts a connection as open from its accept until its task's frame is gone, also when
// the frame is destroyed without finishing (runtime shutdown). Made by the acceptor (so
// the cap it checks counts connections whose task has not run yet) and moved into the
// connection task's frame.
class OpenConnection {
 public:
  explicit OpenConnection(std::shared_ptr<ServerStats> stats) noexcept : stats_(std::move(stats)) {
    stats_->open.fetch_add(1, std::memory_order_relaxed);
  }
  OpenConnection(OpenConnection&& o) noexcept : stats_(std::move(o.stats_)) {}
  OpenConnection& operator=(OpenConnection&&) = delete;
  OpenConnection(const OpenConnection&) = delete;
  OpenConnection& operator=(const OpenConnection&) = delete;
  ~OpenConnection() {
    if (stats_) stats_->open.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<ServerStats> stats_;  // null once moved from
};

// A short answer written without waiting: one non-blocking send of whatever fits in the
// socket's buffer now (a fresh or idle socket takes it whole), then the socket closes.
// What the client had already sent is read and dropped first (one non-blocking read):
// closing with unread bytes would reset the connection, and the client might lose the
// answer. For connections the server gives up on; never throws.
void refuse(asio::ip::tcp::socket& socket, int status) noexcept {
  asio::error_code ignored;
  try {
    socket.non_blocking(true, ignored);
    std::array<char, 4096> unread{};
    socket.receive(asio::buffer(unread), 0, ignored);
    const std::string out =
        http::serialize(http::Response{.status = status,
                                       .body = std::string(http::reason_phrase(status)) + "\n",
                                       .headers = {}},
                        {.keep_alive = false, .head = false, .http_minor = 1});
    socket.send(asio::buffer(out), 0, ignored);
  } catch (const std::exception&) {
    // out of memory: close without a word
  }
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

http::Response text(int status, std::string body) {
  return http::Response{.status = status, .body = std::move(body), .headers = {}};
}

// Answers one request. Awaited inline by the connection task: the references outlive it.
spindle::Task<http::Response> answer(const RouteTable& routes, const http::Request& request,
                                     ServerStats& stats) {
  if (request.bad_target) {
    stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    co_return text(400, "bad request target '" + request.target + "'\n");
  }
  if (request.method != HTTP_GET && request.method != HTTP_HEAD) {
    http::Response r = text(
        405, std::string(request.method_name()) + " is not served here; " + "use GET or HEAD\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    co_return r;
  }
  if (request.path == "/") co_return text(200, routes.index_text());
  const Route* route = routes.find(request.path);
  if (route == nullptr) {
    stats.not_found.fetch_add(1, std::memory_order_relaxed);
    co_return text(404, "no route " + request.path + "; GET / lists them\n");
  }
  std::string error;
  const std::optional<RouteArgs> args = RouteArgs::parse(request.query, error);
  if (!args) {
    stats.bad_requests.fetch_add(1, std::memory_order_relaxed);
    co_return text(400, route->name + ": " + error + "\n");
  }

  const auto start = std::chrono::steady_clock::now();
  std::string what;
  try {
    // The request's work, as a root task under the route's monitor.
    what = co_await routes.spawn(*route, *args);
  } catch (const std::exception& e) {
    error = e.what();
  }
  const auto took = std::chrono::steady_clock::now() - start;
  if (!error.empty()) {
    stats.handler_errors.fetch_add(1, std::memory_order_relaxed);
    co_return text(500, route->name + ": failed: " + error + "\n");
  }
  co_return text(200, route->name + ": " + what + "; took " + format_duration(took) + "\n");
}

// What a connection waits for, and since when (its phase's clock; see server.hpp).
struct Wait {
  http::RequestParser::Phase phase;  // which part of a request
  std::uint64_t request;             // RequestParser::requests_begun() when it began
  Clock::time_point since;           // when its clock started
};

// The time limit of a phase.
std::chrono::milliseconds limit_of(http::RequestParser::Phase phase, const ServerOptions& o) {
  switch (phase) {
    case http::RequestParser::Phase::kHead:
      return o.header_timeout;
    case http::RequestParser::Phase::kBody:
      return o.body_timeout;
    case http::RequestParser::Phase::kBetween:
      break;
  }
  return o.idle_timeout;
}

// The counter of a phase's timeouts.
std::atomic<std::uint64_t>& timeouts_of(http::RequestParser::Phase phase, ServerStats& stats) {
  switch (phase) {
    case http::RequestParser::Phase::kHead:
      return stats.header_timeouts;
    case http::RequestParser::Phase::kBody:
      return stats.body_timeouts;
    case http::RequestParser::Phase::kBetween:
      break;
  }
  return stats.idle_timeouts;
}

using ReadResult = std::tuple<asio::error_code, std::size_t>;

// One read into `buffer`. Awaited inline (under timeout()): the references outlive it.
spindle::Task<ReadResult> read_some(asio::ip::tcp::socket& socket, std::span<char> buffer) {
  co_return co_await socket.async_read_some(asio::buffer(buffer.data(), buffer.size()),
                                            spindle::as_result(spindle::use_task));
}

// The connection's one read path: a read that must complete before `deadline`. Returns
// nullopt when the deadline passed first (the read is then cancelled and gone, and it
// consumed nothing). Awaited inline: the references outlive it.
spindle::Task<std::optional<ReadResult>> read_before(asio::ip::tcp::socket& socket,
                                                     std::span<char> buffer,
                                                     Clock::time_point deadline) {
  const Clock::duration left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) co_return std::nullopt;
  std::optional<ReadResult> result;
  try {
    result = co_await spindle::timeout(left, read_some(socket, buffer));
  } catch (const spindle::TimedOut&) {
    // the deadline passed: result stays empty
  }
  co_return result;
}

// Writes `bytes` whole. Awaited inline (under timeout()): the references outlive it.
// Throws asio::system_error.
spindle::Task<void> write_all(asio::ip::tcp::socket& socket, const std::string& bytes) {
  co_await asio::async_write(socket, asio::buffer(bytes), spindle::use_task);
}

// Writes `bytes` whole within `limit`; false when the limit passed first (the write is
// cancelled; the response may be cut short, so the connection must close). Throws
// asio::system_error. Awaited inline: the references outlive it.
spindle::Task<bool> write_within(asio::ip::tcp::socket& socket, const std::string& bytes,
                                 std::chrono::milliseconds limit) {
  bool written = false;
  try {
    co_await spindle::timeout(limit, write_all(socket, bytes));
    written = true;
  } catch (const spindle::TimedOut&) {
    // the client did not take the response in time: written stays false
  }
  co_return written;
}

// One connection: answers its requests in order until the client closes, a response
// says "Connection: close", a timeout (see server.hpp), or an error. Never throws.
spindle::Task<void> serve_connection(asio::ip::tcp::socket socket,
                                     std::shared_ptr<const RouteTable> routes,
                                     std::shared_ptr<ServerStats> stats,
                                     [[maybe_unused]] OpenConnection open, ServerOptions options) {
  using Phase = http::RequestParser::Phase;
  http::RequestParser parser;
  std::array<char, 8192> buffer{};
  std::string out;
  // The first request's head is timed from the accept (request 1 has not begun yet).
  Wait wait{.phase = Phase::kHead, .request = 1, .since = Clock::now()};
  try {
    asio::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    for (;;) {
      const Clock::time_point deadline = wait.since + limit_of(wait.phase, options);
      const std::optional<ReadResult> got = co_await read_before(socket, buffer, deadline);
      if (!got) {
        timeouts_of(wait.phase, *stats).fetch_add(1, std::memory_order_relaxed);
        if (parser.phase() == Phase::kBetween) {
          socket.close(ignored);  // nothing of a request came: no answer is due
        } else {
          refuse(socket, 408);
        }
        co_return;
      }
      const auto [ec, n] = *got;
      if (ec) {
        // EOF (or a reset) between requests is the client's normal goodbye.
        if (ec != asio::error::eof && ec != asio::error::connection_reset) {
          stats->connection_errors.fetch_add(1, std::memory_order_relaxed);
        }
        co_return;
      }
      const bool well_formed = parser.feed(buffer.data(), n);
      bool answered = false;
      while (std::optional<http::Request> request = parser.pop()) {
        stats->requests.fetch_add(1, std::memory_order_relaxed);
        const http::Response response = co_await answer(*routes, *request, *stats);
        const bool keep_alive = request->keep_alive && !request->bad_target;
        out = http::serialize(response, {.keep_alive = keep_alive,
                                         .head = request->method == HTTP_HEAD,
                                         .http_minor = request->http_minor});
        const bool written = co_await write_within(socket, out, options.idle_timeout);
        if (!written) {
          stats->write_timeouts.fetch_add(1, std::memory_order_relaxed);
          co_return;
        }
        if (!keep_alive) {
          socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
          co_return;
        }
        answered = true;
      }
      if (!well_formed) {
        stats->bad_requests.fetch_add(1, std::memory_order_relaxed);
        out = http::serialize(text(parser.error_status(), parser.error_text() + "\n"),
                              {.keep_alive = false, .head = false, .http_minor = 1});
        // Closing anyway: a client that does not take the error in time loses it.
        const bool written = co_await write_within(socket, out, options.idle_timeout);
        if (!written) stats->write_timeouts.fetch_add(1, std::memory_order_relaxed);
        socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        co_return;
      }
      // A new phase, or a new request's head, starts its clock now; so does the idle time
      // after a response. Bytes within the same phase of the same request do not.
      const Wait next{
          .phase = parser.phase(), .request = parser.requests_begun(), .since = Clock::now()};
      if (answered || next.phase != wait.phase || next.request != wait.request) wait = next;
    }
  } catch (const std::exception&) {
    // A broken pipe, a reset mid-response, out of memory: this connection only.
    stats->connection_errors.fetch_add(1, std::memory_order_relaxed);
  }
}

// The acceptor's spare descriptor (see "Out of descriptors" in server.hpp): an open
// /dev/null, given up for a moment to refuse one waiting connection.
class SpareDescriptor {
 public:
  SpareDescriptor() noexcept { take(); }
  SpareDescriptor(const SpareDescriptor&) = delete;
  SpareDescriptor& operator=(const SpareDescriptor&) = delete;
  ~SpareDescriptor() { give_up(); }

  // Opens it again if it is not open; false when that fails (out of descriptors).
  bool take() noexcept {
    if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd_ >= 0;
  }
  // Closes it; false when there was none to close.
  bool give_up() noexcept {
    if (fd_ < 0) return false;
    ::close(std::exchange(fd_, -1));
    return true;
  }

 private:
  int fd_ = -1;  // the open /dev/null, or -1
};

// accept() failed for want of descriptors.
bool out_of_descriptors(const asio::error_code& ec) noexcept {
  return ec == asio::error::no_descriptors ||
         (ec.category() == asio::system_category() && ec.value() == ENFILE);
}

// Out of descriptors: refuses one connection waiting in `acceptor`'s backlog with the
// spare descriptor (503, closed at once). Returns whether it refused one; false when the
// spare is gone or no connection was waiting. Never blocks.
bool refuse_one_waiting(asio::ip::tcp::acceptor& acceptor, SpareDescriptor& spare,
                        ServerStats& stats) noexcept {
  if (!spare.give_up()) {
    spare.take();  // for the next time
    return false;
  }
  const int fd =
      ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  bool refused = false;
  if (fd >= 0) {
    static constexpr std::string_view kRefusal =
        "HTTP/1.1 503 Service Unavailable\r\nServer: spindle-demo\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\n"
        "Connection: close\r\n\r\nService Unavailable\n";
    [[maybe_unused]] const ssize_t sent =
        ::send(fd, kRefusal.data(), kRefusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    stats.rejected.fetch_add(1, std::memory_order_relaxed);
    refused = true;
  }
  spare.take();
  return refused;
}

// The acceptor: binds on the calling worker, reports the bound endpoint through `bound`,
// then accepts until aborted, holding at most `cap` connections open (see server.hpp).
// Throws asio::system_error when it cannot bind or listen (then `bound` is dropped unsent).
spindle::Task<void> accept_loop(asio::ip::tcp::endpoint endpoint,
                                std::shared_ptr<const RouteTable> routes,
                                std::shared_ptr<ServerStats> stats, ServerOptions options,
                                std::size_t cap,
                                spindle::sync::Sender<asio::ip::tcp::endpoint> bound) {
  SpareDescriptor spare;  // opened first, while descriptors are plentiful
  asio::ip::tcp::acceptor acceptor(spindle::this_executor());
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  bound.send(acceptor.local_endpoint());

  const spindle::Handle runtime = spindle::Handle::current();
  for (;;) {
    asio::ip::tcp::socket socket(runtime.executor());  // a worker chosen round-robin
    auto [ec] = co_await acceptor.async_accept(socket, spindle::as_result(spindle::use_task));
    if (ec) {
      stats->accept_errors.fetch_add(1, std::memory_order_relaxed);
      // Out of descriptors: refuse the client that waits rather than leave it hanging.
      // Else (or when nobody waited) give the system a moment: never a spinning accept.
      const bool refused = out_of_descriptors(ec) && refuse_one_waiting(acceptor, spare, *stats);
      if (!refused) co_await spindle::sleep(std::chrono::milliseconds(10));
      continue;
    }
    // Only this task adds to `open` (the connection tasks only subtract): under the cap
    // now means under it after the add.
    if (stats->open.load(std::memory_order_relaxed) >= cap) {
      stats->rejected.fetch_add(1, std::memory_order_relaxed);
      refuse(socket, 503);
      continue;
    }
    stats->accepted.fetch_add(1, std::memory_order_relaxed);
    OpenConnection open(stats);
    spindle::spawn(serve_connection(std::move(socket), routes, stats, std::move(open), options))
        .detach();
  }
}

// The cap that fits the file descriptor limit: `wanted`, or the soft RLIMIT_NOFILE less
// the descriptors open now and kSpareDescriptors (at least 1).
std::size_t fit_descriptor_limit(std::size_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return wanted;
  std::size_t open_now = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++open_now;
  }
  if (ec) open_now = 16;  // no /proc: a guess at a small process's stdio, epoll and timer fds
  const std::size_t kept = open_now + kSpareDescriptors;
  const auto soft = static_cast<std::size_t>(limit.rlim_cur);
  const std::size_t fits = soft > kept ? soft - kept : 1;
  return std::min(wanted, std::max<std::size_t>(fits, 1));
}

}  // namespace

Server Server::start(const spindle::Handle& runtime, const asio::ip::tcp::endpoint& endpoint,
                     std::shared_ptr<const RouteTable> routes, ServerOptions options) {
  using std::chrono::milliseconds;
  if (options.header_timeout <= milliseconds(0) || options.idle_timeout <= milliseconds(0) ||
      options.body_timeout <= milliseconds(0)) {
    throw std::invalid_argument(
        "demo::Server: the header, idle and body timeouts must be positive");
  }
  if (options.max_connections == 0) {
    throw std::invalid_argument("demo::Server: max_connections must be at least 1");
  }
  const std::size_t cap = fit_descriptor_limit(options.max_connections);
  auto stats = std::make_shared<ServerStats>();
  auto [tx, rx] = spindle::sync::oneshot<asio::ip::tcp::endpoint>();
  spindle::JoinHandle<void> acceptor =
      runtime.spawn(accept_loop(endpoint, std::move(routes), stats, options, cap, std::move(tx)));
  asio::ip::tcp::endpoint bound;
  try {
    bound = rx.blocking_recv();
  } catch (const spindle::sync::RecvError&) {
    acceptor.join();  // rethrows why accept_loop() could not listen
    throw;
  }
  return Server(std::move(acceptor), std::move(stats), bound, cap);
}

void Server::stop() {
  if (!acceptor_.valid()) return;
  acceptor_.abort();
  try {
    acceptor_.join();
  } catch (const spindle::Cancelled&) {
    // the expected end of an aborted acceptor
  } catch (const std::exception&) {
    // it had failed already (e.g. the runtime shut down first): it is gone either way
  }
  acceptor_ = {};
}

}  // namespace demo
