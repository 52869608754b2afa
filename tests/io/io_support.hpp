// tests/io/io_support.hpp — helpers shared by the tests of the runtime's Asio layer.
//
//   spindle::iotest::Flavor          current_thread or a 2-worker multi_thread runtime
//   spindle::iotest::make_runtime    builds a runtime of a Flavor
//   spindle::iotest::flavor_name     names a Flavor parameter for TEST_P instantiations
//   spindle::iotest::SocketPair      two connected loopback TCP sockets
//   spindle::iotest::connected_pair  makes one, on the calling task's worker
//   spindle::iotest::RefusingPort    a loopback port where connecting is refused
//
// Example:
//   class MyTest : public ::testing::TestWithParam<spindle::iotest::Flavor> {};
//   TEST_P(MyTest, Works) {
//     auto rt = spindle::iotest::make_runtime(GetParam());
//     rt.block_on([]() -> spindle::Task<void> {
//       auto [a, b] = co_await spindle::iotest::connected_pair();
//       ...
//     }());
//   }
//   INSTANTIATE_TEST_SUITE_P(Flavors, MyTest, spindle::iotest::kBothFlavors,
//                            spindle::iotest::flavor_name);
//
// Thread safety: plain functions and values; SocketPair as Asio sockets.
#pragma once

#include <gtest/gtest.h>

#include <asio/ip/tcp.hpp>
#include <spindle/runtime.hpp>
#include <string>
#include <utility>

namespace spindle::iotest {

/// The two runtime flavours every Asio-layer behaviour is checked on.
enum class Flavor { kCurrentThread, kMultiThread };

inline const auto kBothFlavors = ::testing::Values(Flavor::kCurrentThread, Flavor::kMultiThread);

/// A current_thread runtime, or a multi_thread one with two workers.
inline Runtime make_runtime(Flavor f) {
  return f == Flavor::kCurrentThread ? Runtime::Builder().current_thread().build()
                                     : Runtime::Builder().worker_threads(2).build();
}

inline std::string flavor_name(const ::testing::TestParamInfo<Flavor>& info) {
  return info.param == Flavor::kCurrentThread ? "CurrentThread" : "MultiThread";
}

/// Two connected TCP sockets over loopback: `client` connected to `server`.
struct SocketPair {
  asio::ip::tcp::socket client;  // the connecting end
  asio::ip::tcp::socket server;  // the accepted end
};

/// Connects a pair of sockets over 127.0.0.1 (port chosen by binding port 0),
/// both on the calling task's worker. Throws asio::system_error.
inline Task<SocketPair> connected_pair() {
  asio::ip::tcp::acceptor acceptor(this_executor(),
                                   asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  asio::ip::tcp::socket client(this_executor());
  // The kernel completes the handshake against the listen backlog, so the
  // connect finishes before anyone accepts.
  co_await client.async_connect(acceptor.local_endpoint(), use_task);
  asio::ip::tcp::socket server = co_await acceptor.async_accept(use_task);
  co_return SocketPair{std::move(client), std::move(server)};
}

/// A loopback port where nobody listens: connecting to it is refused. The
/// port stays bound (but not listening) while this object lives, so no
/// other test running at the same time can be handed it and listen there.
class RefusingPort {
 public:
  RefusingPort() : socket_(io_) {
    socket_.open(asio::ip::tcp::v4());
    socket_.bind(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  }
  [[nodiscard]] asio::ip::tcp::endpoint endpoint() const { return socket_.local_endpoint(); }

 private:
  asio::io_context io_;           // owns the socket's (unused) reactor
  asio::ip::tcp::socket socket_;  // bound, never listening
};

}  // namespace spindle::iotest
