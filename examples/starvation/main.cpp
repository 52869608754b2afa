// spindle-starvation — the starvation catalogue: each cause of a slow task from
// the seed talk, reproduced next to its fix, with the delay another task sees.
//
// What it shows. A *probe* task wants to wake every 10 ms (spindle::sleep)
// and notes how late each wake is. Next to it a *culprit* misbehaves for
// 500 ms in one of the seed talk's ways — a synchronous sleep inside a task,
// a big loop that never awaits, a blocking lock held across a co_await — or
// does the same job the right way. The table gives the probe's lateness
// (p50 / p99 / max, in ms) over the wakes due while the culprit ran, on a
// current_thread runtime, where one thread runs every task and the effect is
// starkest. The last lines run the three culprits on a 2-worker runtime.
//
// How to read it. A culprit row shows a max lateness about as long as the
// culprit ran and a single wake: the probe could not run at all. A fix row
// shows a p50 near zero, a worst case of a few ms (the yield_now row's note
// explains why its worst case is larger) and most of the probe's ~50 wakes.
// Numbers vary between runs and machines; the contrast does not.
//
// The scenarios live in scenarios.hpp, which tests/io/starvation_test.cpp
// also runs with assertions on the same numbers.
//
// Usage: spindle-starvation [--quick] [--help]
//   --quick  100 ms culprits instead of 500 ms (for tests): ~2 s instead of ~6 s.

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "scenarios.hpp"

namespace {

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: spindle-starvation [--quick] [--help]\n"
               "Reproduces the seed talk's causes of slow tasks (synchronous sleep in a task,\n"
               "a big loop without awaits, a lock held across a co_await) and their fixes, and\n"
               "prints how late a probe task that wakes every 10 ms was woken meanwhile.\n"
               "  --quick  100 ms culprits instead of 500 ms\n"
               "  --help   show this text\n");
}

const char* kCauses[] = {
    "",
    "1. synchronous sleep (or blocking I/O) inside a task",
    "2. a big loop without an await",
    "3. a lock held across a suspension",
};

void print_row(const starvation::Report& r, const starvation::Options& o) {
  const starvation::Description d = starvation::describe(r.scenario);
  std::string variant = d.variant;
  if (r.scenario == starvation::Scenario::kBusyLoopYielding) {
    variant = "fix: co_await yield_now() every " + std::to_string(o.yield_every) + " iterations";
  }
  std::printf("   %-55s %7.1f %7.1f %7.1f %6d\n", variant.c_str(), r.lateness.p50_ms,
              r.lateness.p99_ms, r.lateness.max_ms, r.probe_wakes);
  if (r.scenario == starvation::Scenario::kBusyLoopYielding) {
    std::printf(
        "     (timers fire when the worker polls its io_context: with a task queued,\n"
        "      every 61 polls, so the probe can be ~61 loop slices late)\n");
  }
  if (r.scenario == starvation::Scenario::kBlockingLockAcrossAwait) {
    std::printf("     (%s)\n", r.lock_gave_up
                                   ? "the 2nd task gave up on the lock: a plain lock() never "
                                     "returns, a deadlock"
                                   : "the 2nd task got the lock in the end");
  }
}

}  // namespace

int main(int argc, char** argv) {
  starvation::Options o;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      o.block = starvation::milliseconds(100);
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "spindle-starvation: unknown argument '%s'\n", argv[i]);
      print_usage(stderr);
      return 2;
    }
  }
  const long long block_ms = o.block.count();
  const long long period_ms = o.probe_period.count();

  try {
    std::printf("spindle starvation catalogue: what one misbehaving task costs the others\n");
    std::printf(
        "A probe task sleeps %lld ms at a time (spindle::sleep) and notes how late it wakes.\n"
        "Beside it, a culprit runs for %lld ms: the seed talk's causes of slow tasks, each\n"
        "followed by its fix. current_thread runtime: one thread runs every task.\n\n",
        period_ms, block_ms);
    std::printf("   %-55s %23s %6s\n", "", "probe lateness (ms)", "probe");
    std::printf("   %-55s %7s %7s %7s %6s\n", "culprit / fix", "p50", "p99", "max", "wakes");
    int cause = 0;
    for (starvation::Scenario s : starvation::kAllScenarios) {
      const starvation::Description d = starvation::describe(s);
      if (d.cause != cause) {
        cause = d.cause;
        std::printf("%s\n", kCauses[cause]);
      }
      print_row(starvation::run_scenario(s, o), o);
    }
    std::printf("   (a probe that is never late wakes ~%lld times in %lld ms)\n\n",
                block_ms / period_ms, block_ms);

    starvation::Options two = o;
    two.workers = 2;
    const auto sleep2 = starvation::run_scenario(starvation::Scenario::kThreadSleep, two);
    const auto loop2 = starvation::run_scenario(starvation::Scenario::kBusyLoop, two);
    const auto lock2 =
        starvation::run_scenario(starvation::Scenario::kBlockingLockAcrossAwait, two);
    std::printf("On a 2-worker runtime, the same culprits give the probe a max lateness of\n");
    std::printf("   sync sleep %.1f ms, big loop %.1f ms, lock %.1f ms%s\n", sleep2.lateness.max_ms,
                loop2.lateness.max_ms, lock2.lateness.max_ms,
                lock2.lock_gave_up ? " (the 2nd task gave up: deadlock)" : "");
    const double worst2 =
        std::max({sleep2.lateness.max_ms, loop2.lateness.max_ms, lock2.lateness.max_ms});
    if (worst2 < 0.5 * static_cast<double>(block_ms)) {
      std::printf(
          "   The idle worker compensated: it drives the timers and sockets of a worker\n"
          "   stuck in one poll and runs the tasks they wake. But the culprit still holds a\n"
          "   whole worker: with as many culprits as workers, nothing is left over.\n");
    } else {
      std::printf(
          "   A blocked worker also holds the timers and sockets registered on it (the\n"
          "   probe's, the lock holder's): the other worker can steal queued tasks only.\n"
          "   More workers do not fix a culprit; fixing the task does.\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spindle-starvation: %s\n", e.what());
    return 1;
  }
  return 0;
}
