// spindle/runtime/use_task.hpp — awaiting any Asio asynchronous operation from a Task.
//
//   spindle::use_task              completion token: `co_await op(..., spindle::use_task)`
//   spindle::as_result(use_task)   the same, returning the error code instead of throwing
//   spindle::this_executor()       the executor of the worker the calling task runs on
//   spindle::Executor              asio::io_context::executor_type
//
// Example:
//   spindle::Task<void> echo(asio::ip::tcp::socket s) {
//     char buf[4096];
//     for (;;) {
//       auto [ec, n] = co_await s.async_read_some(asio::buffer(buf),
//                                                  spindle::as_result(spindle::use_task));
//       if (ec) co_return;  // asio::error::eof when the peer closed
//       co_await asio::async_write(s, asio::buffer(buf, n), spindle::use_task);  // throws on error
//     }
//   }
//   // I/O objects are created on a worker's io_context:
//   asio::ip::tcp::socket sock(spindle::this_executor());
//
// What an await returns, for a completion signature:
//   void(asio::error_code)            -> void        (as_result: std::tuple<asio::error_code>)
//   void(asio::error_code, T)         -> T           (as_result: std::tuple<asio::error_code, T>)
//   void(asio::error_code, T, U...)   -> std::tuple<T, U...>
//   void(std::exception_ptr, T...)    -> as above; a non-null exception_ptr is rethrown
//   void(T...)                        -> void, T, or std::tuple<T...>
// An error code completion throws asio::system_error with use_task.
//
// How it works: the operation starts when the task suspends; its completion
// handler runs on the io_context of the worker that owns the I/O object
// (wherever the task has moved since), stores the results and wakes the
// task: an I/O completion is a *wake*, measured as such by task monitors.
// The task resumes on whichever worker polls it next.
//
// Cancellation: when a task is aborted while an operation is pending, the
// task's frame is destroyed; the operation's results are discarded when it
// completes. Destroying the I/O object (usually a local of that frame)
// cancels the operation, as Asio always does.
//
// Buffers: Asio's rule holds — a buffer must stay valid until its operation
// completes. A buffer in the task's frame is safe as long as the I/O object
// lives in the same frame (destroying the object cancels and completes the
// operation first). When the I/O object outlives the task (a socket shared
// with other tasks or owned by a connection object), an aborted task's
// pending read would write into the freed frame: keep such buffers in the
// object that outlives the task, or close/cancel the object when aborting.

//
// Thread safety: as Asio's. An I/O object is used by one task at a time; a
// task may move between workers between operations (each await is a full
// happens-before edge).
#pragma once

#include <asio/async_result.hpp>
#include <asio/error_code.hpp>
#include <asio/io_context.hpp>
#include <asio/system_error.hpp>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "spindle/runtime/waker.hpp"

namespace spindle {

/// The executor of a worker's io_context, on which I/O objects are created.
using Executor = asio::io_context::executor_type;

/// The completion token type of spindle::use_task.
struct UseTask {
  constexpr UseTask() noexcept = default;
};
/// Completion token: `co_await op(args..., spindle::use_task)` inside a Task.
inline constexpr UseTask use_task{};

/// Completion token type of as_result(use_task): errors are returned, not thrown.
struct UseTaskAsResult {
  constexpr UseTaskAsResult() noexcept = default;
};
/// `co_await op(args..., spindle::as_result(spindle::use_task))` yields a
/// std::tuple of every completion argument, error code first.
constexpr UseTaskAsResult as_result(UseTask) noexcept { return {}; }

/// The executor of the worker running the calling task or thread. Throws
/// UsageError outside a worker (use Handle::executor() there).
Executor this_executor();

namespace detail {

/// State shared by a pending operation's handler and its awaiter; freed by
/// whichever of the two lets go last.
template <class... Args>
struct IoState {
  std::atomic<std::uint32_t> refs{2};          // the handler and the awaiter
  std::atomic<bool> done{false};               // results are set (release by the handler)
  std::optional<std::tuple<Args...>> results;  // set by the handler, read after resumption
  Waker waker;                                 // the suspended task; taken by the handler

  static bool is_done(const void* self) noexcept {
    return static_cast<const IoState*>(self)->done.load(std::memory_order_acquire);
  }

  void release() noexcept {
    // acq_rel: the handler's writes happen-before the delete.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

/// The completion handler handed to the Asio initiation.
template <class... Args>
class IoHandler {
 public:
  explicit IoHandler(IoState<Args...>* state) noexcept : state_(state) {}
  IoHandler(IoHandler&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  IoHandler& operator=(IoHandler&&) = delete;
  IoHandler(const IoHandler&) = delete;
  ~IoHandler() {
    if (state_ != nullptr) state_->release();  // destroyed without completing (shutdown)
  }

  template <class... A>
  void operator()(A&&... args) {
    IoState<Args...>* s = std::exchange(state_, nullptr);
    s->results.emplace(std::forward<A>(args)...);
    s->done.store(true, std::memory_order_release);
    Waker w = std::move(s->waker);
    s->release();
    // The wake publishes the results (the task's state transition is acq_rel).
    std::move(w).wake();
  }

 private:
  IoState<Args...>* state_;  // shared state; null once invoked or moved from
};

template <class T>
inline constexpr bool is_error_v =
    std::is_same_v<std::decay_t<T>, asio::error_code> || std::is_same_v<std::decay_t<T>, std::exception_ptr>;

inline void throw_if_error(const asio::error_code& ec) {
  if (ec) throw asio::system_error(ec);
}
inline void throw_if_error(const std::exception_ptr& e) {
  if (e) std::rethrow_exception(e);
}

/// Converts the completion arguments into what `co_await` yields.
template <bool kAsResult, class... Args>
struct IoResult {
  static auto get(std::tuple<Args...>&& t) {
    if constexpr (kAsResult) {
      return std::move(t);
    } else if constexpr (sizeof...(Args) == 0) {
      return;
    } else {
      using First = std::tuple_element_t<0, std::tuple<Args...>>;
      if constexpr (is_error_v<First>) {
        throw_if_error(std::get<0>(t));
        return std::apply(
            [](auto&&, auto&&... rest) { return pack(std::move(rest)...); }, std::move(t));
      } else {
        return std::apply([](auto&&... all) { return pack(std::move(all)...); }, std::move(t));
      }
    }
  }

 private:
  template <class... V>
  static auto pack(V&&... v) {
    if constexpr (sizeof...(V) == 0) {
      return;
    } else if constexpr (sizeof...(V) == 1) {
      return (std::move(v), ...);
    } else {
      return std::tuple<std::decay_t<V>...>(std::move(v)...);
    }
  }
};

/// What `op(..., use_task)` returns: starting the operation is deferred to
/// the moment the awaiting task suspends.
template <bool kAsResult, class Initiation, class InitArgs, class... Args>
class [[nodiscard]] IoAwaitable {
 public:
  IoAwaitable(Initiation init, InitArgs args)
      : init_(std::move(init)), args_(std::move(args)) {}
  IoAwaitable(IoAwaitable&& o) noexcept
      : init_(std::move(o.init_)),
        args_(std::move(o.args_)),
        state_(std::exchange(o.state_, nullptr)) {}
  IoAwaitable& operator=(IoAwaitable&&) = delete;
  ~IoAwaitable() {
    if (state_ != nullptr) state_->release();
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    state_ = new IoState<Args...>();
    state_->waker = current_waker(h, {&IoState<Args...>::is_done, state_});
    // Asio never invokes the handler from inside the initiating call; it
    // may run on another thread before we return, which only re-queues us.
    std::apply(
        [&](auto&&... a) {
          std::move(init_)(IoHandler<Args...>(state_), std::forward<decltype(a)>(a)...);
        },
        std::move(args_));
  }
  auto await_resume() {
    return IoResult<kAsResult, Args...>::get(std::move(*state_->results));
  }

 private:
  Initiation init_;                   // starts the operation
  InitArgs args_;                     // its arguments, forwarded at suspension
  IoState<Args...>* state_ = nullptr;  // shared with the handler once started
};

template <bool kAsResult, class... Args>
struct UseTaskResult {
  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& init, InitArgs&&... args) {
    using Tuple = std::tuple<std::decay_t<InitArgs>...>;
    return IoAwaitable<kAsResult, std::decay_t<Initiation>, Tuple, std::decay_t<Args>...>(
        std::forward<Initiation>(init), Tuple(std::forward<InitArgs>(args)...));
  }
};

}  // namespace detail
}  // namespace spindle

namespace asio {

template <class... Args>
class async_result<spindle::UseTask, void(Args...)> {
 public:
  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& init, spindle::UseTask, InitArgs&&... args) {
    return spindle::detail::UseTaskResult<false, Args...>::initiate(
        std::forward<Initiation>(init), std::forward<InitArgs>(args)...);
  }
};

template <class... Args>
class async_result<spindle::UseTaskAsResult, void(Args...)> {
 public:
  template <class Initiation, class... InitArgs>
  static auto initiate(Initiation&& init, spindle::UseTaskAsResult, InitArgs&&... args) {
    return spindle::detail::UseTaskResult<true, Args...>::initiate(
        std::forward<Initiation>(init), std::forward<InitArgs>(args)...);
  }
};

}  // namespace asio
