// spindle/runtime/waker.hpp — the handle that makes a suspended task runnable.
//
//   spindle::Waker       a type-erased, reference-counted "wake this waiter" handle
//   spindle::ReadyCheck  the predicate that says whether a suspended awaiter can resume
//   spindle::current_waker()  the waker of the task being polled on this thread
//
// A Waker is what an awaitable keeps while its task is suspended: the event
// source (a channel, a timer completion, another thread) calls wake() once the
// awaited thing is ready. Waking a task that is already runnable, running, or
// finished is harmless. A Waker may refer to a task or to a blocked thread
// (JoinHandle::join()).
//
// Stale wakes: a Waker can outlive the await it was made for (a timer that
// fired after a race was decided, a channel woken after the receiver gave
// up). When it fires, the task is polled again although the awaiter it is
// now suspended in may not be ready. An awaiter guards against that by
// passing a ReadyCheck to current_waker(): at each poll the runtime calls it
// first and resumes the coroutine only when it returns true; otherwise the
// poll ends at once and the task waits for the next wake. Every spindle
// awaitable installs one; an awaiter without one is resumed by any wake.
//
// Example (a hand-written awaitable):
//   struct Ready {
//     std::optional<spindle::Waker>* slot;
//     bool await_ready() { return false; }
//     void await_suspend(std::coroutine_handle<> h) { *slot = spindle::current_waker(h); }
//     void await_resume() {}
//   };
//   // later, from any thread:  std::move(**slot).wake();
//
// Thread safety: distinct Wakers may be used concurrently; one Waker object
// must not be used by two threads at once (copy it instead). wake() and
// wake_by_ref() are safe from any thread, including threads outside the runtime.
#pragma once

#include <coroutine>
#include <utility>

namespace spindle {

/// Type-erased, reference-counted wake handle. Copying clones the reference;
/// destruction drops it.
class Waker {
 public:
  /// The operations behind a Waker. `data` is the pointer given at construction.
  struct VTable {
    void (*clone)(void* data) noexcept;        ///< take one more reference
    void (*wake)(void* data) noexcept;         ///< wake and drop one reference
    void (*wake_by_ref)(void* data) noexcept;  ///< wake, keep the reference
    void (*drop)(void* data) noexcept;         ///< drop one reference
  };

  Waker() noexcept = default;
  /// Adopts one reference on `data` (the caller has already taken it).
  Waker(const VTable* vtable, void* data) noexcept : vtable_(vtable), data_(data) {}
  Waker(const Waker& other) noexcept : vtable_(other.vtable_), data_(other.data_) {
    if (vtable_ != nullptr) vtable_->clone(data_);
  }
  Waker(Waker&& other) noexcept
      : vtable_(std::exchange(other.vtable_, nullptr)),
        data_(std::exchange(other.data_, nullptr)) {}
  Waker& operator=(Waker other) noexcept {
    std::swap(vtable_, other.vtable_);
    std::swap(data_, other.data_);
    return *this;
  }
  ~Waker() {
    if (vtable_ != nullptr) vtable_->drop(data_);
  }

  /// Wakes the waiter and releases this reference; the Waker becomes empty.
  void wake() && noexcept {
    if (vtable_ != nullptr) {
      const VTable* vt = std::exchange(vtable_, nullptr);
      vt->wake(std::exchange(data_, nullptr));
    }
  }
  /// Wakes the waiter; this Waker stays usable.
  void wake_by_ref() const noexcept {
    if (vtable_ != nullptr) vtable_->wake_by_ref(data_);
  }
  /// True when both wake the same waiter (so re-registering can be skipped).
  [[nodiscard]] bool will_wake(const Waker& other) const noexcept {
    return vtable_ == other.vtable_ && data_ == other.data_;
  }
  [[nodiscard]] explicit operator bool() const noexcept { return vtable_ != nullptr; }

 private:
  const VTable* vtable_ = nullptr;  // operations; nullptr for an empty Waker
  void* data_ = nullptr;            // the task cell or thread notifier it refers to
};

/// Whether a suspended awaiter can resume: `fn(ctx)` is called by the worker
/// that polls the task, before resuming it; it must be cheap, noexcept and
/// read shared state with acquire ordering. An empty check always passes.
struct ReadyCheck {
  bool (*fn)(const void* ctx) noexcept = nullptr;  // null: always ready
  const void* ctx = nullptr;                       // argument for fn (usually the awaiter)
};

/// Records `h` as the point where the current task resumes next, with the
/// readiness check of the awaiter that suspends it, and returns the task's
/// Waker. Call it from an awaiter's await_suspend inside a spindle task.
/// Precondition: called on a thread that is polling a spindle task (otherwise
/// the process aborts with a message: awaiting spindle awaitables from a
/// foreign coroutine is not supported).
Waker current_waker(std::coroutine_handle<> h, ReadyCheck check = {}) noexcept;

}  // namespace spindle
