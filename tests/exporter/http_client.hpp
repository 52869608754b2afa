// tests/exporter/http_client.hpp — clients that misbehave on purpose, and response parsing.
//
//   spindle::test::RawConnection   a blocking TCP connection (IPv4 or IPv6 loopback): send raw
//                                  bytes, read, see whether and when the server closed it
//   spindle::test::http_exchange   sends raw request bytes, reads until the server closes
//   spindle::test::parse_responses every HTTP/1.1 response in a byte stream
//   spindle::test::gunzip          a gzip body, decompressed (zlib)
//   spindle::test::raise_fd_limit  raises RLIMIT_NOFILE's soft limit for many connections
//
// Example:
//   spindle::test::RawConnection c(exporter.port());
//   c.send("GET /metrics HTTP/1.1\r\n");         // and never the rest
//   EXPECT_TRUE(c.closed_within(std::chrono::seconds(1)));
//
// Thread safety: a RawConnection is used by one thread at a time; the
// functions are safe from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scrape_support.hpp"

namespace spindle::test {

class RawConnection {
 public:
  /// Connects to `host` (a numeric loopback address) on `port`. Throws
  /// std::system_error when the connection fails. `receive_buffer` > 0
  /// sets SO_RCVBUF before connecting (a client that reads slowly).
  explicit RawConnection(std::uint16_t port, const std::string& host = "127.0.0.1",
                         int receive_buffer = 0);
  ~RawConnection();
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&&) = delete;
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  /// Sends all of `bytes`; false when the connection is broken.
  bool send(std::string_view bytes);
  /// Reads what arrives within `timeout` until the server closes; returns
  /// it. `closed` (when given) tells whether it did close.
  std::string read_until_close(std::chrono::milliseconds timeout, bool* closed = nullptr);
  /// Reads one whole response (head, and a body of its Content-Length
  /// unless `head_only`) within `timeout`; what was read when it is not
  /// complete by then.
  std::string read_response(std::chrono::milliseconds timeout, bool head_only = false);
  /// Shuts down the sending side (the server reads EOF).
  void shutdown_send();
  /// Whether the server closes the connection (EOF or reset) within
  /// `timeout`; bytes it sends meanwhile are dropped.
  bool closed_within(std::chrono::milliseconds timeout);
  /// Closes the client side.
  void close();
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;  // the socket
};

/// Sends `request` on a new connection to `port`, shuts down the sending
/// side, and returns every byte the server sent until it closed (fails the
/// test after 10 s).
std::string http_exchange(std::uint16_t port, std::string_view request,
                          const std::string& host = "127.0.0.1");

/// The responses in `raw`, in order (a HEAD response has no body: give
/// `head_requests`, the indexes of responses to HEAD requests).
std::vector<HttpResponse> parse_responses(std::string_view raw,
                                          const std::vector<std::size_t>& head_requests = {});

/// `gzipped` decompressed; nullopt when it is not a valid gzip stream.
std::optional<std::string> gunzip(std::string_view gzipped);

/// Raises the soft RLIMIT_NOFILE to at least `wanted` (up to the hard
/// limit); returns the soft limit now.
std::size_t raise_fd_limit(std::size_t wanted);

}  // namespace spindle::test
