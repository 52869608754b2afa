// Internal: a TaskMonitor's shared state, its per-thread counter blocks, and
// the per-task record (TaskProbe) that the runtime calls.
//
// Where the clock is read: never here. The runtime passes the reading it
// took at each poll boundary (one per boundary: the end of one poll is the
// start of the next on that worker) and at each wake; instrument() reads
// the monitor's clock once per task for the first-poll delay.
//
// Where the counters live: a MonitorSlot per (monitor, worker), written only
// by that worker's thread with relaxed load+store pairs (no locked
// instruction, no cache line shared with another writer). Every per-poll
// event is recorded there, because the runtime calls the poll hooks on the
// polling worker only (wakes are recorded in the task's cell and reported at
// the next poll's start). Readers add the slots up. The exceptions:
// IntervalMax's mark of what the interval reader has taken, which the reader
// writes once per TaskIntervals::next(), and the instrumented / dropped
// counts of tasks made or ended off the workers (two shared atomics). A slot
// is found through a two-level table indexed by the worker's process-wide
// slot, allocated on that worker's first event: no slot for threads that
// poll nothing (blocking pool, foreign wakers).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "spindle/monitor/task_metrics.hpp"
#include "spindle/runtime/clock.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/detail/relaxed_counter.hpp"
#include "spindle/runtime/detail/task_alloc.hpp"
#include "spindle/runtime/histogram.hpp"
#include "spindle/runtime/hooks.hpp"

namespace spindle::detail {

/// A counter with one writer (the slot's thread): the runtime's own.
using SlotCounter = RelaxedCounter;

/// The longest idle of the current interval on one thread (for
/// TaskIntervals' max_idle_duration), as a pair of words:
///   word_       generation << 48 | the maximum in ns (48 bits, saturating
///               at about 78 hours); written by the slot's thread only
///   collected_  the word as the reader last took it; written by the reader
///               only (MonitorCore::take_idle_max, under its mutex)
/// The writer raises the maximum of a word the reader has not taken yet,
/// and starts a new word (next generation, so that it differs from the
/// taken one even for an equal value) once the reader has taken it. The
/// reader takes the word when it differs from the one it took before. So a
/// recorded idle is never lost: it stays in the word until the reader has
/// seen it. A wake that races with the reader's take lands either in the
/// interval being closed (at most as long as the maximum taken) or in the
/// next one. All relaxed: each word carries its own meaning, nothing else
/// is published through it.
class IntervalMax {
 public:
  static constexpr unsigned kValueBits = 48;
  static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << kValueBits) - 1;

  /// Writer: an idle of `ns` ended now.
  void record(std::uint64_t ns) noexcept {
    if (ns > kMaxValue) ns = kMaxValue;
    const std::uint64_t cur = word_.load(std::memory_order_relaxed);
    if (cur == collected_.load(std::memory_order_relaxed)) {
      // Taken: a new word. (The generation wraps after 2^16; it only has
      // to differ from the taken word's.)
      const std::uint64_t generation = (cur >> kValueBits) + 1;
      word_.store((generation << kValueBits) | ns, std::memory_order_relaxed);
    } else if (ns > (cur & kMaxValue)) {
      word_.store((cur & ~kMaxValue) | ns, std::memory_order_relaxed);
    }
  }

  /// Reader (one at a time): the maximum recorded since the previous
  /// collect(), 0 if none.
  std::uint64_t collect() noexcept {
    const std::uint64_t cur = word_.load(std::memory_order_relaxed);
    if (cur == collected_.load(std::memory_order_relaxed)) return 0;
    collected_.store(cur, std::memory_order_relaxed);
    return cur & kMaxValue;
  }

 private:
  std::atomic<std::uint64_t> word_{0};       // generation << kValueBits | max ns (the writer's)
  std::atomic<std::uint64_t> collected_{0};  // word_ as last taken by the reader (the reader's)
};

/// One worker's delay blame for one monitor: culprit → nanoseconds, for up
/// to kEntries culprits (the rest in other_ns). Written by the slot's
/// worker only, and only on long scheduled delays: an entry is created
/// (with the culprit's name, resolved then, so that it outlives the
/// culprit's monitor) and published with a release store; its counter is a
/// SlotCounter like the others. Readers load the published entries.
class BlameTable {
 public:
  static constexpr std::size_t kEntries = 16;
  BlameTable() = default;
  BlameTable(const BlameTable&) = delete;
  BlameTable& operator=(const BlameTable&) = delete;
  ~BlameTable();

  /// Writer: `group` (a monitor id, 0, kBlameRuntime, kBlameUnrecorded)
  /// held the worker for `ns`.
  void add(std::uint64_t group, std::uint64_t ns) noexcept;
  /// Reader: adds every culprit's total into `into` (name → ns).
  template <class Map>
  void sum_into(Map& into) const {
    for (const auto& slot : entries_) {
      const Entry* e = slot.load(std::memory_order_acquire);
      if (e == nullptr) break;  // filled in order
      into[e->name] += e->ns.get();
    }
    if (const std::uint64_t other = other_ns_.get(); other != 0) into["other"] += other;
  }

 private:
  struct Entry {
    std::uint64_t group;  // constant once published
    std::string name;     // constant once published
    SlotCounter ns;       // this culprit's share so far
  };
  std::array<std::atomic<Entry*>, kEntries> entries_{};  // published in order
  std::size_t used_ = 0;                                 // entries published (writer only)
  SlotCounter other_ns_;                                 // culprits beyond kEntries
};

/// The range of buckets a worker's histogram of one monitor used so far,
/// [lo, hi), so that a reader sums only that range: durations cluster (a
/// monitor's polls touch a few dozen of the 302 buckets), and a scrape of
/// 1,000 monitors would otherwise read 302 counters per histogram and
/// worker, ~14 MB, far beyond the caches. The three ranges of a slot sit
/// with its counters, so a reading touches the buckets' lines only where
/// there are counts. Single writer (the slot's worker); readers anywhere.
/// The range is raised before the count is added, so a reader that sees a
/// count sees a range that holds it, up to the relaxed-read tearing every
/// counter of the slot has.
class BucketRange {
 public:
  using Buckets = std::array<SlotCounter, Histogram::kBuckets>;

  /// Counts one observation in bucket `b` of `counts`.
  void record(Buckets& counts, std::size_t b) noexcept {
    const auto b16 = static_cast<std::uint16_t>(b);
    if (b16 < lo_.load(std::memory_order_relaxed)) lo_.store(b16, std::memory_order_relaxed);
    if (b16 >= hi_.load(std::memory_order_relaxed)) {
      hi_.store(static_cast<std::uint16_t>(b16 + 1), std::memory_order_relaxed);
    }
    counts[b].add(1);
  }
  /// Adds the counts of the range to `h`'s buckets.
  void sum_into(const Buckets& counts, Histogram& h) const noexcept {
    const std::size_t hi = hi_.load(std::memory_order_relaxed);
    for (std::size_t b = lo_.load(std::memory_order_relaxed); b < hi; ++b) {
      h.add_bucket(b, counts[b].get());
    }
  }

 private:
  static_assert(Histogram::kBuckets < 65535, "bucket indices fit in 16 bits");
  std::atomic<std::uint16_t> lo_{static_cast<std::uint16_t>(Histogram::kBuckets)};  // first used
  std::atomic<std::uint16_t> hi_{0};  // one past the last used; lo_ >= hi_: none
};

/// One worker's counters for one monitor.
struct alignas(128) MonitorSlot {
  SlotCounter instrumented;
  SlotCounter dropped;
  SlotCounter first_polls;
  SlotCounter first_poll_ns;
  SlotCounter idled;
  SlotCounter idle_ns;
  SlotCounter max_idle_ns;
  SlotCounter fast_polls;
  SlotCounter fast_poll_ns;
  SlotCounter slow_polls;
  SlotCounter slow_poll_ns;
  SlotCounter short_delays;
  SlotCounter short_delay_ns;
  SlotCounter long_delays;
  SlotCounter long_delay_ns;
  SlotCounter wakes;
  SlotCounter self_wakes;
  SlotCounter never_yielded;
  BucketRange poll_range;         // of poll_hist
  BucketRange sched_range;        // of sched_hist
  BucketRange idle_range;         // of idle_hist
  IntervalMax interval_max_idle;  // this interval's longest idle (TaskIntervals)
  BlameTable blame;               // who held the worker during long delays
  BucketRange::Buckets poll_hist;
  BucketRange::Buckets sched_hist;
  BucketRange::Buckets idle_hist;
};
static_assert(sizeof(MonitorSlot) <= 8192, "a monitor's per-worker block stays within 8 KiB");

/// Per-worker slots of one monitor, indexed by the worker's process-wide
/// slot (spindle::PollStart::worker_slot, detail::worker_slot()), plus two
/// shared counters for the events that happen off the workers.
class SlotTable {
 public:
  SlotTable() = default;
  ~SlotTable();
  SlotTable(const SlotTable&) = delete;
  SlotTable& operator=(const SlotTable&) = delete;

  /// The slot of worker slot `index` (allocated on first use), or nullptr
  /// beyond the table (more than kChunks × kPerChunk workers alive at once)
  /// or out of memory: those events are counted in lost_events() only.
  /// Called only by the thread running that worker.
  MonitorSlot* at(std::uint32_t index) noexcept {
    if (index < kChunks * kPerChunk) [[likely]] {
      // acquire: pairs with the release that published the chunk / slot.
      const Chunk* chunk = chunks_[index / kPerChunk].load(std::memory_order_acquire);
      if (chunk != nullptr) [[likely]] {
        MonitorSlot* slot = (*chunk)[index % kPerChunk].load(std::memory_order_acquire);
        if (slot != nullptr) [[likely]]
          return slot;
      }
    }
    return slow_at(index);
  }
  /// A task was instrumented (`dropped`: ended) on the calling thread: on a
  /// worker, in its slot; elsewhere (the thread that builds requests before
  /// spawning them, shutdown), in a shared counter (one atomic add).
  void count_instrumented() noexcept {
    count(&MonitorSlot::instrumented, off_worker_instrumented_);
  }
  void count_dropped() noexcept { count(&MonitorSlot::dropped, off_worker_dropped_); }
  /// Adds every slot into `m` (relaxed reads; never blocks the writers).
  void sum_into(TaskMetrics& m) const;
  /// The largest IntervalMax::collect() over the slots. One caller at a
  /// time (MonitorCore::take_idle_max's mutex).
  std::uint64_t collect_interval_max_idle() noexcept;
  /// Events dropped because their worker had no slot.
  [[nodiscard]] std::uint64_t lost_events() const noexcept {
    return lost_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr std::size_t kPerChunk = 64;
  static constexpr std::size_t kChunks = 256;  // 16,384 workers alive at once
  using Chunk = std::array<std::atomic<MonitorSlot*>, kPerChunk>;

  MonitorSlot* slow_at(std::uint32_t index) noexcept;
  /// Calls `f(MonitorSlot*)` for every installed slot, visiting only the
  /// indices below end_ (a reading of a monitor with 2 workers looks at 2
  /// pointers, not at the 256 chunk pointers of the whole table).
  template <class F>
  void for_each_slot(F&& f) const {
    // acquire: pairs with the release that raised end_ after installing.
    const std::uint32_t end = end_.load(std::memory_order_acquire);
    for (std::uint32_t c = 0; c * kPerChunk < end; ++c) {
      const Chunk* chunk = chunks_[c].load(std::memory_order_acquire);
      if (chunk == nullptr) continue;
      const std::uint32_t last = std::min<std::uint32_t>(kPerChunk, end - c * kPerChunk);
      for (std::uint32_t i = 0; i < last; ++i) {
        if (MonitorSlot* s = (*chunk)[i].load(std::memory_order_acquire)) f(s);
      }
    }
  }
  void count(SlotCounter MonitorSlot::*field, std::atomic<std::uint64_t>& off_worker) noexcept {
    const std::uint32_t w = worker_slot();
    if (w != kNoWorkerSlot) {
      if (MonitorSlot* s = at(w)) {
        (s->*field).add(1);
        return;
      }
    }
    off_worker.fetch_add(1, std::memory_order_relaxed);
  }

  std::array<std::atomic<Chunk*>, kChunks> chunks_{};      // allocated on demand
  std::atomic<std::uint32_t> end_{0};                      // one past the highest slot installed
  std::atomic<std::uint64_t> lost_{0};                     // events of workers without a slot
  std::atomic<std::uint64_t> off_worker_instrumented_{0};  // instrumented off the workers
  std::atomic<std::uint64_t> off_worker_dropped_{0};       // ended off the workers
};

/// One TaskIntervals iterator's share of the interval maxima: the longest
/// idle since its previous next(). Owned by the MonitorCore.
struct IntervalReader {
  std::uint64_t max_idle_ns = 0;  // under MonitorCore::readers_mu_
};

/// A TaskMonitor's shared state. Reference-counted by TaskMonitor copies,
/// interval iterators and task probes.
class MonitorCore final : public HooksRecipe {
 public:
  MonitorCore(std::string name, std::chrono::nanoseconds slow_poll,
              std::chrono::nanoseconds long_delay, std::chrono::nanoseconds stall,
              std::function<Instant()> clock,
              std::function<void(const PerTaskMetrics&)> on_finished);
  ~MonitorCore();
  MonitorCore(const MonitorCore&) = delete;
  MonitorCore& operator=(const MonitorCore&) = delete;

  void ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  [[nodiscard]] Instant now() const { return clock_ ? clock_() : clock_now(); }
  [[nodiscard]] TaskMetrics cumulative() const;

  /// Reserves one task's record (counts the instrumentation, takes a
  /// reference that the record, or forget_hooks, gives back).
  PendingHooks reserve_probe();
  // HooksRecipe: the record (a TaskProbe) is built inside the task's cell.
  [[nodiscard]] std::size_t hooks_size() const noexcept override;
  TaskHooks* build_hooks(void* where, Instant reserved_at, bool free_on_release) noexcept override;
  void forget_hooks(Instant reserved_at) noexcept override;

  /// A new iterator's reader (freed by close_reader).
  IntervalReader* open_reader();
  void close_reader(IntervalReader* reader) noexcept;
  /// Ends the current interval: collects the slots' maxima into every open
  /// reader, and returns (and resets) `reader`'s maximum, the longest idle
  /// since its previous call.
  std::chrono::nanoseconds take_idle_max(IntervalReader* reader);

  const std::string name_;                                        // the monitor's name
  const std::uint64_t id_;                                        // process-unique, non-zero
  const std::int64_t slow_poll_ns_;                               // slow poll threshold
  const std::int64_t long_delay_ns_;                              // long delay threshold
  const std::int64_t stall_ns_;                                   // never-yielded threshold
  const std::function<Instant()> clock_;                          // injected clock, or empty
  const std::function<void(const PerTaskMetrics&)> on_finished_;  // or empty
  const Instant created_;                                         // for TaskMetrics::elapsed
  SlotTable slots_;                                               // the counters

 private:
  std::atomic<std::int64_t> refs_{1};  // owners
  Mutex readers_mu_;  // guards readers_; serializes the slots' IntervalMax::collect()
  std::vector<std::unique_ptr<IntervalReader>> readers_
      SPINDLE_GUARDED_BY(readers_mu_);  // one per live TaskIntervals
};

/// A duration as an unsigned count (durations here are never negative).
std::uint64_t u(std::int64_t v) noexcept;
/// Culprit totals (name → ns) as TaskMetrics::delay_blame: largest first.
std::vector<DelayBlame> sorted_blame(const std::map<std::string, std::uint64_t>& totals);

/// Looks up a live monitor's name by id (for stall reports). Empty when the
/// monitor is gone or the id is 0.
std::string monitor_name_by_id(std::uint64_t id);

/// The record attached to one instrumented task.
class TaskProbe final : public TaskHooks {
 public:
  /// Adopts a reference on `core`. With `owns_block` the probe lives alone
  /// in a task_alloc block that on_release frees; otherwise it lives inside
  /// its task's cell (MonitorCore::build_hooks) and only destroys itself.
  TaskProbe(MonitorCore* core, Instant instrumented_at, bool owns_block) noexcept;
  ~TaskProbe() override;
  TaskProbe(const TaskProbe&) = delete;
  TaskProbe& operator=(const TaskProbe&) = delete;

  void on_spawn(const TaskInfo& info, Instant now) noexcept override;
  void on_poll_start(const PollStart& poll) noexcept override;
  void on_poll_end(Instant now, bool ready) noexcept override;
  void on_drop(bool cancelled) noexcept override;
  void on_release() noexcept override;
  [[nodiscard]] std::string_view group_name() const noexcept override { return core_->name_; }
  [[nodiscard]] std::uint64_t group_id() const noexcept override { return core_->id_; }

  /// This task's figures; safe from any thread.
  [[nodiscard]] PerTaskMetrics metrics() const;

 private:
  /// A relaxed single-writer value that other threads may read.
  class Field {
   public:
    void add(std::int64_t n) noexcept {
      v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void set(std::int64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
    [[nodiscard]] std::int64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

   private:
    std::atomic<std::int64_t> v_{0};  // written by the thread handling the task's current event
  };

  MonitorCore* const core_;        // counted reference
  const Instant instrumented_at_;  // start of the first-poll delay
  // Event state (one event at a time: the runtime orders the calls).
  Instant poll_start_{};              // start of the poll in progress
  Instant last_poll_end_{};           // end of the last poll (start of idle)
  MonitorSlot* poll_slot_ = nullptr;  // the slot of the worker running the current poll
  bool dropped_ = false;              // on_drop ran
  const bool owns_block_;             // on_release frees the probe's own block
  // Per-task figures (read by task_metrics() from any thread).
  std::atomic<TaskId> id_{0};
  SourceLocation location_;           // set at on_spawn, read after (ordered by the spawn)
  std::atomic<bool> located_{false};  // location_ is set
  Field polls_;
  Field busy_ns_;
  Field scheduled_ns_;
  Field idle_ns_;
  Field first_poll_delay_ns_;
  Field longest_poll_ns_;
  std::atomic<int> finished_{0};  // 0 running, 1 finished, 2 cancelled
};

}  // namespace spindle::detail
