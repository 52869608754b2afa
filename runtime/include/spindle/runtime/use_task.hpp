// spindle/runtime/use_task.hpp — awaiting any Asio asynchronous operation from a Task.
//
//   spindle::use_task              completion token: `co_await op(..., spindle::use_task)`
//   spindle::as_result(use_task)   the same, returning the error code instead of throwing
//   spindle::this_executor()       the executor of the worker the calling task runs on
//   spindle::Executor              a worker's io_context executor (executor.hpp)
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
// Cancellation: every operation awaited with use_task (or as_result) has a
// cancellation slot bound to it (Asio's per-operation cancellation). When
// the task is cancelled while the operation is pending — JoinHandle::abort(),
// a spindle::timeout that expires, a when_any operand that lost, a
// when_all whose sibling threw — spindle emits terminal cancellation to
// the operation (on the I/O object's executor, where its handlers run)
// and destroys the task's frame only after the operation's handler has
// run. So nothing the task lent to the operation — a buffer in its frame,
// a caller's std::string behind asio::dynamic_buffer — is touched after
// the task is gone, and an abandoned read consumes no data that arrives
// after its cancellation completed. abort() itself never blocks; awaiting
// the task's JoinHandle reports Cancelled once the frame is gone.
//
// This holds for every Asio operation that supports terminal cancellation:
// socket and stream reads and writes, accepts and connects, timers, signal
// sets, and Asio's composed operations over them (async_read,
// async_read_until, async_write, ...), which forward the slot. An
// operation that ignores cancellation — name resolution
// (ip::basic_resolver::async_resolve, which Asio runs on a private thread
// and cannot interrupt), or a hand-written operation that does not look at
// its handler's cancellation slot — keeps the task's frame alive until it
// completes on its own. Cancellation is emitted on the executor the
// initiation names (an I/O object's get_executor()); for an initiation
// that names none it is emitted on the thread that cancels. Data that an operation had already
// received when the cancellation reached it completes the operation normally: that data goes with
// the cancelled task (completion-based I/O cannot give it back).
//
// Buffers: Asio's rule still holds for operations not awaited by a task
// (or by one that is not spindle's).
//
// Thread safety: as Asio's. An I/O object is used by one task at a time; a
// task may move between workers between operations (each await is a full
// happens-before edge).
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/error_code.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/system_error.hpp>
#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/task_alloc.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/executor.hpp"
#include "spindle/runtime/waker.hpp"

namespace spindle {

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

/// Records how to cancel the operation the current coroutine is about to
/// wait on (call right after current_waker(), from the same awaiter).
void set_cancel_hook(CancelHook hook) noexcept;

/// Wakes `w` as the last thing a completion handler does: nothing of the
/// handler or its operation is touched after the wake. A task woken so on
/// the worker whose I/O check is running the handler is polled at once,
/// inside the handler (as plain Asio resumes a coroutine there); any other
/// wake is queued as usual.
void wake_ending_handler(Waker&& w) noexcept;

/// State shared by a pending operation's handler and its awaiter; freed by
/// whichever of the two lets go last.
template <class... Args>
struct IoState {
  static constexpr std::uint32_t kDone = 1;  // bit 0 of word: results are set
  static constexpr std::uint32_t kRef = 2;   // one reference, in the bits above

  std::atomic<std::uint32_t> word{2 * kRef};   // done bit and references (the handler's and
                                               //   the awaiter's; a posted cancel adds one)
  std::optional<std::tuple<Args...>> results;  // set by the handler, read after resumption
  Waker waker;                                 // the suspended task; taken by the handler
  asio::cancellation_signal signal;            // the operation's cancellation slot (bound to the
                                               //   handler); emitted on its executor

  // One per awaited operation, made by the awaiting task's worker and often
  // freed by the thread that ran the handler: the per-thread task heaps take
  // such cross-thread frees without a lock (detail/task_alloc.hpp).
  static void* operator new(std::size_t size) { return task_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { task_free(p, size); }

  static bool is_done(const void* self) noexcept {
    return (static_cast<const IoState*>(self)->word.load(std::memory_order_acquire) & kDone) != 0;
  }
  [[nodiscard]] bool done() const noexcept { return is_done(this); }

  void add_ref() noexcept {
    // relaxed: the caller already owns a reference.
    word.fetch_add(kRef, std::memory_order_relaxed);
  }
  void release() noexcept {
    // acq_rel: every owner's writes happen-before the delete.
    if (word.fetch_sub(kRef, std::memory_order_acq_rel) >> 1 == 1) delete this;
  }
  /// The handler's last step: publishes the results and drops its reference
  /// in one atomic step. The awaiter resumes only once it sees the results,
  /// so on the normal path it is the last to let go: the state, and the
  /// memory of the operation's cancellation handler (cached per thread by
  /// Asio), are freed on the task's worker, not inside whichever
  /// io_context::run_one() ran the handler, whose cache dies with the call.
  void complete_and_release() noexcept {
    // Adds kDone (not yet set) and subtracts kRef: word - 1, modulo 2^32.
    // acq_rel: release publishes `results`; acquire orders the delete.
    const std::uint32_t prev = word.fetch_sub(kRef - kDone, std::memory_order_acq_rel);
    assert((prev & kDone) == 0 && "an I/O handler ran twice");
    if (prev >> 1 == 1) delete this;
  }
};

/// The `T` a type-erased executor (any_io_executor) holds, or null when it
/// holds something else. Asio 1.22's any_executor::target<T>() does not
/// check the type (it casts whatever it holds), so the check is ours.
template <class T, class Ex>
const T* target_as(const Ex& ex) noexcept {
  if constexpr (requires {
                  ex.template target<T>();
                  ex.target_type();
                }) {
    return ex.target_type() == typeid(T) ? ex.template target<T>() : nullptr;
  } else {
    return nullptr;
  }
}

/// The io_context an I/O object's executor runs on, when it can be named
/// without type erasure: a spindle::Executor, a plain io_context executor,
/// or an any_io_executor holding one of them. Empty for anything else
/// (strands, thread pools, user executors), whose rules then apply as before.
template <class Ex>
std::optional<asio::io_context::executor_type> native_io_executor(const Ex& ex) noexcept {
  if constexpr (std::is_same_v<Ex, asio::io_context::executor_type>) {
    return ex;
  } else if constexpr (std::is_same_v<Ex, Executor>) {
    return ex.io_executor();
  } else {
    if (const Executor* e = target_as<Executor>(ex)) return e->io_executor();
    if (const auto* n = target_as<asio::io_context::executor_type>(ex)) return *n;
  }
  return std::nullopt;
}

/// The completion handler handed to the Asio initiation. kNative: it names
/// the I/O object's io_context as its associated executor. It runs there
/// either way (Asio completes an operation on its I/O executor); naming the
/// io_context's own executor lets Asio invoke it directly from the reactor,
/// as for an I/O object on a plain io_context, instead of through the
/// type-erased any_io_executor, which wraps every completion in a freshly
/// allocated function object. The handler only stores the results and wakes
/// the task, so no executor's ordering rules are at stake.
template <bool kNative, class... Args>
class IoHandler;

template <class... Args>
class IoHandler<true, Args...> : public IoHandler<false, Args...> {
 public:
  IoHandler(IoState<Args...>* state, asio::io_context::executor_type ex) noexcept
      : IoHandler<false, Args...>(state), ex_(std::move(ex)) {}

  using executor_type = asio::io_context::executor_type;
  executor_type get_executor() const noexcept { return ex_; }

 private:
  asio::io_context::executor_type ex_;  // the I/O object's io_context
};

template <class... Args>
class IoHandler<false, Args...> {
 public:
  explicit IoHandler(IoState<Args...>* state) noexcept : state_(state) {}
  IoHandler(IoHandler&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  IoHandler& operator=(IoHandler&&) = delete;
  IoHandler(const IoHandler&) = delete;
  ~IoHandler() {
    if (state_ != nullptr) state_->release();  // destroyed without completing (shutdown)
  }

  /// Asio's per-operation cancellation: the operation installs its
  /// cancellation handler in this slot; spindle emits to it when the task
  /// is cancelled (see IoAwaitable::cancel_op).
  using allocator_type = TaskHeapAllocator<void>;  // Asio allocates the operation through it
  allocator_type get_allocator() const noexcept { return {}; }

  using cancellation_slot_type = asio::cancellation_slot;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return state_ != nullptr ? state_->signal.slot() : cancellation_slot_type();
  }

  template <class... A>
  void operator()(A&&... args) {
    IoState<Args...>* s = std::exchange(state_, nullptr);
    s->results.emplace(std::forward<A>(args)...);
    Waker w = std::move(s->waker);
    s->complete_and_release();  // s may be gone from here on
    // The wake publishes the results (the task's state transition is acq_rel).
    wake_ending_handler(std::move(w));
  }

 private:
  IoState<Args...>* state_;  // shared state; null once invoked or moved from
};

template <class T>
inline constexpr bool is_error_v = std::is_same_v<std::decay_t<T>, asio::error_code> ||
                                   std::is_same_v<std::decay_t<T>, std::exception_ptr>;

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
        return std::apply([](auto&&, auto&&... rest) { return pack(std::move(rest)...); },
                          std::move(t));
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

/// Emits terminal cancellation to a pending operation from a thread that
/// runs its handlers (posted to the I/O object's executor). Holds a
/// reference on the state, so the signal outlives the post; dropped
/// unrun (a stopped io_context) it only lets the reference go.
template <class State>
class CancelEmit {
 public:
  explicit CancelEmit(State* s) noexcept : state_(s) {
    state_->add_ref();  // we already own one (the awaiter's)
  }
  CancelEmit(CancelEmit&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  CancelEmit& operator=(CancelEmit&&) = delete;
  ~CancelEmit() {
    if (state_ != nullptr) state_->release();
  }
  void operator()() {
    State* s = std::exchange(state_, nullptr);
    // acquire: a completed operation has let go of its slot handler.
    if (!s->done()) s->signal.emit(asio::cancellation_type::terminal);
    s->release();
  }

 private:
  State* state_;  // one reference; null once run or moved from
};

template <class Init>
concept HasExecutor = requires(const Init& i) {
  i.get_executor();
};

[[noreturn]] void throw_io_after_shutdown();

/// An operation on an I/O object whose runtime has shut down would never
/// complete (nobody runs its io_context): refuse it with RuntimeShutdown.
/// Seen through: a spindle::Executor, a strand over one, and an
/// any_io_executor holding either. An I/O object on anything else (a plain
/// io_context, a thread pool) is not spindle's to judge.
template <class Ex>
void check_runtime_alive(const Ex& ex) {
  if constexpr (std::is_same_v<Ex, Executor>) {
    if (ex.runtime_shut_down()) throw_io_after_shutdown();
  } else if constexpr (std::is_same_v<Ex, asio::strand<Executor>>) {
    check_runtime_alive(ex.get_inner_executor());
  } else {
    if (const Executor* e = target_as<Executor>(ex)) {
      check_runtime_alive(*e);
    } else if (const auto* st = target_as<asio::strand<Executor>>(ex)) {
      check_runtime_alive(*st);
    }
  }
}

/// What `op(..., use_task)` returns: starting the operation is deferred to
/// the moment the awaiting task suspends.
template <bool kAsResult, class Initiation, class InitArgs, class... Args>
class [[nodiscard]] IoAwaitable {
 public:
  IoAwaitable(Initiation init, InitArgs args) : init_(std::move(init)), args_(std::move(args)) {}
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
    if constexpr (HasExecutor<Initiation>) check_runtime_alive(init_.get_executor());
    state_ = new IoState<Args...>();
    state_->waker = current_waker(h, {&IoState<Args...>::is_done, state_});
    set_cancel_hook({&IoAwaitable::cancel_op, this});
    // Asio never invokes the handler from inside the initiating call; it
    // may run on another thread before we return, which only re-queues us.
    if constexpr (HasExecutor<Initiation>) {
      if (std::optional<asio::io_context::executor_type> native =
              native_io_executor(init_.get_executor())) {
        start(IoHandler<true, Args...>(state_, std::move(*native)));
        return;
      }
    }
    start(IoHandler<false, Args...>(state_));
  }
  auto await_resume() { return IoResult<kAsResult, Args...>::get(std::move(*state_->results)); }

 private:
  template <class Handler>
  void start(Handler&& handler) {
    std::apply(
        [&](auto&&... a) {
          std::move(init_)(std::forward<Handler>(handler), std::forward<decltype(a)>(a)...);
        },
        std::move(args_));
  }

  /// The task is being cancelled while suspended here (CancelHook).
  static bool cancel_op(void* p) noexcept {
    auto* self = static_cast<IoAwaitable*>(p);
    IoState<Args...>* s = self->state_;
    if (IoState<Args...>::is_done(s)) return false;  // the handler ran: nothing in flight
    if (!self->cancel_sent_) {
      self->cancel_sent_ = true;
      if constexpr (HasExecutor<Initiation>) {
        // The initiation (Asio's, for an I/O object) names the executor
        // its handlers run on: the slot is only touched there.
        try {
          asio::post(self->init_.get_executor(), CancelEmit<IoState<Args...>>(s));
        } catch (...) {
          s->signal.emit(asio::cancellation_type::terminal);  // no memory to post: emit here
        }
      } else {
        s->signal.emit(asio::cancellation_type::terminal);
      }
    }
    return true;
  }

  Initiation init_;                    // starts the operation; names its executor afterwards
  InitArgs args_;                      // its arguments, forwarded at suspension
  IoState<Args...>* state_ = nullptr;  // shared with the handler once started
  bool cancel_sent_ = false;           // cancellation was emitted (by the task's owner)
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
    return spindle::detail::UseTaskResult<true, Args...>::initiate(std::forward<Initiation>(init),
                                                                   std::forward<InitArgs>(args)...);
  }
};

}  // namespace asio
