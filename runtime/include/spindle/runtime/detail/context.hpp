// Internal: the per-thread scheduler context. Not part of the public API.
#pragma once

#include <coroutine>
#include <cstdint>

#include "spindle/runtime/waker.hpp"

namespace spindle::detail {

class Core;
class Worker;
class CellBase;

/// How to cancel the operation a suspended coroutine waits on. `fn(ctx)`
/// requests terminal cancellation (idempotent: a second call only asks)
/// and returns true while the operation is still in flight, i.e. its
/// handler has not run yet and may still touch what the coroutine lent it
/// (buffers). false: nothing is in flight, the frame may be destroyed now.
/// Called only by the thread that owns the task (the RUNNING owner).
struct CancelHook {
  bool (*fn)(void* ctx) noexcept = nullptr;  // null: nothing to cancel
  void* ctx = nullptr;                       // argument for fn (usually the awaiter)
};

/// Where one chain of awaiting coroutines inside a root task suspended:
/// the root task has one (in its cell); each operand of an inline
/// combinator (when_all, when_any, timeout) has its own, so that several
/// operands can be suspended at once inside one task.
struct WaitSlot {
  std::coroutine_handle<> resume_point;  // resumed when ready_check passes
  ReadyCheck ready_check;                // null: resumable by any wake
  CancelHook cancel;                     // the pending operation's cancellation, if any
};

/// True when the coroutine waiting in `s` may be resumed now.
inline bool slot_ready(const WaitSlot& s) noexcept {
  return s.ready_check.fn == nullptr || s.ready_check.fn(s.ready_check.ctx);
}

/// Requests cancellation of what `s` waits on; true while it is in flight.
inline bool slot_cancel(WaitSlot& s) noexcept {
  return s.cancel.fn != nullptr && s.cancel.fn(s.cancel.ctx);
}

/// ThreadContext::worker_slot of a thread that runs no worker.
inline constexpr std::uint32_t kNoWorkerSlot = UINT32_MAX;

/// What the current thread is doing for a runtime. Plain (non-atomic) data:
/// only its own thread reads or writes it.
struct ThreadContext {
  Core* core = nullptr;               // runtime this thread is a worker of (or drives in block_on)
  Worker* worker = nullptr;           // the worker this thread runs; null outside workers
  CellBase* current = nullptr;        // the root task being polled; null between polls
  bool yielded = false;               // the current poll asked to be re-queued (yield_now)
  bool self_woken = false;            // the current task woke itself during this poll
  std::uint32_t budget = UINT32_MAX;  // cooperative budget left in this poll (unlimited outside)
  WaitSlot* slot = nullptr;  // where awaiters of the running coroutine register (see WaitSlot)
  std::uint32_t worker_slot = kNoWorkerSlot;  // worker's process-wide slot (see worker_slot())
  bool waking_from_handler = false;           // inside wake_ending_handler (use_task.hpp)
};

// Constant-initialized and trivially destructible: access is a plain TLS load.
// Not from code that runs inside a coroutine (an awaiter, a combinator's
// loop): use this_thread_context() there. Clang may compute a
// thread_local's address once in a coroutine and reuse it after a co_await,
// when the coroutine has been resumed on another worker: it would then read
// and write the previous thread's context (tests/runtime/migration_test.cpp).
inline thread_local ThreadContext tls_context;

/// The calling thread's context, through a call the compiler cannot see
/// into, so that its address is taken on the thread running the caller now
/// (see tls_context). For code inlined into coroutines.
ThreadContext& this_thread_context() noexcept;

/// The slot of the worker the calling thread runs now: a small index unique
/// among the live workers of every runtime in the process (see
/// PollStart::worker_slot), for per-worker counters with one writer;
/// kNoWorkerSlot on other threads (blocking pool, foreign threads).
inline std::uint32_t worker_slot() noexcept { return tls_context.worker_slot; }

}  // namespace spindle::detail
