// spindle/runtime/combinators.hpp — running several Tasks at once inside one task.
//
//   spindle::when_all(t...)   runs every operand; yields std::tuple of their values
//   spindle::when_any(t...)   runs every operand until one finishes; yields a std::variant
//                             whose index() names it; the others are cancelled
//   (spindle::timeout(d, t), in time.hpp, is built on the same machinery)
//
// Example:
//   auto [user, cart] = co_await spindle::when_all(load_user(id), load_cart(id));
//   std::variant<Reply, Reply> r = co_await spindle::when_any(ask(primary), ask(replica));
//   Reply first = std::visit([](Reply& x) { return std::move(x); }, r);
//
// Inline, not spawned: the operands run inside the calling task, which polls
// them itself (no spawn, no JoinHandle, the runtime's spawned-task counter
// does not move). Their work is part of the caller's polls, so a monitor of
// the caller measures it; an operand waiting on I/O makes the caller idle.
// Several operands can be suspended at once; each wake of the caller
// resumes the operands that became ready, in argument order.
//
// Cancellation: an operand that must stop (a when_any loser, a when_all
// sibling of an operand that threw, or every operand when the calling task
// itself is cancelled) gets terminal cancellation on the operation it waits
// on (see use_task.hpp), and its frame is destroyed once that operation's
// handler has run. A combinator returns only after every cancelled operand
// is gone, so nothing an operand lent to an operation outlives the await.
// An operand that finishes while being cancelled is destroyed with its
// value (when_any reports only the first to finish).
//
// Results: void operands yield std::monostate. when_all rethrows the first
// exception (in finishing order) after the others were cancelled and
// destroyed; when_any rethrows the winner's exception when the first operand
// to finish threw. Awaiting an empty (moved-from) operand throws UsageError
// before any operand starts.
//
// Thread safety: the operands belong to the awaiting task; nothing here may
// be shared with another thread. Awaitable only inside spindle tasks.
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

namespace detail {

/// Registers the calling coroutine's resume point, ready check and
/// cancellation in the current wait slot, without taking a Waker (the
/// combinator's operands hold their own). Aborts outside a spindle task.
void suspend_in_slot(std::coroutine_handle<> h, ReadyCheck check, CancelHook cancel) noexcept;

/// void -> std::monostate, so that every operand has a value type.
template <class T>
using ValueOrMonostate = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// One operand of an inline combinator.
struct Lane {
  WaitSlot slot;                       // where the operand's awaiters register
  TaskPromiseBase* promise = nullptr;  // the operand's frame (owned here)
  bool finished = false;               // ran to its end; its result is in the promise
  bool cancelling = false;             // cancellation sent; destroyed once nothing is in flight
  bool gone = false;                   // the frame was destroyed unfinished
};

/// The operands of one combinator, with the loop pieces every combinator
/// shares. Lives in the combinator's coroutine frame.
class LaneSet {
 public:
  LaneSet(Lane* lanes, std::size_t n) noexcept : lanes_(lanes), n_(n) {}
  LaneSet(const LaneSet&) = delete;
  LaneSet& operator=(const LaneSet&) = delete;
  ~LaneSet() {
    // Finished operands still hold their frames (results taken or not).
    for (std::size_t i = n_; i-- > 0;) destroy(i);
  }

  /// Resumes every live operand whose wait is ready, each in its own wait
  /// slot; returns when each has suspended again or finished. Returns the
  /// index of the first operand that finished during this call, or -1.
  int drive() noexcept {
    ThreadContext& ctx = this_thread_context();  // the thread resuming us now
    WaitSlot* outer = ctx.slot;
    int first = -1;
    for (std::size_t i = 0; i < n_; ++i) {
      Lane& l = lanes_[i];
      if (l.finished || l.gone || l.cancelling || !slot_ready(l.slot)) continue;
      const std::coroutine_handle<> h = l.slot.resume_point;
      l.slot = WaitSlot{};
      ctx.slot = &l.slot;
      h.resume();  // exceptions are stored in the operand's promise
      ctx.slot = outer;
      if (l.promise->frame().done()) {
        l.finished = true;
        if (first < 0) first = static_cast<int>(i);
      }
    }
    return first;
  }

  /// Cancels every live operand but `keep` (-1: all of them).
  void cancel_all_but(int keep) noexcept {
    for (std::size_t i = 0; i < n_; ++i) {
      if (static_cast<int>(i) != keep) cancel(i);
    }
  }

  /// Destroys the cancelled operands whose operations have completed.
  void reap() noexcept {
    for (std::size_t i = 0; i < n_; ++i) {
      Lane& l = lanes_[i];
      if (l.cancelling && !l.gone && !slot_cancel(l.slot)) destroy(i);
    }
  }

  /// True when no operand is running or being cancelled.
  [[nodiscard]] bool settled() const noexcept {
    for (std::size_t i = 0; i < n_; ++i) {
      const Lane& l = lanes_[i];
      if (!l.finished && !l.gone) return false;
    }
    return true;
  }

  [[nodiscard]] Lane& lane(std::size_t i) noexcept { return lanes_[i]; }

  /// Whether the combinator's wait should end: a live operand can resume,
  /// or a cancelled one's operation completed.
  [[nodiscard]] bool any_ready() const noexcept {
    for (std::size_t i = 0; i < n_; ++i) {
      const Lane& l = lanes_[i];
      if (!l.finished && !l.gone && slot_ready(l.slot)) return true;
    }
    return false;
  }

  /// The calling task is being cancelled: cancel every operand; true while
  /// any of their operations is in flight.
  bool cancel_everything() noexcept {
    bool in_flight = false;
    for (std::size_t i = 0; i < n_; ++i) {
      Lane& l = lanes_[i];
      if (l.finished || l.gone) continue;
      l.cancelling = true;
      if (slot_cancel(l.slot)) in_flight = true;
    }
    return in_flight;
  }

  /// The await between two rounds: suspends the combinator until a
  /// wake makes `any_ready()` (or `extra`) true. Always suspends: whatever
  /// became ready during the last round woke the task, which is queued.
  struct Wait {
    LaneSet* set;
    ReadyCheck extra;  // another source that ends the wait (timeout's timer)
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept {
      suspend_in_slot(h, {&Wait::ready, this}, {&Wait::cancel, set});
    }
    void await_resume() const noexcept {}

    static bool ready(const void* p) noexcept {
      const auto* w = static_cast<const Wait*>(p);
      return w->set->any_ready() || (w->extra.fn != nullptr && w->extra.fn(w->extra.ctx));
    }
    static bool cancel(void* p) noexcept { return static_cast<LaneSet*>(p)->cancel_everything(); }
  };
  [[nodiscard]] Wait wait(ReadyCheck extra = {}) noexcept { return Wait{this, extra}; }

 private:
  void cancel(std::size_t i) noexcept {
    Lane& l = lanes_[i];
    if (l.finished || l.gone || l.cancelling) return;
    l.cancelling = true;
    if (!slot_cancel(l.slot)) destroy(i);  // nothing in flight: it can go now
  }
  void destroy(std::size_t i) noexcept {
    Lane& l = lanes_[i];
    if (l.promise == nullptr) return;
    destroy_task_frame(std::exchange(l.promise, nullptr));
    if (!l.finished) l.gone = true;
  }

  Lane* lanes_;    // the operands (in the combinator's frame)
  std::size_t n_;  // how many
};

/// The typed operands of a combinator: takes the frames out of the Tasks.
template <class... T>
class Operands {
 public:
  static constexpr std::size_t kCount = sizeof...(T);

  /// Throws UsageError, before anything runs, when an operand is empty.
  explicit Operands(Task<T>&... tasks) : set_(lanes_.data(), kCount) {
    if ((!tasks.valid() || ...)) {
      throw UsageError("spindle: an empty (moved-from) Task was given to a combinator");
    }
    std::size_t i = 0;
    ((take(lanes_[i++], tasks)), ...);
  }

  [[nodiscard]] LaneSet& set() noexcept { return set_; }

  /// The result of finished operand I (rethrows its exception).
  template <std::size_t I>
  auto take() {
    using R = std::tuple_element_t<I, std::tuple<T...>>;
    using P = TaskPromise<R>;
    void* frame = lanes_[I].promise->frame().address();
    auto& result = std::coroutine_handle<P>::from_address(frame).promise().result();
    if constexpr (std::is_void_v<R>) {
      result.take();
      return std::monostate{};
    } else {
      return result.take();
    }
  }

  /// The exception of finished operand `i`, or null.
  [[nodiscard]] std::exception_ptr error(std::size_t i) const noexcept {
    return errors_[i](lanes_[i].promise);
  }

 private:
  template <class R>
  void take(Lane& lane, Task<R>& t) noexcept {
    auto h = TaskAccess::release(t);
    h.promise().link_below(nullptr, nullptr);  // owned by this set, not by a Task
    lane.promise = &h.promise();
    lane.slot.resume_point = h;  // first drive() starts it
    errors_[static_cast<std::size_t>(&lane - lanes_.data())] = &error_of<R>;
  }
  template <class R>
  static std::exception_ptr error_of(TaskPromiseBase* p) noexcept {
    void* frame = p->frame().address();
    return std::coroutine_handle<TaskPromise<R>>::from_address(frame)
        .promise()
        .result()
        .exception();
  }

  std::array<Lane, kCount> lanes_{};  // one per operand
  std::array<std::exception_ptr (*)(TaskPromiseBase*) noexcept, kCount> errors_{};  // typed
  LaneSet set_;  // the loop over lanes_
};

template <class... T, std::size_t... I>
std::tuple<ValueOrMonostate<T>...> take_all(Operands<T...>& ops, std::index_sequence<I...>) {
  return std::tuple<ValueOrMonostate<T>...>(ops.template take<I>()...);
}

template <class V, class... T, std::size_t... I>
V take_one(Operands<T...>& ops, std::size_t winner, std::index_sequence<I...>) {
  std::optional<V> out;
  ((winner == I ? (void)out.emplace(std::in_place_index<I>, ops.template take<I>()) : (void)0),
   ...);
  return std::move(*out);
}

}  // namespace detail

/// Runs every operand inside the calling task and yields their values in
/// argument order (void -> std::monostate). The first operand to throw has
/// the others cancelled and destroyed, then its exception is rethrown.
/// Throws UsageError for an empty operand. See the file comment.
template <class... T>
Task<std::tuple<detail::ValueOrMonostate<T>...>> when_all(Task<T>... tasks) {
  static_assert(sizeof...(T) > 0, "spindle::when_all needs at least one operand");
  detail::Operands<T...> ops(tasks...);
  detail::LaneSet& set = ops.set();
  std::exception_ptr error;
  for (;;) {
    set.drive();
    if (error == nullptr) {
      // Any operand that finished with an exception stops the others.
      for (std::size_t i = 0; i < sizeof...(T); ++i) {
        if (set.lane(i).finished && ops.error(i) != nullptr) {
          error = ops.error(i);
          set.cancel_all_but(static_cast<int>(i));
          break;
        }
      }
    }
    set.reap();
    if (set.settled()) break;
    co_await set.wait();
  }
  if (error != nullptr) std::rethrow_exception(error);
  co_return detail::take_all(ops, std::index_sequence_for<T...>{});
}

/// Runs every operand inside the calling task until one finishes; the
/// others are cancelled and destroyed before this returns. Yields the
/// winner's value as the variant alternative of its index (void ->
/// std::monostate), or rethrows the winner's exception. Throws UsageError
/// for an empty operand. See the file comment.
template <class... T>
Task<std::variant<detail::ValueOrMonostate<T>...>> when_any(Task<T>... tasks) {
  static_assert(sizeof...(T) > 0, "spindle::when_any needs at least one operand");
  using V = std::variant<detail::ValueOrMonostate<T>...>;
  detail::Operands<T...> ops(tasks...);
  detail::LaneSet& set = ops.set();
  int winner = -1;
  for (;;) {
    const int finished = set.drive();
    if (winner < 0 && finished >= 0) {
      winner = finished;
      set.cancel_all_but(winner);
    }
    set.reap();
    if (set.settled()) break;
    co_await set.wait();
  }
  co_return detail::take_one<V>(ops, static_cast<std::size_t>(winner),
                                std::index_sequence_for<T...>{});
}

}  // namespace spindle
