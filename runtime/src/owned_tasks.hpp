// Internal: the list of every unfinished task of a runtime.
//
//   OwnedTasks   every bound task: one list per worker, owned by that worker,
//                plus a few mutex-guarded remote shards
//
// Shutdown must destroy tasks that sit in no queue (idle, waiting for a wake
// that will never come), so the runtime keeps them all, in intrusive
// doubly-linked lists through CellBase::owned_prev_/owned_next_. The list
// holds one reference on each task until the task has left it.
//
// ## Where a task is listed (CellBase::owned_shard_, fixed at bind)
//   - Spawned on worker w (the spawning thread runs w): w's own list. Only
//     w links and unlinks it (w's thread, or the thread driving a
//     current_thread runtime's worker 0, serialized by Core::drive_mu_; once
//     the owners have stopped, the shutdown thread). No lock.
//   - Spawned from anywhere else (a foreign thread, the blocking pool, a
//     spawn_blocking job, another runtime's worker): a remote shard chosen by
//     task id, guarded by its Mutex, exactly as the whole list used to be.
//
// ## Completion (release)
//   1. On the owner (the common case: spawned and finished on the same
//      worker): unlinked at once, no lock; the references the completer
//      holds and the list's go into the owner's retired batch (see 3).
//   2. On another worker (the task was stolen, or went through the
//      injection queue): the completer drops its own references (never the
//      last: the list still holds one) and pushes the cell onto the owner's
//      hand-off stack, a Treiber stack through CellBase::queue_next_ (a
//      completed cell is in no run queue: it was dequeued to be polled, and
//      a completed task is never queued again). One CAS; nothing of the
//      owner's list is touched. The owner pops the whole stack at once
//      (exchange: no ABA), unlinks each cell and retires it with the list's
//      reference. The owner drains it every kRetireBatch binds, whenever a
//      batch fills, every event_interval polls (Worker::maintenance), before
//      it parks and at each wake-up while parked (at least every 20 ms on a
//      runtime of several workers), and at the end of Worker::run.
//   3. A retired cell is unlinked but not yet released, because a dump
//      (for_each) that started before the unlink may still hold a pointer
//      to it. The owner releases its batch after a grace period: an acq_rel
//      read-modify-write of the list's visitor count that reads 0. A visitor
//      increments that count (acq_rel) before it reads the head and
//      decrements it (release) after its last read. The count's
//      modification order decides: if the owner's RMW comes first, the
//      visitor's increment synchronizes with it and the visitor sees every
//      unlink made before (it cannot reach the retired cells); if the
//      visitor's increment comes first, the owner reads 0 only after the
//      visitor's decrement, whose release orders all the visitor's reads of
//      those cells before the owner frees them. While visitors remain the
//      batch is kept, and when it is full further retirements wait on an
//      overflow chain (queue_next_ again), with only the list's reference
//      left to drop. One RMW per batch, no lock.
//   4. A remote-shard task is unlinked under its shard's Mutex by whoever
//      completes it, and released at once (nothing defers it: the visitor
//      of a shard holds that Mutex).
//
// ## Dumps (for_each, any thread)
// A visitor walks each worker list from its head through owned_next_ with
// acquire loads, while the owner may link and unlink concurrently: links
// are atomics, every store of one is a release, and owned_next_ only ever
// points to a task bound earlier (a bind pushes at the head; an unlink
// makes the predecessor point past the unlinked one), so the walk ends and
// visits each task at most once; the cells it reaches were initialized
// before the head store that published them. An unlinked cell keeps its
// owned_next_ until it is freed, and is not freed during the visit (3), so
// a walk that stands on it goes on. It sees every task listed for the
// whole walk, and maybe some that come and go meanwhile; cells already
// COMPLETE are skipped. Remote shards are walked under their Mutex.
//
// ## Shutdown
// close() makes bind() refuse: remote shards under their Mutex (as before,
// so that no remote bind slips in after the drain); worker lists through an
// atomic flag. A worker bind that races with close() may still succeed:
// it happens on a worker thread before that thread is joined (shutdown
// step 3), so step 4's drain, which comes after the join, sees it. After
// the owners have stopped, quiesce() drains every hand-off stack and
// releases every retired batch, and pop_any() unlinks the remaining tasks
// one by one, waiting out the visitors of a worker list (3) before handing
// a cell over, so that the caller may free it.
//
// Thread safety: bind(), release() and for_each() from any thread, with the
// `caller` rules above; maintain() only by the owner of that list;
// quiesce() and pop_any() only once every owner has stopped; close() and
// live() from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "cell_fields.hpp"
#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/detail/relaxed_counter.hpp"
#include "spindle/runtime/detail/task_cell.hpp"

namespace spindle::detail {

class OwnedTasks {
 public:
  /// `caller` value of a thread that runs none of this runtime's workers.
  static constexpr std::size_t kNotWorker = SIZE_MAX;
  /// Default retired-batch size (a test knob: the constructor takes another).
  static constexpr std::uint32_t kRetireBatch = 32;

  explicit OwnedTasks(std::size_t num_workers, std::uint32_t retire_batch = kRetireBatch);
  OwnedTasks(const OwnedTasks&) = delete;
  OwnedTasks& operator=(const OwnedTasks&) = delete;

  /// Lists a new task (its id already set). `caller`: the index of the
  /// worker the calling thread runs (the task joins that worker's list, no
  /// lock), or kNotWorker (a remote shard, under its Mutex). False when
  /// closed (the task is not listed).
  bool bind(CellBase* task, std::size_t caller);
  /// A task completed (COMPLETE is published): takes it off the list and
  /// drops `refs` references the caller holds plus the list's, maybe later
  /// (see the file comment); frees the cell with the last one. `caller` as
  /// for bind(). Never blocks, except on a remote shard's Mutex.
  void release(CellBase* task, std::uint64_t refs, std::size_t caller) noexcept;
  /// Owner of worker list `worker` only: unlinks the tasks that other
  /// workers completed, and frees retired cells when no visitor is around.
  void maintain(std::size_t worker) noexcept;
  /// Refuses later binds. Idempotent.
  void close() noexcept;
  /// Shutdown, once every owner has stopped: drains the hand-off stacks
  /// and frees every retired cell (waits for visitors of those lists).
  void quiesce() noexcept;
  /// Shutdown, after quiesce(): unlinks and returns any listed task, whose
  /// list reference passes to the caller (no visitor can reach it any
  /// more), or nullptr when empty.
  CellBase* pop_any() noexcept;
  /// Calls `f(const CellBase*)` for every listed task that is not
  /// COMPLETE. A visited cell is not freed during the call; it may
  /// complete meanwhile. `f` must not call back into the runtime. Blocks on
  /// each remote shard's Mutex in turn, never on a worker.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < num_workers_; ++i) {
      const WorkerList& l = lists_[i];
      Visit visit(l);  // `f` may throw (a dump allocates): the count must still go down
      for (const CellBase* t = l.head.load(std::memory_order_acquire); t != nullptr;
           t = t->sched().owned_next_.load(std::memory_order_acquire)) {
        if (!is_complete(t)) f(t);
      }
    }
    for (std::size_t i = 0; i < num_shards_; ++i) {
      Shard& s = shards_[i];
      MutexLock lock(s.mu);
      for (const CellBase* t = s.head; t != nullptr;
           t = t->sched().owned_next_.load(std::memory_order_relaxed)) {
        if (!is_complete(t)) f(t);
      }
    }
  }
  /// Tasks listed now, including completed ones whose hand-off the owner
  /// has not drained yet (approximate while tasks come and go).
  [[nodiscard]] std::size_t live() const noexcept;

 private:
  /// A retired cell and the references to drop with it.
  struct Retired {
    CellBase* task;      // unlinked, not yet released
    std::uint64_t refs;  // references to drop (the list's and the completer's)
  };

  /// One worker's list. The first cache lines are the owner's; the
  /// hand-off stack, written by other workers, has its own.
  struct alignas(128) WorkerList {
    std::atomic<CellBase*> head{nullptr};  // newest bound task; owner writes, visitors read
    mutable std::atomic<std::uint32_t> visitors{0};  // for_each calls walking this list now
    std::uint32_t since_maintain = 0;                // binds since the last maintain (owner)
    RelaxedCounter bound;                            // tasks ever linked (owner writes)
    RelaxedCounter unlinked;                         // tasks ever unlinked (owner writes)
    std::uint32_t num_retired = 0;                   // entries used in retired (owner)
    CellBase* overflow = nullptr;        // retired past a full batch, one reference each,
                                         //   linked through queue_next_ (owner)
    std::unique_ptr<Retired[]> retired;  // unlinked cells awaiting a grace period (owner)
    alignas(128) std::atomic<CellBase*> handoff{nullptr};  // completed elsewhere, via queue_next_
  };

  /// A remote shard: tasks bound outside the workers.
  struct alignas(128) Shard {
    Mutex mu;                                         // guards the list and closed
    CellBase* head SPINDLE_GUARDED_BY(mu) = nullptr;  // first listed task
    bool closed SPINDLE_GUARDED_BY(mu) = false;       // shutdown began
    std::atomic<std::size_t> count{0};                // listed tasks; written under mu
  };

  /// A visitor's presence on one worker list, for the length of a walk.
  class Visit {
   public:
    explicit Visit(const WorkerList& l) noexcept : l_(l) {
      // acq_rel: see the file comment, 3 (a visitor's increment).
      l_.visitors.fetch_add(1, std::memory_order_acq_rel);
    }
    ~Visit() {
      // release: our reads of the cells happen-before a free that reads 0.
      l_.visitors.fetch_sub(1, std::memory_order_release);
    }
    Visit(const Visit&) = delete;
    Visit& operator=(const Visit&) = delete;

   private:
    const WorkerList& l_;  // the list being walked
  };

  static bool is_complete(const CellBase* t) noexcept {
    return (t->state_.load(std::memory_order_acquire) & kComplete) != 0;
  }

  // Worker lists, owner side.
  static void unlink(WorkerList& l, CellBase* task) noexcept;
  void retire(WorkerList& l, CellBase* task, std::uint64_t refs) noexcept;
  void drain_handoffs(WorkerList& l) noexcept;
  /// Frees the retired cells if no visitor can hold one; false if one may.
  bool try_free_retired(WorkerList& l) noexcept;
  /// Frees the retired cells, waiting for visitors (shutdown).
  void free_retired_now(WorkerList& l) noexcept;
  void free_retired(WorkerList& l) noexcept;
  /// One acq_rel RMW of the visitor count; true when it read 0.
  static bool grace_period(const WorkerList& l) noexcept;

  // Remote shards.
  bool bind_remote(CellBase* task);
  void release_remote(CellBase* task, std::uint64_t refs) noexcept;

  const std::size_t num_workers_;        // worker lists; owned_shard_ below this names one
  const std::uint32_t retire_batch_;     // capacity of each retired batch
  std::atomic<bool> closed_{false};      // worker lists refuse binds (remote: Shard::closed)
  std::unique_ptr<WorkerList[]> lists_;  // one per worker
  std::size_t num_shards_;               // remote shards, a power of two
  std::unique_ptr<Shard[]> shards_;      // owned_shard_ - num_workers_ names one
};

}  // namespace spindle::detail
