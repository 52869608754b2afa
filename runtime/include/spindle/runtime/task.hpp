// spindle/runtime/task.hpp — the lazy coroutine type every spindle task is written in.
//
//   spindle::Task<T>   a lazy coroutine producing a T (T may be void or move-only)
//
// A Task does nothing until it is awaited or spawned. Awaiting a Task inside
// another runs it inline by symmetric transfer: it becomes part of the
// caller's poll, with no scheduling in between. Spawning it (spindle::spawn,
// Runtime::spawn, Handle::spawn) makes it a *root task*: the unit that the
// scheduler queues, polls and measures.
//
// Example:
//   spindle::Task<int> answer() { co_return 42; }
//   spindle::Task<void> caller() {
//     int v = co_await answer();          // runs inline, no scheduling
//     auto h = spindle::spawn(answer());  // a separate root task
//     v += co_await h;
//   }
//
// Errors: an exception that escapes the coroutine body is stored and
// rethrown to whoever awaits the Task (or its JoinHandle).
//
// Misuse: a Task is awaited once, as an rvalue: `co_await t` on a named
// Task does not compile (write `co_await std::move(t)`), and awaiting a
// moved-from or already finished Task throws UsageError instead of
// resuming a dead frame.
//
// Lifetimes (why spindle's examples pass values as parameters): a
// coroutine's parameters are copied or moved into its frame, so a Task
// owns what it was given by value. A lambda's *captures* are not: they
// live in the lambda object, and `[s]() -> Task<T> { ... }()` destroys
// that object at the end of the statement while the Task lives on, so the
// body reads a dangling capture at its first resumption. Pass the values
// as parameters, or hand the callable itself to spindle::spawn(callable)
// or spindle::Runtime::spawn(callable), which keep it inside the task.
//
// Destruction: destroying a suspended Task destroys the chain of Tasks it
// awaits innermost first, in constant stack at any depth.
//
// Thread safety: a Task is a unique owner of its coroutine frame; it is
// movable, not copyable, and must not be used by two threads at once. Once
// spawned, the runtime owns the frame.
#pragma once

#include <coroutine>
#include <cstdlib>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/runtime/detail/task_alloc.hpp"
#include "spindle/runtime/errors.hpp"

namespace spindle {

template <class T = void>
class Task;

namespace detail {

/// The value, exception, or nothing-yet that a coroutine produced.
template <class T>
class Result {
 public:
  template <class U>
  void set_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(v));
  }
  void set_exception(std::exception_ptr e) noexcept { error_ = std::move(e); }
  [[nodiscard]] bool has_value() const noexcept { return value_.has_value(); }
  [[nodiscard]] const std::exception_ptr& exception() const noexcept { return error_; }
  /// Moves the value out, or rethrows the stored exception.
  T take() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;    // set by co_return
  std::exception_ptr error_;  // set when the body threw
};

template <>
class Result<void> {
 public:
  void set_value() noexcept { done_ = true; }
  void set_exception(std::exception_ptr e) noexcept { error_ = std::move(e); }
  [[nodiscard]] bool has_value() const noexcept { return done_; }
  [[nodiscard]] const std::exception_ptr& exception() const noexcept { return error_; }
  void take() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  bool done_ = false;         // set by co_return / falling off the end
  std::exception_ptr error_;  // set when the body threw
};

class TaskBase;
class TaskPromiseBase;

/// Destroys the frame of `top` and, innermost first, the chain of Task
/// frames it is suspended in (each awaited Task lives in its awaiter's
/// frame). Iterative: constant stack at any depth.
void destroy_task_frame(TaskPromiseBase* top) noexcept;

/// Promise parts shared by every Task<T>.
class TaskPromiseBase {
 public:
  struct FinalAwaiter {
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      // An awaited Task hands control straight back to its awaiter
      // (symmetric transfer: no stack growth). A root task has no
      // continuation: control returns to the worker that polled it, which
      // sees the frame done().
      TaskPromiseBase& p = self.promise();
      if (p.outer_ != nullptr) {
        p.outer_->inner_ = nullptr;  // the awaiter no longer waits inside us
        p.outer_ = nullptr;
      }
      std::coroutine_handle<> next = p.continuation_;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  // Frames come from spindle's per-thread block cache (detail/task_alloc.hpp).
  static void* operator new(std::size_t size) { return task_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { task_free(p, size); }

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }

  /// Links this frame below `outer` (a Task frame awaiting it), owned by
  /// the Task object `owner`: the chain destroy_task_frame() walks.
  void link_below(TaskPromiseBase* outer, TaskBase* owner) noexcept {
    outer_ = outer;
    owner_ = owner;
    if (outer != nullptr) outer->inner_ = this;
  }
  /// This frame, type-erased.
  [[nodiscard]] std::coroutine_handle<> frame() const noexcept {
    return std::coroutine_handle<>::from_address(frame_);
  }

 protected:
  void* frame_ = nullptr;  // this coroutine's frame address (set by get_return_object)

 private:
  friend void destroy_task_frame(TaskPromiseBase* top) noexcept;

  std::coroutine_handle<> continuation_;  // the awaiting coroutine; null for a root task
  TaskPromiseBase* inner_ = nullptr;      // the Task frame this one awaits right now
  TaskPromiseBase* outer_ = nullptr;      // the Task frame awaiting this one
  TaskBase* owner_ = nullptr;             // the Task object that owns this frame while awaited
};

/// The type-erased part of Task<T>: the frame it owns.
class TaskBase {
 protected:
  TaskBase() noexcept = default;
  explicit TaskBase(void* frame) noexcept : frame_(frame) {}

 private:
  friend void destroy_task_frame(TaskPromiseBase* top) noexcept;
  template <class T>
  friend class spindle::Task;

  void* frame_ = nullptr;  // the owned coroutine frame; null when empty
};

inline void destroy_task_frame(TaskPromiseBase* top) noexcept {
  // Innermost first, as the recursion through ~Task would go, but in a
  // loop: each frame's owning Task (in its awaiter's frame) forgets it first.
  TaskPromiseBase* p = top;
  while (p->inner_ != nullptr) p = p->inner_;
  while (p != top) {
    TaskPromiseBase* outer = p->outer_;
    outer->inner_ = nullptr;
    if (p->owner_ != nullptr) p->owner_->frame_ = nullptr;
    p->frame().destroy();
    p = outer;
  }
  top->frame().destroy();
}

template <class T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  void unhandled_exception() noexcept { result_.set_exception(std::current_exception()); }
  void return_value(T v) noexcept(std::is_nothrow_move_constructible_v<T>) {
    result_.set_value(std::move(v));
  }
  Result<T>& result() noexcept { return result_; }

 private:
  Result<T> result_;  // what the body produced
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void unhandled_exception() noexcept { result_.set_exception(std::current_exception()); }
  void return_void() noexcept { result_.set_value(); }
  Result<void>& result() noexcept { return result_; }

 private:
  Result<void> result_;  // completion flag or the exception the body threw
};

template <class T>
class TaskCell;

}  // namespace detail

namespace detail {
struct TaskAccess;
}

/// A lazy coroutine producing a T. See the file comment.
template <class T>
class [[nodiscard(
    "a spindle::Task does nothing until it is co_awaited or spawned; dropping it destroys the "
    "coroutine unrun")]] Task : private detail::TaskBase {
 public:
  using promise_type = detail::TaskPromise<T>;
  using handle_type = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() noexcept = default;
  Task(Task && other) noexcept : TaskBase(std::exchange(other.frame_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      frame_ = std::exchange(other.frame_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  /// Destroys the coroutine frame if this Task still owns it (never started,
  /// suspended, or finished while awaited), with the chain of Tasks it
  /// awaits, innermost first and in constant stack.
  ~Task() { reset(); }

  /// True while this object owns a coroutine frame (false once moved from or spawned).
  [[nodiscard]] bool valid() const noexcept { return frame_ != nullptr; }

  /// Awaiting a Task runs it inline until it completes and yields its value,
  /// or rethrows what it threw. A Task is awaited once, as an rvalue
  /// (`co_await std::move(t)` for a named one). Throws UsageError when the
  /// Task is empty (moved from, spawned) or was already awaited to the end.
  auto operator co_await()&& { return Awaiter{this}; }
  /// Deleted: awaiting a named Task would leave it holding a finished frame
  /// that a second co_await would resume. Write `co_await std::move(task)`.
  auto operator co_await()& = delete;

 private:
  friend promise_type;
  friend struct detail::TaskAccess;
  template <class U>
  friend class detail::TaskCell;

  explicit Task(handle_type h) noexcept : TaskBase(h.address()) {}
  [[nodiscard]] handle_type handle() const noexcept { return handle_type::from_address(frame_); }
  void reset() noexcept {
    if (frame_ != nullptr) {
      handle_type h = handle();
      frame_ = nullptr;
      detail::destroy_task_frame(&h.promise());
    }
  }
  /// Gives up ownership of the frame (to the runtime, when spawned).
  handle_type release() noexcept {
    handle_type h = handle();
    frame_ = nullptr;
    return h;
  }

  struct Awaiter {
    Task* task;
    [[nodiscard]] bool await_ready() const {
      if (task->frame_ == nullptr) {
        throw UsageError("spindle: co_await on an empty (moved-from or spawned) Task");
      }
      if (task->handle().done()) {
        throw UsageError("spindle: co_await on a Task that was already awaited to its end");
      }
      return false;
    }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> caller) noexcept {
      handle_type child = task->handle();
      child.promise().set_continuation(caller);
      if constexpr (std::is_base_of_v<detail::TaskPromiseBase, Promise>) {
        child.promise().link_below(&caller.promise(), task);
      } else {
        child.promise().link_below(nullptr, task);
      }
      return child;  // symmetric transfer: start the child on this thread, now
    }
    T await_resume() { return task->handle().promise().result().take(); }
  };
};

namespace detail {
/// Internal access to a Task's frame (the runtime and the combinators).
struct TaskAccess {
  template <class T>
  static typename Task<T>::handle_type release(Task<T>& t) noexcept {
    return t.release();
  }
};
}  // namespace detail

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  auto h = std::coroutine_handle<TaskPromise<T>>::from_promise(*this);
  frame_ = h.address();
  return Task<T>(h);
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  auto h = std::coroutine_handle<TaskPromise<void>>::from_promise(*this);
  frame_ = h.address();
  return Task<void>(h);
}
}  // namespace detail

}  // namespace spindle
