// Internal: the list of every unfinished task of a runtime.
//
// Shutdown must destroy tasks that sit in no queue (idle, waiting for a wake
// that will never come), so the runtime keeps them all: an intrusive
// doubly-linked list through CellBase::owned_prev_/owned_next_, split into
// shards by task id so that workers completing tasks rarely share a lock.
// The list holds one reference on each task. Closing it (shutdown) makes
// bind() refuse new tasks, under the same locks that pop_any() drains with,
// so that no task slips in after the drain.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/detail/task_cell.hpp"

namespace spindle::detail {

class OwnedTasks {
 public:
  explicit OwnedTasks(std::size_t num_workers);

  /// Adds a new task (with its id already set) to the shard of `worker`
  /// (the spawning worker's index, so that its spawns and most of its
  /// completions take a lock no other worker uses), or to a shard chosen
  /// by id when spawned from outside (worker == SIZE_MAX). False when closed.
  bool bind(CellBase* task, std::size_t worker);
  /// Removes a task; false when it was not listed (already drained).
  bool remove(CellBase* task);
  /// Refuses later binds. Idempotent.
  void close();
  /// Removes and returns any listed task, or nullptr when empty.
  CellBase* pop_any();
  /// Calls `f(const CellBase*)` for every listed task, one shard at a time
  /// under its lock (tasks of that shard can neither finish nor be freed
  /// meanwhile). `f` must not call back into the runtime.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < num_shards_; ++i) {
      Shard& s = shards_[i];
      MutexLock lock(s.mu);
      for (const CellBase* t = s.head; t != nullptr; t = t->owned_next_) f(t);
    }
  }
  /// Tasks listed now (approximate while tasks come and go).
  [[nodiscard]] std::size_t live() const noexcept;

 private:
  struct alignas(128) Shard {
    Mutex mu;                                         // guards the list and closed
    CellBase* head SPINDLE_GUARDED_BY(mu) = nullptr;  // first listed task
    bool closed SPINDLE_GUARDED_BY(mu) = false;       // shutdown began
    std::atomic<std::size_t> count{0};                // listed tasks; written under mu
  };

  Shard& shard_for(const CellBase* task) noexcept { return shards_[task->owned_shard_]; }

  std::size_t num_shards_;           // a power of two
  std::unique_ptr<Shard[]> shards_;  // the lists
};

}  // namespace spindle::detail
