// Internal: the one mutex type of spindle's own code.
//
//   detail::Mutex      a std::mutex that Clang's thread-safety analysis knows about
//   detail::MutexLock  holds a Mutex for a scope; may drop and retake it inside
//
// Used by the scheduler's private structures (injection queue, idle set,
// owned tasks, blocking pool), the sync primitives, the monitors' and the
// exporter's registries. Always held briefly and never across a suspension.
//
// std::mutex rather than absl::Mutex: Debian's libabsl is not built with
// ThreadSanitizer, which could not see its synchronization, while std::mutex
// goes through pthread, which TSan intercepts; and spindle's users need no
// Abseil. A Mutex is Lockable, so std::condition_variable_any waits on it.
#pragma once

#include <mutex>

#include "spindle/runtime/detail/thread_annotations.hpp"

namespace spindle::detail {

class SPINDLE_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() SPINDLE_ACQUIRE() { mu_.lock(); }
  void unlock() SPINDLE_RELEASE() { mu_.unlock(); }
  bool try_lock() SPINDLE_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  std::mutex mu_;  // the lock itself
};

/// Holds a Mutex from construction to destruction. unlock()/lock() let a
/// loop drop it briefly (to wake a batch of waiters) and take it back.
class SPINDLE_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) SPINDLE_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() SPINDLE_RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  /// Releases the mutex early. Precondition: held.
  void unlock() SPINDLE_RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  /// Takes the mutex again after unlock().
  void lock() SPINDLE_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;         // the mutex
  bool held_ = true;  // false between unlock() and lock()
};

}  // namespace spindle::detail
