// The exporter's HTTP server: exact paths, methods, HEAD, keep-alive and
// pipelining, bad requests, IPv6, serving while the runtime is stalled,
// and clients that are slow, idle, too many, or that exhaust the file
// descriptors; the destructor's time.
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "scrape_support.hpp"
#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"
#include "support/sync.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::PrometheusExporter;
using spindle::test::http_exchange;
using spindle::test::parse_responses;
using spindle::test::RawConnection;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Sanitizers slow everything (TSan ~5-15x): bounds on elapsed time that a
// release build meets with a wide margin get more room there.
#if defined(SPINDLE_SANITIZER_BUILD)
constexpr int kSlowdown = 4;
#else
constexpr int kSlowdown = 1;
#endif

std::string get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "Connection: close\r\n\r\n";
}

int status_of(std::uint16_t port, const std::string& request) {
  const auto responses = parse_responses(http_exchange(port, request));
  return responses.size() == 1 ? responses.front().status : -1;
}

std::chrono::microseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t);
}

double ms(std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1e3; }

/// Collects the exporter's log lines.
struct LogLines {
  std::function<void(std::string_view)> sink() {
    return [this](std::string_view line) {
      std::lock_guard lock(mu);
      lines.emplace_back(line);
    };
  }
  std::size_t count(std::string_view part) {
    std::lock_guard lock(mu);
    std::size_t n = 0;
    for (const std::string& l : lines) n += l.find(part) != std::string::npos ? 1 : 0;
    return n;
  }
  std::mutex mu;
  std::vector<std::string> lines;
};

// ---- paths and methods ---------------------------------------------------------

TEST(ExporterHttp, OnlyTheExactPathServesTheMetrics) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  const std::uint16_t port = exporter.port();
  EXPECT_EQ(status_of(port, get("/metrics")), 200);
  EXPECT_EQ(status_of(port, get("/metrics?format=text&x=%20")), 200) << "a query is fine";
  for (const char* target : {"/metrics/x", "//metrics", "/METRICS", "/%6detrics", "/metrics/",
                             "/metric", "/", "*", "/metrics%3Fx", "/./metrics", "/x/../metrics"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(status_of(port, get(target)), 404);
  }
  // The absolute form names the same path.
  EXPECT_EQ(status_of(port, get("http://127.0.0.1/metrics")), 200);
  EXPECT_EQ(status_of(port, get("http://127.0.0.1/other")), 404);
}

TEST(ExporterHttp, HeadGetsTheHeadOfAGetWithoutItsBody) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  auto mon = spindle::TaskMonitor::Builder().name("checkout").build();
  exporter.add_monitor(mon);
  const std::string raw = http_exchange(
      exporter.port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto responses = parse_responses(raw, {0});
  ASSERT_EQ(responses.size(), 1u) << raw;
  const auto& r = responses.front();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, "") << "no body after the head";
  // Content-Length is a GET's (the monitor's series do not change).
  const auto got = spindle::test::http_get(exporter.port(), "/metrics");
  const auto length = std::stoul(r.headers.at("content-length"));
  EXPECT_GT(length, 1000u);
  EXPECT_NEAR(static_cast<double>(length), static_cast<double>(got.body.size()), 8.0)
      << "only the scrape counters' digits may differ";
}

TEST(ExporterHttp, OtherMethodsGet405WithAllow) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
    SCOPED_TRACE(method);
    const auto responses = parse_responses(
        http_exchange(exporter.port(), std::string(method) +
                                           " /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                           "Connection: close\r\n\r\n"));
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].status, 405);
    EXPECT_EQ(responses[0].headers.at("allow"), "GET, HEAD");
  }
  // Elsewhere a path that does not exist is 404 whatever the method.
  EXPECT_EQ(status_of(exporter.port(),
                      "POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: "
                      "close\r\n\r\n"),
            404);
}

TEST(ExporterHttp, KeepAliveAndPipelinedRequestsAreAnsweredInOrder) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  // Three requests in one write: GET, HEAD of a missing path, GET (close).
  const std::string raw = http_exchange(exporter.port(),
                                        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                                        "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                                        "GET /metrics?2 HTTP/1.1\r\nHost: x\r\nConnection: "
                                        "close\r\n\r\n");
  const auto responses = parse_responses(raw, {1});
  ASSERT_EQ(responses.size(), 3u) << raw.substr(0, 300);
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_EQ(responses[0].headers.count("connection"), 0u) << "kept alive";
  EXPECT_EQ(responses[1].status, 404);
  EXPECT_EQ(responses[1].body, "");
  EXPECT_EQ(responses[2].status, 200);
  EXPECT_EQ(responses[2].headers.at("connection"), "close");
  EXPECT_THAT(responses[2].body, HasSubstr("spindle_exporter_scrapes_total"));

  // One connection, requests one after the other.
  RawConnection c(exporter.port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto one = parse_responses(c.read_response(5000ms));
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].status, 200);
    // Each scrape counts the ones before it on this connection (and the 3 above).
    EXPECT_THAT(one[0].body, HasSubstr("spindle_exporter_scrapes_total{encoding=\"identity\"} " +
                                       std::to_string(2 + i) + "\n"));
  }
}

TEST(ExporterHttp, ResponsesCarryADateAndHttp10KeepAliveIsSaid) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  const auto r = parse_responses(http_exchange(exporter.port(), get("/metrics")));
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].headers.count("date"), 1u);
  EXPECT_THAT(r[0].headers.at("date"),
              ::testing::MatchesRegex("(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
                                      "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                                      "[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"));
  // HTTP/1.0 asking for keep-alive is told so; then a plain 1.0 request closes.
  const std::string raw = http_exchange(exporter.port(),
                                        "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                        "GET /metrics HTTP/1.0\r\n\r\n");
  const auto two = parse_responses(raw);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].headers.at("connection"), "keep-alive");
  EXPECT_EQ(two[1].headers.at("connection"), "close");
}

TEST(ExporterHttp, MalformedAndOversizedRequestsGetTheir4xxAndTheServerGoesOn) {
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  const std::uint16_t port = exporter.port();
  for (const char* bad :
       {"GARBAGE\r\n\r\n", "GET /metrics HTTP/9\r\n\r\n", "GET /metrics HTTP/1.1\r\nHost x\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(status_of(port, bad), 400);
  }
  // A 20 KiB header, and 20 KiB of small headers: 431.
  EXPECT_EQ(status_of(port, get("/metrics", "X-Big: " + std::string(20 * 1024, 'a') + "\r\n")),
            431);
  std::string many;
  for (int i = 0; i < 2000; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(status_of(port, get("/metrics", many)), 431);
  EXPECT_EQ(status_of(port, get("/" + std::string(20 * 1024, 'm'))), 431);
  // A body beyond 64 KiB: 413, before it is all sent.
  EXPECT_EQ(
      status_of(port, get("/metrics", "Content-Length: 100000\r\n") + std::string(100000, 'b')),
      413);
  // Every one of them closed its connection; the server serves on.
  EXPECT_EQ(status_of(port, get("/metrics")), 200);
}

TEST(ExporterHttp, ServesOnIpv6Loopback) {
  std::optional<PrometheusExporter> exporter;
  try {
    exporter.emplace(PrometheusExporter::Options{.bind_address = "[::1]:0"});
  } catch (const spindle::ExporterError& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  auto mon = spindle::TaskMonitor::Builder().name("v6").build();
  exporter->add_monitor(mon);
  const auto r = parse_responses(http_exchange(exporter->port(), get("/metrics"), "::1"));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 200);
  EXPECT_THAT(r[0].body, HasSubstr("spindle_task_live_tasks{monitor=\"v6\"} 0"));
  // IPv4 does not reach an IPv6-only address.
  EXPECT_THROW(RawConnection(exporter->port(), "127.0.0.1"), std::system_error);
}

TEST(ExporterHttp, AnswersWhileEveryWorkerIsStalled) {
  auto rt = spindle::Runtime::Builder().worker_threads(2).build();
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0"});
  exporter.add_runtime(rt.handle());
  std::atomic<int> started{0};
  std::atomic<bool> release{false};
  std::vector<spindle::JoinHandle<void>> hogs;
  for (int i = 0; i < 2; ++i) {
    hogs.push_back(
        rt.spawn([](std::atomic<int>& started, std::atomic<bool>& release) -> spindle::Task<void> {
          started.fetch_add(1);
          while (!release.load()) std::this_thread::yield();  // never yields to the runtime
          co_return;
        }(started, release)));
  }
  ASSERT_TRUE(spindle::test::eventually([&] { return started.load() == 2; }));
  const auto t0 = Clock::now();
  const auto r = spindle::test::http_get(exporter.port(), "/metrics");
  const auto elapsed = since(t0);
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("spindle_runtime_workers{runtime=\"main\"} 2"));
  EXPECT_LT(elapsed, 1000ms * kSlowdown);
  release.store(true);
  for (auto& h : hogs) h.join();
}

// ---- slow, idle and too many clients --------------------------------------------

TEST(ExporterSlowClients, HeaderTimeoutClosesADrippingConnection) {
  PrometheusExporter exporter(
      {.bind_address = "127.0.0.1:0", .header_timeout = 200ms, .idle_timeout = 10s});
  RawConnection drip(exporter.port());
  const auto t0 = Clock::now();
  const std::string request = get("/metrics");
  bool closed = false;
  std::string got;
  // One byte every 50 ms: the whole request would take ~3 s.
  for (std::size_t i = 0; i < request.size() && !closed; ++i) {
    drip.send(request.substr(i, 1));
    got += drip.read_until_close(50ms, &closed);
  }
  const auto elapsed = since(t0);
  EXPECT_TRUE(closed);
  EXPECT_EQ(got, "") << "never answered";
  EXPECT_GE(elapsed, 150ms);
  EXPECT_LT(elapsed, 1000ms * kSlowdown);
  // Meanwhile and after, scrapes are answered.
  EXPECT_EQ(status_of(exporter.port(), get("/metrics")), 200);
}

TEST(ExporterSlowClients, IdleTimeoutClosesAKeptAliveConnection) {
  PrometheusExporter exporter(
      {.bind_address = "127.0.0.1:0", .header_timeout = 5s, .idle_timeout = 200ms});
  RawConnection c(exporter.port());
  ASSERT_TRUE(c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  bool closed = false;
  const std::string first = c.read_until_close(100ms, &closed);
  EXPECT_THAT(first, HasSubstr("HTTP/1.1 200 OK"));
  ASSERT_FALSE(closed) << "kept alive";
  const auto t0 = Clock::now();
  EXPECT_TRUE(c.closed_within(5000ms));
  const auto elapsed = since(t0);
  EXPECT_GE(elapsed, 50ms);
  EXPECT_LT(elapsed, 1000ms * kSlowdown);
  // A connection that never sends anything is closed by the header timeout.
  PrometheusExporter quiet({.bind_address = "127.0.0.1:0", .header_timeout = 200ms});
  RawConnection silent(quiet.port());
  EXPECT_TRUE(silent.closed_within(1000ms * kSlowdown));
}

/// Opens `idle` connections that send nothing and `dripping` ones that
/// send a request one byte every 100 ms, then scrapes `scrapes` times,
/// returning the slowest scrape's time; every scrape must be a 200.
std::chrono::microseconds slowest_scrape_amid(PrometheusExporter& exporter, int idle, int dripping,
                                              int scrapes) {
  std::vector<RawConnection> idlers;
  for (int i = 0; i < idle; ++i) idlers.emplace_back(exporter.port());
  std::vector<RawConnection> drips;
  for (int i = 0; i < dripping; ++i) drips.emplace_back(exporter.port());
  std::atomic<bool> stop{false};
  std::thread dripper([&] {
    const std::string request = get("/metrics");
    for (std::size_t i = 0; !stop.load(); i = (i + 1) % request.size()) {
      for (RawConnection& d : drips) d.send(request.substr(i, 1));  // fails once closed: fine
      std::this_thread::sleep_for(100ms);
    }
  });
  std::this_thread::sleep_for(300ms);  // a few drips in, every connection accepted
  std::chrono::microseconds slowest{0};
  for (int i = 0; i < scrapes; ++i) {
    const auto t0 = Clock::now();
    const auto r = spindle::test::http_get(exporter.port(), "/metrics");
    slowest = std::max(slowest, since(t0));
    EXPECT_EQ(r.status, 200);
    EXPECT_THAT(r.body, HasSubstr("spindle_task_live_tasks{monitor=\"checkout\"}"));
  }
  stop.store(true);
  dripper.join();
  return slowest;
}

TEST(ExporterSlowClients, AScrapeIsAnsweredWithinASecondAmid1000IdleAnd100DrippingConnections) {
  // 1,101 connections in this process, each with both ends here.
  if (spindle::test::raise_fd_limit(4096) < 2400) GTEST_SKIP() << "RLIMIT_NOFILE is too low";
  // Default options: 512 connections at most; newcomers close the idle
  // connections that have waited longest.
  LogLines log;
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .log = log.sink()});
  auto mon = spindle::TaskMonitor::Builder().name("checkout").build();
  exporter.add_monitor(mon);
  const auto slowest = slowest_scrape_amid(exporter, 1000, 100, 5);
  std::printf("slowest of 5 scrapes amid 1,000 idle + 100 dripping connections: %.2f ms\n",
              ms(slowest));
  EXPECT_LT(slowest, 1000ms);
  const auto s =
      spindle::test::parse_scrape(spindle::test::http_get(exporter.port(), "/metrics").body);
  EXPECT_GE(s.value("spindle_exporter_rejected_connections_total"), 1101 - 512)
      << "every connection beyond the cap closed an older one";
  EXPECT_EQ(log.count("max_connections (512)"), 1u) << "logged once per interval";
}

TEST(ExporterSlowClients, UnderAHigherCapAllConnectionsAreHeldAndScrapesStillFast) {
  if (spindle::test::raise_fd_limit(4096) < 2400) GTEST_SKIP() << "RLIMIT_NOFILE is too low";
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .max_connections = 2000});
  auto mon = spindle::TaskMonitor::Builder().name("checkout").build();
  exporter.add_monitor(mon);
  const auto slowest = slowest_scrape_amid(exporter, 1000, 100, 5);
  std::printf("slowest of 5 scrapes amid 1,100 held connections: %.2f ms\n", ms(slowest));
  EXPECT_LT(slowest, 1000ms);
  const auto s =
      spindle::test::parse_scrape(spindle::test::http_get(exporter.port(), "/metrics").body);
  EXPECT_EQ(s.value("spindle_exporter_rejected_connections_total"), 0);
}

TEST(ExporterSlowClients, AtTheCapTheLongestWaitingConnectionMakesRoomAndIsCounted) {
  LogLines log;
  PrometheusExporter exporter(
      {.bind_address = "127.0.0.1:0", .max_connections = 4, .log = log.sink()});
  std::vector<RawConnection> idle;
  for (int i = 0; i < 4; ++i) {
    idle.emplace_back(exporter.port());
    std::this_thread::sleep_for(20ms);  // accepted in this order
  }
  RawConnection fifth(exporter.port());
  EXPECT_TRUE(idle[0].closed_within(2000ms)) << "the oldest made room";
  // A scrape is a sixth: it closes the next oldest, and is answered.
  const auto r = spindle::test::http_get(exporter.port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("spindle_exporter_rejected_connections_total 2\n"));
  EXPECT_TRUE(idle[1].closed_within(2000ms));
  EXPECT_FALSE(idle[2].closed_within(100ms));
  EXPECT_FALSE(idle[3].closed_within(10ms));
  EXPECT_FALSE(fifth.closed_within(10ms));
  EXPECT_EQ(log.count("max_connections (4)"), 1u) << "two events, one line per 10 s";
}

TEST(ExporterSlowClients, AtTheCapWithEveryConnectionAnsweringANewOneIsRefused) {
  // A body far larger than what the sockets buffer (4 MiB on Linux at
  // most), written to clients that never read: both stay in the middle of
  // their answers.
  LogLines log;
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0",
                               .max_monitors = 1000,
                               .max_connections = 2,
                               .log = log.sink()});
  std::vector<spindle::TaskMonitor> monitors;
  for (int i = 0; i < 1000; ++i) {
    monitors.push_back(spindle::TaskMonitor::Builder().name("m" + std::to_string(i)).build());
    exporter.add_monitor(monitors.back());
  }
  std::vector<RawConnection> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back(exporter.port(), "127.0.0.1", 4096);
    ASSERT_TRUE(readers.back().send(get("/metrics")));
  }
  std::this_thread::sleep_for(500ms * kSlowdown);  // the body is written, as far as it goes
  const auto t0 = Clock::now();
  RawConnection third(exporter.port());
  bool closed = false;
  const std::string got = third.read_until_close(2000ms, &closed);
  EXPECT_TRUE(closed) << "refused at once";
  EXPECT_LT(since(t0), 1000ms * kSlowdown);
  if (!got.empty()) {
    EXPECT_THAT(got, HasSubstr("HTTP/1.1 503 Service Unavailable"));
  }
  EXPECT_EQ(log.count("all being answered: refused a new connection"), 1u);
  // The readers give up; the server notices and serves again.
  readers.clear();
  ASSERT_TRUE(spindle::test::eventually([&] {
    RawConnection c(exporter.port());
    c.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return c.read_until_close(2000ms).find("HTTP/1.1 200") != std::string::npos;
  }));
}

// How many file descriptors this process has open.
int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
    n -= 3;  // ".", ".." and the directory's own descriptor
  }
  return n;
}

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  const auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

TEST(ExporterSlowClients, RunningOutOfFileDescriptorsDoesNotSpin) {
  LogLines log;
  PrometheusExporter exporter({.bind_address = "127.0.0.1:0", .log = log.sink()});
  // One scrape first: the server thread is running, and what the sanitizer
  // runtimes check once (with descriptors of their own) is done.
  ASSERT_EQ(status_of(exporter.port(), get("/metrics")), 200);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open_fds() + 32);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  // Every descriptor but one taken; the last one is the client's socket,
  // which the kernel connects (the listen backlog) while the server has
  // none left to accept it with.
  std::vector<int> taken;
  for (int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC); fd >= 0;
       fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) {
    taken.push_back(fd);
  }
  const int exhausted = errno;
  ASSERT_FALSE(taken.empty());
  ::close(taken.back());
  taken.pop_back();
  std::optional<RawConnection> client;
  client.emplace(exporter.port());
  const bool sent = client->send(get("/metrics"));

  std::this_thread::sleep_for(200ms);  // the server's accept fails, and pauses
  const double cpu0 = cpu_seconds();
  std::this_thread::sleep_for(1000ms);
  const double cpu = cpu_seconds() - cpu0;

  for (const int fd : taken) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_EQ(exhausted, EMFILE);
  EXPECT_TRUE(sent);
  std::printf("CPU while out of descriptors: %.1f ms per second\n", cpu * 1e3);
  EXPECT_LT(cpu, 0.1 * kSlowdown) << "a spinning accept loop burns a whole second per second";
  EXPECT_GE(log.count("cannot accept connections"), 1u);
  EXPECT_LE(log.count("cannot accept connections"), 1u) << "once per 10 s";
  EXPECT_GE(log.count("Too many open files"), 1u);
  // Descriptors back: the waiting connection is accepted and answered.
  bool closed = false;
  const std::string raw = client->read_until_close(5000ms, &closed);
  EXPECT_THAT(raw, ::testing::StartsWith("HTTP/1.1 200 OK"));
}

// ---- shutdown ----------------------------------------------------------------------

TEST(ExporterShutdown, DestructorReturnsQuicklyWithIdleDrippingAndMidScrapeConnections) {
  std::optional<PrometheusExporter> exporter;
  exporter.emplace(
      PrometheusExporter::Options{.bind_address = "127.0.0.1:0", .max_monitors = 1000});
  std::vector<spindle::TaskMonitor> monitors;
  for (int i = 0; i < 1000; ++i) {  // a body that cannot fit in the socket buffers
    monitors.push_back(spindle::TaskMonitor::Builder().name("m" + std::to_string(i)).build());
    exporter->add_monitor(monitors.back());
  }
  const std::uint16_t port = exporter->port();
  std::vector<RawConnection> idle;
  for (int i = 0; i < 20; ++i) idle.emplace_back(port);
  std::vector<RawConnection> drips;
  for (int i = 0; i < 20; ++i) {
    drips.emplace_back(port);
    drips.back().send("GET /metr");
  }
  std::vector<RawConnection> kept_alive;  // answered once, now idle between requests
  for (int i = 0; i < 5; ++i) {
    kept_alive.emplace_back(port);
    kept_alive.back().send("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  RawConnection reader(port, "127.0.0.1", 4096);  // mid-scrape: never reads its answer
  reader.send(get("/metrics"));
  std::this_thread::sleep_for(500ms * kSlowdown);  // everything accepted, the scrape being written

  const auto t0 = Clock::now();
  exporter.reset();
  const auto elapsed = since(t0);
  std::printf("destructor: %.2f ms\n", ms(elapsed));
  EXPECT_LT(elapsed, 100ms * kSlowdown);

  // Every connection was closed; the scrape in flight was cut off.
  for (auto* group : {&idle, &drips, &kept_alive}) {
    for (RawConnection& c : *group) EXPECT_TRUE(c.closed_within(2000ms));
  }
  bool closed = false;
  const std::string partial = reader.read_until_close(5000ms, &closed);
  EXPECT_TRUE(closed);
  EXPECT_THAT(partial, ::testing::StartsWith("HTTP/1.1 200 OK"));
  const auto length_at = partial.find("Content-Length: ");
  ASSERT_NE(length_at, std::string::npos);
  const std::size_t length = std::stoul(partial.substr(length_at + 16));
  EXPECT_LT(partial.size(), length) << "the answer was cut off, not completed";
  // The port is free again.
  PrometheusExporter again({.bind_address = "127.0.0.1:" + std::to_string(port)});
}

TEST(ExporterShutdown, DestroyingAnExporterThatServedNothingIsQuick) {
  const auto t0 = Clock::now();
  { PrometheusExporter exporter({.bind_address = "127.0.0.1:0"}); }
  EXPECT_LT(since(t0), 100ms * kSlowdown);
}

}  // namespace
