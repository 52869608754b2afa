// spindle/runtime/time.hpp — sleeping, deadlines and periodic ticks inside tasks.
//
//   spindle::sleep(d), sleep_until(t)  suspend the task until a point in time
//   spindle::timeout(d, task)          run a task inline with a deadline; TimedOut when it
//                                      passes (the task is cancelled and gone by then)
//   spindle::Interval, interval(p)     ticks every period p, with tokio's missed-tick policies
//   spindle::TimedOut                  the error timeout() reports
//
// Example:
//   co_await spindle::sleep(std::chrono::milliseconds(5));
//   try {
//     Reply r = co_await spindle::timeout(std::chrono::milliseconds(200), call_backend());
//   } catch (const spindle::TimedOut&) { /* the call was cancelled */ }
//   auto ticks = spindle::interval(std::chrono::seconds(1));
//   for (;;) { co_await ticks.tick(); report(); }
//
// Timers live on the io_context of the worker the task runs on when it
// starts waiting (a sleeping task costs nothing to the scheduler); the
// expiry is a wake, so a task monitor counts the sleep as idle time. They
// use std::chrono::steady_clock, also when the runtime was given a test
// clock. Resolution is Asio's (the kernel's epoll timeout, about 1 ms).
//
// Thread safety: the awaitables belong to the awaiting task. An Interval is
// used by one task at a time.
#pragma once

#include <asio/steady_timer.hpp>
#include <chrono>
#include <coroutine>
#include <optional>
#include <string>

#include "spindle/runtime/combinators.hpp"
#include "spindle/runtime/coop.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/use_task.hpp"

namespace spindle {

namespace detail {
/// The io_context executor of the worker running the calling task, without
/// the keep-alive reference of spindle::Executor: for spindle's own timers,
/// which live in task frames and so never outlive the runtime's shutdown.
/// Throws UsageError outside a worker.
asio::io_context::executor_type this_io_executor();
/// A steady_timer on a worker's io_context, without type erasure.
using WorkerTimer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                               asio::wait_traits<std::chrono::steady_clock>,
                                               asio::io_context::executor_type>;

/// A WorkerTimer on the calling worker set to expire at `at`, from that
/// worker's small cache of idle timers (constructing one looks its service
/// up under a lock). Throws UsageError outside a worker.
WorkerTimer* take_timer(std::chrono::steady_clock::time_point at);
/// Cancels `t`'s wait (its handler then runs with operation_aborted) and
/// gives it back to the cache of the calling worker if it belongs there,
/// else destroys it.
void give_back_timer(WorkerTimer* t) noexcept;

/// Owns a timer from take_timer() until destroyed.
class PooledTimer {
 public:
  PooledTimer() noexcept = default;
  PooledTimer(PooledTimer&& o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  PooledTimer& operator=(PooledTimer&&) = delete;
  ~PooledTimer() {
    if (t_ != nullptr) give_back_timer(t_);
  }
  void arm(std::chrono::steady_clock::time_point at) { t_ = take_timer(at); }
  WorkerTimer* operator->() const noexcept { return t_; }
  void reset() noexcept {
    if (t_ != nullptr) give_back_timer(std::exchange(t_, nullptr));
  }

 private:
  WorkerTimer* t_ = nullptr;  // the timer; null until armed
};
}  // namespace detail

/// Reported by timeout() when its deadline passed first. The inner task has
/// been cancelled and destroyed before this is thrown.
class TimedOut : public Error {
 public:
  explicit TimedOut(std::chrono::nanoseconds limit)
      : Error("spindle::timeout: the task did not finish within " +
              std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(limit).count()) +
              " us and was cancelled"),
        limit_(limit) {}
  /// The time limit that passed.
  [[nodiscard]] std::chrono::nanoseconds limit() const noexcept { return limit_; }

 private:
  std::chrono::nanoseconds limit_;  // the deadline given to timeout()
};

/// What sleep()/sleep_until() return: await it once.
class [[nodiscard("a spindle::Sleep does not wait until it is co_awaited")]] Sleep {
 public:
  explicit Sleep(std::chrono::steady_clock::time_point deadline) noexcept : deadline_(deadline) {}
  Sleep(Sleep && o) noexcept
      : deadline_(o.deadline_),
        timer_(std::move(o.timer_)),
        state_(std::exchange(o.state_, nullptr)) {}
  Sleep& operator=(Sleep&&) = delete;
  ~Sleep() {
    timer_.reset();  // cancels a pending wait; its handler then releases the state
    if (state_ != nullptr) state_->release();
  }

  /// A deadline already past completes at once (spending one budget unit).
  [[nodiscard]] bool await_ready() {
    return deadline_ <= std::chrono::steady_clock::now() && coop_.ready();
  }
  /// Starts the timer on the current worker. Throws UsageError outside a task.
  void await_suspend(std::coroutine_handle<> h) {
    if (coop_.exhausted()) return coop::forced_yield(h);
    timer_.arm(deadline_);
    state_ = new detail::IoState<asio::error_code>();
    state_->waker = current_waker(h, {&detail::IoState<asio::error_code>::is_done, state_});
    if (auto native = detail::native_io_executor(timer_->get_executor())) {
      timer_->async_wait(detail::IoHandler<true, asio::error_code>(state_, *native));
    } else {
      timer_->async_wait(detail::IoHandler<false, asio::error_code>(state_));
    }
  }
  void await_resume() const noexcept {}

 private:
  std::chrono::steady_clock::time_point deadline_;      // when to resume
  detail::PooledTimer timer_;                           // armed at suspension
  detail::IoState<asio::error_code>* state_ = nullptr;  // shared with the timer's handler
  coop::BudgetedReady coop_;                            // an expired deadline spends budget
};

/// Suspends the calling task until `deadline` (steady_clock).
inline Sleep sleep_until(std::chrono::steady_clock::time_point deadline) noexcept {
  return Sleep(deadline);
}
/// Suspends the calling task for at least `d` (a zero or negative `d`
/// completes at once).
inline Sleep sleep(std::chrono::nanoseconds d) noexcept {
  return Sleep(std::chrono::steady_clock::now() + d);
}

namespace detail {

/// The Waker of the task being polled on this thread, without touching its
/// wait slot. Aborts outside a spindle task.
Waker current_task_waker() noexcept;

/// timeout()'s timer, armed on the worker the task runs on once the operand
/// has had its first chance to finish at once. Its handler holds only the
/// shared state, so the timer may be dropped at any time.
class Deadline {
 public:
  explicit Deadline(std::chrono::steady_clock::time_point at) noexcept : at_(at) {}
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  ~Deadline() {
    timer_.reset();  // cancels a pending wait; its handler then releases the state
    if (state_ != nullptr) state_->release();
  }

  [[nodiscard]] bool armed() const noexcept { return state_ != nullptr; }
  /// True once the armed timer fired (or was cancelled).
  [[nodiscard]] bool expired() const noexcept {
    return state_ != nullptr && IoState<asio::error_code>::is_done(state_);
  }
  /// Starts the timer on the current worker; its expiry wakes the task.
  void arm() {
    timer_.arm(at_);
    state_ = new IoState<asio::error_code>();
    state_->waker = current_task_waker();
    timer_->async_wait(Expiry(state_));
  }
  /// The expiry as a readiness source for LaneSet::wait().
  [[nodiscard]] ReadyCheck ready_check() const noexcept {
    return {&IoState<asio::error_code>::is_done, state_};
  }

 private:
  /// The timer's handler. Unlike IoHandler it does not wake the task when
  /// the wait was cancelled: that only happens when the Deadline is dropped
  /// (the operand finished first), and nobody waits for it then.
  class Expiry {
   public:
    explicit Expiry(IoState<asio::error_code>* s) noexcept : state_(s) {}
    Expiry(Expiry&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
    Expiry& operator=(Expiry&&) = delete;
    ~Expiry() {
      if (state_ != nullptr) state_->release();  // destroyed unrun (shutdown)
    }
    void operator()(const asio::error_code& ec) {
      IoState<asio::error_code>* s = std::exchange(state_, nullptr);
      s->results.emplace(ec);
      Waker w = std::move(s->waker);
      s->complete_and_release();  // s may be gone from here on
      if (ec != asio::error::operation_aborted) std::move(w).wake();
    }

   private:
    IoState<asio::error_code>* state_;  // shared state; null once invoked or moved from
  };

  std::chrono::steady_clock::time_point at_;    // the deadline
  PooledTimer timer_;                           // armed by arm()
  IoState<asio::error_code>* state_ = nullptr;  // shared with the timer's handler
};

}  // namespace detail

/// Runs `task` inside the calling task with a time limit (no spawn: its
/// polls are the caller's). If it finishes within `limit`, its value (or
/// exception) is returned. Otherwise it is cancelled — terminal
/// cancellation reaches the operation it waits on (see use_task.hpp) —
/// and destroyed once that operation's handler has run, then TimedOut is
/// thrown: when timeout() returns or throws, nothing of `task` is left,
/// and no buffer it lent is still in use. An operand that finishes while
/// being cancelled wins: its value is returned. A zero limit lets the task
/// run until it first waits. Throws UsageError for a negative limit, an
/// empty task, or outside a spindle task.
template <class T>
Task<T> timeout(std::chrono::nanoseconds limit, Task<T> task) {
  if (limit.count() < 0) throw UsageError("spindle::timeout: the time limit must not be negative");
  detail::Operands<T> ops(task);
  detail::LaneSet& set = ops.set();
  detail::Deadline timer(std::chrono::steady_clock::now() + limit);
  bool expired = false;
  for (;;) {
    set.drive();
    if (set.lane(0).finished) break;
    if (!expired && timer.expired()) {
      expired = true;
      set.cancel_all_but(-1);
    }
    set.reap();
    if (set.settled()) break;
    if (!timer.armed()) timer.arm();
    co_await set.wait(timer.ready_check());
  }
  if (!set.lane(0).finished) throw TimedOut(limit);
  if constexpr (std::is_void_v<T>) {
    ops.template take<0>();
    co_return;
  } else {
    co_return ops.template take<0>();
  }
}

/// What an Interval does when ticks were missed (the task came back later
/// than a tick was due), as tokio's MissedTickBehavior:
enum class MissedTick {
  kBurst,  ///< fire the missed ticks at once, back to back, until caught up (default)
  kDelay,  ///< start the period anew from the late tick: ticks every period from now
  kSkip,   ///< drop the missed ticks: next tick at the next multiple of the period
};

/// A periodic timer: `co_await iv.tick()` completes at start, start + period,
/// start + 2 × period, ... (the first tick at once). Each tick yields the
/// instant it was scheduled for.
class Interval {
 public:
  /// Throws UsageError when `period` is not positive.
  explicit Interval(std::chrono::nanoseconds period, MissedTick behavior = MissedTick::kBurst,
                    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now())
      : period_(period), behavior_(behavior), next_(start) {
    if (period.count() <= 0) throw UsageError("spindle::Interval: the period must be positive");
  }

  /// Waits for the next tick and returns the time it was scheduled for.
  Task<std::chrono::steady_clock::time_point> tick() {
    const auto scheduled = next_;
    co_await sleep_until(scheduled);
    const auto now = std::chrono::steady_clock::now();
    switch (behavior_) {
      case MissedTick::kBurst:
        next_ = scheduled + period_;
        break;
      case MissedTick::kDelay:
        // A tick counts as missed once the next one was already due.
        next_ = (now - scheduled >= period_) ? now + period_ : scheduled + period_;
        break;

      case MissedTick::kSkip: {
        auto missed = (now - scheduled) / period_;  // whole periods behind
        next_ = scheduled + period_ * (missed + 1);
        break;
      }
    }
    co_return scheduled;
  }

  /// The next tick is one period from now.
  void reset() { next_ = std::chrono::steady_clock::now() + period_; }
  void set_missed_tick_behavior(MissedTick b) noexcept { behavior_ = b; }
  [[nodiscard]] std::chrono::nanoseconds period() const noexcept { return period_; }

 private:
  std::chrono::nanoseconds period_;             // time between ticks
  MissedTick behavior_;                         // what to do when late
  std::chrono::steady_clock::time_point next_;  // the next tick's deadline
};

/// An Interval of `period` whose first tick is now.
inline Interval interval(std::chrono::nanoseconds period,
                         MissedTick behavior = MissedTick::kBurst) {
  return Interval(period, behavior);
}

}  // namespace spindle
