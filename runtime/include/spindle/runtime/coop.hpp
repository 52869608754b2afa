// spindle/runtime/coop.hpp — the cooperative budget, for writers of awaitables.
//
//   spindle::coop::try_consume()      spend one unit of the current poll's budget
//   spindle::coop::forced_yield(h)    suspend and re-queue the task (budget exhausted)
//   spindle::coop::BudgetedReady      helper holding the two together
//
// Each poll of a root task gets a budget (Runtime::Builder::budget, default
// 128). Every spindle awaitable that would complete at once — a channel
// receive with a value waiting, a mutex that is free, a JoinHandle whose
// task already finished — spends one unit. When the budget is spent, the
// next such await suspends instead and re-queues the task (a *forced
// yield*, counted per worker as budget_forced_yields). A task that reads an
// always-ready channel in a loop therefore still lets its neighbours run,
// without writing yield_now() itself.
//
// Example (an awaitable that is sometimes ready at once):
//   struct Get {
//     Source* src;
//     spindle::coop::BudgetedReady coop;
//     bool await_ready() { return src->has_value() && coop.ready(); }
//     void await_suspend(std::coroutine_handle<> h) {
//       if (coop.exhausted()) return spindle::coop::forced_yield(h);
//       src->set_waker(spindle::current_waker(h));
//     }
//     Value await_resume() { return src->take(); }
//   };
// (A production awaitable must also handle the value arriving between
// await_ready and await_suspend; see spindle/sync/oneshot.hpp.)
//
// Thread safety: these functions act on the calling thread's current poll.
// Outside a spindle task the budget is unlimited and try_consume() is
// always true.
#pragma once

#include <coroutine>
#include <cstdint>

#include "spindle/runtime/detail/context.hpp"

namespace spindle {

namespace detail {
/// Re-queues the current task because its budget ran out (counted).
void forced_yield_current(std::coroutine_handle<> h) noexcept;
}  // namespace detail

namespace coop {

/// Spends one unit of the current poll's budget. False when none is left:
/// the caller must not complete at once, but suspend with forced_yield().
[[nodiscard]] inline bool try_consume() noexcept {
  std::uint32_t& budget = detail::this_thread_context().budget;
  if (budget == 0) return false;
  --budget;
  return true;
}

/// True while the current poll has budget left (spends nothing).
[[nodiscard]] inline bool has_budget() noexcept {
  return detail::this_thread_context().budget != 0;
}

/// Suspends the current task and puts it at the back of its worker's queue,
/// counting a forced yield. Call from await_suspend.
inline void forced_yield(std::coroutine_handle<> h) noexcept { detail::forced_yield_current(h); }

/// Remembers whether an awaitable declined to complete because of the
/// budget, so that its await_suspend knows to yield.
class BudgetedReady {
 public:
  /// Call when the operation could complete at once: true when it may
  /// (one unit spent), false when the budget is exhausted.
  [[nodiscard]] bool ready() noexcept {
    exhausted_ = !try_consume();
    return !exhausted_;
  }
  /// True when the last ready() was refused by the budget.
  [[nodiscard]] bool exhausted() const noexcept { return exhausted_; }

 private:
  bool exhausted_ = false;  // ready() ran out of budget
};

}  // namespace coop
}  // namespace spindle
