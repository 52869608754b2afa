// TaskMonitor: per-thread counter blocks, the per-task probe, and readers.

#include "spindle/monitor/task_monitor.hpp"

#include <algorithm>
#include <map>
#include <new>
#include <utility>
#include <vector>

#include "monitor_core.hpp"
#include "spindle/runtime/clock.hpp"
#include "spindle/runtime/detail/groups.hpp"

namespace spindle {
namespace detail {

namespace {

std::atomic<std::uint64_t> g_next_monitor_id{1};

std::int64_t ns_between(Instant from, Instant to) noexcept {
  return std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

}  // namespace

std::uint64_t u(std::int64_t v) noexcept { return static_cast<std::uint64_t>(v); }

/// Culprit totals as TaskMetrics::delay_blame: largest first, ties by name.
std::vector<DelayBlame> sorted_blame(const std::map<std::string, std::uint64_t>& totals) {
  std::vector<DelayBlame> v;
  v.reserve(totals.size());
  for (const auto& [name, ns] : totals) {
    if (ns != 0)
      v.push_back(DelayBlame{name, std::chrono::nanoseconds(static_cast<std::int64_t>(ns))});
  }
  std::stable_sort(v.begin(), v.end(), [](const DelayBlame& a, const DelayBlame& b) {
    return a.duration > b.duration;
  });
  return v;
}

namespace {

/// Adds attribute_delay()'s shares into a slot's blame table.
class SlotBlameSink final : public DelayBlameSink {
 public:
  explicit SlotBlameSink(BlameTable& table) noexcept : table_(table) {}
  void add(std::uint64_t group, std::chrono::nanoseconds d) noexcept override {
    if (d.count() > 0) table_.add(group, static_cast<std::uint64_t>(d.count()));
  }

 private:
  BlameTable& table_;
};

}  // namespace

std::string monitor_name_by_id(std::uint64_t id) { return group_name(id); }

// ---- BlameTable ------------------------------------------------------------------

BlameTable::~BlameTable() {
  for (auto& slot : entries_) delete slot.load(std::memory_order_acquire);
}

void BlameTable::add(std::uint64_t group, std::uint64_t ns) noexcept {
  for (std::size_t i = 0; i < used_; ++i) {
    Entry* e = entries_[i].load(std::memory_order_relaxed);
    if (e->group == group) {
      e->ns.add(ns);
      return;
    }
  }
  if (used_ < kEntries) {
    try {
      std::string name = group == 0                  ? std::string("unmonitored")
                         : group == kBlameRuntime    ? std::string("runtime")
                         : group == kBlameUnrecorded ? std::string("unrecorded")
                                                     : group_name(group);
      if (name.empty()) name = "monitor#" + std::to_string(group);  // already gone
      auto* e = new Entry{group, std::move(name), {}};
      e->ns.add(ns);
      // release: the entry's fields are visible to a reader that loads it.
      entries_[used_].store(e, std::memory_order_release);
      ++used_;
      return;
    } catch (...) {
      // Out of memory: counted as "other" below.
    }
  }
  other_ns_.add(ns);
}

// ---- SlotTable -------------------------------------------------------------------

SlotTable::~SlotTable() {
  for (auto& c : chunks_) {
    Chunk* chunk = c.load(std::memory_order_acquire);
    if (chunk == nullptr) continue;
    for (auto& s : *chunk) delete s.load(std::memory_order_acquire);
    delete chunk;
  }
}

MonitorSlot* SlotTable::slow_at(std::uint32_t index) noexcept {
  if (index >= kChunks * kPerChunk) {
    lost_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto& chunk_ref = chunks_[index / kPerChunk];
  Chunk* chunk = chunk_ref.load(std::memory_order_acquire);
  if (chunk == nullptr) {
    auto* fresh = new (std::nothrow) Chunk();
    if (fresh == nullptr) {
      lost_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    // release: the zeroed chunk is visible to whoever loads the pointer.
    if (chunk_ref.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      chunk = fresh;
    } else {
      delete fresh;  // another thread installed it first; `chunk` holds theirs
    }
  }
  auto& slot_ref = (*chunk)[index % kPerChunk];
  MonitorSlot* slot = slot_ref.load(std::memory_order_acquire);
  if (slot == nullptr) {
    // Only this worker's thread writes this index, so no one else installs it.
    slot = new (std::nothrow) MonitorSlot();
    if (slot == nullptr) {
      lost_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    slot_ref.store(slot, std::memory_order_release);
    // Readers visit indices below end_ only; raise it past this one.
    std::uint32_t end = end_.load(std::memory_order_relaxed);
    while (end <= index && !end_.compare_exchange_weak(end, index + 1, std::memory_order_release,
                                                       std::memory_order_relaxed)) {
    }
  }
  return slot;
}

void SlotTable::sum_into(TaskMetrics& m) const {
  std::map<std::string, std::uint64_t> blame;  // culprit → ns, over every slot
  m.instrumented_count += off_worker_instrumented_.load(std::memory_order_relaxed);
  m.dropped_count += off_worker_dropped_.load(std::memory_order_relaxed);
  std::uint64_t first_poll_ns = 0, idle_ns = 0, max_idle = 0, fast_ns = 0, slow_ns = 0,
                short_ns = 0, long_ns = 0;
  for_each_slot([&](const MonitorSlot* s) {
    m.instrumented_count += s->instrumented.get();
    m.dropped_count += s->dropped.get();
    m.first_poll_count += s->first_polls.get();
    first_poll_ns += s->first_poll_ns.get();
    m.total_idled_count += s->idled.get();
    idle_ns += s->idle_ns.get();
    max_idle = std::max(max_idle, s->max_idle_ns.get());
    m.total_fast_poll_count += s->fast_polls.get();
    fast_ns += s->fast_poll_ns.get();
    m.total_slow_poll_count += s->slow_polls.get();
    slow_ns += s->slow_poll_ns.get();
    m.total_short_delay_count += s->short_delays.get();
    short_ns += s->short_delay_ns.get();
    m.total_long_delay_count += s->long_delays.get();
    long_ns += s->long_delay_ns.get();
    m.total_wake_count += s->wakes.get();
    m.total_self_wake_count += s->self_wakes.get();
    m.total_never_yielded_count += s->never_yielded.get();
    s->blame.sum_into(blame);
    s->poll_range.sum_into(s->poll_hist, m.poll_duration_histogram);
    s->sched_range.sum_into(s->sched_hist, m.scheduled_delay_histogram);
    s->idle_range.sum_into(s->idle_hist, m.idle_duration_histogram);
  });
  using std::chrono::nanoseconds;
  m.total_first_poll_delay = nanoseconds(first_poll_ns);
  m.total_idle_duration = nanoseconds(idle_ns);
  m.max_idle_duration = nanoseconds(max_idle);
  m.total_fast_poll_duration = nanoseconds(fast_ns);
  m.total_slow_poll_duration = nanoseconds(slow_ns);
  m.total_short_delay_duration = nanoseconds(short_ns);
  m.total_long_delay_duration = nanoseconds(long_ns);
  m.total_poll_count = m.total_fast_poll_count + m.total_slow_poll_count;
  m.total_poll_duration = m.total_fast_poll_duration + m.total_slow_poll_duration;
  m.total_scheduled_count = m.total_short_delay_count + m.total_long_delay_count;
  m.total_scheduled_duration = m.total_short_delay_duration + m.total_long_delay_duration;
  m.poll_duration_histogram.add_sum(m.total_poll_duration);
  m.scheduled_delay_histogram.add_sum(m.total_scheduled_duration);
  m.idle_duration_histogram.add_sum(m.total_idle_duration);
  m.delay_blame = sorted_blame(blame);
}

std::uint64_t SlotTable::collect_interval_max_idle() noexcept {
  std::uint64_t max = 0;
  for_each_slot([&](MonitorSlot* s) { max = std::max(max, s->interval_max_idle.collect()); });
  return max;
}

// ---- MonitorCore -----------------------------------------------------------------

MonitorCore::MonitorCore(std::string name, std::chrono::nanoseconds slow_poll,
                         std::chrono::nanoseconds long_delay, std::chrono::nanoseconds stall,
                         std::function<Instant()> clock,
                         std::function<void(const PerTaskMetrics&)> on_finished)
    : name_(std::move(name)),
      id_(g_next_monitor_id.fetch_add(1, std::memory_order_relaxed)),
      slow_poll_ns_(slow_poll.count()),
      long_delay_ns_(long_delay.count()),
      stall_ns_(stall.count()),
      clock_(std::move(clock)),
      on_finished_(std::move(on_finished)),
      created_(clock_ ? clock_() : clock_now()) {
  register_group(id_, name_);
}

MonitorCore::~MonitorCore() { unregister_group(id_); }

IntervalReader* MonitorCore::open_reader() {
  MutexLock lock(readers_mu_);
  readers_.push_back(std::make_unique<IntervalReader>());
  return readers_.back().get();
}

void MonitorCore::close_reader(IntervalReader* reader) noexcept {
  MutexLock lock(readers_mu_);
  auto it = std::find_if(readers_.begin(), readers_.end(),
                         [reader](const auto& r) { return r.get() == reader; });
  if (it != readers_.end()) readers_.erase(it);
}

std::chrono::nanoseconds MonitorCore::take_idle_max(IntervalReader* reader) {
  MutexLock lock(readers_mu_);
  // Every open reader gets the maximum of the interval just ended: each
  // iterator's own interval is the run of these since its previous next().
  const std::uint64_t ended = slots_.collect_interval_max_idle();
  for (auto& r : readers_) r->max_idle_ns = std::max(r->max_idle_ns, ended);
  return std::chrono::nanoseconds(std::exchange(reader->max_idle_ns, 0));
}

TaskMetrics MonitorCore::cumulative() const {
  TaskMetrics m;
  slots_.sum_into(m);
  m.elapsed = std::chrono::nanoseconds(ns_between(created_, now()));
  return m;
}

// ---- TaskProbe -------------------------------------------------------------------

PendingHooks MonitorCore::reserve_probe() {
  const Instant at = now();  // an injected clock may throw: nothing is counted then
  ref();
  slots_.count_instrumented();
  return PendingHooks{this, at};
}

std::size_t MonitorCore::hooks_size() const noexcept { return sizeof(TaskProbe); }

TaskHooks* MonitorCore::build_hooks(void* where, Instant reserved_at,
                                    bool free_on_release) noexcept {
  static_assert(alignof(TaskProbe) <= alignof(std::max_align_t));
  return ::new (where) TaskProbe(this, reserved_at, free_on_release);  // adopts the reference
}

void MonitorCore::forget_hooks(Instant) noexcept {
  // Instrumented, never spawned: it still leaves the live count.
  slots_.count_dropped();
  unref();  // last: may delete this
}

PendingHooks reserve_task_probe(MonitorCore* core) { return core->reserve_probe(); }

TaskHooks* new_task_probe(MonitorCore* core) {
  PendingHooks p = core->reserve_probe();
  try {
    return build_hooks_alone(p);
  } catch (...) {
    core->forget_hooks(p.reserved_at);  // the reservation ends exactly once
    throw;
  }
}

namespace {

/// Several monitors' probes on one task: forwards every event to each, in
/// the order they were attached. Owns them; deletes itself at on_release.
class ProbeFanOut final : public TaskHooks {
 public:
  ProbeFanOut(TaskHooks* first, TaskHooks* second) {
    hooks_.reserve(2);
    hooks_.push_back(first);
    hooks_.push_back(second);
  }
  void add(TaskHooks* h) { hooks_.push_back(h); }
  [[nodiscard]] const TaskHooks* first() const noexcept { return hooks_.front(); }

  void on_spawn(const TaskInfo& info, Instant now) noexcept override {
    for (TaskHooks* h : hooks_) h->on_spawn(info, now);
  }
  void on_poll_start(const PollStart& poll) noexcept override {
    for (TaskHooks* h : hooks_) h->on_poll_start(poll);
  }
  void on_poll_end(Instant now, bool ready) noexcept override {
    for (TaskHooks* h : hooks_) h->on_poll_end(now, ready);
  }
  void on_drop(bool cancelled) noexcept override {
    for (TaskHooks* h : hooks_) h->on_drop(cancelled);
  }
  void on_release() noexcept override {
    for (TaskHooks* h : hooks_) h->on_release();
    delete this;
  }
  [[nodiscard]] std::string_view group_name() const noexcept override {
    return hooks_.front()->group_name();
  }
  [[nodiscard]] std::uint64_t group_id() const noexcept override {
    return hooks_.front()->group_id();
  }

 private:
  std::vector<TaskHooks*> hooks_;  // owned; the first names the task
};

}  // namespace

TaskHooks* add_probe(TaskHooks* existing, TaskHooks* added) {
  // Out of memory: both are released (the caller owns neither any more).
  try {
    if (auto* fan = dynamic_cast<ProbeFanOut*>(existing)) {
      fan->add(added);
      return fan;
    }
    return new ProbeFanOut(existing, added);
  } catch (...) {
    added->on_release();
    existing->on_release();
    throw;
  }
}

std::optional<PerTaskMetrics> probe_metrics(const TaskHooks* hooks) {
  if (const auto* fan = dynamic_cast<const ProbeFanOut*>(hooks)) hooks = fan->first();
  const auto* probe = dynamic_cast<const TaskProbe*>(hooks);
  if (probe == nullptr) return std::nullopt;
  return probe->metrics();
}

TaskProbe::TaskProbe(MonitorCore* core, Instant instrumented_at, bool owns_block) noexcept
    : core_(core), instrumented_at_(instrumented_at), owns_block_(owns_block) {}

TaskProbe::~TaskProbe() { core_->unref(); }

void TaskProbe::on_spawn(const TaskInfo& info, Instant) noexcept {
  location_ = info.location;
  located_.store(true, std::memory_order_release);
  id_.store(info.id, std::memory_order_relaxed);
}

void TaskProbe::on_poll_start(const PollStart& p) noexcept {
  // On the polling worker: every figure goes to its slot.
  MonitorSlot* s = core_->slots_.at(p.worker_slot);
  poll_slot_ = s;
  if (p.wake == WakeKind::kFirstPoll) {
    // instrument() → first poll (the task was not woken: it was new).
    const std::int64_t d = ns_between(instrumented_at_, p.now);
    first_poll_delay_ns_.set(d);
    if (s != nullptr) {
      s->first_polls.add(1);
      s->first_poll_ns.add(u(d));
    }
  } else {
    if (s != nullptr) {
      s->wakes.add(1);
      if (p.self_wake) s->self_wakes.add(1);
    }
    if (p.wake == WakeKind::kFromIdle) {
      // Idle from the end of the last poll until the wake.
      const std::int64_t idle = ns_between(last_poll_end_, p.woken_at);
      idle_ns_.add(idle);
      if (s != nullptr) {
        s->idled.add(1);
        s->idle_ns.add(u(idle));
        s->max_idle_ns.max(u(idle));
        s->interval_max_idle.record(u(idle));
        s->idle_range.record(s->idle_hist, Histogram::bucket_for(idle));
      }
    }
    // Scheduled from the wake (or the previous poll's end) until now.
    const std::int64_t d = ns_between(p.woken_at, p.now);
    scheduled_ns_.add(d);
    if (s != nullptr) {
      if (d >= core_->long_delay_ns_) {
        s->long_delays.add(1);
        s->long_delay_ns.add(u(d));
        if (p.recorder != nullptr) {
          // Who held this worker meanwhile: only on long delays (a walk
          // back through the worker's flight recorder).
          SlotBlameSink sink(s->blame);
          attribute_delay(p, sink);
        }
      } else {
        s->short_delays.add(1);
        s->short_delay_ns.add(u(d));
      }
      s->sched_range.record(s->sched_hist, Histogram::bucket_for(d));
    }
  }
  poll_start_ = p.now;
}

void TaskProbe::on_poll_end(Instant now, bool) noexcept {
  MonitorSlot* s = poll_slot_;  // same thread as on_poll_start
  const std::int64_t d = ns_between(poll_start_, now);
  polls_.add(1);
  busy_ns_.add(d);
  if (d > longest_poll_ns_.get()) longest_poll_ns_.set(d);
  if (s != nullptr) {
    if (d >= core_->stall_ns_) s->never_yielded.add(1);
    if (d >= core_->slow_poll_ns_) {
      s->slow_polls.add(1);
      s->slow_poll_ns.add(u(d));
    } else {
      s->fast_polls.add(1);
      s->fast_poll_ns.add(u(d));
    }
    s->poll_range.record(s->poll_hist, Histogram::bucket_for(d));
  }
  last_poll_end_ = now;
}

void TaskProbe::on_drop(bool cancelled) noexcept {
  dropped_ = true;
  core_->slots_.count_dropped();
  finished_.store(cancelled ? 2 : 1, std::memory_order_release);
  if (core_->on_finished_) {
    try {
      core_->on_finished_(metrics());
    } catch (...) {
      // A throwing callback must not take a worker down; the figures are lost.
    }
  }
}

void TaskProbe::on_release() noexcept {
  // Instrumented but never spawned (the HookedTask was dropped, or the spawn
  // was refused before the runtime saw it): it still leaves the live count.
  if (!dropped_) {
    core_->slots_.count_dropped();
    finished_.store(2, std::memory_order_release);
  }
  const bool owns_block = owns_block_;
  this->~TaskProbe();  // gives back the monitor reference
  if (owns_block) task_free(this, sizeof(TaskProbe));
}

PerTaskMetrics TaskProbe::metrics() const {
  PerTaskMetrics m;
  m.id = id_.load(std::memory_order_relaxed);
  m.monitor = core_->name_;
  if (located_.load(std::memory_order_acquire)) m.location = location_;
  m.polls = static_cast<std::uint64_t>(polls_.get());
  m.busy = std::chrono::nanoseconds(busy_ns_.get());
  m.scheduled = std::chrono::nanoseconds(scheduled_ns_.get());
  m.idle = std::chrono::nanoseconds(idle_ns_.get());
  m.first_poll_delay = std::chrono::nanoseconds(first_poll_delay_ns_.get());
  m.longest_poll = std::chrono::nanoseconds(longest_poll_ns_.get());
  const int f = finished_.load(std::memory_order_acquire);
  m.finished = f != 0;
  m.cancelled = f == 2;
  return m;
}

}  // namespace detail

// ---- TaskMonitor -----------------------------------------------------------------

TaskMonitor::TaskMonitor() : TaskMonitor(Builder().build()) {}
TaskMonitor::TaskMonitor(const TaskMonitor& other) noexcept : core_(other.core_) { core_->ref(); }
TaskMonitor::TaskMonitor(TaskMonitor&& other) noexcept : core_(other.core_) { core_->ref(); }
TaskMonitor& TaskMonitor::operator=(TaskMonitor other) noexcept {
  std::swap(core_, other.core_);
  return *this;
}
TaskMonitor::~TaskMonitor() { core_->unref(); }

TaskMetrics TaskMonitor::cumulative() const { return core_->cumulative(); }

TaskIntervals TaskMonitor::intervals() const {
  TaskMetrics zero;
  return TaskIntervals(core_, zero);
}

const std::string& TaskMonitor::name() const noexcept { return core_->name_; }
std::chrono::nanoseconds TaskMonitor::slow_poll_threshold() const noexcept {
  return std::chrono::nanoseconds(core_->slow_poll_ns_);
}
std::chrono::nanoseconds TaskMonitor::long_delay_threshold() const noexcept {
  return std::chrono::nanoseconds(core_->long_delay_ns_);
}
std::chrono::nanoseconds TaskMonitor::stall_threshold() const noexcept {
  return std::chrono::nanoseconds(core_->stall_ns_);
}
std::uint64_t TaskMonitor::id() const noexcept { return core_->id_; }
std::uint64_t TaskMonitor::live_tasks() const {
  TaskMetrics m = cumulative();
  return m.instrumented_count - std::min(m.instrumented_count, m.dropped_count);
}

// ---- Builder ---------------------------------------------------------------------

TaskMonitor::Builder::Builder() = default;
TaskMonitor::Builder& TaskMonitor::Builder::name(std::string name) {
  name_ = std::move(name);
  return *this;
}
TaskMonitor::Builder& TaskMonitor::Builder::slow_poll_threshold(std::chrono::nanoseconds d) {
  slow_poll_ = d;
  return *this;
}
TaskMonitor::Builder& TaskMonitor::Builder::long_delay_threshold(std::chrono::nanoseconds d) {
  long_delay_ = d;
  return *this;
}
TaskMonitor::Builder& TaskMonitor::Builder::stall_threshold(std::chrono::nanoseconds d) {
  stall_ = d;
  return *this;
}
TaskMonitor::Builder& TaskMonitor::Builder::clock(std::function<Instant()> now) {
  clock_ = std::move(now);
  return *this;
}
TaskMonitor::Builder& TaskMonitor::Builder::on_task_finished(
    std::function<void(const PerTaskMetrics&)> f) {
  on_finished_ = std::move(f);
  return *this;
}

TaskMonitor TaskMonitor::Builder::build() const {
  auto positive = [](const char* setting, std::chrono::nanoseconds d) {
    if (d.count() <= 0) {
      throw ConfigError(std::string("spindle: TaskMonitor::Builder: ") + setting + " = " +
                        std::to_string(d.count()) + " ns is out of range: must be positive");
    }
  };
  positive("slow_poll_threshold", slow_poll_);
  positive("long_delay_threshold", long_delay_);
  positive("stall_threshold", stall_);
  if (stall_ < slow_poll_) {
    // A poll that ran past the stall threshold would not be a slow poll:
    // never-yielded polls must be a subset of the slow ones.
    throw ConfigError(
        "spindle: TaskMonitor::Builder: stall_threshold = " + std::to_string(stall_.count()) +
        " ns is below slow_poll_threshold = " + std::to_string(slow_poll_.count()) +
        " ns: a stalled poll must also count as slow (raise stall_threshold or "
        "lower slow_poll_threshold)");
  }
  return TaskMonitor(
      new detail::MonitorCore(name_, slow_poll_, long_delay_, stall_, clock_, on_finished_));
}

// ---- TaskIntervals ---------------------------------------------------------------

TaskIntervals::TaskIntervals(detail::MonitorCore* core, TaskMetrics previous)
    : core_(core), reader_(core->open_reader()), previous_(std::move(previous)) {
  core_->ref();
}
TaskIntervals::TaskIntervals(TaskIntervals&& o) noexcept
    : core_(std::exchange(o.core_, nullptr)),
      reader_(std::exchange(o.reader_, nullptr)),
      previous_(std::move(o.previous_)),
      first_(o.first_) {}
TaskIntervals& TaskIntervals::operator=(TaskIntervals&& o) noexcept {
  if (this != &o) {
    release();
    core_ = std::exchange(o.core_, nullptr);
    reader_ = std::exchange(o.reader_, nullptr);
    previous_ = std::move(o.previous_);
    first_ = o.first_;
  }
  return *this;
}
TaskIntervals::~TaskIntervals() { release(); }

void TaskIntervals::release() noexcept {
  if (core_ == nullptr) return;
  core_->close_reader(std::exchange(reader_, nullptr));
  std::exchange(core_, nullptr)->unref();
}

TaskMetrics TaskIntervals::next() {
  if (core_ == nullptr) throw UsageError("spindle: TaskIntervals used after being moved from");
  const std::chrono::nanoseconds interval_max_idle = core_->take_idle_max(reader_);
  TaskMetrics cur = core_->cumulative();
  const TaskMetrics& p = previous_;
  TaskMetrics d;
  d.instrumented_count = cur.instrumented_count - p.instrumented_count;
  d.dropped_count = cur.dropped_count - p.dropped_count;
  d.first_poll_count = cur.first_poll_count - p.first_poll_count;
  d.total_first_poll_delay = cur.total_first_poll_delay - p.total_first_poll_delay;
  d.total_idled_count = cur.total_idled_count - p.total_idled_count;
  d.total_idle_duration = cur.total_idle_duration - p.total_idle_duration;
  d.total_scheduled_count = cur.total_scheduled_count - p.total_scheduled_count;
  d.total_scheduled_duration = cur.total_scheduled_duration - p.total_scheduled_duration;
  d.total_poll_count = cur.total_poll_count - p.total_poll_count;
  d.total_poll_duration = cur.total_poll_duration - p.total_poll_duration;
  d.total_fast_poll_count = cur.total_fast_poll_count - p.total_fast_poll_count;
  d.total_fast_poll_duration = cur.total_fast_poll_duration - p.total_fast_poll_duration;
  d.total_slow_poll_count = cur.total_slow_poll_count - p.total_slow_poll_count;
  d.total_slow_poll_duration = cur.total_slow_poll_duration - p.total_slow_poll_duration;
  d.total_short_delay_count = cur.total_short_delay_count - p.total_short_delay_count;
  d.total_short_delay_duration = cur.total_short_delay_duration - p.total_short_delay_duration;
  d.total_long_delay_count = cur.total_long_delay_count - p.total_long_delay_count;
  d.total_long_delay_duration = cur.total_long_delay_duration - p.total_long_delay_duration;
  d.total_wake_count = cur.total_wake_count - p.total_wake_count;
  d.total_self_wake_count = cur.total_self_wake_count - p.total_self_wake_count;
  d.total_never_yielded_count = cur.total_never_yielded_count - p.total_never_yielded_count;
  d.poll_duration_histogram = cur.poll_duration_histogram - p.poll_duration_histogram;
  d.scheduled_delay_histogram = cur.scheduled_delay_histogram - p.scheduled_delay_histogram;
  d.idle_duration_histogram = cur.idle_duration_histogram - p.idle_duration_histogram;
  d.elapsed = cur.elapsed - p.elapsed;
  {
    // Blame accrued in this interval, per culprit.
    std::map<std::string, std::uint64_t> delta;
    for (const DelayBlame& b : cur.delay_blame) delta[b.culprit] += detail::u(b.duration.count());
    for (const DelayBlame& b : p.delay_blame) {
      auto it = delta.find(b.culprit);
      if (it != delta.end()) it->second -= std::min(it->second, detail::u(b.duration.count()));
    }
    d.delay_blame = detail::sorted_blame(delta);
  }
  // The interval's longest idle, as measured: since the monitor's creation
  // the first time (the cumulative maximum), then the per-thread maxima
  // collected since this iterator's previous call.
  d.max_idle_duration = first_ ? cur.max_idle_duration : interval_max_idle;
  first_ = false;
  previous_ = std::move(cur);
  return d;
}

}  // namespace spindle
