// examples/starvation/scenarios.hpp — the starvation catalogue's scenarios, shared by the
// spindle-starvation example and its tests (tests/io/starvation_test.cpp).
//
//   starvation::Scenario      one cause of a slow task from the seed talk, or one fix for it
//   starvation::Options       how long the culprit runs, the probe's period, the runtime flavour
//   starvation::Report        how late the probe's wakes were while the culprit ran
//   starvation::run_scenario  builds a runtime, runs probe + culprit on it, measures
//   starvation::describe      the cause and variant of a Scenario, in words
//
// Example:
//   starvation::Options o;                        // current_thread, 500 ms culprits
//   starvation::Report r = starvation::run_scenario(starvation::Scenario::kThreadSleep, o);
//   std::printf("worst probe lateness: %.1f ms\n", r.lateness.max_ms);
//
// The measurement. A *probe* task wants to wake every `probe_period`: it
// sleeps until a deadline with spindle::sleep_until and records how late it
// actually woke (woke - due). A healthy runtime wakes it within a
// millisecond or so; a starved one wakes it only when the culprit lets go of
// the thread. The report covers the probe's wakes that were due while the
// culprit ran (plus the first one after, which the culprit delayed).
//
// The causes (the seed talk's "common reasons" one task starves others):
//   1. synchronous sleep or I/O inside a task: the thread sleeps, and with it
//      every task queued there. Fixes: run it on the blocking pool
//      (spawn_blocking), or use the async equivalent (spindle::sleep).
//   2. a big loop that never awaits: cooperative scheduling cannot interrupt
//      it. Fixes: co_await yield_now() every N iterations, or spawn_blocking
//      for pure CPU work.
//   3. a lock held across a suspension: a task holds a blocking lock while it
//      awaits (here, an awaited sleep stands in for an I/O call); a second task
//      that wants the lock blocks its *thread*, and the holder, which needs
//      that thread to resume and unlock, cannot run. On one thread that is a
//      deadlock. The demo's blocking lock is a std::binary_semaphore: it
//      blocks a thread exactly like std::mutex, but it has no owner, so the
//      waiter can give up after a deadline (a std::mutex would deadlock for
//      good: locking it again on the thread that holds it is undefined
//      behaviour, and so is unlocking it from the other worker the holder may
//      resume on). Fix: spindle::sync::Mutex, whose waiters wait as tasks.
//
// Thread safety: run_scenario may be called from any thread outside a
// spindle runtime; each call builds and destroys its own runtime.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <semaphore>
#include <spindle/runtime.hpp>
#include <spindle/sync/mutex.hpp>
#include <thread>
#include <utility>
#include <vector>

namespace starvation {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// A culprit (a cause of starvation) or one of its fixes.
enum class Scenario {
  kThreadSleep,              ///< 1. std::this_thread::sleep_for inside a task
  kThreadSleepOnPool,        ///<    fix: the same sleep inside spawn_blocking
  kAsyncSleep,               ///<    fix: co_await spindle::sleep
  kBusyLoop,                 ///< 2. a loop that computes without awaiting
  kBusyLoopYielding,         ///<    fix: co_await yield_now() every N iterations
  kBusyLoopOnPool,           ///<    fix: the loop inside spawn_blocking
  kBlockingLockAcrossAwait,  ///< 3. a blocking lock held across a co_await, contended
  kAsyncMutex,               ///<    fix: spindle::sync::Mutex
};

/// Every scenario, in catalogue order.
inline constexpr Scenario kAllScenarios[] = {
    Scenario::kThreadSleep,
    Scenario::kThreadSleepOnPool,
    Scenario::kAsyncSleep,
    Scenario::kBusyLoop,
    Scenario::kBusyLoopYielding,
    Scenario::kBusyLoopOnPool,
    Scenario::kBlockingLockAcrossAwait,
    Scenario::kAsyncMutex,
};

/// What a scenario is, in words.
struct Description {
  int cause;            ///< 1, 2 or 3: the cause it shows or fixes
  bool is_fix;          ///< false for the culprit itself
  const char* variant;  ///< one line: what the task does
};

inline Description describe(Scenario s) {
  switch (s) {
    case Scenario::kThreadSleep:
      return {1, false, "std::this_thread::sleep_for inside the task"};
    case Scenario::kThreadSleepOnPool:
      return {1, true, "fix: co_await spawn_blocking(sleep_for)"};
    case Scenario::kAsyncSleep:
      return {1, true, "fix: co_await spindle::sleep"};
    case Scenario::kBusyLoop:
      return {2, false, "a loop that computes and never awaits"};
    case Scenario::kBusyLoopYielding:
      return {2, true, "fix: co_await yield_now() every N iterations"};
    case Scenario::kBusyLoopOnPool:
      return {2, true, "fix: co_await spawn_blocking(the loop)"};
    case Scenario::kBlockingLockAcrossAwait:
      return {3, false, "blocking lock held across co_await; 2nd task blocks"};
    case Scenario::kAsyncMutex:
      return {3, true, "fix: spindle::sync::Mutex (2nd task waits as a task)"};
  }
  return {0, false, "?"};
}

/// How a scenario is run.
struct Options {
  milliseconds block{500};        ///< how long the culprit works / sleeps / holds the lock
  milliseconds probe_period{10};  ///< the probe wants to wake this often
  int workers = 0;                ///< 0: current_thread; else multi_thread with this many
  int yield_every = 256;          ///< kBusyLoopYielding: loop iterations between yields
};

/// Lateness of the probe's wakes, in milliseconds (nearest-rank percentiles).
struct Lateness {
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

/// What one scenario run measured.
struct Report {
  Scenario scenario = Scenario::kThreadSleep;
  Lateness lateness;          ///< of the probe wakes due while the culprit ran
  int probe_wakes = 0;        ///< how many such wakes there were
  double culprit_ms = 0;      ///< how long the culprit ran, start to end
  bool lock_gave_up = false;  ///< cause 3: the second task gave up waiting for the lock
  int guarded_value = 0;      ///< cause 3: the locked counter at the end (11: both updated)
};

namespace detail {

/// What the probe writes; read only after the runtime is done with it.
struct ProbeLog {
  std::vector<std::pair<Clock::time_point, Clock::time_point>> wakes;  // (due, woke)
  std::atomic<bool> stop{false};                                       // tells the probe to finish
};

/// Wakes every `period` and records how late each wake was.
inline spindle::Task<void> probe(ProbeLog& log, milliseconds period) {
  while (!log.stop.load(std::memory_order_acquire)) {
    const Clock::time_point due = Clock::now() + period;
    co_await spindle::sleep_until(due);
    log.wakes.emplace_back(due, Clock::now());
  }
}

/// One loop iteration's worth of CPU work (a xorshift walk the optimizer keeps).
inline std::uint64_t crunch(std::uint64_t x) {
  for (int i = 0; i < 64; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

/// Cause 2: iterates until `until`, awaiting yield_now() every `yield_every`
/// iterations (never, if 0). The loop is bounded by time rather than by an
/// item count so that the demo lasts as long on every machine.
inline spindle::Task<std::uint64_t> big_loop(Clock::time_point until, int yield_every) {
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (long i = 1; Clock::now() < until; ++i) {
    x = crunch(x);
    if (yield_every > 0 && i % yield_every == 0) co_await spindle::yield_now();
  }
  co_return x;
}

/// The same loop as a plain function, for spawn_blocking.
inline std::uint64_t big_loop_blocking(Clock::time_point until) {
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  while (Clock::now() < until) x = crunch(x);
  return x;
}

/// Cause 3, the hazard. The blocking lock stands in for std::mutex (see the
/// file comment for why it is a semaphore).
struct BlockingLockState {
  std::binary_semaphore lock{1};  // a blocking lock: acquire() blocks the thread
  std::atomic<bool> held{false};  // the holder has the lock
  bool gave_up = false;           // the contender gave up (written by it, read after join)
  int value = 0;                  // what the lock guards
};

inline spindle::Task<void> blocking_holder(BlockingLockState& s, milliseconds io) {
  s.lock.acquire();
  s.held.store(true);
  const int v = s.value;
  co_await spindle::sleep(io);  // an awaited call while holding a blocking lock: the bug
  s.value = v + 1;
  s.lock.release();
}

inline spindle::Task<void> blocking_contender(BlockingLockState& s, milliseconds give_up_after) {
  while (!s.held.load()) co_await spindle::yield_now();
  // Blocks this worker's thread. On current_thread the holder can only be
  // resumed by this very thread: a plain lock() would never return.
  if (!s.lock.try_acquire_for(give_up_after)) {
    s.gave_up = true;
    co_return;
  }
  s.value += 10;
  s.lock.release();
}

/// Cause 3, fixed: the same two tasks on spindle::sync::Mutex.
inline spindle::Task<void> async_holder(spindle::sync::Mutex<int>& m, std::atomic<bool>& held,
                                        milliseconds io) {
  auto guard = co_await m.lock();
  held.store(true);
  const int v = *guard;
  co_await spindle::sleep(io);  // fine: a waiter waits as a task, the thread stays free
  *guard = v + 1;
}

inline spindle::Task<void> async_contender(spindle::sync::Mutex<int>& m, std::atomic<bool>& held) {
  while (!held.load()) co_await spindle::yield_now();
  auto guard = co_await m.lock();
  *guard += 10;
}

/// Runs the culprit (or fix) of `s` to completion.
inline spindle::Task<void> culprit(Scenario s, Options o, Report& r) {
  const Clock::time_point until = Clock::now() + o.block;
  switch (s) {
    case Scenario::kThreadSleep:
      std::this_thread::sleep_for(o.block);  // the thread sleeps, and every task queued on it
      break;
    case Scenario::kThreadSleepOnPool:
      co_await spindle::spawn_blocking([d = o.block] { std::this_thread::sleep_for(d); });
      break;
    case Scenario::kAsyncSleep:
      co_await spindle::sleep(o.block);
      break;
    case Scenario::kBusyLoop:
      (void)co_await big_loop(until, 0);
      break;
    case Scenario::kBusyLoopYielding:
      (void)co_await big_loop(until, o.yield_every);
      break;
    case Scenario::kBusyLoopOnPool:
      (void)co_await spindle::spawn_blocking([until] { return big_loop_blocking(until); });
      break;
    case Scenario::kBlockingLockAcrossAwait: {
      BlockingLockState state;
      auto holder = spindle::spawn(blocking_holder(state, o.block));
      auto contender = spindle::spawn(blocking_contender(state, o.block));
      co_await holder;
      co_await contender;
      r.lock_gave_up = state.gave_up;
      r.guarded_value = state.value;
      break;
    }
    case Scenario::kAsyncMutex: {
      spindle::sync::Mutex<int> m;
      std::atomic<bool> held{false};
      auto holder = spindle::spawn(async_holder(m, held, o.block));
      auto contender = spindle::spawn(async_contender(m, held));
      co_await holder;
      co_await contender;
      r.guarded_value = *co_await m.lock();
      break;
    }
  }
}

/// Starts the probe, lets it settle, runs the culprit, lets the probe
/// record its first wake after the culprit, and stops it.
inline spindle::Task<void> orchestrate(Scenario s, Options o, ProbeLog& log, Report& r,
                                       Clock::time_point& start, Clock::time_point& end) {
  auto p = spindle::spawn(probe(log, o.probe_period));
  co_await spindle::sleep(3 * o.probe_period);
  start = Clock::now();
  co_await spindle::spawn(culprit(s, o, r));
  end = Clock::now();
  co_await spindle::sleep(3 * o.probe_period);
  log.stop.store(true, std::memory_order_release);
  co_await p;
}

inline double to_ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

/// Nearest-rank percentile of sorted `v` (non-empty), q in (0, 1].
inline double percentile(const std::vector<double>& v, double q) {
  auto rank = static_cast<std::size_t>(q * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

}  // namespace detail

/// Runs scenario `s` on a fresh runtime and measures the probe. Blocks the
/// calling thread for about o.block plus a few probe periods.
inline Report run_scenario(Scenario s, const Options& o) {
  Report r;
  r.scenario = s;
  detail::ProbeLog log;
  log.wakes.reserve(static_cast<std::size_t>(o.block / o.probe_period) + 64);
  Clock::time_point start;
  Clock::time_point end;
  {
    spindle::Runtime rt = o.workers == 0
                              ? spindle::Runtime::Builder().current_thread().build()
                              : spindle::Runtime::Builder().worker_threads(o.workers).build();
    rt.block_on(detail::orchestrate(s, o, log, r, start, end));
  }
  r.culprit_ms = detail::to_ms(end - start);
  std::vector<double> late;
  for (const auto& [due, woke] : log.wakes) {
    if (woke >= start && due <= end) late.push_back(detail::to_ms(woke - due));
  }
  r.probe_wakes = static_cast<int>(late.size());
  if (!late.empty()) {
    std::sort(late.begin(), late.end());
    r.lateness = {detail::percentile(late, 0.50), detail::percentile(late, 0.99), late.back()};
  }
  return r;
}

}  // namespace starvation
