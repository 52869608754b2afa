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
      std::coroutine_handle<> next = self.promise().continuation_;
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

 private:
  std::coroutine_handle<> continuation_;  // the awaiting coroutine; null for a root task
};

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

/// A lazy coroutine producing a T. See the file comment.
template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using handle_type = std::coroutine_handle<promise_type>;
  using value_type = T;

  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  /// Destroys the coroutine frame if this Task still owns it (never started,
  /// or finished while awaited).
  ~Task() { reset(); }

  /// True while this object owns a coroutine frame (false once moved from or spawned).
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }

  /// Awaiting a Task runs it inline until it completes and yields its value,
  /// or rethrows what it threw. Precondition: valid() (awaiting an empty Task
  /// throws UsageError).
  auto operator co_await() && { return Awaiter{handle_}; }
  auto operator co_await() & { return Awaiter{handle_}; }

 private:
  friend promise_type;
  template <class U>
  friend class detail::TaskCell;

  explicit Task(handle_type h) noexcept : handle_(h) {}
  void reset() noexcept {
    if (handle_) std::exchange(handle_, nullptr).destroy();
  }
  /// Gives up ownership of the frame (to the runtime, when spawned).
  handle_type release() noexcept { return std::exchange(handle_, nullptr); }

  struct Awaiter {
    handle_type child;
    [[nodiscard]] bool await_ready() const {
      if (!child) throw UsageError("spindle: co_await on an empty (moved-from) Task");
      return false;
    }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
      child.promise().set_continuation(caller);
      return child;  // symmetric transfer: start the child on this thread, now
    }
    T await_resume() { return child.promise().result().take(); }
  };

  handle_type handle_;  // the owned frame; null when empty
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace spindle
