// spindle-seed-demo — the seed talk's demonstration: one task can starve the others.
//
// What it shows. spindle schedules tasks cooperatively: a worker thread runs
// one task until that task awaits something, and nothing can interrupt it. So
// a task that computes for a long time without awaiting keeps every other
// task queued on its thread from running. The demo plays three acts, each
// with the same two tasks:
//   - the *heartbeat* wants to run every 100 ms and writes down the wall-clock
//     time of every beat it actually manages;
//   - the *cruncher* does ~1.5 s of CPU work (a loop that only computes).
//   Act 1  current_thread runtime, the cruncher never awaits: the heartbeat is
//          starved for the cruncher's whole run.
//   Act 2  the same, but the cruncher awaits spindle::yield_now() after every
//          5 ms of work: the heartbeat is at most about one slice late.
//   Act 3  multi_thread runtime with 2 workers, the cruncher never awaits: the
//          other worker runs the heartbeat, which keeps beating.
// The output ends with what to do about it and a table of the results.
//
// How to read it. For each act: how many beats the heartbeat managed while the
// cruncher ran (against how many it wanted) and the *longest gap* between two
// beats. A healthy heartbeat shows gaps just over 100 ms; a starved one shows a
// gap as long as the cruncher's run. The numbers vary from run to run; the
// shape of the output does not.
//
// How it is built. The heartbeat does not sleep on a timer: a timer lives on
// the io_context of the worker where it was started, and if that is the
// cruncher's worker it could not fire until the crunch ends, which would mix
// a second effect into act 3. Instead it spins cooperatively (check the
// clock, beat if 100 ms have passed, co_await yield_now(), repeat) until the
// cruncher raises a flag saying it is done. The cruncher first waits for the heartbeat's first beat, so that both
// are measured from the same start whichever one a worker picks up first. Both
// tasks are spawned from main() (outside the runtime, through the injection
// queue), so on a multi_thread runtime either worker may run either task.
//
// Usage: spindle-seed-demo [--quick] [--help]
//   --quick  shorter acts (0.5 s of crunching each), for tests.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <spindle/runtime.hpp>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kBeatPeriod{100};   // the heartbeat wants to run this often
constexpr milliseconds kSlice{5};          // act 2: the cruncher yields after this much work
constexpr milliseconds kCrunchFull{1500};  // the cruncher's CPU work per act
constexpr milliseconds kCrunchQuick{500};  // the same with --quick

// What one act's two tasks share. The heartbeat writes `beats` and
// `beat_threads`, the cruncher the `crunch_*` fields; main() reads them only
// after both tasks finished (awaiting their JoinHandles orders those writes
// before the reads).
struct ActState {
  std::atomic<bool> heartbeat_started{false};  // set at the first beat
  std::atomic<bool> cruncher_done{false};      // tells the heartbeat to stop
  std::vector<Clock::time_point> beats;        // when the heartbeat got to run
  std::vector<std::thread::id> beat_threads;   // and on which thread
  Clock::time_point crunch_start;              // the cruncher's work began
  Clock::time_point crunch_end;                // ... and ended
  std::thread::id crunch_thread;               // the thread the cruncher worked on
  std::uint64_t checksum = 0;                  // the cruncher's result (keeps its work alive)
};

// How an act is set up.
struct ActConfig {
  bool multi_thread;       // 2 worker threads, else current_thread
  bool cruncher_yields;    // co_await yield_now() after every kSlice of work
  Clock::duration crunch;  // total work
};

// What an act measured.
struct ActResult {
  double longest_gap_ms = 0;      // longest time between two beats
  int beats_during_crunch = 0;    // beats while the cruncher was working
  int beats_wanted = 0;           // crunch / kBeatPeriod
  int beats_on_other_thread = 0;  // of those, beats on a thread other than the cruncher's
  bool starved = false;           // longest gap > 3 beat periods
};

double to_ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Burns CPU until `until`: a xorshift walk the optimizer cannot remove,
// with a clock reading every few microseconds. Never awaits anything.
std::uint64_t burn_until(std::uint64_t x, Clock::time_point until) {
  do {
    for (int i = 0; i < 2048; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
  } while (Clock::now() < until);
  return x;
}

// Wants to run every kBeatPeriod; records each time it does. It has no timer
// to sleep on, so it spins cooperatively: every turn through the loop gives
// the thread back with yield_now(). It beats once more after the cruncher is
// done if a beat is due, so the gap the cruncher caused is recorded.
spindle::Task<void> heartbeat(ActState& s) {
  for (;;) {
    Clock::time_point now = Clock::now();
    if (s.beats.empty() || now - s.beats.back() >= kBeatPeriod) {
      s.beats.push_back(now);
      s.beat_threads.push_back(std::this_thread::get_id());
      // release: pairs with the cruncher's acquire load (only a signal; the
      // vectors are read by main() after both tasks finished).
      s.heartbeat_started.store(true, std::memory_order_release);
    }
    // acquire: pairs with the cruncher's release store.
    if (s.cruncher_done.load(std::memory_order_acquire)) co_return;
    co_await spindle::yield_now();
  }
}

// Computes for `cfg.crunch`. Without yields it never gives its thread back
// until it is done; with yields it awaits yield_now() after every kSlice.
spindle::Task<std::uint64_t> cruncher(ActState& s, ActConfig cfg) {
  // Start together with the heartbeat (this wait yields; the work below does not).
  while (!s.heartbeat_started.load(std::memory_order_acquire)) co_await spindle::yield_now();
  s.crunch_thread = std::this_thread::get_id();
  s.crunch_start = Clock::now();
  const Clock::time_point end = s.crunch_start + cfg.crunch;
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  if (!cfg.cruncher_yields) {
    x = burn_until(x, end);  // ~1.5 s without a single co_await
  } else {
    for (Clock::time_point now = s.crunch_start; now < end; now = Clock::now()) {
      x = burn_until(x, std::min<Clock::time_point>(now + kSlice, end));
      co_await spindle::yield_now();  // let the rest of the queue run
    }
  }
  s.crunch_end = Clock::now();
  s.cruncher_done.store(true, std::memory_order_release);  // see heartbeat()
  co_return x;
}

// Waits for both tasks of an act (runs under block_on).
spindle::Task<void> join_both(ActState& s, spindle::JoinHandle<void> beat,
                              spindle::JoinHandle<std::uint64_t> crunch) {
  s.checksum = co_await crunch;
  co_await beat;
}

ActResult run_act(const ActConfig& cfg) {
  ActState s;
  s.beats.reserve(256);
  s.beat_threads.reserve(256);
  {
    spindle::Runtime rt = cfg.multi_thread ? spindle::Runtime::Builder().worker_threads(2).build()
                                           : spindle::Runtime::Builder().current_thread().build();
    // Spawned from outside the runtime: on multi_thread, either worker may
    // take either task. On current_thread they run once block_on drives them.
    auto beat = rt.spawn(heartbeat(s));
    auto crunch = rt.spawn(cruncher(s, cfg));
    rt.block_on(join_both(s, std::move(beat), std::move(crunch)));
  }  // the runtime shuts down here

  ActResult r;
  for (std::size_t i = 1; i < s.beats.size(); ++i) {
    r.longest_gap_ms = std::max(r.longest_gap_ms, to_ms(s.beats[i] - s.beats[i - 1]));
  }
  for (std::size_t i = 0; i < s.beats.size(); ++i) {
    if (s.beats[i] > s.crunch_start && s.beats[i] < s.crunch_end) {
      ++r.beats_during_crunch;
      if (s.beat_threads[i] != s.crunch_thread) ++r.beats_on_other_thread;
    }
  }
  r.beats_wanted = static_cast<int>((s.crunch_end - s.crunch_start) / kBeatPeriod);
  r.starved = r.longest_gap_ms > 3.0 * to_ms(kBeatPeriod);
  return r;
}

long long round_ms(double ms) { return std::llround(ms); }

// Prints an act's two result lines: the numbers, then what they mean.
void report(const ActResult& r, const char* if_starved, const char* if_beating) {
  std::printf("  heartbeat: %d beats while the cruncher ran (wanted ~%d); longest gap %lld ms\n",
              r.beats_during_crunch, r.beats_wanted, round_ms(r.longest_gap_ms));
  std::printf("  -> %s\n", r.starved ? if_starved : if_beating);
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: spindle-seed-demo [--quick] [--help]\n"
               "Replays the seed talk's demonstration: a task that computes without awaiting\n"
               "starves the other tasks on its thread. Three acts of ~1.5 s each.\n"
               "  --quick  shorter acts (~0.5 s each), for tests\n"
               "  --help   show this text\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "spindle-seed-demo: unknown argument '%s'\n", argv[i]);
      print_usage(stderr);
      return 2;
    }
  }
  const Clock::duration crunch = quick ? kCrunchQuick : kCrunchFull;
  const long long period_ms = kBeatPeriod.count();
  const long long slice_ms = kSlice.count();

  try {
    std::printf("spindle seed demo: one busy task can starve the others on its thread\n");
    std::printf(
        "Two tasks share a runtime. The heartbeat wants to run every %lld ms and notes when\n"
        "it really ran; the cruncher computes for %lld ms. A task keeps its thread until it\n"
        "pauses at a co_await: nothing interrupts it (cooperative scheduling).\n\n",
        period_ms, round_ms(to_ms(crunch)));

    std::printf(
        "Act 1: current_thread runtime (one thread runs all tasks); "
        "the cruncher never awaits.\n");
    ActResult a1 = run_act({.multi_thread = false, .cruncher_yields = false, .crunch = crunch});
    report(a1, "starved: the only thread was busy crunching; the heartbeat waited it out.",
           "kept beating (unexpected here: nothing else could run the heartbeat).");

    std::printf("Act 2: the same, but the cruncher awaits spindle::yield_now() every %lld ms.\n",
                slice_ms);
    ActResult a2 = run_act({.multi_thread = false, .cruncher_yields = true, .crunch = crunch});
    report(a2, "starved (unexpected here: the cruncher yielded often).",
           "kept beating: each yield let the heartbeat run, at most about one slice late.");

    std::printf("Act 3: multi_thread runtime with 2 worker threads; the cruncher never awaits.\n");
    ActResult a3 = run_act({.multi_thread = true, .cruncher_yields = false, .crunch = crunch});
    char mixed[128];
    std::snprintf(mixed, sizeof mixed,
                  "kept beating; %d of those beats on the other worker thread.",
                  a3.beats_on_other_thread);
    report(a3, "starved (unexpected here: the other worker should have picked up the heartbeat).",
           a3.beats_on_other_thread == a3.beats_during_crunch
               ? "kept beating: the other worker thread ran it while the cruncher held one."
               : mixed);

    std::printf(
        "\nWhat to do about it:\n"
        "  - In a long loop, co_await spindle::yield_now() every few milliseconds (act 2).\n"
        "  - Move blocking or CPU-heavy work off the runtime's workers: co_await\n"
        "    spindle::spawn_blocking(f) runs f on a separate pool of threads.\n"
        "  - More workers help only while one is free (act 3): with as many crunchers as\n"
        "    workers, the heartbeat starves again. It depends on your cores.\n");
    std::printf("Longest gap between heartbeats (wanted: one every %lld ms):\n", period_ms);
    std::printf("  act 1  current_thread, never yields  %5lld ms\n", round_ms(a1.longest_gap_ms));
    std::printf("  act 2  current_thread, yield_now     %5lld ms\n", round_ms(a2.longest_gap_ms));
    std::printf("  act 3  2 workers, never yields       %5lld ms\n", round_ms(a3.longest_gap_ms));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spindle-seed-demo: %s\n", e.what());
    return 1;
  }
  return 0;
}
