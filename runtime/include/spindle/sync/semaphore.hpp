// spindle/sync/semaphore.hpp — an async, fair counting semaphore.
//
//   spindle::sync::Semaphore          a count of permits; tasks co_await acquire(n)
//   spindle::sync::Semaphore::Acquire the awaitable returned by acquire(n)
//   spindle::sync::SemaphorePermit    RAII: holds n permits, gives them back when destroyed
//   spindle::sync::Closed             acquire on a closed semaphore (detail/errors.hpp)
//
// Example (at most 4 requests in flight):
//   spindle::sync::Semaphore limit(4);
//   spindle::Task<Reply> call(Request r) {
//     spindle::sync::SemaphorePermit permit = co_await limit.acquire();
//     co_return co_await backend.send(r);   // the permit returns when `permit` dies
//   }
//
// Fairness: strictly FIFO. Waiters are served in the order they started
// waiting, and a request that cannot be met yet blocks every request behind
// it, even smaller ones that would fit: with 2 permits free, a queued
// acquire(3) keeps a later acquire(1) waiting until a third permit comes
// back. This is what keeps a large request from starving; size requests so
// that they can be met (at most the permits in circulation), or the queue
// stops until add_permits() supplies them. try_acquire() honours the same
// order: it fails while anyone is queued.
//
// Budget: an acquire that succeeds (or fails on a closed semaphore) at once
// spends one unit of the task's cooperative budget (spindle/runtime/coop.hpp);
// when the budget is spent, the task is made to yield first — the permits
// are already its own while it waits for its turn.
//
// Cancellation: destroying a task suspended in acquire() (JoinHandle::abort,
// runtime shutdown) takes it out of the queue; permits that had been
// assigned to it but not yet delivered go to the next waiters. Nothing is
// lost or granted twice. Dropping a SemaphorePermit (also in a destroyed
// frame) returns its permits.
//
// Thread safety: every member function may be called from any thread;
// co_await acquire() only inside a spindle task. A Semaphore must outlive
// every task waiting on it and every SemaphorePermit it issued; destroying
// it while a task waits is a fatal error. An Acquire awaitable is awaited at
// most once, by one task.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include "spindle/runtime/coop.hpp"
#include "spindle/runtime/detail/thread_annotations.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/waker.hpp"
#include "spindle/sync/detail/errors.hpp"
#include "spindle/sync/detail/mutex.hpp"
#include "spindle/sync/detail/wait_list.hpp"

namespace spindle::sync {

class Semaphore;

/// Owns `count()` permits of a Semaphore and returns them when destroyed.
/// Move-only. Thread safety: one permit object must not be used by two
/// threads at once; it may be moved to and destroyed on any thread.
class [[nodiscard(
    "the permits go back at once when the SemaphorePermit is discarded")]] SemaphorePermit {
 public:
  /// An empty permit (count() == 0).
  SemaphorePermit() noexcept = default;
  SemaphorePermit(SemaphorePermit && other) noexcept
      : sem_(std::exchange(other.sem_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  SemaphorePermit& operator=(SemaphorePermit&& other) noexcept {
    if (this != &other) {
      release();
      sem_ = std::exchange(other.sem_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }
  SemaphorePermit(const SemaphorePermit&) = delete;
  SemaphorePermit& operator=(const SemaphorePermit&) = delete;
  /// Returns the permits to the semaphore (waking waiters they satisfy).
  ~SemaphorePermit() { release(); }

  /// Number of permits held (0 once released, forgotten or moved from).
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  /// Gives the permits back now; the object becomes empty. Never blocks
  /// (beyond the semaphore's short internal lock).
  void release() noexcept;
  /// Drops the permits without returning them: the semaphore has that many
  /// fewer for good (until add_permits()). The object becomes empty.
  void forget() noexcept {
    sem_ = nullptr;
    count_ = 0;
  }

 private:
  friend class Semaphore;
  SemaphorePermit(Semaphore * sem, std::size_t count) noexcept : sem_(sem), count_(count) {}

  Semaphore* sem_ = nullptr;  // the issuing semaphore; null when empty
  std::size_t count_ = 0;     // permits held
};

/// A counting semaphore whose acquire() suspends the task, not the thread.
class Semaphore {
 public:
  /// The most permits a semaphore can hold (as in tokio: usize::MAX >> 3).
  static constexpr std::size_t kMaxPermits = std::numeric_limits<std::size_t>::max() >> 3;

  class Acquire;

  /// A semaphore holding `permits` permits. Throws std::invalid_argument
  /// when permits > kMaxPermits.
  explicit Semaphore(std::size_t permits) : permits_(checked(permits)) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  /// Precondition: no task waits in acquire() (fatal otherwise: their
  /// frames would point at a dead semaphore).
  ~Semaphore() {
    if (!waiters_.empty()) {
      detail::fatal("spindle::sync::Semaphore destroyed while tasks wait on it");
    }
  }

  /// co_await inside a spindle task: waits for `n` permits (in FIFO order)
  /// and returns a SemaphorePermit holding them. Completes at once when
  /// nobody is queued and `n` permits are free. n == 0 succeeds as soon as
  /// the request reaches the front of the queue. Throws Closed (from the
  /// co_await) when the semaphore is or becomes closed. A request larger
  /// than the permits in circulation waits until add_permits() makes it
  /// possible (or close()).
  [[nodiscard("no permit is acquired until the Acquire is co_awaited")]] Acquire acquire(
      std::size_t n = 1) noexcept;

  /// Never waits: `n` permits if they are free and nobody is queued, else
  /// std::nullopt. Throws Closed when the semaphore is closed. Spends no
  /// budget.
  [[nodiscard(
      "the permits go back at once when the result is discarded")]] std::optional<SemaphorePermit>
  try_acquire(std::size_t n = 1) {
    detail::Lock lock(mu_);
    if (closed_) throw_closed();
    if (!waiters_.empty() || permits_ < n) return std::nullopt;
    permits_ -= n;
    return SemaphorePermit(this, n);
  }

  /// Adds `n` permits and wakes the waiters they satisfy, in FIFO order.
  /// Also the way to give back permits taken with SemaphorePermit::forget().
  /// Throws std::overflow_error (and adds nothing) when the free permits
  /// would exceed kMaxPermits. Never blocks beyond the internal lock.
  void add_permits(std::size_t n) {
    detail::WakeList wakes;  // woken after `lock` is released (declared first)
    detail::Lock lock(mu_);
    if (n > kMaxPermits - permits_) {
      throw std::overflow_error(
          "spindle::sync::Semaphore::add_permits: the semaphore would hold more than "
          "kMaxPermits permits");
    }
    permits_ += n;
    assign_locked(wakes);
  }
  /// Same as add_permits(n).
  void release(std::size_t n) { add_permits(n); }

  /// Permits free right now (a snapshot; it may change at once).
  [[nodiscard]] std::size_t available_permits() const {
    detail::Lock lock(mu_);
    return permits_;
  }

  /// Tasks queued in acquire() right now (a snapshot).
  [[nodiscard]] std::size_t waiter_count() const {
    detail::Lock lock(mu_);
    return waiters_.size();
  }

  /// Closes the semaphore: every queued acquire() fails with Closed, and
  /// so do later acquire() and try_acquire() calls. Permits already held
  /// stay valid and may still be returned. Idempotent.
  void close() {
    detail::WakeList wakes;  // woken after `lock` is released (declared first)
    detail::Lock lock(mu_);
    closed_ = true;
    detail::complete_all_locked(mu_, waiters_, detail::WaitState::kClosed, wakes);
  }

  /// True once close() was called.
  [[nodiscard]] bool is_closed() const {
    detail::Lock lock(mu_);
    return closed_;
  }

 private:
  friend class SemaphorePermit;

  /// A queued acquire(n).
  struct Waiter : detail::Waiter {
    std::size_t needed = 0;  // permits requested
  };

  static std::size_t checked(std::size_t permits) {
    if (permits > kMaxPermits) {
      throw std::invalid_argument(
          "spindle::sync::Semaphore: initial permits exceed Semaphore::kMaxPermits");
    }
    return permits;
  }
  [[noreturn]] static void throw_closed() {
    throw Closed("spindle::sync::Semaphore: acquire failed: the semaphore is closed");
  }

  /// Returns permits held by a SemaphorePermit or a cancelled waiter.
  void return_permits(std::size_t n) noexcept {
    detail::WakeList wakes;  // woken after `lock` is released (declared first)
    detail::Lock lock(mu_);
    // Cannot overflow: free permits (<= kMaxPermits, SIZE_MAX >> 3) plus
    // permits that were handed out.
    permits_ += n;
    assign_locked(wakes);
  }

  /// Serves the queue from the front while the free permits meet the front
  /// request (FIFO: a request that cannot be met stops the loop). Wakes are
  /// batched; `mu_` may be dropped between waiters and is held on return.
  void assign_locked(detail::WakeList& wakes) SPINDLE_REQUIRES(mu_) {
    for (;;) {
      if (wakes.full()) {
        mu_.unlock();
        wakes.wake_all();
        mu_.lock();
      }
      Waiter* w = waiters_.front();
      if (w == nullptr || w->needed > permits_) return;
      permits_ -= w->needed;  // the permits are the waiter's from here on
      waiters_.pop_front();
      wakes.push(w->complete(detail::WaitState::kGranted));  // last touch of *w
    }
  }

  mutable detail::RawMutex mu_;                               // guards everything below
  std::size_t permits_ SPINDLE_GUARDED_BY(mu_);               // free permits
  bool closed_ SPINDLE_GUARDED_BY(mu_) = false;               // close() was called
  detail::WaitList<Waiter> waiters_ SPINDLE_GUARDED_BY(mu_);  // queued acquires, FIFO
};

/// The awaitable of Semaphore::acquire(n). Not copyable or movable (it is
/// the wait-list node while its task waits); co_await it once.
class [[nodiscard("no permit is acquired until the Acquire is co_awaited")]] Semaphore::Acquire {
 public:
  Acquire(const Acquire&) = delete;
  Acquire& operator=(const Acquire&) = delete;

  /// Leaves the queue if still in it; hands on permits that were granted
  /// but never delivered (the task was destroyed while suspended, or while
  /// yielding for its budget).
  ~Acquire() {
    if (consumed_) return;
    if (!linked_) {
      // Never queued: only this task has seen the outcome (relaxed: it was
      // written by this thread, or by one that handed the frame over).
      if (node_.state.load(std::memory_order_relaxed) == detail::WaitState::kGranted) {
        sem_->return_permits(node_.needed);
      }
      return;
    }
    detail::WakeList wakes;  // woken after `lock` is released (declared first)
    detail::Lock lock(sem_->mu_);
    // relaxed: state is only written under mu_, which we hold.
    switch (node_.state.load(std::memory_order_relaxed)) {
      case detail::WaitState::kQueued:
        node_.unlink();
        // A large request leaving the front may let smaller ones through.
        sem_->assign_locked(wakes);
        break;
      case detail::WaitState::kGranted:
        sem_->permits_ += node_.needed;  // hand them on
        sem_->assign_locked(wakes);
        break;
      default:
        break;
    }
  }

  [[nodiscard]] bool await_ready() {
    if (std::exchange(awaited_, true)) {
      throw UsageError("spindle::sync::Semaphore: an Acquire awaitable was awaited twice");
    }
    {
      detail::Lock lock(sem_->mu_);
      if (!try_complete_locked()) return false;
    }
    if (coop::try_consume()) return true;
    yield_ = true;  // keep the outcome; yield first
    return false;
  }

  bool await_suspend(std::coroutine_handle<> h) {
    if (yield_) {
      coop::forced_yield(h);
      return true;
    }
    Waker waker = current_waker(h, node_.ready_check());
    {
      detail::Lock lock(sem_->mu_);
      if (!try_complete_locked()) {
        node_.waker = std::move(waker);
        node_.state.store(detail::WaitState::kQueued, std::memory_order_relaxed);
        linked_ = true;
        sem_->waiters_.push_back(&node_);
        return true;
      }
    }
    // Decided since await_ready (permits came back, or closed): finish now
    // if the budget allows, else yield holding the outcome.
    if (coop::try_consume()) return false;
    coop::forced_yield(h);
    return true;
  }

  /// The permits, or throws Closed.
  SemaphorePermit await_resume() {
    // acquire: pairs with the granting thread's release in complete().
    detail::WaitState s = node_.state.load(std::memory_order_acquire);
    if (s == detail::WaitState::kGranted) {
      consumed_ = true;
      return SemaphorePermit(sem_, node_.needed);
    }
    if (s == detail::WaitState::kClosed) {
      consumed_ = true;
      throw_closed();
    }
    throw UsageError(
        "spindle::sync::Semaphore: acquire resumed before it was granted (internal error)");
  }

 private:
  friend class Semaphore;
  Acquire(Semaphore * sem, std::size_t n) noexcept : sem_(sem) { node_.needed = n; }

  /// Decides the acquire at once if it can be: closed, or nobody queued and
  /// enough permits free (which are then taken). False: it must wait.
  bool try_complete_locked() SPINDLE_REQUIRES(sem_->mu_) {
    if (sem_->closed_) {
      node_.state.store(detail::WaitState::kClosed, std::memory_order_relaxed);
      return true;
    }
    if (sem_->waiters_.empty() && sem_->permits_ >= node_.needed) {
      sem_->permits_ -= node_.needed;
      node_.state.store(detail::WaitState::kGranted, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  Semaphore* sem_;         // the semaphore (outlives the await)
  Waiter node_;            // wait-list node: request size, waker, state
  bool linked_ = false;    // was queued: the destructor must take the lock
  bool consumed_ = false;  // await_resume delivered the outcome
  bool yield_ = false;     // decided at once but out of budget: yield first
  bool awaited_ = false;   // await_ready ran: a second co_await is refused
};

inline Semaphore::Acquire Semaphore::acquire(std::size_t n) noexcept { return Acquire(this, n); }

inline void SemaphorePermit::release() noexcept {
  if (sem_ == nullptr) return;
  Semaphore* sem = std::exchange(sem_, nullptr);
  sem->return_permits(std::exchange(count_, 0));
}

}  // namespace spindle::sync
