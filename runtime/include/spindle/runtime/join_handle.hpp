// spindle/runtime/join_handle.hpp — owned permission to await a spawned task.
//
//   spindle::JoinHandle<T>  returned by spawn(); awaits, joins, aborts or detaches the task
//
// Example:
//   auto h = spindle::spawn(compute());   // inside a task
//   int v = co_await h;                   // value, or the task's exception rethrown
//
//   auto h2 = rt.spawn(compute());        // outside the runtime
//   h2.abort();                           // the task is never resumed again
//   try { h2.join(); } catch (const spindle::Cancelled&) {}
//
// Destroying a JoinHandle detaches the task: it keeps running and owns its
// own state; an exception it ends with is then counted and logged once (see
// Runtime::Builder::on_unhandled_exception), never thrown into the process.
//
// Thread safety: one JoinHandle must not be used by two threads at once.
// Different JoinHandles (of the same task, none: a JoinHandle is move-only)
// and the task itself may run concurrently. abort() and is_finished() may be
// called from any thread.
#pragma once

#include <coroutine>
#include <utility>

#include "spindle/runtime/coop.hpp"
#include "spindle/runtime/detail/task_cell.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/hooks.hpp"
#include "spindle/runtime/waker.hpp"

namespace spindle {

template <class T>
class JoinHandle;

namespace detail {
/// Creates JoinHandles for spawn(); the only way to construct a non-empty one.
struct JoinHandleAccess {
  template <class T>
  static JoinHandle<T> make(TaskCell<T>* cell) noexcept {
    return JoinHandle<T>(cell);
  }
  template <class T>
  static CellBase* cell(const JoinHandle<T>& h) noexcept {
    return h.cell_;
  }
};
/// Blocks the calling thread until `cell` completes. Throws UsageError when
/// called on a runtime worker thread (it would block that worker's tasks).
void block_until_complete(CellBase* cell);
/// Throws UsageError naming `what` when the calling thread is a runtime
/// worker: blocking calls are refused there even when they would not block,
/// so that the mistake shows up on the first run, not under load.
void check_may_block(const char* what);
}  // namespace detail

template <class T>
class [[nodiscard(
    "dropping a spindle::JoinHandle detaches its task: its result and exception are lost and it "
    "can no longer be aborted; keep it, co_await it, or call detach()")]] JoinHandle {
 public:
  JoinHandle() noexcept = default;
  JoinHandle(JoinHandle && other) noexcept : cell_(std::exchange(other.cell_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      detach();
      cell_ = std::exchange(other.cell_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  /// Detaches the task (see detach()).
  ~JoinHandle() { detach(); }

  /// False for a default-constructed, moved-from or detached handle.
  [[nodiscard]] bool valid() const noexcept { return cell_ != nullptr; }
  [[nodiscard]] explicit operator bool() const noexcept { return valid(); }

  /// The task's runtime-unique id. Precondition: valid().
  [[nodiscard]] TaskId id() const noexcept { return cell_->id_; }

  /// The instrumentation attached at spawn (a TaskMonitor's per-task
  /// record), or nullptr. Alive as long as this handle.
  [[nodiscard]] TaskHooks* hooks() const noexcept {
    return cell_ != nullptr ? cell_->hooks_ : nullptr;
  }

  /// True once the task has finished: produced a value, thrown, or been
  /// cancelled. Never blocks.
  [[nodiscard]] bool is_finished() const noexcept {
    return cell_ != nullptr && cell_->is_complete();
  }

  /// Requests cancellation. A task that is idle or queued is never resumed
  /// again; a task being polled right now is cancelled when that poll
  /// suspends (a poll that finishes the task wins, and the value stands).
  /// The frame is destroyed on a worker; awaiting the handle then throws
  /// Cancelled. No effect on a finished task. Safe from any thread.
  void abort() const noexcept {
    if (cell_ != nullptr) detail::abort_task(cell_);
  }

  /// Gives up the handle: the task keeps running and frees its own state
  /// when done. An exception it ends with is reported to the runtime's
  /// unhandled-exception handler (logged once by default). The handle
  /// becomes invalid.
  void detach() noexcept {
    if (cell_ == nullptr) return;
    CellBase* cell = std::exchange(cell_, nullptr);
    if (cell->unset_join_interest()) {
      // Completed already: the output is ours to drop.
      if (std::exception_ptr e = cell->vtable_->drop_output(cell)) {
        detail::report_unobserved_exception(cell, std::move(e));
      }
    }
    detail::release_task(cell);
  }

  /// Blocks the calling thread until the task finishes, then returns its
  /// value or rethrows its exception (Cancelled if it was aborted or
  /// destroyed at shutdown). Throws UsageError on a runtime worker thread
  /// (use co_await there), on an invalid handle, or when the result was
  /// already taken.
  T join() {
    require_valid();
    detail::check_may_block("JoinHandle::join()");
    if (!cell_->is_complete()) detail::block_until_complete(cell_);
    return typed()->take_output();
  }

  /// co_await from inside a spindle task: suspends until the task finishes,
  /// then yields its value or rethrows its exception (Cancelled if aborted).
  /// Throws UsageError on an invalid handle or when the result was already
  /// taken (a JoinHandle is awaited once).
  auto operator co_await()& noexcept { return Awaiter{this, {}}; }
  auto operator co_await()&& noexcept { return Awaiter{this, {}}; }

 private:
  friend struct detail::JoinHandleAccess;

  using CellBase = detail::CellBase;
  explicit JoinHandle(detail::TaskCell<T> * cell) noexcept : cell_(cell) {}

  detail::TaskCell<T>* typed() const noexcept { return static_cast<detail::TaskCell<T>*>(cell_); }
  void require_valid() const {
    if (cell_ == nullptr) {
      throw UsageError("spindle: JoinHandle is empty (moved-from, detached or default)");
    }
  }

  struct Awaiter {
    JoinHandle* self;
    [[nodiscard]] bool await_ready() {
      self->require_valid();
      return self->cell_->is_complete() && coop.ready();
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      if (coop.exhausted()) {
        coop::forced_yield(h);
        return true;
      }
      // false: completed between await_ready and here; resume at once.
      return self->cell_->set_join_waker(current_waker(h, {&is_complete, self->cell_}));
    }
    T await_resume() { return self->typed()->take_output(); }

    static bool is_complete(const void* cell) noexcept {
      return static_cast<const CellBase*>(cell)->is_complete();
    }

    coop::BudgetedReady coop;  // a finished task's result costs one budget unit
  };

  CellBase* cell_ = nullptr;  // the task's cell (one reference, JOIN_INTEREST); null when empty
};

}  // namespace spindle
