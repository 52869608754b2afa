// spindle/runtime/hooks.hpp — per-task instrumentation points for the monitor layer.
//
//   spindle::TaskId       a task's runtime-unique id (never 0)
//   spindle::Instant      the runtime's clock reading (steady_clock, or an injected clock)
//   spindle::TaskHooks    the interface a monitor implements to observe one root task
//
//   spindle::PollStart    what the runtime tells hooks when a poll starts
//   spindle::HooksRecipe  builds hooks inside the task's own block (one allocation)
//
// The runtime knows nothing of monitors. A task spawned with hooks attached
// (spindle::monitor's TaskMonitor::instrument does this) gets a TaskHooks
// object; the runtime calls it at the task's scheduling events and passes
// the clock readings, so that one reading serves each event. A task without
// hooks costs one predictable branch per poll and no clock read.
//
// Event order for one task (each arrow is one call, each happens-before the next):
//   on_spawn → on_poll_start → on_poll_end(false) → on_poll_start → ...
//            → on_poll_end(true) → on_drop → on_release
// A wake is not a call: whoever wakes the task (any thread, a timer or I/O
// handler, the task itself) only records the wake's time in the task's
// cell, and the next on_poll_start reports it (PollStart::woken_at and
// wake). So the time the task was idle (end of a poll → its wake) and
// scheduled (wake → the next poll) is accounted at that poll's start, by the
// worker that polls it. A wake that arrives while the task is being polled
// (yield_now, a self-wake, a wake from another thread during the poll) makes
// it scheduled from that poll's end: busy time and scheduled time never
// overlap. An aborted task gets on_drop(true) without another poll.
//
// Threads: on_poll_start and on_poll_end run on the worker that polls the
// task (its PollStart::worker_slot is that worker's, unique among the live
// workers of every runtime in the process, so per-worker counters have one
// writer). on_spawn runs on the spawning thread; on_drop and on_release on
// whatever thread destroyed the task (a worker, the thread shutting the
// runtime down, the thread dropping a never-spawned task). Calls for one
// task never overlap; hooks of different tasks run concurrently.
// Implementations must be noexcept and cheap: they run on the scheduler's
// hot path.
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

namespace detail {
class FlightRecorder;
}

/// Receives a scheduled delay split by who held the worker meanwhile (see
/// attribute_delay).
class DelayBlameSink {
 public:
  /// `group` held the worker for `d` of the delay: the TaskHooks::group_id()
  /// of the tasks polled meanwhile (0: tasks without hooks), kBlameRuntime
  /// for the worker's own time outside polls (I/O checks, stealing, parking,
  /// the kernel's wake-up), kBlameUnrecorded for a part older than the
  /// flight recorder's ring. Calls come in no particular order; one group
  /// may come more than once.
  virtual void add(std::uint64_t group, std::chrono::nanoseconds d) noexcept = 0;

 protected:
  ~DelayBlameSink() = default;
};
/// DelayBlameSink::add's group for the worker's own time.
inline constexpr std::uint64_t kBlameRuntime = UINT64_MAX;
/// DelayBlameSink::add's group for time older than the recorder keeps.
inline constexpr std::uint64_t kBlameUnrecorded = UINT64_MAX - 1;

/// How the task came to be scheduled for the poll that starts.
enum class WakeKind : std::uint8_t {
  kFirstPoll,   ///< its first poll: it was spawned at `woken_at`, not woken
  kFromIdle,    ///< it was idle and woken at `woken_at` (by any thread)
  kDuringPoll,  ///< woken during its previous poll (yield_now, a self-wake, a
                ///< wake while it ran): scheduled from that poll's end, `woken_at`
};

/// What the runtime tells hooks when a poll starts.
struct PollStart {
  Instant now{};                         ///< the poll's start
  Instant woken_at{};                    ///< when the task became scheduled (see WakeKind)
  std::size_t worker = 0;                ///< the polling worker's index in its runtime (0-based)
  std::uint32_t worker_slot = 0;         ///< a small index unique among all live workers of the
                                         ///< process (current_thread's block_on thread included);
                                         ///< reused once its worker is gone
  WakeKind wake = WakeKind::kFirstPoll;  ///< how it was scheduled
  bool self_wake = false;                ///< the wake came from inside the task's own previous
                                         ///< poll (yield_now, or waking itself)
  /// The polling worker's flight recorder (Runtime::Builder::flight_recorder),
  /// or null: what attribute_delay() reads.
  const detail::FlightRecorder* recorder = nullptr;
};

/// Splits the scheduled delay that ends with `poll` (poll.woken_at →
/// poll.now) by what the polling worker did meanwhile, from its flight
/// recorder: sink.add(group, d) per monitor whose tasks it polled, 0 for
/// tasks without one, kBlameRuntime for its own time. The parts add up to
/// the delay. Does nothing without a recorder or for a first poll. Call
/// only inside on_poll_start, on the worker (it reads the worker's ring);
/// it walks the events of the delay, so call it for long delays only.
void attribute_delay(const PollStart& poll, DelayBlameSink& sink) noexcept;

/// Observer of one root task's scheduling events. See the file comment.
class TaskHooks {
 public:
  virtual ~TaskHooks() = default;

  /// The task was spawned and is about to be queued for its first poll. If
  /// the runtime refuses it (it is shutting down), on_drop(true) and
  /// on_release follow at once, and spawn() throws RuntimeShutdown.
  virtual void on_spawn(const TaskInfo& info, Instant now) noexcept = 0;
  /// A poll starts on a worker, which reports how the task was scheduled.
  virtual void on_poll_start(const PollStart& poll) noexcept = 0;
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

/// Builds a task's hooks inside the task's own allocation, so that an
/// instrumented task costs one block (the runtime's cell with the record
/// after it) instead of two. A TaskMonitor is one: TaskMonitor::instrument
/// reserves a record (HookedTask or HookedCallable holds the reservation) and spawn builds it
/// in the cell. Each reservation ends in exactly one build_hooks or
/// forget_hooks call, from any thread.
class HooksRecipe {
 public:
  /// Bytes the hooks need; their alignment must not exceed
  /// alignof(std::max_align_t). The same for every reservation.
  [[nodiscard]] virtual std::size_t hooks_size() const noexcept = 0;
  /// Constructs the hooks of one reservation in `where` (hooks_size()
  /// bytes, aligned to std::max_align_t, alive until their on_release
  /// returns). `reserved_at` is the reservation's time. With
  /// `free_on_release` the hooks free `where` (a task_alloc block of
  /// hooks_size() bytes) in on_release; otherwise they only destroy
  /// themselves there and the runtime frees the block around them.
  virtual TaskHooks* build_hooks(void* where, Instant reserved_at,
                                 bool free_on_release) noexcept = 0;
  /// The reservation is given up unbuilt (its task was dropped unspawned,
  /// or the spawn failed before the hooks existed).
  virtual void forget_hooks(Instant reserved_at) noexcept = 0;

 protected:
  ~HooksRecipe() = default;
};

/// A reservation of hooks that `recipe` builds later (see HooksRecipe);
/// empty when `recipe` is null.
struct PendingHooks {
  HooksRecipe* recipe = nullptr;  ///< who builds or forgets them
  Instant reserved_at{};          ///< when the reservation was made
};

namespace detail {
/// Builds the hooks of reservation `pending` (non-empty) in a task_alloc
/// block of their own, which they free at on_release, and empties
/// `pending`. Throws std::bad_alloc and leaves `pending` as it was (the
/// caller still holds the reservation).
TaskHooks* build_hooks_alone(PendingHooks& pending);
}  // namespace detail

}  // namespace spindle
