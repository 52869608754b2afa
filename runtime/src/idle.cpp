#include "idle.hpp"

#include <algorithm>

namespace spindle::detail {

Idle::Idle(std::size_t num_workers)
    : num_workers_(num_workers),
      state_(static_cast<std::uint32_t>(num_workers) << kUnparkedShift),
      parked_(std::make_unique<ParkedFlag[]>(num_workers)) {
  sleepers_.reserve(num_workers);
}

std::optional<std::size_t> Idle::worker_to_notify_slow() {
  MutexLock lock(mu_);
  // Re-check under the lock: another notifier may have won.
  if (!should_notify() || sleepers_.empty()) return std::nullopt;
  // The woken worker counts as unparked and searching from now on, so that
  // concurrent notifiers see a searcher and do not wake a second worker.
  state_.fetch_add(kUnparkedOne | kSearchingOne, std::memory_order_seq_cst);
  std::size_t worker = sleepers_.back();
  sleepers_.pop_back();
  parked_[worker].value.store(false, std::memory_order_release);
  return worker;
}

bool Idle::transition_worker_to_searching() noexcept {
  std::uint32_t s = state_.load(std::memory_order_seq_cst);
  // At most half of the workers search at once (rounded up for 1 worker).
  if (2 * (s & kMask) >= num_workers_) return false;
  // Not a CAS: a race may let one extra worker search, which is harmless.
  state_.fetch_add(kSearchingOne, std::memory_order_seq_cst);
  return true;
}

bool Idle::transition_worker_from_searching() noexcept {
  std::uint32_t prev = state_.fetch_sub(kSearchingOne, std::memory_order_seq_cst);
  return (prev & kMask) == 1;
}

bool Idle::transition_worker_to_parked(std::size_t worker, bool is_searching) {
  MutexLock lock(mu_);
  std::uint32_t dec = kUnparkedOne | (is_searching ? kSearchingOne : 0);
  // seq_cst: see should_notify().
  std::uint32_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
  sleepers_.push_back(worker);
  parked_[worker].value.store(true, std::memory_order_release);
  return is_searching && (prev & kMask) == 1;
}

bool Idle::unpark_worker_by_self(std::size_t worker) {
  MutexLock lock(mu_);
  if (!parked_[worker].value.load(std::memory_order_relaxed)) return false;
  auto it = std::find(sleepers_.begin(), sleepers_.end(), worker);
  if (it != sleepers_.end()) sleepers_.erase(it);
  parked_[worker].value.store(false, std::memory_order_release);
  state_.fetch_add(kUnparkedOne, std::memory_order_seq_cst);
  return true;
}

}  // namespace spindle::detail
