// Internal: every transition of a task's state word, in one place (after
// tokio's task/state.rs). The bits and the reference count are described in
// spindle/runtime/detail/task_cell.hpp; the only other writers of the word
// are the JoinHandle-side calls there (set_join_waker, unset_join_interest)
// and the reference count helpers (ref_inc, ref_dec).
//
// Each transition is one compare-exchange loop through update(), and checks
// the state it leaves in debug builds (a violated precondition is a
// scheduler bug: the process aborts with the transition's name and the
// state word).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "spindle/runtime/detail/fatal.hpp"
#include "spindle/runtime/detail/task_cell.hpp"

namespace spindle::detail {

/// What a dequeued task's transition to RUNNING found.
enum class RunTransition : std::uint8_t { kRun, kAbort, kGone };
/// What the end of a pending poll found.
enum class IdleTransition : std::uint8_t { kIdle, kRequeue, kAbort };

namespace state {

/// Aborts when `ok` is false (debug builds only): `what` names the
/// transition and the precondition it needs.
inline void require(bool ok, const char* what, std::uint64_t cur) noexcept {
#ifndef NDEBUG
  if (!ok) {
    char message[160];
    std::snprintf(message, sizeof message, "task state transition %s from state 0x%llx", what,
                  static_cast<unsigned long long>(cur));
    fatal(message);
  }
#else
  (void)ok;
  (void)what;
  (void)cur;
#endif
}

/// The compare-exchange loop every transition shares. `step(cur, next)`
/// computes the next state from `cur` and returns the transition's result;
/// it may return early without writing by returning a result with
/// `write = false` through the Decision type.
template <class R>
struct Decision {
  R result;           // what the transition returns
  bool write = true;  // false: leave the word as it is and return `result`
};

template <class R, class Step>
R update(CellBase* cell, Step step) noexcept {
  std::uint64_t cur = cell->state_.load(std::memory_order_acquire);
  for (;;) {
    std::uint64_t next = cur;
    Decision<R> d = step(cur, next);
    if (!d.write) return d.result;
    // acq_rel on success: release publishes what this side wrote before the
    // transition (a waker's channel value, a poll's frame writes) to the
    // next owner; acquire orders our use after the previous owner's.
    if (cell->state_.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
      return d.result;
    }
  }
}

}  // namespace state

// ---- wakes (any thread) -------------------------------------------------------

/// wake() on a Waker that owns one reference: the reference is consumed.
inline WakeAction transition_to_notified_by_val(CellBase* cell) noexcept {
  return state::update<WakeAction>(cell, [](std::uint64_t cur, std::uint64_t& next) {
    state::require(ref_count(cur) >= 1, "notified_by_val needs the waker's reference", cur);
    if ((cur & kRunning) != 0) {
      // Polled right now: the worker re-queues it when the poll ends. The
      // scheduler holds a reference while RUNNING, so ours cannot be last.
      next = (cur | kNotified) - kRefOne;
      return state::Decision<WakeAction>{WakeAction::kNothing};
    }
    if ((cur & (kComplete | kNotified)) != 0) {
      next = cur - kRefOne;
      return state::Decision<WakeAction>{ref_count(next) == 0 ? WakeAction::kDealloc
                                                              : WakeAction::kNothing};
    }
    // Idle: our reference becomes the scheduler's.
    next = cur | kNotified;
    return state::Decision<WakeAction>{WakeAction::kSubmit};
  });
}

/// wake_by_ref(): the waker keeps its reference; a submit takes a new one.
inline WakeAction transition_to_notified_by_ref(CellBase* cell) noexcept {
  return state::update<WakeAction>(cell, [](std::uint64_t cur, std::uint64_t& next) {
    if ((cur & kRunning) != 0) {
      if ((cur & kNotified) != 0) return state::Decision<WakeAction>{WakeAction::kNothing, false};
      next = cur | kNotified;
      return state::Decision<WakeAction>{WakeAction::kNothing};
    }
    if ((cur & (kComplete | kNotified)) != 0) {
      return state::Decision<WakeAction>{WakeAction::kNothing, false};
    }
    next = (cur | kNotified) + kRefOne;
    return state::Decision<WakeAction>{WakeAction::kSubmit};
  });
}

/// abort(): request cancellation; kSubmit when the caller must queue the
/// task so that a worker destroys it (it holds a new scheduler reference).
inline WakeAction transition_to_notified_and_cancel(CellBase* cell) noexcept {
  return state::update<WakeAction>(cell, [](std::uint64_t cur, std::uint64_t& next) {
    if ((cur & (kComplete | kCancelled)) != 0) {
      return state::Decision<WakeAction>{WakeAction::kNothing, false};
    }
    if ((cur & kRunning) != 0) {
      next = cur | kCancelled | kNotified;  // the poll's end sees it
      return state::Decision<WakeAction>{WakeAction::kNothing};
    }
    if ((cur & kNotified) != 0) {
      next = cur | kCancelled;  // the worker that dequeues it sees it
      return state::Decision<WakeAction>{WakeAction::kNothing};
    }
    next = (cur | kCancelled | kNotified) + kRefOne;
    return state::Decision<WakeAction>{WakeAction::kSubmit};
  });
}

// ---- polls (the worker or blocking-pool thread holding the scheduler reference) --

/// A dequeued task (we hold its scheduler reference) becomes RUNNING.
inline RunTransition transition_to_running(CellBase* task) noexcept {
  return state::update<RunTransition>(task, [](std::uint64_t cur, std::uint64_t& next) {
    if ((cur & (kRunning | kComplete)) != 0) {
      return state::Decision<RunTransition>{RunTransition::kGone, false};
    }
    state::require(ref_count(cur) >= 1, "to_running needs the scheduler's reference", cur);
    // acquire (update): the previous poll's writes to the frame, and
    // whatever the waker published before waking, are visible to this poll.
    next = (cur & ~kNotified) | kRunning;
    return state::Decision<RunTransition>{(cur & kCancelled) != 0 ? RunTransition::kAbort
                                                                  : RunTransition::kRun};
  });
}

/// A poll ended without finishing. `yielded`: the task asked to be re-queued.
inline IdleTransition transition_to_idle(CellBase* task, bool yielded) noexcept {
  return state::update<IdleTransition>(task, [yielded](std::uint64_t cur, std::uint64_t& next) {
    state::require((cur & kRunning) != 0 && (cur & kComplete) == 0,
                   "to_idle needs RUNNING and not COMPLETE", cur);
    if ((cur & kCancelled) != 0) {
      return state::Decision<IdleTransition>{IdleTransition::kAbort, false};  // keep RUNNING
    }
    next = cur & ~kRunning;
    if (yielded || (cur & kNotified) != 0) {
      next |= kNotified;  // the scheduler keeps its reference: re-queued
      return state::Decision<IdleTransition>{IdleTransition::kRequeue};
    }
    // Idle: the scheduler's reference goes. Never the last one: the owned
    // list holds one until the task completes. release (update): this
    // poll's writes happen-before the next poll, maybe on another worker.
    next -= kRefOne;
    return state::Decision<IdleTransition>{IdleTransition::kIdle};
  });
}

/// An aborted task (CANCELLED, we hold RUNNING) waits for the operation it
/// was suspended on to run its handler before its frame can go: give up
/// RUNNING, keep CANCELLED. Returns true when the task was notified
/// meanwhile and must be queued again (the scheduler keeps its reference);
/// false when it is idle until that handler's wake.
inline bool transition_to_idle_cancelling(CellBase* task) noexcept {
  return state::update<bool>(task, [](std::uint64_t cur, std::uint64_t& next) {
    state::require(
        (cur & (kRunning | kCancelled)) == (kRunning | kCancelled) && (cur & kComplete) == 0,
        "to_idle_cancelling needs RUNNING and CANCELLED", cur);
    const bool requeue = (cur & kNotified) != 0;
    next = cur & ~kRunning;
    if (!requeue) next -= kRefOne;  // never the last: the owned list holds one
    return state::Decision<bool>{requeue};
  });
}

/// The RUNNING owner finished or cancelled the frame: RUNNING -> COMPLETE in
/// one step. Returns the state before, whose JOIN_INTEREST and JOIN_WAKER
/// say who reads the output (see Core::complete).
inline std::uint64_t transition_to_complete(CellBase* task) noexcept {
  // acq_rel: release publishes the output to the JoinHandle; acquire makes
  // a waker it registered (before setting JOIN_WAKER) visible to us.
  const std::uint64_t prev =
      task->state_.fetch_xor(kRunning | kComplete, std::memory_order_acq_rel);
  state::require((prev & kRunning) != 0 && (prev & kComplete) == 0,
                 "to_complete needs RUNNING and not COMPLETE", prev);
  return prev;
}

/// Takes a task that nobody is polling, to destroy it unpolled (shutdown,
/// a spawn_blocking job that could not be queued): sets RUNNING and
/// CANCELLED. False when it is already RUNNING or COMPLETE (not ours).
/// (A waker may still be between its NOTIFIED transition and queueing the
/// task: it writes only the cell's wake record, which no cancellation path
/// reads, and its queue reference keeps the cell alive.)
inline bool claim_to_cancel(CellBase* task) noexcept {
  std::uint64_t cur = task->state_.load(std::memory_order_acquire);
  for (;;) {
    if ((cur & (kRunning | kComplete)) != 0) return false;
    // RUNNING makes every other path leave the frame alone.
    if (task->state_.compare_exchange_weak(cur, cur | kRunning | kCancelled,
                                           std::memory_order_acq_rel, std::memory_order_acquire)) {
      return true;
    }
  }
}

}  // namespace spindle::detail
