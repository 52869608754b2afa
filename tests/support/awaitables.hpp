// tests/support/awaitables.hpp — hand-written awaitables that drive the Waker API directly.
//
//   spindle::test::WakerSlot      where a suspended task's Waker is parked for the test
//   spindle::test::park_in(slot)  suspends the task, leaving its Waker in `slot`
//   spindle::test::wake_self()    wakes the task from inside its own poll, then suspends
//
// Example:
//   spindle::test::WakerSlot slot;
//   auto h = rt.spawn([](spindle::test::WakerSlot& slot) -> spindle::Task<void> {
//     co_await spindle::test::park_in(slot);   // resumes once the test wakes it
//   }(slot));
//   ASSERT_TRUE(slot.wait_filled());
//   slot.take().wake();
//
// Thread safety: WakerSlot is safe from any thread.
#pragma once

#include <coroutine>
#include <mutex>
#include <optional>
#include <spindle/runtime/waker.hpp>

#include "support/sync.hpp"

namespace spindle::test {

/// Holds the Waker of a task suspended in park_in().
class WakerSlot {
 public:
  void fill(Waker w) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      waker_ = std::move(w);
    }
    filled_.set();
  }
  /// Waits until a task parked its Waker here.
  [[nodiscard]] bool wait_filled(std::chrono::nanoseconds limit = kPatience) {
    return filled_.wait(limit);
  }
  /// Takes the Waker out (empty if none).
  Waker take() {
    std::lock_guard<std::mutex> lock(mu_);
    Waker w = std::move(waker_);
    waker_ = Waker();
    return w;
  }

 private:
  std::mutex mu_;  // guards waker_
  Waker waker_;    // the parked task's waker
  Event filled_;   // set by fill()
};

/// Suspends the calling task; its Waker goes to `slot`.
struct ParkIn {
  WakerSlot* slot;
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const { slot->fill(current_waker(h)); }
  void await_resume() const noexcept {}
};
[[nodiscard]] inline ParkIn park_in(WakerSlot& slot) { return ParkIn{&slot}; }

/// Wakes the calling task during its own poll, then suspends: the runtime
/// must re-queue it at the end of the poll (a self-wake).
struct WakeSelf {
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { current_waker(h).wake(); }
  void await_resume() const noexcept {}
};
[[nodiscard]] inline WakeSelf wake_self() { return {}; }

}  // namespace spindle::test
