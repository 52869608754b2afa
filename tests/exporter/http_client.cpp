#include "http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

namespace spindle::test {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

using Clock = std::chrono::steady_clock;

// Waits until `fd` is readable or the deadline passes; true when readable.
bool wait_readable(int fd, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let recv() report it
  }
}

}  // namespace

RawConnection::RawConnection(std::uint16_t port, const std::string& host, int receive_buffer) {
  const bool v6 = host.find(':') != std::string::npos;
  fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
  if (receive_buffer > 0) {
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  int r = -1;
  if (v6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    ::inet_pton(AF_INET6, host.c_str(), &a.sin6_addr);
    r = ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &a.sin_addr);
    r = ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  if (r != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::system_error(e, std::generic_category(), "connect to " + host);
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawConnection::~RawConnection() { close(); }

RawConnection::RawConnection(RawConnection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

void RawConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConnection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string RawConnection::read_until_close(std::chrono::milliseconds timeout, bool* closed) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  std::array<char, 65536> buf{};
  if (closed != nullptr) *closed = false;
  while (wait_readable(fd_, deadline)) {
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n > 0) {
      out.append(buf.data(), static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (closed != nullptr) *closed = true;  // EOF or reset
    break;
  }
  return out;
}

std::string RawConnection::read_response(std::chrono::milliseconds timeout, bool head_only) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  std::array<char, 65536> buf{};
  while (wait_readable(fd_, deadline)) {
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    out.append(buf.data(), static_cast<std::size_t>(n));
    const std::size_t head_end = out.find("\r\n\r\n");
    if (head_end == std::string::npos) continue;
    std::size_t length = 0;
    if (!head_only) {
      const std::string head = lower(out.substr(0, head_end));
      const std::size_t at = head.find("\r\ncontent-length: ");
      if (at != std::string::npos) length = std::stoul(head.substr(at + 18));
    }
    if (out.size() >= head_end + 4 + length) break;
  }
  return out;
}

void RawConnection::shutdown_send() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawConnection::closed_within(std::chrono::milliseconds timeout) {
  bool closed = false;
  read_until_close(timeout, &closed);
  return closed;
}

std::string http_exchange(std::uint16_t port, std::string_view request, const std::string& host) {
  RawConnection c(port, host);
  EXPECT_TRUE(c.send(request));
  c.shutdown_send();
  bool closed = false;
  std::string raw = c.read_until_close(std::chrono::seconds(10), &closed);
  EXPECT_TRUE(closed) << "the server did not close the connection within 10 s";
  return raw;
}

std::vector<HttpResponse> parse_responses(std::string_view raw,
                                          const std::vector<std::size_t>& head_requests) {
  std::vector<HttpResponse> out;
  while (!raw.empty()) {
    const std::size_t head_end = raw.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
      ADD_FAILURE() << "an incomplete response head: " << raw.substr(0, 200);
      break;
    }
    HttpResponse r;
    const std::string_view head = raw.substr(0, head_end);
    std::size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    if (status_line.substr(0, 9) == "HTTP/1.1 " && status_line.size() >= 12) {
      r.status = std::stoi(std::string(status_line.substr(9, 3)));
    } else {
      ADD_FAILURE() << "not an HTTP/1.1 status line: " << status_line;
    }
    while (line_end != std::string_view::npos) {
      const std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string_view line = head.substr(
          start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      r.headers[lower(std::string(line.substr(0, colon)))] = std::string(value);
    }
    raw.remove_prefix(head_end + 4);
    std::size_t length = 0;
    const bool head_only =
        std::find(head_requests.begin(), head_requests.end(), out.size()) != head_requests.end();
    if (auto it = r.headers.find("content-length"); it != r.headers.end() && !head_only) {
      length = std::stoul(it->second);
    } else if (!head_only) {
      ADD_FAILURE() << "a response without Content-Length";
    }
    if (raw.size() < length) {
      ADD_FAILURE() << "a body shorter than its Content-Length: " << raw.size() << " < " << length;
      length = raw.size();
    }
    r.body = std::string(raw.substr(0, length));
    raw.remove_prefix(length);
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<std::string> gunzip(std::string_view gzipped) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return std::nullopt;  // gzip wrapper only
  std::string out;
  std::array<char, 65536> buf{};
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gzipped.data()));
  zs.avail_in = static_cast<uInt>(gzipped.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
  }
  const bool whole = rc == Z_STREAM_END && zs.avail_in == 0;
  inflateEnd(&zs);
  if (!whole) return std::nullopt;
  return out;
}

std::size_t raise_fd_limit(std::size_t wanted) {
  rlimit l{};
  if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return 0;
  if (l.rlim_cur < wanted) {
    l.rlim_cur = std::min<rlim_t>(static_cast<rlim_t>(wanted), l.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &l);
    ::getrlimit(RLIMIT_NOFILE, &l);
  }
  return static_cast<std::size_t>(l.rlim_cur);
}

}  // namespace spindle::test
