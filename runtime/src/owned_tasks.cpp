// The owned-task lists; the protocol is described in owned_tasks.hpp.

#include "owned_tasks.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <thread>
#include <utility>

#include "cell_fields.hpp"
#include "scheduler.hpp"

namespace spindle::detail {

namespace {

/// The most a retired batch may hold (free_retired copies it to the stack).
constexpr std::uint32_t kMaxRetireBatch = 64;

/// Drops `n` references that cannot be the last (the list still holds one).
void drop_not_last(CellBase* task, std::uint64_t n) noexcept {
  if (n != 0 && task->ref_dec(n)) fatal("owned tasks: a listed task lost its list's reference");
}

}  // namespace

OwnedTasks::OwnedTasks(std::size_t num_workers, std::uint32_t retire_batch)
    : num_workers_(num_workers),
      retire_batch_(std::clamp<std::uint32_t>(retire_batch, 1, kMaxRetireBatch)),
      lists_(std::make_unique<WorkerList[]>(num_workers)),
      num_shards_(std::bit_ceil(std::max<std::size_t>(4, 2 * num_workers))),
      shards_(std::make_unique<Shard[]>(num_shards_)) {
  for (std::size_t i = 0; i < num_workers_; ++i) {
    lists_[i].retired = std::make_unique<Retired[]>(retire_batch_);
  }
}

// ---- bind ----------------------------------------------------------------------

bool OwnedTasks::bind(CellBase* task, std::size_t caller) {
  if (caller == kNotWorker) return bind_remote(task);
  // acquire: pairs with close(); a bind that misses it is drained anyway
  // (see the file comment, Shutdown).
  if (closed_.load(std::memory_order_acquire)) return false;
  WorkerList& l = lists_[caller];
  task->sched().owned_shard_ = static_cast<std::uint32_t>(caller);
  CellBase* head = l.head.load(std::memory_order_relaxed);  // only we write it
  task->sched().owned_prev_.store(nullptr, std::memory_order_relaxed);
  task->sched().owned_next_.store(head, std::memory_order_relaxed);
  if (head != nullptr) head->sched().owned_prev_.store(task, std::memory_order_relaxed);
  // release: a visitor that reads this head sees the cell's fields and its
  // owned_next_ (and, by program order, every older cell's).
  l.head.store(task, std::memory_order_release);
  l.bound.add();
  // A spawner in one long poll reaches no other maintenance point: take
  // back what other workers finished meanwhile, so their cells are reused.
  if (++l.since_maintain >= retire_batch_) maintain(caller);
  return true;
}

bool OwnedTasks::bind_remote(CellBase* task) {
  const std::size_t i = task->id_ & (num_shards_ - 1);
  task->sched().owned_shard_ = static_cast<std::uint32_t>(num_workers_ + i);
  Shard& s = shards_[i];
  MutexLock lock(s.mu);
  if (s.closed) return false;
  task->sched().owned_prev_.store(nullptr, std::memory_order_relaxed);
  task->sched().owned_next_.store(s.head, std::memory_order_relaxed);
  if (s.head != nullptr) s.head->sched().owned_prev_.store(task, std::memory_order_relaxed);
  s.head = task;
  s.count.store(s.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return true;
}

// ---- release -------------------------------------------------------------------

void OwnedTasks::release(CellBase* task, std::uint64_t refs, std::size_t caller) noexcept {
  const std::size_t home = task->sched().owned_shard_;
  if (home >= num_workers_) {
    release_remote(task, refs);
    return;
  }
  WorkerList& l = lists_[home];
  if (home == caller) {
    // 1. The owner: unlink now, release after a grace period.
    unlink(l, task);
    retire(l, task, refs + 1);
    return;
  }
  // 2. Elsewhere: hand the cell to its owner. After the CAS the cell is the
  // owner's (it may free it at once): nothing below touches it.
  drop_not_last(task, refs);
  CellBase* top = l.handoff.load(std::memory_order_relaxed);
  do {
    task->sched().queue_next_ = top;
    // release: the owner's exchange (acquire) sees queue_next_ and
    // everything the completion wrote.
  } while (!l.handoff.compare_exchange_weak(top, task, std::memory_order_release,
                                            std::memory_order_relaxed));
}

void OwnedTasks::release_remote(CellBase* task, std::uint64_t refs) noexcept {
  Shard& s = shards_[task->sched().owned_shard_ - num_workers_];
  bool listed = false;
  {
    MutexLock lock(s.mu);
    CellBase* prev = task->sched().owned_prev_.load(std::memory_order_relaxed);
    CellBase* next = task->sched().owned_next_.load(std::memory_order_relaxed);
    // Neither linked nor the head: pop_any() drained it already (a
    // spawn_blocking job that shutdown abandoned, finishing late).
    if (prev != nullptr || s.head == task) {
      listed = true;
      if (prev != nullptr) {
        prev->sched().owned_next_.store(next, std::memory_order_relaxed);
      } else {
        s.head = next;
      }
      if (next != nullptr) next->sched().owned_prev_.store(prev, std::memory_order_relaxed);
      task->sched().owned_prev_.store(nullptr, std::memory_order_relaxed);
      task->sched().owned_next_.store(nullptr, std::memory_order_relaxed);
      s.count.store(s.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    }
  }
  // 4. Visitors of a shard hold its Mutex: the cell may go at once.
  refs += listed ? 1 : 0;
  if (refs != 0 && task->ref_dec(refs)) Core::dealloc(task);
}

// ---- the owner's side of a worker list ---------------------------------------------

void OwnedTasks::unlink(WorkerList& l, CellBase* task) noexcept {
  // Only the owner writes the links: relaxed loads of our own stores.
  CellBase* prev = task->sched().owned_prev_.load(std::memory_order_relaxed);
  CellBase* next = task->sched().owned_next_.load(std::memory_order_relaxed);
  // release: a visitor that follows the new link sees `next`'s fields.
  if (prev != nullptr) {
    prev->sched().owned_next_.store(next, std::memory_order_release);
  } else {
    l.head.store(next, std::memory_order_release);
  }
  if (next != nullptr) next->sched().owned_prev_.store(prev, std::memory_order_relaxed);
  // task's own owned_next_ stays: a visitor standing on it walks on.
  l.unlinked.add();
}

void OwnedTasks::retire(WorkerList& l, CellBase* task, std::uint64_t refs) noexcept {
  if (l.num_retired == retire_batch_ && !try_free_retired(l)) {
    // A visitor is walking this list and the batch is full: keep only the
    // list's reference pending, on the overflow chain.
    drop_not_last(task, refs - 1);
    task->sched().queue_next_ = l.overflow;
    l.overflow = task;
    return;
  }
  l.retired[l.num_retired++] = Retired{task, refs};
  if (l.num_retired == retire_batch_) (void)try_free_retired(l);
}

void OwnedTasks::drain_handoffs(WorkerList& l) noexcept {
  // A plain load first: no read-modify-write when nothing was handed over.
  if (l.handoff.load(std::memory_order_relaxed) == nullptr) return;
  // acquire: pairs with the completers' release CAS.
  CellBase* t = l.handoff.exchange(nullptr, std::memory_order_acquire);
  while (t != nullptr) {
    CellBase* next = t->sched().queue_next_;  // before retire() may reuse the link
    unlink(l, t);
    retire(l, t, 1);  // the completer dropped its own references
    t = next;
  }
}

void OwnedTasks::maintain(std::size_t worker) noexcept {
  WorkerList& l = lists_[worker];
  l.since_maintain = 0;
  drain_handoffs(l);
  if (l.num_retired != 0 || l.overflow != nullptr) (void)try_free_retired(l);
}

bool OwnedTasks::grace_period(const WorkerList& l) noexcept {
  // acq_rel RMW, so that it sits in the visitor count's modification order
  // (see the file comment, 3); a plain load would not order our unlinks
  // before a later visitor's walk.
  return l.visitors.fetch_add(0, std::memory_order_acq_rel) == 0;
}

bool OwnedTasks::try_free_retired(WorkerList& l) noexcept {
  if (!grace_period(l)) return false;
  free_retired(l);
  return true;
}

void OwnedTasks::free_retired_now(WorkerList& l) noexcept {
  while (!grace_period(l)) std::this_thread::yield();  // a dump is walking: it ends
  free_retired(l);
}

void OwnedTasks::free_retired(WorkerList& l) noexcept {
  // Take the batch out before releasing any of it: a release runs the
  // task's on_release hook, which may spawn or finish tasks here again.
  std::array<Retired, kMaxRetireBatch> batch;
  const std::uint32_t n = std::exchange(l.num_retired, 0);
  std::copy_n(l.retired.get(), n, batch.begin());
  CellBase* over = std::exchange(l.overflow, nullptr);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (batch[i].task->ref_dec(batch[i].refs)) Core::dealloc(batch[i].task);
  }
  while (over != nullptr) {
    CellBase* next = over->sched().queue_next_;
    if (over->ref_dec(1)) Core::dealloc(over);
    over = next;
  }
}

// ---- shutdown ------------------------------------------------------------------

void OwnedTasks::close() noexcept {
  closed_.store(true, std::memory_order_release);
  for (std::size_t i = 0; i < num_shards_; ++i) {
    MutexLock lock(shards_[i].mu);
    shards_[i].closed = true;
  }
}

void OwnedTasks::quiesce() noexcept {
  for (std::size_t i = 0; i < num_workers_; ++i) {
    drain_handoffs(lists_[i]);
    free_retired_now(lists_[i]);
  }
}

CellBase* OwnedTasks::pop_any() noexcept {
  for (std::size_t i = 0; i < num_workers_; ++i) {
    WorkerList& l = lists_[i];
    CellBase* task = l.head.load(std::memory_order_relaxed);
    if (task == nullptr) continue;
    unlink(l, task);
    // The caller frees it: first let every visitor that may stand on it go.
    while (!grace_period(l)) std::this_thread::yield();
    return task;
  }
  for (std::size_t i = 0; i < num_shards_; ++i) {
    Shard& s = shards_[i];
    MutexLock lock(s.mu);
    CellBase* task = s.head;
    if (task == nullptr) continue;
    s.head = task->sched().owned_next_.load(std::memory_order_relaxed);
    if (s.head != nullptr) s.head->sched().owned_prev_.store(nullptr, std::memory_order_relaxed);
    task->sched().owned_prev_.store(nullptr, std::memory_order_relaxed);
    task->sched().owned_next_.store(nullptr, std::memory_order_relaxed);
    s.count.store(s.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return task;
  }
  return nullptr;
}

std::size_t OwnedTasks::live() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < num_workers_; ++i) {
    // Read unlinked first: a task unlinked after that read is still in bound.
    const std::uint64_t gone = lists_[i].unlinked.get();
    const std::uint64_t in = lists_[i].bound.get();
    n += static_cast<std::size_t>(in > gone ? in - gone : 0);
  }
  for (std::size_t i = 0; i < num_shards_; ++i)
    n += shards_[i].count.load(std::memory_order_relaxed);
  return n;
}

}  // namespace spindle::detail
