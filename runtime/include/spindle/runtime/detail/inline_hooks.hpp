// Internal: running an instrumented Task inline (co_await mon.instrument(t)),
// measured by its own hooks while it is part of the calling task's polls.
//
// The operand runs in a one-lane LaneSet (combinators.hpp), like timeout()'s:
// each drive of the lane is one "poll" of the operand, bracketed by
// on_poll_start / on_poll_end with the runtime's clock. Its scheduled and
// idle time are the calling task's: the calling task's wake record (the
// cell's woken_at / wake kind, stamped for it while an inline operand runs,
// see SchedulerFields::inline_hooks_) says when the wake that resumed the operand
// happened. Cancellation is the lane set's: an aborted caller cancels the
// operand's pending operation and destroys it once the handler ran.
#pragma once

#include <utility>

#include "spindle/runtime/combinators.hpp"
#include "spindle/runtime/detail/task_cell.hpp"
#include "spindle/runtime/hooks.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::detail {

/// The runtime's clock, read for the task being polled on this thread.
Instant current_task_now() noexcept;
/// The id of the task being polled on this thread (0 outside tasks).
TaskId current_task_id() noexcept;
/// What an inline operand's poll that starts at `now` reports: the worker,
/// its slot and recorder, and the calling task's wake record (a first poll
/// when `first`).
PollStart inline_poll_start(Instant now, bool first) noexcept;
/// Counts an inline instrumentation in the task being polled and returns
/// that task (for leave_inline_hooks, which may run when another thread
/// destroys the frame). Aborts outside a spindle task.
CellBase* enter_inline_hooks() noexcept;
void leave_inline_hooks(CellBase* task) noexcept;

/// Runs `task` inside the awaiting task with `hooks` attached (their owner
/// from here on: on_release is called when this returns or is destroyed).
template <class T>
Task<T> run_hooked_inline(Task<T> task, TaskHooks* hooks, SourceLocation loc) {
  // Releases the hooks however this frame ends (value, exception,
  // cancellation of the caller); on_drop(true) unless the operand finished.
  struct Owner {
    TaskHooks* hooks;
    CellBase* task = nullptr;  // counted in by enter_inline_hooks()
    bool finished = false;     // on_drop(false) was reported
    ~Owner() {
      if (task != nullptr) leave_inline_hooks(task);
      if (!finished) hooks->on_drop(true);
      hooks->on_release();
    }
  } owner{hooks};
  Operands<T> ops(task);  // UsageError for an empty task: the hooks are released
  LaneSet& set = ops.set();
  owner.task = enter_inline_hooks();
  hooks->on_spawn(TaskInfo{current_task_id(), loc}, current_task_now());
  bool first = true;
  for (;;) {
    hooks->on_poll_start(inline_poll_start(current_task_now(), first));
    first = false;
    set.drive();
    const bool done = set.lane(0).finished;
    hooks->on_poll_end(current_task_now(), done);
    if (done) break;
    set.reap();
    if (set.settled()) break;
    co_await set.wait();
  }
  owner.finished = true;
  hooks->on_drop(false);
  if constexpr (std::is_void_v<T>) {
    ops.template take<0>();
    co_return;
  } else {
    co_return ops.template take<0>();
  }
}

/// Awaits a Task it owns (the awaiter of a temporary Task must keep it).
template <class T>
struct OwningAwaiter {
  Task<T> task;
  decltype(std::declval<Task<T>&&>().operator co_await()) inner =
      std::move(task).operator co_await();
  bool await_ready() { return inner.await_ready(); }
  template <class H>
  auto await_suspend(H h) {
    return inner.await_suspend(h);
  }
  decltype(auto) await_resume() { return inner.await_resume(); }
};

}  // namespace spindle::detail
