// A task's life in the Core: spawn (bind to the owned list, first queueing),
// scheduling from any thread, completion (the output, the JoinHandle's wake,
// the hooks' on_drop), deallocation, and unobserved exceptions. The state
// transitions themselves are in task_state.hpp.

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "cell_fields.hpp"
#include "scheduler.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "task_state.hpp"
#include "worker.hpp"

namespace spindle::detail {

namespace {

std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "(an exception not derived from std::exception)";
  }
}

}  // namespace

// ---- tasks ---------------------------------------------------------------------

void Core::spawn(CellBase* cell, TaskHooks* hooks, SourceLocation loc) {
  bind_new(cell, hooks, loc, false);
  if (Worker* w = current_worker()) {
    w->stats().spawns.add();
  } else {
    remote_spawns_.fetch_add(1, std::memory_order_relaxed);
  }
  schedule(cell, false);
}

void Core::spawn_blocking(CellBase* cell, SourceLocation loc) {
  cell->sched().blocking_ = true;
  // A remote shard: the job finishes on a pool thread, never on a worker.
  bind_new(cell, nullptr, loc, true);
  remote_spawns_.fetch_add(1, std::memory_order_relaxed);
  bool queued = false;
  try {
    queued = blocking_.push(cell);
  } catch (...) {
    // No thread could be started for it: cancel it here, as nobody else
    // will, and release the reference its JoinHandle would have held.
    const bool claimed = claim_to_cancel(cell);
    if (claimed) {
      cancel_task(cell, true);
    } else {
      drop_task_ref(cell);  // shutdown got to it first
    }
    if (cell->unset_join_interest()) cell->vtable_->drop_output(cell);
    drop_task_ref(cell);
    throw;
  }
  // Refused only when the pool shut down after the bind: shutdown step 4
  // cancels the task (its JoinHandle reports Cancelled); drop the reference
  // the pool would have held.
  if (!queued) drop_task_ref(cell);
}

std::size_t Core::caller_worker() const noexcept {
  const Worker* w = current_worker();
  return w != nullptr ? w->index() : OwnedTasks::kNotWorker;
}

void Core::bind_new(CellBase* cell, TaskHooks* hooks, SourceLocation loc, bool remote) {
  cell->sched().core_ = this;
  cell_ref();  // the cell's reference on the Core
  cell->hooks_ = hooks;
  cell->sched().group_id_ = hooks != nullptr ? hooks->group_id() : 0;
  cell->sched().location_ = loc;
  Instant spawned{};
  if (hooks != nullptr || config_.time_every_poll) {
    spawned = now();  // one reading: the hooks' spawn time and the first poll's woken_at
    cell->sched().spawned_at_ = cell->sched().woken_at_ = spawned;
  }
  cell->sched().wake_kind_ = WakeKind::kFirstPoll;
  cell->id_ = next_task_id();
  // Owners: the owned list, the scheduler (queued now), the JoinHandle.
  // relaxed: the cell reaches other threads through a queue (release/mutex).
  cell->state_.store(kNotified | kJoinInterest | 3 * kRefOne, std::memory_order_relaxed);
  if (hooks != nullptr) hooks->on_spawn(TaskInfo{cell->id_, loc}, spawned);
  if (!owned_.bind(cell, remote ? OwnedTasks::kNotWorker : caller_worker())) {
    if (hooks != nullptr) hooks->on_drop(true);
    dealloc(cell);  // destroys the never-polled frame
    throw RuntimeShutdown();
  }
}

void Core::schedule(CellBase* task, bool is_yield) noexcept {
  if (Worker* w = current_worker()) {
    w->schedule_local(task, is_yield);
  } else {
    schedule_remote(task);
  }
}

void Core::schedule_woken(CellBase* task) noexcept {
  if (Worker* w = current_worker()) {
    w->schedule_woken(task);
  } else {
    schedule_remote(task);
  }
}

void Core::schedule_remote(CellBase* task) noexcept {
  remote_schedules_.fetch_add(1, std::memory_order_relaxed);
  if (!inject_.push(task)) {
    // Shutting down: the task is (or will be) destroyed by shutdown step 4.
    drop_task_ref(task);
    return;
  }
  notify_parked();
}

void Core::drop_task_ref(CellBase* task) noexcept {
  if (task->ref_dec()) dealloc(task);
}

void Core::finish_task(CellBase* task) noexcept {
  task->vtable_->finish(task);
  complete(task, false, 1);
}

void Core::cancel_task(CellBase* task, bool scheduler_ref) noexcept {
  // Destroying the frame runs the destructors of the task's locals, on this
  // thread, with the task still RUNNING (nobody else touches it).
  task->vtable_->cancel(task);
  complete(task, true, scheduler_ref ? 1 : 0);
}

void Core::complete(CellBase* task, bool cancelled, std::uint64_t refs) noexcept {
  publish_complete(task, cancelled);
  // Off the list: no lock when this thread owns its list (see owned_tasks.hpp).
  owned_.release(task, refs, caller_worker());
}

void Core::publish_complete(CellBase* task, bool cancelled) noexcept {
  if (task->hooks_ != nullptr) task->hooks_->on_drop(cancelled);
  const std::uint64_t prev = transition_to_complete(task);
  if ((prev & kJoinInterest) == 0) {
    // Detached: nobody will read the output.
    if (std::exception_ptr e = task->vtable_->drop_output(task)) report_unobserved(task, e);
  } else if ((prev & kJoinWaker) != 0) {
    // JOIN_WAKER was set when we set COMPLETE: the slot is ours now.
    task->join_waker_.wake_by_ref();
    task->join_waker_ = Waker();
  }
}

void Core::dealloc(CellBase* task) noexcept {
  Core* core = task->sched().core_;
  if (task->hooks_ != nullptr) task->hooks_->on_release();
  task->vtable_->dealloc(task);
  if (core != nullptr) core->cell_unref();  // last: may free the Core
}

void Core::report_unobserved(CellBase* task, std::exception_ptr error) noexcept {
  unhandled_.fetch_add(1, std::memory_order_relaxed);
  if (config_.on_unhandled_exception) {
    try {
      config_.on_unhandled_exception(task->id_, std::move(error));
    } catch (...) {
      fatal("the on_unhandled_exception handler threw");
    }
    return;
  }
  std::string what = describe_exception(error);
  std::fprintf(stderr,
               "spindle: task %llu (spawned at %s:%u) ended with an exception that nobody "
               "awaited: %s\n",
               static_cast<unsigned long long>(task->id_), task->sched().location_.file_name(),
               static_cast<unsigned>(task->sched().location_.line()), what.c_str());
}

}  // namespace spindle::detail
