// spindle/sync/mutex.hpp — an async, fair mutex that owns the data it guards.
//
//   spindle::sync::Mutex<T>        holds a T; tasks co_await lock() to reach it
//   spindle::sync::Mutex<T>::Lock  the awaitable returned by lock()
//   spindle::sync::MutexGuard<T>   RAII access to the T; unlocks when destroyed
//
// Example:
//   spindle::sync::Mutex<std::map<std::string, int>> cache;
//   spindle::Task<void> update(std::string key) {
//     auto guard = co_await cache.lock();
//     int fresh = co_await fetch(key);      // fine: other tasks wait *as tasks*
//     (*guard)[key] = fresh;
//   }                                       // unlocked here
//
// ## Why not std::mutex (or any blocking lock) across a co_await
//
// A blocking lock blocks the *worker thread*, and a suspended task can only
// be resumed by a worker that is free to poll it:
//
//   std::mutex m;
//   spindle::Task<void> a() {
//     std::lock_guard<std::mutex> g(m);
//     co_await fetch();              // A suspends while holding m; its worker moves on
//   }                                // (A only unlocks m after it is resumed)
//   spindle::Task<void> b() {
//     std::lock_guard<std::mutex> g(m);  // B blocks its worker thread on m
//     co_return;
//   }
//
// When fetch() completes, A's wake lands on a worker's queue — often the
// very worker B is blocking (the one that ran A, or the only one on a
// current_thread runtime). That worker never polls again, so A is never
// resumed to release m: a deadlock. Every other task queued there stops
// too, and once every worker is blocked on such a lock the whole runtime
// stops — timers, I/O and all. (A std::mutex held only between two awaits,
// never across one, is fine: that is how spindle's primitives use one.)
//
// Mutex<T> suspends the *task* instead: a task that finds it locked is
// queued and its worker runs other tasks, including the holder, which can
// therefore finish and unlock. Its guard may be held across co_await:
//
//   spindle::sync::Mutex<int> m;
//   spindle::Task<void> a() {
//     auto g = co_await m.lock();
//     co_await fetch();   // B below waits as a task; the worker stays free
//     ++*g;
//   }
//   spindle::Task<void> b() { ++*co_await m.lock(); }
//
// Fairness: FIFO — tasks get the lock in the order they asked for it (it is
// a Semaphore with one permit). try_lock() fails while anyone is queued.
//
// Budget: a lock() that succeeds at once spends one unit of the task's
// cooperative budget; when the budget is spent the task yields first,
// already holding the lock (see spindle/runtime/coop.hpp).
//
// Cancellation: a task destroyed while queued in lock() leaves the queue;
// if the lock had just been handed to it, it passes to the next waiter. A
// guard in a destroyed frame unlocks. The lock is never lost or held twice.
//
// Thread safety: lock(), try_lock() and waiter_count() may be called from
// any thread (co_await lock() only inside a spindle task). The T is only
// reachable through a guard, and a guard exists for one holder at a time;
// one guard must not be used by two threads at once (it may move between
// threads, e.g. with its task). The Mutex must outlive every guard and every
// task waiting on it; destroying it while tasks wait in lock() is a fatal
// error ("spindle::sync::Mutex destroyed while tasks wait to lock it").
#pragma once

#include <coroutine>
#include <cstddef>
#include <optional>
#include <utility>

#include "spindle/sync/semaphore.hpp"

namespace spindle::sync {

template <class T>
class Mutex;

/// Exclusive access to a Mutex's value; unlocks when destroyed. Move-only.
template <class T>
class [[nodiscard("the mutex is unlocked at once when the MutexGuard is discarded")]] MutexGuard {
 public:
  MutexGuard(MutexGuard && other) noexcept
      : value_(std::exchange(other.value_, nullptr)), permit_(std::move(other.permit_)) {}
  MutexGuard& operator=(MutexGuard&& other) noexcept {
    if (this != &other) {
      permit_ = std::move(other.permit_);  // unlocks what this guard held
      value_ = std::exchange(other.value_, nullptr);
    }
    return *this;
  }
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  ~MutexGuard() = default;  // the permit's destructor unlocks

  /// The guarded value. Precondition: the guard holds the lock (not moved
  /// from, not unlocked).
  T& operator*() const noexcept { return *value_; }
  T* operator->() const noexcept { return value_; }

  /// Unlocks now (the next waiter gets the lock); the guard becomes empty.
  void unlock() noexcept {
    value_ = nullptr;
    permit_.release();
  }
  /// True while the guard holds the lock.
  [[nodiscard]] bool owns_lock() const noexcept { return value_ != nullptr; }

 private:
  friend class Mutex<T>;
  MutexGuard(T * value, SemaphorePermit permit) noexcept
      : value_(value), permit_(std::move(permit)) {}

  T* value_;                // the guarded value; null when empty
  SemaphorePermit permit_;  // the mutex's single permit while locked
};

/// An async mutex owning a T. Not copyable or movable.
template <class T>
class Mutex {
 public:
  class Lock;

  /// A mutex holding a value-initialized T.
  Mutex() : value_() {}
  /// A mutex holding `value`.
  explicit Mutex(T value) : value_(std::move(value)) {}
  /// A mutex holding a T built from `args`.
  template <class... Args>
  explicit Mutex(std::in_place_t, Args&&... args) : value_(std::forward<Args>(args)...) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  /// Precondition: unlocked and nobody waiting. Destroying a Mutex while
  /// tasks wait in lock() is a fatal error that names the Mutex (their
  /// frames would point at a dead mutex).
  ~Mutex() {
    // Checked here, before sem_ is destroyed, so that the message names
    // the type the user declared rather than its Semaphore.
    if (sem_.waiter_count() != 0) {
      detail::fatal("spindle::sync::Mutex destroyed while tasks wait to lock it");
    }
  }

  /// co_await inside a spindle task: waits for the lock (FIFO) and returns
  /// the guard. Completes at once when unlocked and nobody is queued. Never
  /// throws from the await (the underlying semaphore is never closed).
  [[nodiscard("the mutex is not locked until the Lock is co_awaited")]] Lock lock() noexcept {
    return Lock(this);
  }

  /// Never waits: the guard if the mutex is unlocked and nobody is queued,
  /// else std::nullopt. Spends no budget.
  [[nodiscard(
      "the mutex is unlocked at once when the result is discarded")]] std::optional<MutexGuard<T>>
  try_lock() {
    std::optional<SemaphorePermit> permit = sem_.try_acquire(1);
    if (!permit) return std::nullopt;
    return MutexGuard<T>(&value_, std::move(*permit));
  }

  /// Tasks queued in lock() right now (a snapshot; e.g. for contention metrics).
  [[nodiscard]] std::size_t waiter_count() const { return sem_.waiter_count(); }

 private:
  Semaphore sem_{1};  // one permit: the lock; FIFO queue of lock() waiters
  T value_;           // the guarded value; reached only through a MutexGuard
};

/// The awaitable of Mutex<T>::lock(). Not copyable or movable; co_await it once.
template <class T>
class [[nodiscard("the mutex is not locked until the Lock is co_awaited")]] Mutex<T>::Lock {
 public:
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
  ~Lock() = default;  // the Acquire leaves the queue / hands the lock on if needed

  [[nodiscard]] bool await_ready() { return acquire_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) { return acquire_.await_suspend(h); }
  MutexGuard<T> await_resume() { return MutexGuard<T>(&mutex_->value_, acquire_.await_resume()); }

 private:
  friend class Mutex;
  explicit Lock(Mutex * mutex) noexcept : mutex_(mutex), acquire_(mutex->sem_.acquire(1)) {}

  Mutex* mutex_;                // the mutex being locked
  Semaphore::Acquire acquire_;  // the wait for its single permit
};

}  // namespace spindle::sync
