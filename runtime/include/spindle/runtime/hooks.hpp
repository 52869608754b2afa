// spindle/runtime/hooks.hpp — per-task instrumentation points for the monitor layer.
//
//   spindle::TaskId       a task's runtime-unique id (never 0)
//   spindle::Instant      the runtime's clock reading (steady_clock, or an injected clock)
//   spindle::TaskHooks    the interface a monitor implements to observe one root task
//
// The runtime knows nothing of monitors. A task spawned with hooks attached
// (spindle::monitor's TaskMonitor::instrument does this) gets a TaskHooks
// object; the runtime calls it at the task's scheduling events and passes
// the clock readings, so that one reading serves each event. A task without
// hooks costs one predictable branch per poll and no clock read.
//
// Event order for one task (each arrow is one call, each happens-before the next):
//   on_spawn → on_poll_start → on_poll_end(false) → on_wake → on_poll_start → ...
//            → on_poll_end(true) → on_drop → on_release
// A wake that arrives while the task is being polled (a self-wake such as
// yield_now, or a wake from another thread) is reported when that poll ends,
// with the poll's end time: the task's scheduled time starts there, so busy
// time and scheduled time never overlap. An aborted task gets on_drop(true)
// without another poll.
//
// Thread safety: calls for one task never overlap, but they may come from
// different threads (on_wake from whatever thread woke the task). Hooks of
// different tasks run concurrently. Implementations must be noexcept and
// cheap: they run on the scheduler's hot path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>


namespace spindle {

/// Runtime-unique task id, assigned at spawn. 0 means "no task".
using TaskId = std::uint64_t;

/// A clock reading. The runtime reads std::chrono::steady_clock unless a test
/// clock was injected with Runtime::Builder::clock().
using Instant = std::chrono::steady_clock::time_point;

/// Where a task was spawned: file, line and function of the spawn() call.
/// (SourceLocation, written with the compiler builtins that both GCC
/// and Clang 14 support, since libstdc++'s needs a newer Clang.)
class SourceLocation {
 public:
  /// The location of the call that evaluates this default argument.
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          unsigned line = __builtin_LINE(),
                                          const char* function = __builtin_FUNCTION()) noexcept {
    return SourceLocation(file, line, function);
  }
  constexpr SourceLocation() noexcept = default;
  [[nodiscard]] constexpr const char* file_name() const noexcept { return file_; }
  [[nodiscard]] constexpr unsigned line() const noexcept { return line_; }
  [[nodiscard]] constexpr const char* function_name() const noexcept { return function_; }

 private:
  constexpr SourceLocation(const char* file, unsigned line, const char* function) noexcept
      : file_(file), line_(line), function_(function) {}
  const char* file_ = "";      // source file of the call
  unsigned line_ = 0;          // line of the call
  const char* function_ = "";  // enclosing function of the call
};

/// What the runtime tells hooks about a task when it is spawned.
struct TaskInfo {
  TaskId id = 0;            ///< runtime-unique id
  SourceLocation location;  ///< where spawn() was called
};

/// Observer of one root task's scheduling events. See the file comment.
class TaskHooks {
 public:
  virtual ~TaskHooks() = default;

  /// The task was spawned and is about to be queued for its first poll. If
  /// the runtime refuses it (it is shutting down), on_drop(true) and
  /// on_release follow at once, and spawn() throws RuntimeShutdown.
  virtual void on_spawn(const TaskInfo& info, Instant now) noexcept = 0;
  /// The task became scheduled at `now`: it was idle and something woke it
  /// (or, through the default on_requeue, it was woken during its own poll
  /// and `now` is that poll's end). `self_wake` is true when the wake came
  /// from inside the task's own poll (yield_now, or a wake of itself).
  virtual void on_wake(Instant now, bool self_wake) noexcept = 0;
  /// The task was woken during the poll that just ended (a self-wake such
  /// as yield_now, or a wake from elsewhere while it ran): it is scheduled
  /// again from `now`, that poll's end, and was never idle. Called by the
  /// worker right after on_poll_end. The default forwards to on_wake.
  virtual void on_requeue(Instant now, bool self_wake) noexcept { on_wake(now, self_wake); }
  /// A poll starts on worker `worker` (0-based).
  virtual void on_poll_start(Instant now, std::size_t worker) noexcept = 0;
  /// The poll that started last ended: `ready` when the task finished.
  virtual void on_poll_end(Instant now, bool ready) noexcept = 0;
  /// The task's coroutine frame was destroyed: it finished, or it was
  /// cancelled (aborted, or destroyed at runtime shutdown).
  virtual void on_drop(bool cancelled) noexcept = 0;
  /// The runtime no longer references these hooks (the task's state is
  /// freed). The last call; an implementation may delete itself here.
  virtual void on_release() noexcept = 0;

  /// The name of the group these hooks report to (a TaskMonitor's name),
  /// shown by Handle::dump(). Must stay valid while the hooks are alive.
  [[nodiscard]] virtual std::string_view group_name() const noexcept { return {}; }
  /// A process-unique, non-zero number for that group (0: none). Read once
  /// at spawn; the runtime publishes it with each poll so that a watchdog
  /// can name the group of a task that stalls a worker.
  [[nodiscard]] virtual std::uint64_t group_id() const noexcept { return 0; }
};

}  // namespace spindle
