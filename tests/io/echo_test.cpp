// The echo server example (examples/echo/echo_server.hpp), started in-process
// on port 0 and driven over loopback: many concurrent clients with messages of
// varied sizes (some larger than one server read) get every byte back in
// order; a connection's error ends that connection only; stopping closes the
// listener; runtime shutdown ends open connections.

#include <gtest/gtest.h>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <spindle/runtime.hpp>
#include <string>
#include <vector>

#include "echo/echo_server.hpp"
#include "support/sync.hpp"

namespace {

using asio::ip::tcp;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::Task;
using spindle::use_task;
using spindle::test::eventually;

constexpr int kClients = 100;
constexpr int kRoundTrips = 100;

// The size of client `c`'s message `i`: mostly small, every 10th larger than
// several server reads (the server reads 4096 bytes at a time).
std::size_t message_size(int c, int i) {
  const auto mix = static_cast<std::size_t>(c) * 7919U + static_cast<std::size_t>(i) * 104729U;
  if (i % 10 == 9) return 9000 + mix % 11000;
  return 1 + mix % 1500;
}

// The bytes of that message: different for every client, message and offset.
std::vector<char> message(int c, int i) {
  std::vector<char> m(message_size(c, i));
  for (std::size_t j = 0; j < m.size(); ++j) {
    m[j] = static_cast<char>(
        (static_cast<std::size_t>(c) * 131U + static_cast<std::size_t>(i) * 17U + j * 31U) & 0xFFU);
  }
  return m;
}

struct ClientResult {
  int round_trips_ok = 0;   // messages that came back identical
  std::uint64_t bytes = 0;  // bytes sent (and expected back)
};

// One client: `rounds` round trips, each message written in full, then read
// back in full and compared; then a clean close.
Task<ClientResult> client(std::uint16_t port, int c, int rounds) {
  tcp::socket s(spindle::this_executor());
  co_await s.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), use_task);
  ClientResult r;
  for (int i = 0; i < rounds; ++i) {
    const std::vector<char> out = message(c, i);
    co_await asio::async_write(s, asio::buffer(out), use_task);
    std::vector<char> back(out.size());
    co_await asio::async_read(s, asio::buffer(back), use_task);
    if (back == out) ++r.round_trips_ok;
    r.bytes += out.size();
  }
  s.shutdown(tcp::socket::shutdown_send);
  // The server sees EOF and closes its side: we see EOF too.
  char extra = 0;
  auto [ec, n] =
      co_await s.async_read_some(asio::buffer(&extra, 1), spindle::as_result(spindle::use_task));
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(n, 0U);
  co_return r;
}

TEST(EchoServer, ManyConcurrentClientsGetEveryByteBackInOrder) {
  auto server_rt = Runtime::Builder().worker_threads(2).thread_name("echo-server").build();
  auto client_rt = Runtime::Builder().worker_threads(2).thread_name("echo-client").build();
  echo::Server server = echo::Server::start(server_rt.handle(), echo::Config{});
  ASSERT_NE(server.port(), 0);

  std::vector<JoinHandle<ClientResult>> clients;
  for (int c = 0; c < kClients; ++c)
    clients.push_back(client_rt.spawn(client(server.port(), c, kRoundTrips)));
  int ok = 0;
  std::uint64_t bytes = 0;
  for (auto& h : clients) {
    ClientResult r = h.join();
    ok += r.round_trips_ok;
    bytes += r.bytes;
  }
  EXPECT_EQ(ok, kClients * kRoundTrips);

  // Every connection task ends once its client has closed.
  ASSERT_TRUE(eventually([&] { return server.stats().active.load() == 0; }));
  EXPECT_EQ(server.stats().accepted.load(), static_cast<std::uint64_t>(kClients));
  EXPECT_EQ(server.stats().bytes_echoed.load(), bytes);
  EXPECT_EQ(server.stats().connection_errors.load(), 0U);
  EXPECT_EQ(server.stats().accept_errors.load(), 0U);
  server.stop();
}

// A blocking client on the test thread (plain Asio, no runtime).
struct BlockingClient {
  asio::io_context io;
  tcp::socket s{io};

  explicit BlockingClient(std::uint16_t port) {
    s.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
  }
  std::string round_trip(const std::string& msg) {
    asio::write(s, asio::buffer(msg));
    std::string back(msg.size(), '\0');
    asio::read(s, asio::buffer(back));
    return back;
  }
};

TEST(EchoServer, AConnectionErrorEndsOnlyThatConnection) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  echo::Server server = echo::Server::start(rt.handle(), echo::Config{});
  BlockingClient steady(server.port());
  EXPECT_EQ(steady.round_trip("before"), "before");
  {
    BlockingClient rude(server.port());
    EXPECT_EQ(rude.round_trip("bye"), "bye");
    // Closing with a zero linger time sends a reset instead of a FIN: the
    // server's pending read fails with connection_reset.
    rude.s.set_option(asio::socket_base::linger(true, 0));
    rude.s.close();
  }
  ASSERT_TRUE(eventually([&] { return server.stats().connection_errors.load() == 1; }));
  EXPECT_EQ(steady.round_trip("after"), "after");
  EXPECT_EQ(server.stats().active.load(), 1U);
  server.stop();
}

TEST(EchoServer, StopClosesTheListenerAndLeavesOpenConnectionsServing) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  echo::Server server = echo::Server::start(rt.handle(), echo::Config{});
  const std::uint16_t port = server.port();
  BlockingClient open(port);
  EXPECT_EQ(open.round_trip("one"), "one");
  server.stop();
  // The acceptor's frame, and the listening socket in it, are gone.
  asio::io_context io;
  tcp::socket late(io);
  asio::error_code ec;
  late.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), ec);
  EXPECT_EQ(ec, asio::error::connection_refused) << ec.message();
  EXPECT_EQ(open.round_trip("two"), "two");
}

TEST(EchoServer, RuntimeShutdownEndsOpenConnections) {
  std::vector<std::unique_ptr<BlockingClient>> clients;
  std::shared_ptr<const echo::Stats> stats;
  {
    auto rt = Runtime::Builder().worker_threads(2).build();
    echo::Server server = echo::Server::start(rt.handle(), echo::Config{});
    for (int i = 0; i < 10; ++i) {
      clients.push_back(std::make_unique<BlockingClient>(server.port()));
      EXPECT_EQ(clients.back()->round_trip("hi"), "hi");
    }
    EXPECT_EQ(server.stats().active.load(), 10U);
    stats = server.shared_stats();
    EXPECT_EQ(stats->accepted.load(), 10U);
    server.stop();
    // The runtime's destructor destroys the ten connection tasks, closing their sockets.
  }
  EXPECT_EQ(stats->active.load(), 0U);
  for (auto& c : clients) {
    char byte = 0;
    asio::error_code ec;
    c->s.read_some(asio::buffer(&byte, 1), ec);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
  }
}

TEST(EchoServer, StartReportsAnAddressThatCannotBeBound) {
  auto rt = Runtime::Builder().worker_threads(2).build();
  echo::Server first = echo::Server::start(rt.handle(), echo::Config{});
  echo::Config same;
  same.port = first.port();
  // reuse_address does not allow two listeners on one port.
  EXPECT_THROW(echo::Server::start(rt.handle(), same), asio::system_error);
  first.stop();
}

}  // namespace
