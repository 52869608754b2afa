// spindle-demo — "why are my tasks slow?": an HTTP service that reproduces the seed
// talk's causes of slow tasks, each next to its fix, with a TaskMonitor per route, a
// Prometheus endpoint, a stall detector, a built-in load generator and a live table.
//
// What it shows. Each route (routes.hpp) is one cause — blocking sleep, synchronous file
// I/O, a big loop, a lock held across an await — or its fixed twin, plus a healthy route
// and a slow downstream (long idle: not the service's fault). Run it with --load and
// watch the table (or the Grafana dashboards): slow polls on the causes, long scheduled
// delays for every task that shares their workers, long idle on slow-downstream, and the
// fixed twins clean.
//
// Usage: spindle-demo [--listen ADDR:PORT] [--metrics ADDR:PORT] [--workers N] [--load]
//                     [--duration S] [--no-table] [--quick] [--header-timeout D]
//                     [--idle-timeout D] [--body-timeout D] [--max-connections N]
//   --listen 127.0.0.1:8080    the HTTP service (port 0: pick a free one and print it)
//   --metrics 127.0.0.1:9464   the Prometheus /metrics endpoint (port 0 allowed; empty: none)
//   --workers 2                worker threads of the service's runtime
//   --load                     run the built-in load generator (load.hpp) in this process
//   --duration 0               seconds to run; 0: until Ctrl-C or SIGTERM
//   --no-table                 no live table (for tests and CI)
//   --quick                    shorter simulated work (for tests)
//   --header-timeout 5s        a request's head must arrive within this (server.hpp, Limits)
//   --idle-timeout 10s         a keep-alive connection with no request in progress closes
//   --body-timeout 10s         a request's body must arrive within this of its head
//   --max-connections 512      connections open at once (lowered to fit `ulimit -n`)
// Durations are Abseil durations: 1s, 500ms, 1.5s, 2m.
// Flags are Abseil flags (absl::ParseCommandLine): --flag=value and --flag value both
// work, and '-' and '_' are the same inside a flag's name (--no-table, --no_table).
//
// Try it:  spindle-demo --load            (then open the URLs it prints)
//          curl 127.0.0.1:8080/           curl '127.0.0.1:8080/blocking-sleep?ms=150'
//
// Structure. main() blocks SIGINT and SIGTERM in every thread (before any is started) and
// waits for them with sigtimedwait(), which doubles as the table's one-second tick; no
// signal handler runs. On a signal or at the end of --duration it shuts down in order:
// the load generator's runtime (its connections close), the acceptor (no new
// connections), the exporter, the stall detector, then the service runtime (its
// connection and handler tasks are destroyed) — and prints one summary line per monitor
// and a verdict line, "spindle-demo: OK: ..." or "spindle-demo: INCOMPLETE: ..." (exit
// status 0 or 1; 2 for bad flags). A second Ctrl-C during the shutdown ends the process
// at once.
//
// Output. On a terminal the table is redrawn in place every second; when stdout is not a
// terminal a plain snapshot is printed every 5 s instead; --no-table prints neither. The
// StallDetector's reports (a poll running >= 100 ms) go to an in-memory ring shown under
// the table, not to stderr.

#include <absl/flags/flag.h>
#include <absl/flags/parse.h>
#include <absl/flags/usage.h>
#include <absl/flags/usage_config.h>
#include <absl/time/time.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <asio/ip/address.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <spindle/exporter.hpp>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "load.hpp"
#include "routes.hpp"
#include "server.hpp"
#include "table.hpp"

ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "ADDR:PORT the HTTP service listens on (port 0: pick a free one and print it)");
ABSL_FLAG(std::string, metrics, "127.0.0.1:9464",
          "ADDR:PORT of the Prometheus /metrics endpoint (port 0: pick one; empty: none)");
ABSL_FLAG(int, workers, 2, "worker threads of the service's runtime (1 to 64)");
ABSL_FLAG(bool, load, false, "run the built-in load generator against the service");
ABSL_FLAG(double, duration, 0, "seconds to run; 0: until Ctrl-C or SIGTERM");
ABSL_FLAG(bool, no_table, false, "no live table (for tests and CI)");
ABSL_FLAG(bool, quick, false, "shorter simulated work (for tests)");
ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(5),
          "a request's head must be complete within this of its first byte (the first "
          "request's: of the connection's accept), else 408 and close");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(10),
          "a keep-alive connection with no request in progress is closed after this (also the "
          "time a response's write may take)");
ABSL_FLAG(absl::Duration, body_timeout, absl::Seconds(10),
          "a request's body must be complete within this of the end of its head, else 408");
ABSL_FLAG(std::string, trace_dir, "",
          "directory for a flight-recorder trace (Chrome trace-event JSON, opens in "
          "ui.perfetto.dev) at each stall, at most 16, one per 10 s; empty: none");
ABSL_FLAG(int, max_connections, 512,
          "connections open at once; more are answered 503 and closed (lowered to fit the "
          "file descriptor limit, ulimit -n)");

namespace {

constexpr std::chrono::milliseconds kStallThreshold{100};
constexpr std::chrono::seconds kShutdownTimeout{5};

// The flags, checked.
struct Options {
  asio::ip::tcp::endpoint listen;  // --listen
  std::string metrics;             // --metrics, as given ("" = no exporter)
  int workers = 2;                 // --workers
  bool load = false;               // --load
  double duration = 0;             // --duration, seconds; 0 = until a signal
  bool table = true;               // !--no-table
  bool quick = false;              // --quick
  std::string trace_dir;           // --trace_dir ("" = no stall traces)
  demo::ServerOptions server;      // --header-timeout, --idle-timeout, --body-timeout,
                                   // --max-connections
};

// A timeout flag's value, checked: from 1 ms to a day. Throws std::invalid_argument.
std::chrono::milliseconds read_timeout(absl::Duration d, const char* flag) {
  if (d < absl::Milliseconds(1) || d > absl::Hours(24)) {
    throw std::invalid_argument(std::string(flag) + " must be from 1ms to 24h, not " +
                                absl::FormatDuration(d));
  }
  return absl::ToChronoMilliseconds(d);
}

// Splits "HOST:PORT" ("[v6]:PORT", ":PORT" = every interface). Throws
// std::invalid_argument naming `flag`.
std::pair<std::string, std::uint16_t> split_host_port(std::string_view text, const char* flag) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    throw std::invalid_argument(std::string(flag) +
                                " expects ADDR:PORT, e.g. 127.0.0.1:8080, not '" +
                                std::string(text) + "'");
  }
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    throw std::invalid_argument(std::string(flag) +
                                ": the port must be a number from 0 to 65535, not '" +
                                std::string(port_text) + "'");
  }
  return {host, static_cast<std::uint16_t>(port)};
}

// "127.0.0.1:8080" -> an endpoint (numeric addresses and "localhost"). Throws
// std::invalid_argument naming `flag`.
asio::ip::tcp::endpoint parse_endpoint(std::string_view text, const char* flag) {
  auto [host, port] = split_host_port(text, flag);
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    throw std::invalid_argument(std::string(flag) + ": '" + host +
                                "' is not a numeric IP address (or localhost)");
  }
  return {address, port};
}

// Reads and checks the flags. Throws std::invalid_argument.
Options read_flags() {
  Options o;
  o.listen = parse_endpoint(absl::GetFlag(FLAGS_listen), "--listen");
  o.metrics = absl::GetFlag(FLAGS_metrics);
  if (!o.metrics.empty()) split_host_port(o.metrics, "--metrics");  // the exporter checks the rest
  o.workers = absl::GetFlag(FLAGS_workers);
  if (o.workers < 1 || o.workers > 64) {
    throw std::invalid_argument("--workers must be from 1 to 64, not " + std::to_string(o.workers));
  }
  o.load = absl::GetFlag(FLAGS_load);
  o.duration = absl::GetFlag(FLAGS_duration);
  if (!(o.duration >= 0) || o.duration > 1e7) {
    throw std::invalid_argument("--duration must be a number of seconds >= 0");
  }
  o.table = !absl::GetFlag(FLAGS_no_table);
  o.quick = absl::GetFlag(FLAGS_quick);
  o.trace_dir = absl::GetFlag(FLAGS_trace_dir);
  o.server.header_timeout = read_timeout(absl::GetFlag(FLAGS_header_timeout), "--header-timeout");
  o.server.idle_timeout = read_timeout(absl::GetFlag(FLAGS_idle_timeout), "--idle-timeout");
  o.server.body_timeout = read_timeout(absl::GetFlag(FLAGS_body_timeout), "--body-timeout");
  const int max_connections = absl::GetFlag(FLAGS_max_connections);
  if (max_connections < 1 || max_connections > 1000000) {
    throw std::invalid_argument("--max-connections must be from 1 to 1000000, not " +
                                std::to_string(max_connections));
  }
  o.server.max_connections = static_cast<std::size_t>(max_connections);
  return o;
}

// Abseil flag names are identifiers: accept "--no-table" for "--no_table" by turning '-'
// into '_' inside every "--name" (never in values).
std::vector<std::string> normalize_flag_names(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) continue;
    const std::size_t end = std::min(a.find('='), a.size());
    std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  return args;
}

// A URL host for an endpoint: the unspecified address becomes the loopback one (what a
// browser on this machine can open), IPv6 gets brackets.
std::string url_host(const asio::ip::address& a) {
  asio::ip::address shown = a;
  if (a.is_unspecified()) {
    shown = a.is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                      : asio::ip::address(asio::ip::address_v4::loopback());
  }
  return shown.is_v6() ? "[" + shown.to_string() + "]" : shown.to_string();
}

// Waits up to `timeout` for SIGINT or SIGTERM (blocked in every thread); returns the
// signal, or 0 when the time ran out.
int wait_for_signal(const sigset_t& signals, std::chrono::nanoseconds timeout) {
  timeout = std::max(timeout, std::chrono::nanoseconds(0));
  timespec ts{};
  ts.tv_sec =
      static_cast<std::time_t>(std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
  ts.tv_nsec = static_cast<long>((timeout % std::chrono::seconds(1)).count());
  for (;;) {
    const int sig = ::sigtimedwait(&signals, nullptr, &ts);
    if (sig >= 0) return sig;
    if (errno == EAGAIN) return 0;
    if (errno != EINTR) return 0;
  }
}

// Runs the demo; returns the exit status. Throws std::exception for set-up failures.
int run(const Options& o, const sigset_t& signals) {
  const demo::Timings timings = o.quick ? demo::Timings::quick() : demo::Timings::normal();
  auto routes = std::make_shared<const demo::RouteTable>(timings);  // writes the temp file

  spindle::Runtime rt = spindle::Runtime::Builder()
                            .worker_threads(o.workers)
                            .thread_name("demo-worker")
                            .poll_timing(true)  // the runtime-wide histograms for /metrics
                            // what each worker did lately: delay blame ("who held the
                            // worker") and the stall traces
                            .flight_recorder(8192)
                            .build();
  demo::StallRing stall_ring(5);
  spindle::StallDetector::Options stall_options;
  stall_options.threshold = kStallThreshold;
  stall_options.on_stall = [&stall_ring](const spindle::StallReport& r) { stall_ring.push(r); };
  stall_options.trace_directory = o.trace_dir;
  auto stalls = std::make_shared<spindle::StallDetector>(rt.handle(), std::move(stall_options));

  std::optional<demo::Server> started_server;
  try {
    started_server.emplace(demo::Server::start(rt.handle(), o.listen, routes, o.server));
  } catch (const asio::system_error& e) {
    throw std::runtime_error("cannot listen on " + o.listen.address().to_string() + ":" +
                             std::to_string(o.listen.port()) + ": " + e.what() +
                             " (--listen ADDR:0 picks a free port)");
  }
  demo::Server& server = *started_server;
  const asio::ip::tcp::endpoint bound = server.endpoint();
  const std::string service_url =
      "http://" + url_host(bound.address()) + ":" + std::to_string(bound.port()) + "/";
  std::printf("spindle-demo: serving %s (%d workers, %s work)\n", service_url.c_str(), o.workers,
              o.quick ? "quick" : "normal");
  const std::string cap_note = server.max_connections() < o.server.max_connections
                                   ? " (--max-connections " +
                                         std::to_string(o.server.max_connections) +
                                         " lowered to fit the file descriptor limit)"
                                   : "";
  std::printf(
      "spindle-demo: limits: at most %zu connections%s; header timeout %s, idle timeout %s, "
      "body timeout %s\n",
      server.max_connections(), cap_note.c_str(),
      absl::FormatDuration(absl::FromChrono(o.server.header_timeout)).c_str(),
      absl::FormatDuration(absl::FromChrono(o.server.idle_timeout)).c_str(),
      absl::FormatDuration(absl::FromChrono(o.server.body_timeout)).c_str());

  std::string metrics_url = "none (--metrics is empty)";
  std::unique_ptr<spindle::PrometheusExporter> exporter;
  if (!o.metrics.empty()) {
    spindle::PrometheusExporter::Options eo;
    eo.bind_address = o.metrics;
    try {
      exporter = std::make_unique<spindle::PrometheusExporter>(std::move(eo));
    } catch (const spindle::ExporterError& e) {
      throw std::runtime_error(std::string(e.what()) +
                               " (--metrics ADDR:0 picks a free port; --metrics '' runs without)");
    }
    exporter->add_runtime(rt.handle(), "main", stalls);
    for (const demo::Route& r : routes->routes()) exporter->add_monitor(r.monitor);
    const auto [host, port] = split_host_port(o.metrics, "--metrics");
    asio::error_code ec;
    const asio::ip::address address = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    metrics_url = "http://" + (ec ? host : url_host(address)) + ":" +
                  std::to_string(exporter->port()) + exporter->path();
    std::printf("spindle-demo: metrics on %s\n", metrics_url.c_str());
  }

  std::optional<demo::LoadGenerator> load;
  if (o.load) {
    asio::ip::tcp::endpoint target = bound;
    if (target.address().is_unspecified()) {
      target.address(target.address().is_v6()
                         ? asio::ip::address(asio::ip::address_v6::loopback())
                         : asio::ip::address(asio::ip::address_v4::loopback()));
    }
    load.emplace(demo::LoadGenerator::default_options(*routes, target, o.quick));
    std::printf("spindle-demo: load generator on (~%.0f requests/s over every route)\n",
                load->planned_rate());
  }
  std::fflush(stdout);

  // ---- the live table and the wait ---------------------------------------------------
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  demo::LiveTable table(demo::TableContext{.service_url = service_url,
                                           .metrics_url = metrics_url,
                                           .routes = routes,
                                           .runtime = rt.handle(),
                                           .server = &server.stats(),
                                           .load = load ? &*load : nullptr,
                                           .stalls = &stall_ring,
                                           .stall_threshold = kStallThreshold});
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  const auto deadline = o.duration > 0 ? started + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(o.duration))
                                       : Clock::time_point::max();
  const std::chrono::seconds refresh = tty ? std::chrono::seconds(1) : std::chrono::seconds(5);
  auto next_frame = started + refresh;
  if (o.table && tty) std::fputs("\x1b[2J", stdout);
  const char* reason = "the --duration passed";
  for (;;) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    const auto wake = std::min({deadline, next_frame, now + std::chrono::seconds(1)});
    const int sig = wait_for_signal(signals, wake - now);
    if (sig != 0) {
      reason = sig == SIGINT ? "SIGINT" : "SIGTERM";
      // A second Ctrl-C ends the process at once (only this thread unblocks them).
      pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
      break;
    }
    if (Clock::now() >= next_frame) {
      next_frame += refresh;
      if (o.table) {
        const std::string frame = table.frame(tty);
        if (tty) {
          std::fputs("\x1b[H", stdout);
          std::fputs(frame.c_str(), stdout);
          std::fputs("\x1b[J", stdout);
        } else {
          std::printf("---- spindle-demo at %.0fs ----\n%s",
                      std::chrono::duration<double>(Clock::now() - started).count(), frame.c_str());
        }
        std::fflush(stdout);
      }
    }
  }

  // ---- shutdown ----------------------------------------------------------------------
  const double ran = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("spindle-demo: stopping after %.1fs (%s)\n", ran, reason);
  std::fflush(stdout);
  bool clean = true;
  if (load) clean = load->stop() && clean;  // clients first: no requests in flight after this
  server.stop();                            // no new connections
  // Connections still open before the runtime ends them (0 once every client is gone).
  const std::uint64_t open_at_stop = server.stats().open.load();
  exporter.reset();
  stalls.reset();
  clean = rt.shutdown_timeout(kShutdownTimeout) && clean;  // connections and handlers end here

  demo::print_summary(stdout, *routes, load ? &*load : nullptr);
  const demo::ServerStats& s = server.stats();
  std::printf("spindle-demo: stall reports=%" PRIu64 " requests=%" PRIu64 " bad_requests=%" PRIu64
              " not_found=%" PRIu64 " handler_errors=%" PRIu64 " connection_errors=%" PRIu64 "\n",
              stall_ring.total(), s.requests.load(), s.bad_requests.load(), s.not_found.load(),
              s.handler_errors.load(), s.connection_errors.load());
  std::printf("spindle-demo: connections accepted=%" PRIu64 " rejected=%" PRIu64
              " accept_errors=%" PRIu64 " header_timeouts=%" PRIu64 " idle_timeouts=%" PRIu64
              " body_timeouts=%" PRIu64 " write_timeouts=%" PRIu64 " open_at_stop=%" PRIu64 "\n",
              s.accepted.load(), s.rejected.load(), s.accept_errors.load(),
              s.header_timeouts.load(), s.idle_timeouts.load(), s.body_timeouts.load(),
              s.write_timeouts.load(), open_at_stop);

  std::vector<std::string> problems;
  if (!clean) problems.push_back("a runtime did not shut down within 5 s");
  if (s.handler_errors.load() > 0) problems.push_back("some route handlers failed");
  std::size_t checks_passed = 0;
  std::uint64_t answered = 0;
  if (load) {
    const std::vector<demo::LoadCounts> totals = load->totals();
    std::uint64_t failed = 0;
    for (std::size_t i = 0; i < routes->routes().size(); ++i) {
      const demo::LoadCounts c = i < totals.size() ? totals[i] : demo::LoadCounts{};
      answered += c.ok;
      failed += c.failed;
      if (c.ok == 0 || routes->routes()[i].monitor.cumulative().instrumented_count == 0) {
        problems.push_back("route " + routes->routes()[i].path + " was never served");
      }
    }
    if (failed > 0) problems.push_back(std::to_string(failed) + " load requests failed");
    const std::vector<demo::CheckResult> checks = load->checks();
    for (const demo::CheckResult& c : checks) {
      if (c.passed) {
        ++checks_passed;
      } else {
        problems.push_back("self-check '" + c.name + "' failed: " + c.detail);
      }
    }
    if (checks.size() < load->expected_checks()) {
      problems.push_back("only " + std::to_string(checks.size()) + " of " +
                         std::to_string(load->expected_checks()) + " self-checks finished");
    }
  }
  if (!problems.empty()) {
    std::string all;
    for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
    std::printf("spindle-demo: INCOMPLETE: %s\n", all.c_str());
    return 1;
  }
  if (load) {
    std::printf("spindle-demo: OK: all %zu routes served (%" PRIu64
                " requests answered, none failed; %zu/%zu protocol self-checks passed), clean "
                "shutdown\n",
                routes->routes().size(), answered, checks_passed, load->expected_checks());
  } else {
    std::printf("spindle-demo: OK: clean shutdown after %" PRIu64 " requests\n", s.requests.load());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "an HTTP service that reproduces the causes of slow tasks, with their fixes.\n"
      "Usage: spindle-demo [--listen ADDR:PORT] [--metrics ADDR:PORT] [--workers N] [--load]\n"
      "                    [--duration S] [--no-table] [--quick] [--header-timeout D]\n"
      "                    [--idle-timeout D] [--body-timeout D] [--max-connections N]");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return file.find("examples/demo") != absl::string_view::npos;
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);

  std::vector<std::string> args = normalize_flag_names(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  const std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  if (rest.size() > 1) {
    std::fprintf(stderr, "spindle-demo: unexpected argument '%s' (see --help)\n", rest[1]);
    return 2;
  }
  Options options;
  try {
    options = read_flags();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "spindle-demo: %s\n", e.what());
    return 2;
  }

  // Before any thread starts, so that every thread inherits the mask: SIGINT and SIGTERM
  // are only ever taken by sigtimedwait() in run(). SIGPIPE is ignored (a client that
  // goes away mid-write is an error on that connection, not the end of the process).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  try {
    return run(options, signals);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "spindle-demo: %s\n", e.what());
    return 1;
  }
}
