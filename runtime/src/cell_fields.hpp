// Internal: the scheduler's part of a task cell. Only the runtime library
// reads it; the public task_cell.hpp keeps what JoinHandle<T>, HookedTask
// and the typed cell need (state word, vtable, root frame, hooks, id, join
// waker) and reserves room for this struct (kSchedulerFieldsSize), which
// CellBase's constructor builds through init_scheduler_fields().
//
// Writers: the spawning thread until the cell is published (bind), then
// the owner of the RUNNING bit for the poll records, the queue that holds
// the cell for queue_next_, and the owned-task list's protocol for its
// links (runtime/src/owned_tasks.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <new>
#include <type_traits>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/task_cell.hpp"
#include "spindle/runtime/hooks.hpp"

namespace spindle::detail {

// The order follows the poll: the wait slot and the wake record first, in
// the cache line after the cell's state word, so that a poll touches two
// lines of the cell (yield_many measured 13% slower with them in a third).
struct SchedulerFields {
  WaitSlot wait_;                        // where the next poll resumes, its ready check and
                                         //   the pending operation's cancellation (awaiters set it)
  std::atomic<std::uint64_t> polls_{0};  // polls so far (written by the polling worker)
  Instant woken_at_{};                   // when it became scheduled (hooks or poll timing):
                                         //   written by the waker before it queues the task,
                                         //   read by the poll that dequeues it
  std::uint32_t inline_hooks_ = 0;       // instrumented operands running inside this task
                                         //   (co_await mon.instrument(t)): stamp its wakes
                                         //   and time its polls as if it had hooks. Written
                                         //   by the polling worker; read by the poll and by
                                         //   a waker after its transition (ordered by it)
  std::uint32_t owned_shard_ = 0;        // which owned-task list holds the cell
  WakeKind wake_kind_ = WakeKind::kFirstPoll;  // how it became scheduled (hooks; same writers)
  bool wake_self_ = false;                     // that wake came from its own poll (hooks; same)
  bool blocking_ = false;                      // a spawn_blocking job
  CellBase* queue_next_ = nullptr;             // link in the injection queue while queued there;
                                               //   once COMPLETE, the owned list's hand-off link
  Core* core_ = nullptr;                       // the runtime the task was spawned on (counted ref)
  std::uint64_t group_id_ = 0;                 // hooks_->group_id(), read once at spawn
  std::atomic<std::int64_t> busy_ns_{0};       // time spent in polls (task-dump timing only)
  Instant spawned_at_{};                       // spawn time (poll timing only)
  std::atomic<CellBase*> owned_prev_{};        // links in the owned-task list (protocol in
  std::atomic<CellBase*> owned_next_{};        //   runtime/src/owned_tasks.hpp)
  SourceLocation location_;                    // where spawn() was called
};

static_assert(sizeof(SchedulerFields) <= kSchedulerFieldsSize,
              "raise kSchedulerFieldsSize in task_cell.hpp");
static_assert(alignof(SchedulerFields) <= kSchedulerFieldsAlign,
              "raise kSchedulerFieldsAlign in task_cell.hpp");
static_assert(std::is_trivially_destructible_v<SchedulerFields>,
              "a cell's dealloc never destroys its SchedulerFields");

inline SchedulerFields& CellBase::sched() noexcept {
  return *std::launder(reinterpret_cast<SchedulerFields*>(sched_));
}
inline const SchedulerFields& CellBase::sched() const noexcept {
  return *std::launder(reinterpret_cast<const SchedulerFields*>(sched_));
}

}  // namespace spindle::detail
