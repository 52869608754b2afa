// spindle/sync/notify.hpp — wake one task, or all waiting tasks, without data.
//
//   spindle::sync::Notify            notify_one() / notify_waiters(); tasks co_await notified()
//   spindle::sync::Notify::Notified  the awaitable returned by notified()
//
// Example (a task waits until another says "go"):
//   spindle::sync::Notify go;
//   spindle::spawn([](spindle::sync::Notify& go) -> spindle::Task<void> {
//     co_await go.notified();
//     start();
//   }(go));
//   go.notify_one();   // from any thread, before or after the task waits
//
// Semantics (as tokio's Notify):
//   - notify_one() wakes the oldest waiting task (FIFO). If no task waits it
//     stores ONE permit (several calls still store one), which the next
//     notified() consumes and completes at once.
//   - notify_waiters() wakes every task waiting right now, and every
//     Notified created (by notified()) before the call that has not been
//     awaited yet; it stores no permit, so later notified() calls wait.
//     Creating the Notified first closes the check-then-wait race:
//
//       auto n = notify.notified();         // registers interest...
//       if (!condition()) co_await n;       // ...so a notify_waiters() in between is seen
//
// Budget: a notified() that completes at once (a stored permit, or an
// earlier notify_waiters()) spends one unit of the task's cooperative
// budget; when the budget is spent the task yields first.
//
// Cancellation: a task destroyed while waiting leaves the queue. If a
// notify_one() had already picked it but it never resumed, the
// notification passes to the next waiter (or is stored as the permit): it
// is never lost, and never delivered twice.
//
// Thread safety: notify_one(), notify_waiters(), notified() and
// waiter_count() may be called from any thread, including threads outside
// the runtime; co_await only inside a spindle task. The Notify must outlive
// every task waiting on it (fatal otherwise). A Notified is awaited at most
// once, by one task.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "spindle/runtime/coop.hpp"
#include "spindle/runtime/detail/thread_annotations.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/waker.hpp"
#include "spindle/sync/detail/errors.hpp"
#include "spindle/sync/detail/mutex.hpp"
#include "spindle/sync/detail/wait_list.hpp"

namespace spindle::sync {

/// Wakes waiting tasks; carries no data. Not copyable or movable.
class Notify {
 public:
  class Notified;

  Notify() = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;
  /// Precondition: no task waits in notified() (fatal otherwise).
  ~Notify() {
    if (!waiters_.empty()) {
      detail::fatal("spindle::sync::Notify destroyed while tasks wait on it");
    }
  }

  /// The awaitable for the next notification. Creating it records the
  /// current notify_waiters() count (see the file comment); co_await it
  /// inside a spindle task. Takes the internal lock briefly.
  [[nodiscard("nothing waits for a notification until the Notified is co_awaited")]] Notified
  notified();

  /// Wakes the oldest waiting task, or stores the permit if none waits.
  /// Never blocks beyond the internal lock.
  void notify_one() {
    detail::DeferredWake wake;  // woken after `lock` is released (declared first)
    detail::Lock lock(mu_);
    notify_one_locked(wake);
  }

  /// Wakes every task waiting now (and every Notified created before this
  /// call); stores no permit. Never blocks beyond the internal lock.
  void notify_waiters() {
    detail::WakeList wakes;  // woken after `lock` is released (declared first)
    detail::Lock lock(mu_);
    ++generation_;
    detail::complete_all_locked(mu_, waiters_, detail::WaitState::kNotifiedAll, wakes);
  }

  /// Tasks waiting right now (a snapshot).
  [[nodiscard]] std::size_t waiter_count() const {
    detail::Lock lock(mu_);
    return waiters_.size();
  }

 private:
  /// Gives one notification to the oldest waiter, or stores the permit.
  void notify_one_locked(detail::DeferredWake& wake) SPINDLE_REQUIRES(mu_) {
    if (detail::Waiter* w = waiters_.pop_front()) {
      wake.set(w->complete(detail::WaitState::kGranted));  // last touch of *w
    } else {
      permit_ = true;
    }
  }

  mutable detail::RawMutex mu_;                           // guards everything below
  bool permit_ SPINDLE_GUARDED_BY(mu_) = false;           // a notify_one() found nobody waiting
  std::uint64_t generation_ SPINDLE_GUARDED_BY(mu_) = 0;  // notify_waiters() calls so far
  detail::WaitList<detail::Waiter> waiters_ SPINDLE_GUARDED_BY(mu_);  // waiting tasks, FIFO
};

/// The awaitable of Notify::notified(). Not copyable or movable (it is the
/// wait-list node while its task waits); co_await it once.
class [[nodiscard(
    "nothing waits for a notification until the Notified is co_awaited")]] Notify::Notified {
 public:
  Notified(const Notified&) = delete;
  Notified& operator=(const Notified&) = delete;

  /// Leaves the queue if still in it; passes on a notify_one() notification
  /// that was handed to it but never delivered.
  ~Notified() {
    if (consumed_) return;
    if (!linked_) {
      // Never queued: the outcome is this task's alone (relaxed suffices).
      if (node_.state.load(std::memory_order_relaxed) == detail::WaitState::kGranted) {
        notify_->notify_one();  // the stored permit we took goes back
      }
      return;
    }
    detail::DeferredWake wake;  // woken after `lock` is released (declared first)
    detail::Lock lock(notify_->mu_);
    // relaxed: state is only written under mu_, which we hold.
    switch (node_.state.load(std::memory_order_relaxed)) {
      case detail::WaitState::kQueued:
        node_.unlink();
        break;
      case detail::WaitState::kGranted:
        notify_->notify_one_locked(wake);  // hand the notification on
        break;
      default:
        break;  // kNotifiedAll: nothing to hand on
    }
  }

  [[nodiscard]] bool await_ready() {
    if (std::exchange(awaited_, true)) {
      throw UsageError("spindle::sync::Notify: a Notified awaitable was awaited twice");
    }
    {
      detail::Lock lock(notify_->mu_);
      if (!try_complete_locked()) return false;
    }
    if (coop::try_consume()) return true;
    yield_ = true;  // keep the notification; yield first
    return false;
  }

  bool await_suspend(std::coroutine_handle<> h) {
    if (yield_) {
      coop::forced_yield(h);
      return true;
    }
    Waker waker = current_waker(h, node_.ready_check());
    {
      detail::Lock lock(notify_->mu_);
      if (!try_complete_locked()) {
        node_.waker = std::move(waker);
        node_.state.store(detail::WaitState::kQueued, std::memory_order_relaxed);
        linked_ = true;
        notify_->waiters_.push_back(&node_);
        return true;
      }
    }
    if (coop::try_consume()) return false;
    coop::forced_yield(h);
    return true;
  }

  void await_resume() {
    // acquire: pairs with the notifier's release in complete().
    detail::WaitState s = node_.state.load(std::memory_order_acquire);
    if (s != detail::WaitState::kGranted && s != detail::WaitState::kNotifiedAll) {
      throw UsageError(
          "spindle::sync::Notify: notified() resumed before a notification (internal error)");
    }
    consumed_ = true;
  }

 private:
  friend class Notify;
  Notified(Notify * notify, std::uint64_t generation) noexcept
      : notify_(notify), generation_(generation) {}

  /// Completes at once if a notify_waiters() happened since creation, or
  /// by taking the stored permit. False: it must wait.
  bool try_complete_locked() SPINDLE_REQUIRES(notify_->mu_) {
    if (notify_->generation_ != generation_) {
      node_.state.store(detail::WaitState::kNotifiedAll, std::memory_order_relaxed);
      return true;
    }
    if (notify_->permit_) {
      notify_->permit_ = false;
      node_.state.store(detail::WaitState::kGranted, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  Notify* notify_;            // the Notify (outlives the await)
  std::uint64_t generation_;  // notify_waiters() count when created
  detail::Waiter node_;       // wait-list node: waker, state
  bool linked_ = false;       // was queued: the destructor must take the lock
  bool consumed_ = false;     // await_resume delivered the notification
  bool yield_ = false;        // completed at once but out of budget: yield first
  bool awaited_ = false;      // await_ready ran: a second co_await is refused
};

inline Notify::Notified Notify::notified() {
  detail::Lock lock(mu_);
  return Notified(this, generation_);
}

}  // namespace spindle::sync
