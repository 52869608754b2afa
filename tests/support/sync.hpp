// tests/support/sync.hpp — thread-side waiting helpers for runtime tests.
//
//   spindle::test::Event       a flag that one thread sets and others wait for
//   spindle::test::eventually  polls a condition that is guaranteed to become true
//   spindle::test::kPatience   how long a test waits before declaring a hang
//
// Tests wait on real events (a task reached a point, a hook was called), never
// on sleeps. The time limits below are not part of any assertion about speed:
// they only turn a hang (a lost wake-up, a deadlock) into a failed assertion
// instead of a test that never ends. They are generous, because sanitizer
// builds on a loaded 2-core machine are slow.
//
// Example:
//   spindle::test::Event started;
//   auto h = rt.spawn([](spindle::test::Event& started) -> spindle::Task<void> {
//     started.set();
//     co_return;
//   }(started));
//   ASSERT_TRUE(started.wait());
//
// Thread safety: every member is safe to call from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace spindle::test {

/// How long to wait for something that must happen before calling it a hang.
inline constexpr std::chrono::seconds kPatience{60};

/// A one-way flag: set() once, wait() from any number of threads.
class Event {
 public:
  void set() {
    std::lock_guard<std::mutex> lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  /// True once set; false if `limit` passed first (a hang in the code under test).
  [[nodiscard]] bool wait(std::chrono::nanoseconds limit = kPatience) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [this] { return set_; });
  }
  [[nodiscard]] bool is_set() {
    std::lock_guard<std::mutex> lock(mu_);
    return set_;
  }

 private:
  std::mutex mu_;               // guards set_
  std::condition_variable cv_;  // signalled by set()
  bool set_ = false;            // set() was called
};

/// Polls `pred` until it returns true (returns true) or `limit` passes
/// (returns false). For conditions that the code under test guarantees will
/// become true shortly, but that no event announces (a counter settling).
template <class Pred>
[[nodiscard]] bool eventually(Pred&& pred, std::chrono::nanoseconds limit = kPatience) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace spindle::test
