// Internal: the shared injection queue.
//
// Takes tasks spawned or woken from outside the workers, and the halves of
// local queues that overflowed. A mutex-protected intrusive FIFO (linked
// through CellBase::queue_next_), with an atomic length so that workers can
// see "empty" without taking the lock. Workers pull from it in batches.
// Closed at shutdown: a closed queue refuses pushes.
#pragma once

#include <atomic>
#include <cstddef>

#include "cell_fields.hpp"
#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/detail/task_cell.hpp"

namespace spindle::detail {

class InjectionQueue {
 public:
  /// Appends one task. False when closed (the caller keeps the task).
  bool push(CellBase* task) noexcept {
    task->sched().queue_next_ = nullptr;
    return push_batch(task, task, 1);
  }

  /// Appends the list first..last (linked by queue_next_, last's link null)
  /// of n tasks. False when closed (the caller keeps them).
  bool push_batch(CellBase* first, CellBase* last, std::size_t n) noexcept {
    MutexLock lock(mu_);
    if (closed_) return false;
    if (tail_ != nullptr) {
      tail_->sched().queue_next_ = first;
    } else {
      head_ = first;
    }
    tail_ = last;
    // seq_cst: pairs with the seq_cst read in Idle's "is there work?"
    // check by a worker going to sleep (see LocalQueue::push_back_or_overflow).
    len_.store(len_.load(std::memory_order_relaxed) + n, std::memory_order_seq_cst);
    return true;
  }

  /// Removes up to `max` tasks; returns the first, linked through queue_next_
  /// (the last link null), and sets `count`. nullptr when empty.
  CellBase* pop_batch(std::size_t max, std::size_t& count) noexcept {
    count = 0;
    if (max == 0 || is_empty()) return nullptr;
    MutexLock lock(mu_);
    CellBase* first = head_;
    CellBase* last = nullptr;
    CellBase* t = head_;
    while (t != nullptr && count < max) {
      last = t;
      t = t->sched().queue_next_;
      ++count;
    }
    if (last == nullptr) return nullptr;
    head_ = t;
    if (head_ == nullptr) tail_ = nullptr;
    last->sched().queue_next_ = nullptr;
    len_.store(len_.load(std::memory_order_relaxed) - count, std::memory_order_seq_cst);
    return first;
  }

  CellBase* pop() noexcept {
    std::size_t n = 0;
    return pop_batch(1, n);
  }

  [[nodiscard]] std::size_t len() const noexcept { return len_.load(std::memory_order_seq_cst); }
  [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }

  /// Refuses further pushes. Tasks already queued stay until popped.
  void close() noexcept {
    MutexLock lock(mu_);
    closed_ = true;
  }

 private:
  Mutex mu_;                                          // guards the list and closed_
  CellBase* head_ SPINDLE_GUARDED_BY(mu_) = nullptr;  // oldest task
  CellBase* tail_ SPINDLE_GUARDED_BY(mu_) = nullptr;  // newest task
  bool closed_ SPINDLE_GUARDED_BY(mu_) = false;       // shutdown began
  std::atomic<std::size_t> len_{0};  // tasks queued; written under mu_, read without it
};

}  // namespace spindle::detail
