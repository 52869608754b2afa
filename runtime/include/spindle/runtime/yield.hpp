// spindle/runtime/yield.hpp — giving the worker back to other tasks.
//
//   spindle::yield_now()  suspends the current task and puts it at the back of
//                         its worker's run queue
//
// A task that computes for a long time without awaiting anything keeps its
// worker from every other task queued there (the seed talk's "one task can
// starve others"). Awaiting yield_now() inside such a loop lets the rest run.
//
// Example:
//   spindle::Task<void> crunch(std::span<const Item> items) {
//     for (std::size_t i = 0; i < items.size(); ++i) {
//       process(items[i]);
//       if (i % 1024 == 1023) co_await spindle::yield_now();
//     }
//   }
//
// The yielded task is requeued once its worker has polled its timers and
// I/O — when it runs out of other queued tasks, or after event_interval
// polls at the latest — so a task that yields

// in a loop lets timers fire as well as other tasks run — and then goes to
// the back of the local queue (never the LIFO slot), where idle workers can
// steal it. It counts as a self-wake for the task's monitor, and its
// scheduled time starts at the end of the yielding poll.
//
// Thread safety: only meaningful inside a spindle task; awaiting it anywhere
// else aborts the process with a message.
#pragma once

#include <coroutine>

namespace spindle {

namespace detail {
/// Marks the current task as yielded and records where it resumes.
void yield_current(std::coroutine_handle<> h) noexcept;
}  // namespace detail

/// The awaitable returned by yield_now().
struct [[nodiscard]] YieldAwaiter {
  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { detail::yield_current(h); }
  void await_resume() const noexcept {}
};

/// Suspends the calling task and re-queues it behind the tasks already queued.
[[nodiscard]] inline YieldAwaiter yield_now() noexcept { return {}; }

}  // namespace spindle
