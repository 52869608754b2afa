// spindle-exporter-test-server — a PrometheusExporter to point real clients at.
//
// A runtime (--workers, default 2) whose N monitored task groups keep running
// (so every series moves), exported on --bind (default 127.0.0.1:0). With --tls-dir
// (the output of make_test_certs.sh) it serves HTTPS with server.crt and
// server.key, and with --mutual asks for a client certificate signed by
// ca.crt. The chosen port is written to --port-file; the server runs until
// SIGTERM or SIGINT. With --poll-mix FILE it also exports monitor "mix",
// whose 1,000 polls were timed on a manual clock on a runtime of their
// own: 985 of 40 µs and 15 of 30 ms (so its p99 is in the slow mode); its
// in-process Histogram::quantile(0.99), in seconds, is written to FILE,
// for a Prometheus scraping the native histogram to be compared with.
//
//   spindle-exporter-test-server --monitors 100 --port-file /tmp/port &
//   wrk -t2 -c10 -d10s --latency http://127.0.0.1:$(cat /tmp/port)/metrics
//
// Used by prometheus_scrape_test.sh (a real Prometheus scraping over mutual
// TLS, gzip-compressed; with --native-histograms, the protobuf format), for bench/README.md's wrk
// figures and for the series count per instance in deploy/README.md (--monitors 100 --workers 16).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "spindle/exporter.hpp"
#include "spindle/monitor.hpp"
#include "spindle/runtime.hpp"
#include "support/manual_clock.hpp"

namespace {

spindle::Task<void> work(std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
    co_await spindle::sleep(std::chrono::milliseconds(20));
    co_await spindle::yield_now();
  }
}

/// `n` polls that each last `d` on `clock`.
spindle::Task<void> timed_polls(spindle::test::ManualClock* clock, int n,
                                std::chrono::nanoseconds d) {
  for (int i = 0; i < n; ++i) {
    clock->advance(d);
    if (i + 1 < n) co_await spindle::yield_now();
  }
}

/// The two modes of --poll-mix, one task.
spindle::Task<void> poll_mix(spindle::test::ManualClock* clock) {
  co_await timed_polls(clock, 985, std::chrono::microseconds(40));
  co_await spindle::yield_now();
  co_await timed_polls(clock, 15, std::chrono::milliseconds(30));
}

/// Waits for the task behind `h` (a current_thread runtime's block_on driver).
spindle::Task<void> joined(spindle::JoinHandle<void>& h) { co_await h; }

/// Writes `text` to `path` whole (a rename), so that a reader never sees half of it.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());
}

int usage() {
  std::fprintf(stderr,
               "usage: spindle-exporter-test-server [--monitors N] [--workers N] [--bind ADDR] "
               "[--tls-dir DIR [--mutual]] [--port-file FILE] [--poll-mix FILE]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int monitors = 10;
  int workers = 2;
  std::string bind = "127.0.0.1:0";
  std::string tls_dir;
  bool mutual = false;
  std::string port_file;
  std::string mix_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--monitors" && has_value) {
      monitors = std::atoi(argv[++i]);
    } else if (a == "--workers" && has_value) {
      workers = std::atoi(argv[++i]);
    } else if (a == "--bind" && has_value) {
      bind = argv[++i];
    } else if (a == "--tls-dir" && has_value) {
      tls_dir = argv[++i];
    } else if (a == "--mutual") {
      mutual = true;
    } else if (a == "--port-file" && has_value) {
      port_file = argv[++i];
    } else if (a == "--poll-mix" && has_value) {
      mix_file = argv[++i];
    } else {
      return usage();
    }
  }
  if (workers < 1) return usage();
  // Signals are taken by sigwait below, not by whichever thread they hit.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto rt = spindle::Runtime::Builder().worker_threads(workers).poll_timing(true).build();
  spindle::PrometheusExporter::Options options{
      .bind_address = bind,
      .const_labels = {{"service", "test-server"}},
      .max_monitors = static_cast<std::size_t>(monitors > 0 ? monitors : 1) + 1};
  if (!tls_dir.empty()) {
    options.tls =
        spindle::PrometheusExporter::Tls{.certificate_file = tls_dir + "/server.crt",
                                         .private_key_file = tls_dir + "/server.key",
                                         .client_ca_file = mutual ? tls_dir + "/ca.crt" : ""};
  }
  try {
    spindle::PrometheusExporter exporter(std::move(options));
    exporter.add_runtime(rt.handle(), "main",
                         std::make_shared<spindle::StallDetector>(rt.handle()));
    std::atomic<bool> stop{false};
    std::vector<spindle::TaskMonitor> mons;
    std::vector<spindle::JoinHandle<void>> tasks;
    for (int i = 0; i < monitors; ++i) {
      mons.push_back(spindle::TaskMonitor::Builder().name("monitor_" + std::to_string(i)).build());
      exporter.add_monitor(mons.back());
      tasks.push_back(rt.spawn(mons.back().instrument(work(stop))));
    }
    // The mix: exact durations on a manual clock (a current_thread runtime
    // and its monitor both read it), finished before the first scrape.
    auto clock = std::make_shared<spindle::test::ManualClock>();
    auto mix_rt = spindle::Runtime::Builder().current_thread().clock(clock->source()).build();
    const auto mix = spindle::TaskMonitor::Builder().name("mix").clock(clock->source()).build();
    if (!mix_file.empty()) {
      auto handle = mix_rt.spawn(mix.instrument(poll_mix(clock.get())));
      mix_rt.block_on(joined(handle));
      exporter.add_monitor(mix);
      const auto p99 = mix.cumulative().poll_duration_histogram.quantile(0.99);
      char line[64];
      std::snprintf(line, sizeof line, "%.9g\n", static_cast<double>(p99.count()) / 1e9);
      write_file(mix_file, line);
    }
    if (!port_file.empty()) write_file(port_file, std::to_string(exporter.port()) + "\n");
    std::printf("serving on port %u\n", static_cast<unsigned>(exporter.port()));
    std::fflush(stdout);
    int sig = 0;
    sigwait(&signals, &sig);
    stop.store(true);
    for (auto& t : tasks) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spindle-exporter-test-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
