// spindle/runtime/counters.hpp — raw scheduler counters, read by the monitor layer.
//
//   spindle::WorkerCounters   one worker's cumulative counters (a snapshot)
//   spindle::RuntimeCounters  every worker's counters plus runtime-wide values
//
// These are the runtime's own, monotonically increasing counters, kept per
// worker in cache-line aligned blocks that only their worker writes (plain
// relaxed stores, no shared atomic on the hot path). Handle::counters() sums
// nothing and computes nothing: it copies them. spindle::RuntimeMonitor
// (monitor layer) turns two snapshots into tokio-metrics' RuntimeMetrics.
//
// Example:
//   spindle::RuntimeCounters c = rt.handle().counters();
//   std::uint64_t polls = 0;
//   for (const auto& w : c.workers) polls += w.polls;
//
// Thread safety: snapshots are plain values. Taking one is safe from any
// thread at any time and never blocks a worker; the values of different
// counters are read one by one, so they are not one atomic instant.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "spindle/runtime/histogram.hpp"
#include "spindle/runtime/hooks.hpp"

namespace spindle {

/// One worker's counters since the runtime started.
struct WorkerCounters {
  std::uint64_t polls = 0;                 ///< root-task polls run by this worker
  std::uint64_t steals = 0;                ///< tasks this worker stole from others
  std::uint64_t steal_operations = 0;      ///< successful steal attempts (each moves >= 1 task)
  std::uint64_t parks = 0;                 ///< times the worker went to sleep with nothing to do
  std::uint64_t noops = 0;                 ///< wake-ups after which the worker found no work
  std::uint64_t local_schedules = 0;       ///< tasks woken or spawned onto this worker's own queue
  std::uint64_t overflows = 0;             ///< times a full local queue moved half of its tasks to
                                           ///< the injection queue
  std::uint64_t budget_forced_yields = 0;  ///< polls ended because the cooperative budget ran out
  std::uint64_t io_driver_ready = 0;       ///< I/O and timer completions run by this worker
  std::chrono::nanoseconds busy{0};        ///< time not parked (polling, scheduling, I/O)
  Histogram poll_durations;                ///< every poll's duration (with poll timing, else empty)
  Histogram scheduled_delays;              ///< wake-to-poll delays (with poll timing, else empty)
  std::size_t local_queue_depth = 0;       ///< tasks in the local queue now (a gauge)
};

/// What one worker is polling at one moment (Handle::poll_states()), for
/// watchdogs such as spindle::monitor's stall detector. Reading it costs the
/// worker nothing.
struct WorkerPollState {
  bool polling = false;        ///< the worker is inside a poll
  std::uint64_t poll_seq = 0;  ///< changes at every poll start and end: the same odd value
                               ///< seen twice means the same poll is still running
  TaskId task = 0;             ///< the task being polled (when polling)
  SourceLocation location;     ///< where that task was spawned
  std::uint64_t group_id = 0;  ///< its hooks' group (TaskHooks::group_id), 0 if none
};

/// The state of a task, as Handle::dump() reports it.
enum class TaskState : std::uint8_t {
  kRunning,    ///< a worker is polling it now
  kScheduled,  ///< queued, waiting for a worker
  kIdle,       ///< waiting for a wake (I/O, timer, channel, another task)
};

/// One live task in Handle::dump().
struct TaskSnapshot {
  TaskId id = 0;                                 ///< runtime-unique id
  std::string group;                             ///< its monitor's name ("" when uninstrumented)
  SourceLocation location;                       ///< where it was spawned
  TaskState state = TaskState::kIdle;            ///< now
  std::uint64_t polls = 0;                       ///< polls so far
  std::optional<std::chrono::nanoseconds> age;   ///< since spawn (task-dump timing only)
  std::optional<std::chrono::nanoseconds> busy;  ///< total time in polls (task-dump timing only)
  bool blocking = false;                         ///< a spawn_blocking job
};

/// All of a runtime's counters at one moment.
struct RuntimeCounters {
  std::vector<WorkerCounters> workers;     ///< indexed by worker
  std::uint64_t remote_schedules = 0;      ///< tasks scheduled from outside the workers
  std::uint64_t spawned_tasks = 0;         ///< tasks ever accepted by spawn
  std::uint64_t unhandled_exceptions = 0;  ///< exceptions of detached tasks nobody awaited
  std::size_t global_queue_depth = 0;      ///< tasks in the injection queue now
  std::size_t live_tasks = 0;              ///< spawned tasks that have not finished
  std::size_t blocking_threads = 0;        ///< threads in the blocking pool now
  std::size_t idle_blocking_threads = 0;   ///< of those, waiting for a job
  std::size_t blocking_queue_depth = 0;    ///< spawn_blocking jobs waiting for a thread
  std::chrono::nanoseconds elapsed{0};     ///< time since the runtime was built
  Instant now{};                           ///< the runtime clock when the snapshot was taken
};

}  // namespace spindle
