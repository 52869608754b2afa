// Internal: a worker's flight recorder (Runtime::Builder::flight_recorder).
//
//   detail::TraceKind        what one recorded event is
//   detail::TraceEvent       one event, as read back
//   detail::FlightRecorder   a fixed ring of the worker's latest events
//
// The ring is written by its worker only (relaxed stores into atomic
// words, then a release store of the head), so recording costs a few
// stores and never blocks. Readers on other threads (Handle::write_trace)
// copy it without stopping the worker: an entry the worker may have
// overwritten while it was being copied (older than head - capacity after
// the copy) is dropped, so what is returned is always events the worker
// wrote, in its order. The worker itself reads its own ring for delay
// blame (Worker::attribute_delay), which needs no such care.
//
// Memory: 32 bytes per event, fixed at build (default 4,096 events, 128 KiB
// per worker).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "spindle/runtime/hooks.hpp"

namespace spindle::detail {

/// An Instant as the recorder stores it: ns since the runtime clock's epoch.
inline std::int64_t trace_ns(Instant t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

/// What a recorded event is. Values are part of the trace's "args".
enum class TraceKind : std::uint8_t {
  kPollStart = 1,  ///< a poll of `task` (monitor `group`, 0: none) started at `t`
  kPollEnd = 2,    ///< that poll ended at `t` (arg: 1 when the task finished)
  kWake = 3,       ///< `task` had been woken at `t` (recorded at its next poll's start;
                   ///< arg: 1 from idle, 2 during its previous poll, +4 when a self-wake)
  kSteal = 4,      ///< this worker stole `arg` tasks at `t`
  kPark = 5,       ///< the worker went to sleep at `t`
  kUnpark = 6,     ///< it woke up at `t`
};

/// One event, as read back.
struct TraceEvent {
  std::int64_t t_ns = 0;    // runtime clock, ns since its epoch
  std::uint64_t task = 0;   // task id (0: none)
  std::uint64_t group = 0;  // the task's monitor id (0: none)
  TraceKind kind{};
  std::uint32_t arg = 0;  // kind-specific (see TraceKind)
};

class FlightRecorder {
 public:
  /// `capacity` is rounded up to a power of two (at least 64).
  explicit FlightRecorder(std::size_t capacity);

  /// Appends an event (the worker's thread only).
  void record(TraceKind kind, std::int64_t t_ns, std::uint64_t task, std::uint64_t group,
              std::uint32_t arg = 0) noexcept {
    const std::uint64_t h = head_.load(std::memory_order_relaxed);
    Slot& s = slots_[h & mask_];
    s.t.store(t_ns, std::memory_order_relaxed);
    s.task.store(task, std::memory_order_relaxed);
    s.group.store(group, std::memory_order_relaxed);
    s.kind_arg.store(static_cast<std::uint64_t>(kind) | (std::uint64_t{arg} << 8),
                     std::memory_order_relaxed);
    // release: the slot's words happen-before a reader that sees this head.
    head_.store(h + 1, std::memory_order_release);
  }

  /// The events still in the ring, oldest first (any thread).
  [[nodiscard]] std::vector<TraceEvent> snapshot() const;

  /// The worker's own thread: calls `sink(group, ns)` for the time this
  /// worker spent in polls between `from_ns` and `to_ns` (clipped to that
  /// window), by the polled task's group (0: a task without a monitor), and
  /// sink(kRuntime, ns) for the rest of the window covered by the ring;
  /// sink(kUnrecorded, ns) for the part older than the oldest event kept.
  static constexpr std::uint64_t kRuntime = UINT64_MAX;
  static constexpr std::uint64_t kUnrecorded = UINT64_MAX - 1;
  template <class Sink>
  void attribute(std::int64_t from_ns, std::int64_t to_ns, Sink&& sink) const;

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }
  /// Events ever recorded (the ring keeps the latest capacity() of them).
  [[nodiscard]] std::uint64_t recorded() const noexcept {
    return head_.load(std::memory_order_acquire);
  }

 private:
  struct Slot {
    std::atomic<std::int64_t> t{0};
    std::atomic<std::uint64_t> task{0};
    std::atomic<std::uint64_t> group{0};
    std::atomic<std::uint64_t> kind_arg{0};  // kind | arg << 8
  };
  static TraceEvent read(const Slot& s) noexcept {
    TraceEvent e;
    e.t_ns = s.t.load(std::memory_order_relaxed);
    e.task = s.task.load(std::memory_order_relaxed);
    e.group = s.group.load(std::memory_order_relaxed);
    const std::uint64_t ka = s.kind_arg.load(std::memory_order_relaxed);
    e.kind = static_cast<TraceKind>(ka & 0xff);
    e.arg = static_cast<std::uint32_t>(ka >> 8);
    return e;
  }

  std::size_t mask_;                    // capacity - 1
  std::unique_ptr<Slot[]> slots_;       // the ring
  std::atomic<std::uint64_t> head_{0};  // events ever written; written by the worker only
};

template <class Sink>
void FlightRecorder::attribute(std::int64_t from_ns, std::int64_t to_ns, Sink&& sink) const {
  if (to_ns <= from_ns) return;
  // Walk back from the newest event. A poll is a start..end pair; the
  // worker is between polls (its own time) otherwise.
  const std::uint64_t head = head_.load(std::memory_order_relaxed);
  const std::uint64_t oldest = head > capacity() ? head - capacity() : 0;
  std::int64_t covered_to = to_ns;  // the window [covered_to, to_ns) is accounted
  std::int64_t end_ns = -1;         // end of the poll being walked back through, or -1
  std::int64_t polls_ns = 0;        // accounted to polls so far
  for (std::uint64_t i = head; i-- > oldest;) {
    const TraceEvent e = read(slots_[i & mask_]);
    if (e.kind == TraceKind::kWake) continue;  // stamped with the wake's (older) time
    if (e.kind == TraceKind::kPollEnd) {
      end_ns = e.t_ns;
    } else if (e.kind == TraceKind::kPollStart) {
      if (end_ns >= 0) {
        const std::int64_t lo = e.t_ns > from_ns ? e.t_ns : from_ns;
        const std::int64_t hi = end_ns < to_ns ? end_ns : to_ns;
        if (hi > lo) {
          sink(e.group, hi - lo);
          polls_ns += hi - lo;
        }
      }
      end_ns = -1;
      if (e.t_ns <= from_ns) {
        covered_to = from_ns;
        break;
      }
      covered_to = e.t_ns;
    } else if (e.t_ns <= from_ns) {
      covered_to = from_ns;
      break;
    } else {
      covered_to = e.t_ns;
    }
  }
  if (covered_to > from_ns && head <= capacity()) covered_to = from_ns;  // nothing older existed
  const std::int64_t runtime_ns = (to_ns - covered_to) - polls_ns;
  if (runtime_ns > 0) sink(kRuntime, runtime_ns);
  if (covered_to > from_ns) sink(kUnrecorded, covered_to - from_ns);
}

}  // namespace spindle::detail
