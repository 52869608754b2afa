// Wakers, abort, and the other entry points of task_cell.hpp, waker.hpp and
// hooks.hpp.

#include "spindle/runtime/detail/task_cell.hpp"

#include <string>

#include "cell_fields.hpp"
#include "scheduler.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "spindle/runtime/yield.hpp"
#include "spindle/sync/oneshot.hpp"
#include "task_state.hpp"
#include "thread_notifier.hpp"
#include "worker.hpp"

namespace spindle {
namespace detail {

namespace {

/// Notes a wake that comes from inside the task's own poll (for the
/// self-wake figure of its monitor).
inline void note_self_wake(CellBase* cell) noexcept {
  ThreadContext& ctx = tls_context;
  if (ctx.current == cell) ctx.self_woken = true;
}

inline void submit(CellBase* cell) noexcept {
  Core* core = cell->sched().core_;
  // The wake record, before queueing: the worker that dequeues the task
  // reads it at the poll's start (the queue's release/acquire orders the
  // two). No hook runs here: hooks run on the polling worker only.
  if (cell->hooks_ != nullptr || cell->sched().inline_hooks_ != 0 || core->config().time_every_poll)
      [[unlikely]] {
    cell->sched().woken_at_ = core->now();
    cell->sched().wake_kind_ = WakeKind::kFromIdle;
    cell->sched().wake_self_ = false;  // an idle task cannot be inside its own poll
  }
  core->schedule_woken(cell);
}

void task_waker_clone(void* p) noexcept { static_cast<CellBase*>(p)->ref_inc(); }
void task_waker_wake(void* p) noexcept { wake_task_by_val(static_cast<CellBase*>(p)); }
void task_waker_wake_by_ref(void* p) noexcept { wake_task_by_ref(static_cast<CellBase*>(p)); }
void task_waker_drop(void* p) noexcept { release_task(static_cast<CellBase*>(p)); }

constexpr Waker::VTable kTaskWakerVTable{&task_waker_clone, &task_waker_wake,
                                         &task_waker_wake_by_ref, &task_waker_drop};

CellBase* current_or_die(const char* what) noexcept {
  CellBase* cell = tls_context.current;
  if (cell == nullptr) fatal(what);
  return cell;
}

}  // namespace

void wake_task_by_val(CellBase* cell) noexcept {
  note_self_wake(cell);
  switch (transition_to_notified_by_val(cell)) {
    case WakeAction::kNothing:
      return;
    case WakeAction::kSubmit:
      submit(cell);
      return;
    case WakeAction::kDealloc:
      Core::dealloc(cell);
      return;
  }
}

void wake_task_by_ref(CellBase* cell) noexcept {
  note_self_wake(cell);
  if (transition_to_notified_by_ref(cell) == WakeAction::kSubmit) submit(cell);
}

void abort_task(CellBase* cell) noexcept {
  if (transition_to_notified_and_cancel(cell) == WakeAction::kSubmit) {
    cell->sched().core_->schedule(cell, false);
  }
}

void release_task(CellBase* cell) noexcept {
  if (cell->ref_dec()) Core::dealloc(cell);
}

void init_scheduler_fields(CellBase* cell) noexcept {
  ::new (static_cast<void*>(cell->sched_)) SchedulerFields{};
  cell->sched().wait_.resume_point = cell->root_;
}

void report_unobserved_exception(CellBase* cell, std::exception_ptr error) noexcept {
  cell->sched().core_->report_unobserved(cell, std::move(error));
}

void spawn_cell(Core* core, CellBase* cell, TaskHooks* hooks, SourceLocation loc) {
  core->spawn(cell, hooks, loc);
}

void yield_current(std::coroutine_handle<> h) noexcept {
  (void)current_or_die(
      "spindle::yield_now() awaited outside a spindle task (only Tasks polled by a spindle "
      "runtime can yield)");
  *tls_context.slot = WaitSlot{h, ReadyCheck{}, CancelHook{}};
  tls_context.yielded = true;
}

void forced_yield_current(std::coroutine_handle<> h) noexcept {
  yield_current(h);
  if (Worker* w = tls_context.worker) w->stats().budget_forced_yields.add();
}

Waker current_task_waker() noexcept {
  CellBase* cell = current_or_die(
      "spindle::timeout awaited outside a spindle task (only Tasks polled by a spindle runtime "
      "can use it)");
  cell->ref_inc();
  return Waker(&kTaskWakerVTable, cell);
}

void throw_io_after_shutdown() {
  throw RuntimeShutdown(
      "spindle: an I/O operation was started on an object whose runtime has shut down (its "
      "io_context runs no more handlers, so the operation could never complete)");
}

void wake_ending_handler(Waker&& w) noexcept {
  ThreadContext& ctx = tls_context;
  const bool outer = std::exchange(ctx.waking_from_handler, true);
  std::move(w).wake();
  ctx.waking_from_handler = outer;
}

void set_cancel_hook(CancelHook hook) noexcept {
  // Called right after current_waker() by the same awaiter.
  tls_context.slot->cancel = hook;
}

void suspend_in_slot(std::coroutine_handle<> h, ReadyCheck check, CancelHook cancel) noexcept {
  (void)current_or_die(
      "a spindle combinator was awaited outside a spindle task (only Tasks polled by a spindle "
      "runtime can use when_all, when_any and timeout)");
  *tls_context.slot = WaitSlot{h, check, cancel};
}

void check_may_block(const char* what) {
  if (tls_context.worker != nullptr) {
    throw UsageError(std::string("spindle: ") + what +
                     " called on a runtime worker thread; it would block the worker that may "
                     "have to run what it waits for. Use co_await inside tasks.");
  }
}

void block_until_complete(CellBase* cell) {
  check_may_block("JoinHandle::join()");
  ThreadNotifier* n = ThreadNotifier::create();
  if (cell->set_join_waker(n->waker())) {
    while (!cell->is_complete()) n->wait();
  }
  n->release();
}

TaskHooks* build_hooks_alone(PendingHooks& pending) {
  void* where = task_alloc(pending.recipe->hooks_size());  // may throw: `pending` stays
  const PendingHooks p = std::exchange(pending, PendingHooks{});
  return p.recipe->build_hooks(where, p.reserved_at, /*free_on_release=*/true);
}

}  // namespace detail

Waker current_waker(std::coroutine_handle<> h, ReadyCheck check) noexcept {
  detail::CellBase* cell = detail::current_or_die(
      "a spindle awaitable was awaited outside a spindle task (only Tasks polled by a spindle "
      "runtime can await spindle's awaitables)");
  *detail::tls_context.slot = detail::WaitSlot{h, check, detail::CancelHook{}};
  cell->ref_inc();
  return Waker(&detail::kTaskWakerVTable, cell);
}

namespace sync::detail {

void block_on_waker(bool (*arm)(void* ctx, Waker w), void* ctx) {
  spindle::detail::check_may_block("a spindle::sync blocking receive");
  auto* n = spindle::detail::ThreadNotifier::create();
  if (arm(ctx, n->waker())) n->wait();
  n->release();
}

}  // namespace sync::detail
}  // namespace spindle

namespace spindle::detail {

ThreadContext& this_thread_context() noexcept { return tls_context; }

Instant current_task_now() noexcept {
  const ThreadContext& ctx = tls_context;
  return ctx.core != nullptr ? ctx.core->now() : clock_now();
}

TaskId current_task_id() noexcept {
  const CellBase* cell = tls_context.current;
  return cell != nullptr ? cell->id_ : 0;
}

PollStart inline_poll_start(Instant now, bool first) noexcept {
  const ThreadContext& ctx = tls_context;
  PollStart p;
  p.now = now;
  p.worker = ctx.worker != nullptr ? ctx.worker->index() : 0;
  p.worker_slot = ctx.worker_slot;
  p.recorder = ctx.worker != nullptr ? ctx.worker->recorder() : nullptr;
  const CellBase* cell = ctx.current;
  if (first || cell == nullptr || cell->sched().wake_kind_ == WakeKind::kFirstPoll) {
    p.wake = WakeKind::kFirstPoll;
    p.woken_at = now;
    return p;
  }
  p.wake = cell->sched().wake_kind_;
  p.woken_at = std::min(cell->sched().woken_at_, now);
  p.self_wake = cell->sched().wake_self_;
  return p;
}

CellBase* enter_inline_hooks() noexcept {
  CellBase* cell = current_or_die(
      "spindle: co_await mon.instrument(task) outside a spindle task (an instrumented operand "
      "runs inside the task that awaits it)");
  ++cell->sched().inline_hooks_;
  return cell;
}

void leave_inline_hooks(CellBase* task) noexcept {
  // The frame is destroyed by whoever owns the task then (its worker, or
  // shutdown): the count is that owner's to change.
  --task->sched().inline_hooks_;
}

}  // namespace spindle::detail
