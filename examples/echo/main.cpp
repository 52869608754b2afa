// spindle-echo — a TCP echo server on spindle::use_task.
//
// What it shows. Plain Asio I/O objects awaited from spindle tasks: an
// acceptor task on spindle::this_executor(), one task per connection, each
// awaiting async_read_some and asio::async_write with spindle::use_task. An
// error (a client that resets, a broken pipe) is an exception inside that
// connection's task and ends that connection only. The server itself is in
// echo_server.hpp, which the test (tests/io/echo_test.cpp) starts in-process
// and drives with many concurrent clients.
//
// Usage: spindle-echo [--port N] [--workers N] [--seconds S] [--help]
//   --port N     TCP port on 127.0.0.1 (default 0: pick a free one and print it)
//   --workers N  worker threads (default: one per hardware thread; 0: current_thread)
//   --seconds S  stop after S seconds and print what was served (default 0: run until killed)
//
// Try it:  spindle-echo --port 7777 &   then   nc 127.0.0.1 7777

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include "echo_server.hpp"

namespace {

struct Options {
  long port = 0;       // --port
  long workers = -1;   // --workers; -1: hardware concurrency
  double seconds = 0;  // --seconds; 0: forever
};

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: spindle-echo [--port N] [--workers N] [--seconds S] [--help]\n"
               "A TCP echo server on 127.0.0.1 built on spindle tasks and spindle::use_task.\n"
               "  --port N     port to listen on (default 0: pick a free one and print it)\n"
               "  --workers N  worker threads (default: hardware threads; 0: current_thread)\n"
               "  --seconds S  stop after S seconds and print a summary (default 0: forever)\n"
               "  --help       show this text\n");
}

// Parses "--flag value" numbers; false (with a message) on anything else.
bool parse_number(const char* flag, const char* text, double lo, double hi, double& out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "spindle-echo: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi,
                 text);
    return false;
  }
  out = v;
  return true;
}

// Serves until `seconds` pass (or forever), then stops accepting.
spindle::Task<void> run(echo::Config cfg, double seconds, std::shared_ptr<echo::Stats> stats) {
  auto [tx, rx] = spindle::sync::oneshot<std::uint16_t>();
  spindle::JoinHandle<void> server = spindle::spawn(echo::serve(cfg, stats, std::move(tx)));
  std::uint16_t port = 0;
  bool listening = true;
  try {
    port = co_await rx;
  } catch (const spindle::sync::RecvError&) {
    listening = false;
  }
  if (!listening) co_await server;  // rethrows why serve() could not listen
  std::printf("spindle-echo: listening on %s:%u\n", cfg.address.c_str(),
              static_cast<unsigned>(port));
  std::fflush(stdout);
  if (seconds <= 0) {
    co_await server;  // forever
    co_return;
  }
  co_await spindle::sleep(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds)));
  server.abort();  // closes the listening socket; the runtime's shutdown closes the rest
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_usage(stdout);
      return 0;
    }
    if ((arg == "--port" || arg == "--workers" || arg == "--seconds") && i + 1 < argc) {
      double v = 0;
      const char* text = argv[++i];
      if (arg == "--port") {
        if (!parse_number("--port", text, 0, 65535, v)) return 2;
        o.port = static_cast<long>(v);
      } else if (arg == "--workers") {
        if (!parse_number("--workers", text, 0, 4096, v)) return 2;
        o.workers = static_cast<long>(v);
      } else {
        if (!parse_number("--seconds", text, 0, 1e9, v)) return 2;
        o.seconds = v;
      }
      continue;
    }
    std::fprintf(stderr, "spindle-echo: unknown or incomplete argument '%s'\n", argv[i]);
    print_usage(stderr);
    return 2;
  }

  auto stats = std::make_shared<echo::Stats>();
  try {
    echo::Config cfg;
    cfg.port = static_cast<std::uint16_t>(o.port);
    spindle::Runtime::Builder builder;
    if (o.workers == 0) {
      builder.current_thread();
    } else if (o.workers > 0) {
      builder.worker_threads(static_cast<int>(o.workers));
    }
    spindle::Runtime rt = builder.build();
    const std::size_t workers = rt.handle().num_workers();
    std::printf("spindle-echo: %s runtime, %zu worker%s\n",
                rt.handle().is_current_thread() ? "current_thread" : "multi_thread", workers,
                workers == 1 ? "" : "s");
    rt.block_on(run(cfg, o.seconds, stats));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spindle-echo: %s\n", e.what());
    return 1;
  }
  std::printf(
      "spindle-echo: stopped after %g s: %llu connections accepted, %llu bytes echoed, "
      "%llu connection errors, %llu accept errors\n",
      o.seconds, static_cast<unsigned long long>(stats->accepted.load()),
      static_cast<unsigned long long>(stats->bytes_echoed.load()),
      static_cast<unsigned long long>(stats->connection_errors.load()),
      static_cast<unsigned long long>(stats->accept_errors.load()));
  return 0;
}
