// Internal: a worker's bounded local run queue, with steal-half.
//
// One owner thread pushes at the tail and pops at the head; any other worker
// may steal half of the queued tasks, also from the head. The algorithm is
// tokio's (scheduler/multi_thread/queue.rs), written anew:
//
//   tail_  u32, written only by the owner.
//   head_  u64 packing two u32 indices, (steal << 32) | real:
//            real   the next task the owner pops;
//            steal  the start of a range a stealer is still copying out.
//          When no steal is in progress, steal == real. A stealer claims
//          [real, real + n) by advancing `real` alone, copies the tasks out,
//          then sets steal = real to release the slots. Only one steal runs
//          at a time (a stealer backs off when steal != real).
//   The owner may reuse a slot only once `steal` has moved past it, so the
//   queue is full when tail - steal == capacity.
//
// Indices are free-running u32 and wrap around; slot = index & mask. Tests
// start the indices just below 2^32 to exercise the wrap.
//
// When the owner pushes into a full queue it moves half of the queue (plus
// the new task) to the shared injection queue in one batch (an "overflow");
// if a steal is in progress at that moment it sends just the new task.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "cell_fields.hpp"
#include "injection_queue.hpp"
#include "spindle/runtime/detail/task_cell.hpp"

namespace spindle::detail {

class LocalQueue {
 public:
  /// `capacity` must be a power of two >= 2 (checked by the Builder).
  /// `initial_index` positions the indices (tests use values near 2^32).
  explicit LocalQueue(std::uint32_t capacity, std::uint32_t initial_index = 0)
      : capacity_(capacity),
        mask_(capacity - 1),
        buffer_(std::make_unique<std::atomic<CellBase*>[]>(capacity)),
        head_(pack(initial_index, initial_index)),
        tail_(initial_index) {}

  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;

  [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }

  /// Number of queued tasks (exact for the owner, approximate for others).
  [[nodiscard]] std::uint32_t len() const noexcept {
    auto [steal, real] = unpack(head_.load(std::memory_order_acquire));
    (void)steal;
    return tail_.load(std::memory_order_acquire) - real;
  }
  [[nodiscard]] bool is_empty() const noexcept { return len() == 0; }

  /// Owner only: slots available for push_back without overflowing.
  [[nodiscard]] std::uint32_t remaining_slots() const noexcept {
    auto [steal, real] = unpack(head_.load(std::memory_order_acquire));
    (void)real;
    return capacity_ - (tail_.load(std::memory_order_relaxed) - steal);
  }

  /// Owner only: pushes `task`; when the queue is full, moves half of it and
  /// `task` to `inject` instead. Returns true when that overflow happened.
  /// If the injection queue is closed (shutdown), the tasks it refused are
  /// handed to `on_refused` (which drops their scheduler reference).
  template <class OnRefused>
  bool push_back_or_overflow(CellBase* task, InjectionQueue& inject, OnRefused&& on_refused) {
    std::uint32_t tail = 0;
    for (;;) {
      // acquire: a stealer's release of its range (the CAS that sets
      // steal = real) happens-before we overwrite those slots.
      std::uint64_t head = head_.load(std::memory_order_acquire);
      auto [steal, real] = unpack(head);
      tail = tail_.load(std::memory_order_relaxed);  // we are the only writer
      if (tail - steal < capacity_) break;           // room: plain push
      if (steal != real) {
        // Full and a stealer is copying: it will free room soon, but we
        // cannot move half now. Send just this task to the injection queue.
        if (!inject.push(task)) on_refused(task);
        return false;
      }
      if (push_overflow(task, real, tail, inject, on_refused)) return true;
      // A stealer took tasks meanwhile; there may be room now. Retry.
    }
    buffer_[tail & mask_].store(task, std::memory_order_relaxed);
    // release: publishes the slot to stealers (their acquire load of tail).
    // Not seq_cst: a lost "wake a sleeper" race on a local push costs only
    // parallelism, never progress — the owner runs its own queue before it
    // ever parks. (Pushes from outside the workers go through the injection
    // queue, whose store is seq_cst against the sleeper's check.)
    tail_.store(tail + 1, std::memory_order_release);
    return false;
  }

  /// Owner only: pushes when there is room (callers checked remaining_slots()).
  void push_back_unchecked(CellBase* task) noexcept {
    std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    buffer_[tail & mask_].store(task, std::memory_order_relaxed);
    tail_.store(tail + 1, std::memory_order_release);  // see push_back_or_overflow
  }

  /// Owner only: pops the oldest task, or nullptr.
  CellBase* pop() noexcept {
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      auto [steal, real] = unpack(head);
      std::uint32_t tail = tail_.load(std::memory_order_relaxed);
      if (real == tail) return nullptr;
      std::uint32_t next_real = real + 1;
      // With no steal in progress both halves advance together; otherwise
      // leave `steal` for the stealer to release.
      std::uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
      // acq_rel: the claim of slot `real` must be ordered against stealers'
      // claims of the same index (one of the CASes fails).
      if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return buffer_[real & mask_].load(std::memory_order_relaxed);
      }
    }
  }

  /// Called by `dst`'s owner: steals half of this queue's tasks into `dst`
  /// and returns one of them to run now (nullptr when nothing was stolen).
  /// `stolen` receives the number of tasks taken.
  CellBase* steal_into(LocalQueue& dst, std::uint32_t& stolen) noexcept {
    stolen = 0;
    std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);  // dst's owner is us
    auto [dst_steal, dst_real] = unpack(dst.head_.load(std::memory_order_acquire));
    (void)dst_real;
    // Only steal when we can take half of a full queue.
    if (dst_tail - dst_steal > dst.capacity_ / 2) return nullptr;

    std::uint32_t n = steal_half_into(dst, dst_tail);
    if (n == 0) return nullptr;
    stolen = n;
    // Run the last stolen task ourselves; publish the rest.
    --n;
    CellBase* ret = dst.buffer_[(dst_tail + n) & dst.mask_].load(std::memory_order_relaxed);
    if (n != 0) dst.tail_.store(dst_tail + n, std::memory_order_release);
    return ret;
  }

 private:
  static constexpr std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (std::uint64_t{steal} << 32) | real;
  }
  struct Indices {
    std::uint32_t steal;
    std::uint32_t real;
  };
  static constexpr Indices unpack(std::uint64_t v) noexcept {
    return {static_cast<std::uint32_t>(v >> 32), static_cast<std::uint32_t>(v)};
  }

  template <class OnRefused>
  bool push_overflow(CellBase* task, std::uint32_t head, std::uint32_t tail, InjectionQueue& inject,
                     OnRefused& on_refused) {
    const std::uint32_t n = capacity_ / 2;
    (void)tail;
    std::uint64_t prev = pack(head, head);
    // Claim the oldest half. acq_rel: orders against a stealer's claim of
    // the same indices (exactly one CAS wins).
    if (!head_.compare_exchange_strong(prev, pack(head + n, head + n), std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      return false;
    }
    // Link the claimed tasks and `task` into one list (the slots are ours).
    CellBase* first = buffer_[head & mask_].load(std::memory_order_relaxed);
    CellBase* last = first;
    for (std::uint32_t i = 1; i < n; ++i) {
      CellBase* t = buffer_[(head + i) & mask_].load(std::memory_order_relaxed);
      last->sched().queue_next_ = t;
      last = t;
    }
    last->sched().queue_next_ = task;
    task->sched().queue_next_ = nullptr;
    if (!inject.push_batch(first, task, n + 1)) {
      for (CellBase* t = first; t != nullptr;) {
        CellBase* next = t->sched().queue_next_;
        on_refused(t);
        t = next;
      }
    }
    return true;
  }

  /// Claims and copies half of this queue into dst's slots starting at
  /// dst_tail; returns how many (0 when empty or another steal is running).
  std::uint32_t steal_half_into(LocalQueue& dst, std::uint32_t dst_tail) noexcept {
    std::uint64_t prev = head_.load(std::memory_order_acquire);
    std::uint32_t first = 0;
    std::uint32_t n = 0;
    std::uint64_t next = 0;
    for (;;) {
      auto [steal, real] = unpack(prev);
      if (steal != real) return 0;  // another stealer is copying
      // acquire: pairs with the owner's tail store, making the slots' contents visible.
      std::uint32_t tail = tail_.load(std::memory_order_acquire);
      n = tail - real;
      n -= n / 2;  // half, rounded up
      if (n == 0) return 0;
      if (n > dst.capacity_ / 2) n = dst.capacity_ / 2;
      first = real;
      next = pack(steal, real + n);
      // acq_rel: the claim is ordered against the owner's pops and overflow.
      if (head_.compare_exchange_weak(prev, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        break;
      }
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      CellBase* t = buffer_[(first + i) & mask_].load(std::memory_order_relaxed);
      dst.buffer_[(dst_tail + i) & dst.mask_].store(t, std::memory_order_relaxed);
    }
    // Release the range: steal catches up with real. The owner may have
    // popped meanwhile (moving real), so retry with the value we see.
    prev = next;
    for (;;) {
      auto [steal, real] = unpack(prev);
      (void)steal;
      // release: our reads of the slots happen-before the owner reuses them.
      if (head_.compare_exchange_weak(prev, pack(real, real), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return n;
      }
    }
  }

  const std::uint32_t capacity_;                      // number of slots, a power of two
  const std::uint32_t mask_;                          // capacity_ - 1
  std::unique_ptr<std::atomic<CellBase*>[]> buffer_;  // the ring of slots
  alignas(64) std::atomic<std::uint64_t> head_;       // (steal << 32) | real, see file comment
  alignas(64) std::atomic<std::uint32_t> tail_;       // next slot to push; owner writes
};

}  // namespace spindle::detail
