// tests/sync/helpers.hpp — small helpers shared by the spindle::sync tests.
//
//   spindle::test::until(pred)        a task that yields until pred() holds (bounded)
//   spindle::test::finishes(handle)   a task that yields until the handle's task finished
//   spindle::test::join(handle)       co_await the handle once finished, or fail without hanging
//   spindle::test::finished_in_time(handle)  on the test thread: the task finished (not hung)
//   spindle::test::forced_yields(h)   budget_forced_yields summed over a runtime's workers
//
// Tests that need a precise interleaving run on a current_thread runtime and
// drive it from inside one task: `EXPECT_TRUE(co_await until([&] { return
// sem.waiter_count() == 2; }))` lets the other tasks run until both are
// queued, without sleeping. The bound (kMaxYields) is far above what any
// test needs; it only turns a lost wake-up into a failed expectation instead
// of a hung test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <spindle/runtime.hpp>
#include <utility>

#include "support/sync.hpp"

namespace spindle::test {

// The coroutines below have internal linkage on purpose: Clang 14's
// -fsanitize=function (part of the asan preset's UBSan) fails to assemble
// coroutines emitted in COMDAT sections (inline functions, templates with
// external linkage): "error: Cannot represent a difference across sections".
namespace {

/// The most yields until() waits before giving up.
constexpr int kMaxYields = 200000;

/// Yields the calling task until `pred()` is true (then returns true), or
/// returns false after kMaxYields yields. `pred` is copied into the frame.
template <class Pred>
Task<bool> until(Pred pred) {
  for (int i = 0; i < kMaxYields; ++i) {
    if (pred()) co_return true;
    co_await spindle::yield_now();
  }
  co_return pred();
}

/// until() the task behind `h` has finished. Await the handle afterwards
/// only when this returned true (else the await could hang the test).
template <class T>
Task<bool> finishes(const JoinHandle<T>& h) {
  return until([&h] { return h.is_finished(); });
}

/// Awaits `h` once its task has finished (rethrowing its exception; a value
/// is dropped). If it does not finish within kMaxYields yields (a lost
/// wake-up), records a failure and returns without waiting; the runtime's
/// shutdown then destroys it.
template <class T>
Task<void> join(JoinHandle<T>& h) {
  // Not `if (co_await ...)`: GCC 12.2 miscompiles a co_await used directly
  // as an if/while condition (the coroutine never starts).
  const bool finished = co_await finishes(h);
  if (finished) {
    (void)co_await h;
  } else {
    ADD_FAILURE() << "a task never finished (a lost wake-up?)";
  }
}

/// On a thread outside the runtime: true once the task behind `h` has
/// finished, false if it has not after kPatience (a hang). Call before a
/// blocking join() whose completion is what the test checks.
template <class T>
[[nodiscard]] bool finished_in_time(const JoinHandle<T>& h) {
  return eventually([&h] { return h.is_finished(); });
}

}  // namespace

/// Forced yields (budget exhausted) counted by all of the runtime's workers.
inline std::uint64_t forced_yields(const spindle::Handle& h) {
  std::uint64_t n = 0;
  for (const auto& w : h.counters().workers) n += w.budget_forced_yields;
  return n;
}

}  // namespace spindle::test
