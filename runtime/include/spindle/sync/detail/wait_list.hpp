// Internal: the intrusive wait lists behind spindle::sync's primitives.
//
//   detail::WaitLink     the list hook embedded in a waiter
//   detail::WaitList<N>  a FIFO of waiters of type N (N derives from WaitLink)
//   detail::WaitState    where a waiter stands: queued, granted, closed, ...
//   detail::Waiter       one suspended await: hook + Waker + atomic state
//   detail::WakeList     wakers collected under a lock, woken after it
//   detail::DeferredWake one waker, woken when it goes out of scope
//
// ## The waiter protocol (every primitive follows it)
//
// A waiter lives inside the awaiter object, which lives in the suspended
// coroutine's frame; there is no allocation per wait. All of a waiter's
// fields except `state` belong to the primitive's mutex while the waiter is
// queued. Its life:
//
//   1. await_suspend takes the task's Waker (current_waker, with the
//      waiter's ReadyCheck), then, under the primitive's mutex, either
//      completes at once (the resource became free meanwhile) or stores the
//      Waker, sets state = kQueued and links the waiter at the back.
//   2. A thread that frees the resource (a release, a send, a close), under
//      the same mutex, unlinks the waiter at the front, hands it what it
//      waited for (the permits are counted as its own from here on), moves
//      its Waker out and stores the outcome in `state` with release order —
//      the LAST touch of the waiter: from that store on the task may be
//      resumed (its ReadyCheck reads `state` with acquire order) and its
//      frame destroyed. The Waker is woken after the mutex is released.
//   3. await_resume reads `state` (acquire: everything the granting thread
//      published is visible) and delivers the outcome.
//   4. Cancellation: a task aborted while suspended has its frame destroyed
//      on a worker thread, which runs the awaiter's destructor. If the
//      awaiter was ever queued, the destructor takes the mutex (so it is
//      serialized with step 2) and looks at `state`: still kQueued → it
//      unlinks itself; kGranted → the outcome was handed over but never
//      consumed, so it hands it on (permits go back to the next waiter, a
//      notification to the next waiter). Nothing is lost or delivered twice.
//      A late wake of the destroyed task is harmless (the task is complete).
//
// Why the ReadyCheck: the runtime resumes a task at its recorded resume
// point on any wake, including a stale one meant for an earlier await. The
// check makes such a poll end without resuming while the waiter is still
// kQueued.
//
// Thread safety: none of these types lock; the owning primitive's mutex
// guards every list and every queued waiter (state is atomic because the
// ReadyCheck reads it without the mutex).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "spindle/runtime/detail/thread_annotations.hpp"
#include "spindle/runtime/waker.hpp"
#include "spindle/sync/detail/mutex.hpp"

namespace spindle::sync::detail {

class WaitListBase;

/// The list hook of a waiter. A node knows the list that holds it, so that
/// a destructor can unlink it without knowing which list that is (the
/// primitive's own list, or a local list that close() is draining).
class WaitLink {
 public:
  WaitLink() noexcept = default;
  WaitLink(const WaitLink&) = delete;
  WaitLink& operator=(const WaitLink&) = delete;

  /// True while a list holds this node. Caller holds that list's mutex.
  [[nodiscard]] bool is_linked() const noexcept { return list_ != nullptr; }
  /// Removes the node from the list that holds it (no-op when unlinked).
  /// Caller holds that list's mutex.
  void unlink() noexcept;

 private:
  friend class WaitListBase;
  WaitLink* prev_ = nullptr;      // previous node (or the sentinel)
  WaitLink* next_ = nullptr;      // next node (or the sentinel)
  WaitListBase* list_ = nullptr;  // the list that holds this node; null when unlinked
};

/// A circular doubly linked list with a sentinel and a size. Not movable:
/// nodes point at the sentinel.
class WaitListBase {
 public:
  WaitListBase() noexcept { head_.prev_ = head_.next_ = &head_; }
  WaitListBase(const WaitListBase&) = delete;
  WaitListBase& operator=(const WaitListBase&) = delete;
  /// Precondition: empty (a primitive is destroyed with nobody waiting).
  ~WaitListBase() = default;

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 protected:
  [[nodiscard]] WaitLink* front_link() const noexcept { return empty() ? nullptr : head_.next_; }
  void push_back_link(WaitLink* n) noexcept {
    n->prev_ = head_.prev_;
    n->next_ = &head_;
    head_.prev_->next_ = n;
    head_.prev_ = n;
    n->list_ = this;
    ++size_;
  }
  WaitLink* pop_front_link() noexcept {
    WaitLink* n = front_link();
    if (n != nullptr) erase(n);
    return n;
  }
  /// Moves every node of `other` to the back of this list, in order.
  void take_all_links(WaitListBase& other) noexcept {
    while (WaitLink* n = other.pop_front_link()) push_back_link(n);
  }

 private:
  friend class WaitLink;
  void erase(WaitLink* n) noexcept {
    n->prev_->next_ = n->next_;
    n->next_->prev_ = n->prev_;
    n->prev_ = n->next_ = nullptr;
    n->list_ = nullptr;
    --size_;
  }

  WaitLink head_;         // sentinel: head_.next_ is the front, head_.prev_ the back
  std::size_t size_ = 0;  // number of linked nodes
};

inline void WaitLink::unlink() noexcept {
  if (list_ != nullptr) list_->erase(this);
}

/// A FIFO of waiters of type Node (which derives publicly from WaitLink).
template <class Node>
class WaitList : public WaitListBase {
 public:
  /// The oldest waiter, or nullptr.
  [[nodiscard]] Node* front() const noexcept { return static_cast<Node*>(front_link()); }
  void push_back(Node* n) noexcept { push_back_link(n); }
  /// Unlinks and returns the oldest waiter, or nullptr.
  Node* pop_front() noexcept { return static_cast<Node*>(pop_front_link()); }
  /// Moves all of `other`'s waiters to the back of this list.
  void take_all(WaitList& other) noexcept { take_all_links(other); }
};

/// Where a waiter stands. Written under the primitive's mutex; read by the
/// waiter's ReadyCheck without it.
enum class WaitState : std::uint8_t {
  kIdle,         // not queued and no outcome yet
  kQueued,       // linked in the primitive's wait list; its Waker is stored
  kGranted,      // it was handed what it waited for (permits, a notification,
                 // a channel slot); if never consumed it must be handed on
  kClosed,       // the primitive was closed: the await fails
  kNotifiedAll,  // woken by Notify::notify_waiters (nothing to hand on)
};

/// One suspended await: the hook, the Waker to wake it, and its state.
struct Waiter : WaitLink {
  Waker waker;  // the suspended task's waker; the primitive's mutex guards it while queued
  std::atomic<WaitState> state{WaitState::kIdle};  // see WaitState and the file comment

  /// The check the runtime runs before resuming the task (stale wakes).
  [[nodiscard]] ReadyCheck ready_check() const noexcept { return ReadyCheck{&is_ready, this}; }

  /// Hands `outcome` to this (already unlinked) waiter and returns its
  /// Waker for the caller to wake once it has released the mutex. Caller
  /// holds the primitive's mutex. This is the last access to the waiter.
  [[nodiscard]] Waker complete(WaitState outcome) noexcept {
    Waker w = std::move(waker);
    // release: the hand-over (and whatever the granting thread wrote before
    // it) happens-before the waiter's acquire load in its ReadyCheck or
    // await_resume. After this store the waiter's frame may vanish.
    state.store(outcome, std::memory_order_release);
    return w;
  }

 private:
  static bool is_ready(const void* self) noexcept {
    // acquire: pairs with complete()'s release store.
    return static_cast<const Waiter*>(self)->state.load(std::memory_order_acquire) !=
           WaitState::kQueued;
  }
};

/// Wakers collected under a mutex and woken after it is released. Declare
/// it BEFORE the Lock: destruction runs in reverse order, so the lock is
/// released first and the wakers are woken on the way out. A loop that may
/// complete more than kCapacity waiters drops the lock, calls wake_all() and
/// takes the lock back whenever full() (see complete_all_locked).
class WakeList {
 public:
  static constexpr std::size_t kCapacity = 32;

  WakeList() noexcept = default;
  WakeList(const WakeList&) = delete;
  WakeList& operator=(const WakeList&) = delete;
  ~WakeList() { wake_all(); }

  [[nodiscard]] bool full() const noexcept { return len_ == kCapacity; }
  /// Precondition: !full().
  void push(Waker w) noexcept { wakers_[len_++] = std::move(w); }
  /// Wakes (and empties) every collected waker. Call without the mutex.
  void wake_all() noexcept {
    for (std::size_t i = 0; i < len_; ++i) std::move(wakers_[i]).wake();
    len_ = 0;
  }

 private:
  std::array<Waker, kCapacity> wakers_{};  // collected wakers; [0, len_) are live
  std::size_t len_ = 0;                    // number collected
};

/// At most one Waker, woken when this goes out of scope. Declare it BEFORE
/// the Lock, like WakeList.
class DeferredWake {
 public:
  DeferredWake() noexcept = default;
  DeferredWake(const DeferredWake&) = delete;
  DeferredWake& operator=(const DeferredWake&) = delete;
  ~DeferredWake() { std::move(waker_).wake(); }  // a no-op when empty

  /// Precondition: empty (each operation frees at most one waiter).
  void set(Waker w) noexcept { waker_ = std::move(w); }

 private:
  Waker waker_;  // the waker to wake, or empty
};

/// Unlinks every waiter of `from` and completes each with `outcome`,
/// waking them in batches of WakeList::kCapacity (dropping `mu` while a
/// batch is woken). The waiters are first moved to a local list, so waiters
/// that arrive during a batch are not included, and a waiter destroyed
/// during a batch unlinks itself from the local list. Returns with `mu`
/// held and the last batch in `wakes`.
template <class Node>
void complete_all_locked(RawMutex& mu, WaitList<Node>& from, WaitState outcome, WakeList& wakes)
    SPINDLE_REQUIRES(mu) {
  WaitList<Node> doomed;
  doomed.take_all(from);
  for (;;) {
    // Drop the lock only between waiters: a waiter is unlinked and completed
    // in one critical section, or its destructor could run in between.
    if (wakes.full()) {
      mu.unlock();
      wakes.wake_all();
      mu.lock();
    }
    Node* w = doomed.pop_front();
    if (w == nullptr) break;
    wakes.push(w->complete(outcome));
  }
}

}  // namespace spindle::sync::detail
