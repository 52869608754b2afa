// Internal: the state transitions a worker (or the blocking pool) makes
// around a poll. The bits and the reference count are described in
// spindle/runtime/detail/task_cell.hpp.
#pragma once

#include <atomic>
#include <cstdint>

#include "spindle/runtime/detail/task_cell.hpp"

namespace spindle::detail {

/// What a dequeued task's transition to RUNNING found.
enum class RunTransition : std::uint8_t { kRun, kAbort, kGone };
/// What the end of a pending poll found.
enum class IdleTransition : std::uint8_t { kIdle, kRequeue, kAbort };

/// A dequeued task (we hold its scheduler reference) becomes RUNNING.
inline RunTransition transition_to_running(CellBase* task) noexcept {
  std::uint64_t cur = task->state_.load(std::memory_order_acquire);
  for (;;) {
    if ((cur & (kRunning | kComplete)) != 0) return RunTransition::kGone;
    std::uint64_t next = (cur & ~kNotified) | kRunning;
    // acquire: the previous poll's writes to the frame, and whatever the
    // waker published before waking, are visible to this poll.
    if (task->state_.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
      return (cur & kCancelled) != 0 ? RunTransition::kAbort : RunTransition::kRun;
    }
  }
}

/// A poll ended without finishing. `yielded`: the task asked to be re-queued.
inline IdleTransition transition_to_idle(CellBase* task, bool yielded) noexcept {
  std::uint64_t cur = task->state_.load(std::memory_order_acquire);
  for (;;) {
    if ((cur & kCancelled) != 0) return IdleTransition::kAbort;  // keep RUNNING: we cancel
    std::uint64_t next = cur & ~kRunning;
    IdleTransition result;
    if (yielded || (cur & kNotified) != 0) {
      next |= kNotified;  // the scheduler keeps its reference: re-queued
      result = IdleTransition::kRequeue;
    } else {
      // Idle: the scheduler's reference goes. Never the last one: the
      // owned list holds one until the task completes.
      next -= kRefOne;
      result = IdleTransition::kIdle;
    }
    // release: this poll's writes to the frame happen-before the next poll,
    // which may run on another worker.
    if (task->state_.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
      return result;
    }
  }
}

/// An aborted task (CANCELLED, we hold RUNNING) waits for the operation it
/// was suspended on to run its handler before its frame can go: give up
/// RUNNING, keep CANCELLED. Returns true when the task was notified
/// meanwhile and must be queued again (the scheduler keeps its reference);
/// false when it is idle until that handler's wake.
inline bool transition_to_idle_cancelling(CellBase* task) noexcept {
  std::uint64_t cur = task->state_.load(std::memory_order_acquire);
  for (;;) {
    const bool requeue = (cur & kNotified) != 0;
    std::uint64_t next = cur & ~kRunning;
    if (!requeue) next -= kRefOne;  // never the last: the owned list holds one
    // release: the cancellation request we made happens-before the next poll.
    if (task->state_.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
      return requeue;
    }
  }
}

}  // namespace spindle::detail
