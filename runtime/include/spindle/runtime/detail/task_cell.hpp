// Internal: the heap cell that represents one root task inside the runtime.
// Not part of the public API; included by join_handle.hpp and runtime.hpp.
//
// A cell holds the task's scheduling state word, its root coroutine frame,
// the point where its next poll resumes, its output once finished, and the
// waker of whoever awaits its JoinHandle. An instrumented task's hooks (a
// TaskMonitor's per-task record) live in the same block, right after the
// cell (TaskCell::create, HooksRecipe), and so does the callable of
// spawn(callable) (TaskCell::create_from): a spawned task is two blocks, its
// frame and its cell, with or without a monitor, with or without a lambda.
// The frame cannot join them: it is allocated when the coroutine is called,
// before spawn sees it (and reserving a cell's room in every frame would
// make each awaited, never spawned Task pay for one).
//
// The state word packs flags and a reference count (after tokio's task state):
//
//   bit 0 RUNNING        a worker is polling the task (it alone touches the frame)
//   bit 1 COMPLETE       the frame is gone; the output (value / exception /
//                        cancelled) is stored
//   bit 2 NOTIFIED       the task is queued, or must be queued again when the
//                        current poll ends
//   bit 3 CANCELLED      abort() was requested; the next owner destroys the frame
//   bit 4 JOIN_INTEREST  a JoinHandle still wants the output
//   bit 5 JOIN_WAKER     the JoinHandle registered a waker in join_waker_
//   bits 8.. refcount    owners: the owned-task list, the scheduler (while the
//                        task is queued or running), the JoinHandle, and every
//                        Waker that refers to the task
//
// Ownership of the frame moves with the RUNNING bit: whoever sets RUNNING
// (a worker about to poll, or shutdown about to destroy) has it exclusively.
// Ownership of join_waker_: the JoinHandle while JOIN_WAKER is clear and the
// task is not COMPLETE; the completing worker once it observes JOIN_WAKER set
// in the same atomic step that sets COMPLETE.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <utility>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/task_alloc.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/hooks.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/waker.hpp"

namespace spindle::detail {

class Core;
class CellBase;

inline constexpr std::uint64_t kRunning = 1U << 0;
inline constexpr std::uint64_t kComplete = 1U << 1;
inline constexpr std::uint64_t kNotified = 1U << 2;
inline constexpr std::uint64_t kCancelled = 1U << 3;
inline constexpr std::uint64_t kJoinInterest = 1U << 4;
inline constexpr std::uint64_t kJoinWaker = 1U << 5;
inline constexpr int kRefShift = 8;
inline constexpr std::uint64_t kRefOne = std::uint64_t{1} << kRefShift;
inline constexpr std::uint64_t kFlagMask = kRefOne - 1;

inline constexpr std::uint64_t ref_count(std::uint64_t state) noexcept {
  return state >> kRefShift;
}

/// Type-specific operations on a cell (the output type is erased in the scheduler).
struct CellVTable {
  /// The root frame is done(): move its result into the cell, destroy the frame.
  void (*finish)(CellBase*) noexcept;
  /// Destroy the unfinished frame; the output becomes "cancelled".
  void (*cancel)(CellBase*) noexcept;
  /// Destroy an output nobody will read; returns its exception, if it held one.
  std::exception_ptr (*drop_output)(CellBase*) noexcept;
  /// Free the cell (the reference count reached zero).
  void (*dealloc)(CellBase*) noexcept;
};

/// The scheduler's part of a cell, private to the runtime library
/// (runtime/src/cell_fields.hpp); the cell reserves this much room for it.
struct SchedulerFields;
inline constexpr std::size_t kSchedulerFieldsSize = 152;
inline constexpr std::size_t kSchedulerFieldsAlign = 8;
/// Constructs `cell`'s SchedulerFields (out of line: their type is private).
void init_scheduler_fields(CellBase* cell) noexcept;

/// What a wake must do after its state transition.
enum class WakeAction : std::uint8_t { kNothing, kSubmit, kDealloc };

/// The type-erased part of a root task's cell.
class CellBase {
 public:
  explicit CellBase(const CellVTable* vtable, std::coroutine_handle<> root) noexcept
      : vtable_(vtable), root_(root) {
    init_scheduler_fields(this);
  }
  CellBase(const CellBase&) = delete;
  CellBase& operator=(const CellBase&) = delete;

  // ---- what JoinHandle<T> needs (the scheduler's transitions, each one
  // atomic read-modify-write, live in runtime/src/task_state.hpp) --------

  /// Drops `n` references; true when they were the last (caller deallocates).
  bool ref_dec(std::uint64_t n = 1) noexcept {
    // acq_rel: every owner's writes happen-before the deallocation.
    std::uint64_t prev = state_.fetch_sub(n * kRefOne, std::memory_order_acq_rel);
    return ref_count(prev) == n;
  }
  void ref_inc() noexcept {
    // relaxed: the caller already owns a reference, which keeps the cell alive.
    state_.fetch_add(kRefOne, std::memory_order_relaxed);
  }

  [[nodiscard]] bool is_complete() const noexcept {
    return (state_.load(std::memory_order_acquire) & kComplete) != 0;
  }

  /// JoinHandle side: registers `waker` to be woken at completion. Returns
  /// false (and registers nothing) when the task has already completed.
  bool set_join_waker(Waker waker) noexcept {
    std::uint64_t cur = state_.load(std::memory_order_acquire);
    if ((cur & kComplete) != 0) return false;
    if ((cur & kJoinWaker) != 0) {
      // Take the slot back before replacing its waker.
      for (;;) {
        if ((cur & kComplete) != 0) return false;
        if (state_.compare_exchange_weak(cur, cur & ~kJoinWaker, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
          break;
        }
      }
      join_waker_ = Waker();
    }
    join_waker_ = std::move(waker);
    cur = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((cur & kComplete) != 0) {
        join_waker_ = Waker();  // the completing worker did not see our waker
        return false;
      }
      // release: publishes join_waker_ to the completing worker.
      if (state_.compare_exchange_weak(cur, cur | kJoinWaker, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return true;
      }
    }
  }

  /// JoinHandle side: gives up interest in the output. Returns true when the
  /// task had already completed, in which case the caller owns the output
  /// and must drop it.
  bool unset_join_interest() noexcept {
    std::uint64_t cur = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((cur & kComplete) != 0) return true;
      if (state_.compare_exchange_weak(cur, cur & ~(kJoinInterest | kJoinWaker),
                                       std::memory_order_acq_rel, std::memory_order_acquire)) {
        if ((cur & kJoinWaker) != 0) join_waker_ = Waker();  // the slot was ours
        return false;
      }
    }
  }

  // ---- data -----------------------------------------------------------------

  /// The scheduler's own part of the cell (queue and owned-list links, the
  /// wait slot, wake and poll records): runtime/src/cell_fields.hpp, the
  /// only code that reads it.
  SchedulerFields& sched() noexcept;
  [[nodiscard]] const SchedulerFields& sched() const noexcept;

  std::atomic<std::uint64_t> state_{0};  // flags and reference count, see file comment
  const CellVTable* vtable_;             // output-type specific operations
  std::coroutine_handle<> root_;         // the root frame; done() after the final poll
  TaskHooks* hooks_ = nullptr;           // instrumentation, or nullptr (most tasks)

 private:
  friend void init_scheduler_fields(CellBase* cell) noexcept;
  // Here, next to the state word: a poll reads its first fields.
  alignas(kSchedulerFieldsAlign) unsigned char sched_[kSchedulerFieldsSize];  // a SchedulerFields

 public:
  TaskId id_ = 0;               // runtime-unique id, set at spawn
  std::uint32_t trailing_ = 0;  // bytes of hooks storage after the typed cell (same block)
  Waker join_waker_;            // JoinHandle's waiter; see ownership above
};

/// The callable of spawn(callable), kept in its task's cell (after the
/// hooks storage) from before it is called until the frame it made is
/// destroyed: the coroutine's `this` points here. Type-erased by `destroy`.
struct FactoryBox {
  void (*destroy)(FactoryBox*) noexcept;  // runs ~F
};
template <class F>
struct FactoryBoxOf final : FactoryBox {
  template <class Arg>
  explicit FactoryBoxOf(Arg&& arg) : FactoryBox{&destroy_box}, f(std::forward<Arg>(arg)) {}
  static void destroy_box(FactoryBox* box) noexcept {
    static_cast<FactoryBoxOf*>(box)->~FactoryBoxOf();
  }
  F f;
};
/// Callables that fit a cell's trailing storage (std::max_align_t aligned).
template <class F>
inline constexpr bool kBoxableFactory = alignof(FactoryBoxOf<F>) <= alignof(std::max_align_t);

/// The typed cell of a root task producing T.
template <class T>
class TaskCell final : public CellBase {
 public:
  using handle_type = typename Task<T>::handle_type;

  explicit TaskCell(Task<T>&& task) noexcept : TaskCell(task.release()) {}

  static void* operator new(std::size_t size) { return task_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { task_free(p, size); }

  /// A cell for `task` whose block has `trailing` more bytes after the cell
  /// (at trailing_storage(), aligned to std::max_align_t): the task's hooks
  /// live there (HooksRecipe), so that an instrumented task is one block.
  /// Throws std::bad_alloc (and `task` keeps its frame).
  static TaskCell* create(Task<T>&& task, std::size_t trailing) {
    if (trailing > UINT32_MAX) throw std::bad_alloc();
    void* mem = task_alloc(block_size(static_cast<std::uint32_t>(trailing)));
    auto* cell = ::new (mem) TaskCell(std::move(task));
    cell->trailing_ = static_cast<std::uint32_t>(trailing);
    return cell;
  }
  /// A cell for the task that `f()` returns, with `hooks_bytes` of hooks
  /// storage (trailing_storage()) and then the callable itself, moved or
  /// copied from `f` into the same block before it is called, so that its
  /// captures live exactly as long as the task's frame: they are destroyed
  /// right after it (when the task finishes, is cancelled or is dropped
  /// unpolled). `f` is called here, on the calling thread: a coroutine
  /// lambda's call only creates its frame. Throws what copying or calling
  /// `f` throws, std::bad_alloc, or UsageError when `f` returns an empty
  /// Task; nothing is left behind then.
  template <class F>
  static TaskCell* create_from(F&& f, std::size_t hooks_bytes) {
    using Box = FactoryBoxOf<std::decay_t<F>>;
    static_assert(kBoxableFactory<std::decay_t<F>>, "over-aligned callables use invoke_owned");
    const std::size_t box_at = (hooks_bytes + alignof(Box) - 1) / alignof(Box) * alignof(Box);
    const std::size_t trailing = box_at + sizeof(Box);
    if (trailing > UINT32_MAX || trailing_offset() + box_at > UINT32_MAX) throw std::bad_alloc();
    const std::size_t size = block_size(static_cast<std::uint32_t>(trailing));
    void* mem = task_alloc(size);
    // The callable first, at its place after the cell: the call below makes
    // the frame, which keeps the callable's address.
    char* box_mem = static_cast<char*>(mem) + trailing_offset() + box_at;
    Box* box = nullptr;
    try {
      box = ::new (box_mem) Box(std::forward<F>(f));
    } catch (...) {
      task_free(mem, size);
      throw;
    }
    handle_type h;
    try {
      Task<T> task = std::invoke(box->f);
      if (!task.valid())
        throw UsageError("spindle: spawn of a callable that returned an empty Task");
      h = task.release();
    } catch (...) {
      box->destroy(box);
      task_free(mem, size);
      throw;
    }
    auto* cell = ::new (mem) TaskCell(h);
    cell->trailing_ = static_cast<std::uint32_t>(trailing);
    cell->factory_at_ = static_cast<std::uint32_t>(trailing_offset() + box_at);
    return cell;
  }

  /// The hooks storage of a cell made by create() with trailing bytes.
  [[nodiscard]] void* trailing_storage() noexcept {
    return reinterpret_cast<char*>(this) + trailing_offset();
  }

  /// Takes the output once the task is COMPLETE (the caller observed it with
  /// acquire ordering and owns the output). Rethrows the task's exception;
  /// throws Cancelled for an aborted task and UsageError when taken twice.
  T take_output() {
    switch (output_state_) {
      case Output::kTaken:
        throw UsageError(
            "spindle: JoinHandle awaited or joined twice: the task's result was already taken");
      case Output::kAborted:
        throw Cancelled();
      case Output::kNone:
        throw UsageError("spindle: internal error: output read before the task completed");
      case Output::kReady:
        break;
    }
    output_state_ = Output::kTaken;
    Result<T> r = std::move(*output_);
    output_.reset();
    return r.take();
  }

  [[nodiscard]] bool was_cancelled() const noexcept { return output_state_ == Output::kAborted; }

 private:
  enum class Output : std::uint8_t { kNone, kReady, kAborted, kTaken };

  explicit TaskCell(handle_type h) noexcept : CellBase(&kVTable, h), handle_(h) {}

  static void finish(CellBase* base) noexcept {
    auto* self = static_cast<TaskCell*>(base);
    self->output_.emplace(std::move(self->handle_.promise().result()));
    self->output_state_ = Output::kReady;
    std::exchange(self->handle_, nullptr).destroy();
    self->drop_factory();  // after the frame, which may still use the captures
  }
  static void cancel(CellBase* base) noexcept {
    auto* self = static_cast<TaskCell*>(base);
    // Destroying the root frame destroys the whole chain of awaited Tasks
    // below it (each Task object lives in its awaiter's frame), innermost
    // first and in constant stack.
    destroy_task_frame(&std::exchange(self->handle_, nullptr).promise());
    self->drop_factory();
    self->output_state_ = Output::kAborted;
  }
  static std::exception_ptr drop_output(CellBase* base) noexcept {
    auto* self = static_cast<TaskCell*>(base);
    std::exception_ptr error;
    if (self->output_state_ == Output::kReady) {
      error = self->output_->exception();
      self->output_.reset();
      self->output_state_ = Output::kTaken;
    }
    return error;
  }
  static void dealloc(CellBase* base) noexcept {
    auto* self = static_cast<TaskCell*>(base);
    if (self->handle_) self->handle_.destroy();  // never polled and never bound
    self->drop_factory();
    const std::size_t size = block_size(self->trailing_);
    self->~TaskCell();
    task_free(self, size);
  }

  /// Destroys the callable of create_from, if there is one (once).
  void drop_factory() noexcept {
    if (factory_at_ == 0) return;
    auto* box = reinterpret_cast<FactoryBox*>(reinterpret_cast<char*>(this) +
                                              std::exchange(factory_at_, 0));
    box->destroy(box);
  }

  static constexpr std::size_t trailing_offset() noexcept {
    constexpr std::size_t a = alignof(std::max_align_t);
    return (sizeof(TaskCell) + a - 1) / a * a;
  }
  static constexpr std::size_t block_size(std::uint32_t trailing) noexcept {
    return trailing == 0 ? sizeof(TaskCell) : trailing_offset() + trailing;
  }

  static constexpr CellVTable kVTable{&finish, &cancel, &drop_output, &dealloc};

  handle_type handle_;                   // the root frame until it finishes or is cancelled
  std::optional<Result<T>> output_;      // the result, once finished
  Output output_state_ = Output::kNone;  // what output_ holds
  std::uint32_t factory_at_ = 0;         // offset of create_from's FactoryBox, 0: none (or gone)
};

// ---- entry points implemented in the runtime library ---------------------

/// Wakes the task (`cell` keeps or consumes a reference as named).
void wake_task_by_val(CellBase* cell) noexcept;
void wake_task_by_ref(CellBase* cell) noexcept;
/// Requests cancellation of the task.
void abort_task(CellBase* cell) noexcept;
/// Drops one reference held outside the scheduler (a JoinHandle's).
void release_task(CellBase* cell) noexcept;
/// Reports an exception that no one will ever observe (detached task).
void report_unobserved_exception(CellBase* cell, std::exception_ptr error) noexcept;
/// Binds a new cell to `core` and queues its first poll. On failure (the
/// runtime is shutting down) destroys the cell and throws RuntimeShutdown.
void spawn_cell(Core* core, CellBase* cell, TaskHooks* hooks, SourceLocation loc);

}  // namespace spindle::detail
