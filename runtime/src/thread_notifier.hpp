// Internal: a Waker that wakes a blocked thread (JoinHandle::join,
// Receiver::blocking_recv, multi_thread block_on).
#pragma once

#include <atomic>
#include <cstdint>

#include "spindle/runtime/waker.hpp"

namespace spindle::detail {

/// Reference-counted: the blocked thread holds one reference, every Waker
/// another, so a wake that arrives after the thread stopped waiting (and
/// released its reference) still touches live memory.
class ThreadNotifier {
 public:
  static ThreadNotifier* create() { return new ThreadNotifier(); }

  /// A Waker that notifies this thread (takes a reference).
  Waker waker() noexcept {
    refs_.fetch_add(1, std::memory_order_relaxed);
    return Waker(&kVTable, this);
  }
  /// Blocks until notified (returns at once if it already was).
  void wait() noexcept {
    // acquire: pairs with notify()'s release, so whatever the waker
    // published before waking is visible after wait() returns.
    while (notified_.load(std::memory_order_acquire) == 0) {
      notified_.wait(0, std::memory_order_acquire);
    }
  }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  ThreadNotifier() = default;
  void notify() noexcept {
    notified_.store(1, std::memory_order_release);
    notified_.notify_all();
  }

  static void clone_fn(void* p) noexcept {
    static_cast<ThreadNotifier*>(p)->refs_.fetch_add(1, std::memory_order_relaxed);
  }
  static void wake_fn(void* p) noexcept {
    auto* self = static_cast<ThreadNotifier*>(p);
    self->notify();
    self->release();
  }
  static void wake_by_ref_fn(void* p) noexcept { static_cast<ThreadNotifier*>(p)->notify(); }
  static void drop_fn(void* p) noexcept { static_cast<ThreadNotifier*>(p)->release(); }
  static constexpr Waker::VTable kVTable{&clone_fn, &wake_fn, &wake_by_ref_fn, &drop_fn};

  std::atomic<std::uint32_t> refs_{1};      // the blocked thread + every Waker
  std::atomic<std::uint32_t> notified_{0};  // 1 once woken
};

}  // namespace spindle::detail
