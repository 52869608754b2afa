// Internal: which workers are asleep, and which are searching for work.
//
// One atomic word packs two counts so that the hot-path question "should I
// wake someone?" is a single load:
//   bits  0..15  num_searching  workers looking for work to steal
//   bits 16..31  num_unparked   workers not asleep
// The list of sleeping workers is guarded by a mutex; each worker also has
// an atomic `parked` flag it can poll without the lock.
//
// A worker is woken only when no worker is searching and some are asleep:
// a searching worker will find the new task anyway, and waking more would
// make them all contend on the same queues. A woken worker starts out
// searching; when a searcher finds work and it was the last searcher, it
// wakes another, so wake-ups chain while there is work. At most half of the
// workers search at once.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "spindle/runtime/detail/mutex.hpp"

namespace spindle::detail {

class Idle {
 public:
  explicit Idle(std::size_t num_workers);

  /// A worker to wake, chosen and marked unparked + searching, or nullopt
  /// when none should be woken. Lock-free when the answer is no.
  std::optional<std::size_t> worker_to_notify() {
    if (!should_notify()) return std::nullopt;  // the common case: one load, inline
    return worker_to_notify_slow();
  }

  /// True when a worker should be woken: none searching, some asleep.
  [[nodiscard]] bool should_notify() const noexcept {
    // seq_cst: the other half of the store-load pairing with a sleeper (see
    // InjectionQueue::push_batch): a sleeper's state RMW, then its read of
    // the queues; a remote pusher's queue store, then this load.
    std::uint32_t s = state_.load(std::memory_order_seq_cst);
    return (s & kMask) == 0 && (s >> kUnparkedShift) < num_workers_;
  }
  /// Called by a worker about to look for work to steal. False when too many
  /// workers are already searching (the caller should park instead).
  bool transition_worker_to_searching() noexcept;
  /// The worker found work. True when it was the last searcher (it should
  /// then wake another worker, so that someone keeps looking).
  bool transition_worker_from_searching() noexcept;
  /// The worker goes to sleep. True when it was the last searcher (it must
  /// then check every queue once more, so that no task is stranded).
  bool transition_worker_to_parked(std::size_t worker, bool is_searching);
  /// The worker woke for its own reasons (a timer or I/O completion) and
  /// leaves the sleeping list. False when a notifier already took it out
  /// (the worker then counts as searching).
  bool unpark_worker_by_self(std::size_t worker);
  /// True while `worker` is in the sleeping list (the worker's own view).
  [[nodiscard]] bool is_parked(std::size_t worker) const noexcept {
    return parked_[worker].value.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::size_t num_searching() const noexcept {
    return state_.load(std::memory_order_seq_cst) & kMask;
  }

 private:
  static constexpr std::uint32_t kMask = 0xFFFF;
  static constexpr std::uint32_t kUnparkedShift = 16;
  static constexpr std::uint32_t kSearchingOne = 1;
  static constexpr std::uint32_t kUnparkedOne = 1U << kUnparkedShift;

  std::optional<std::size_t> worker_to_notify_slow();

  struct alignas(64) ParkedFlag {
    std::atomic<bool> value{false};  // written under mu_, read by the worker lock-free
  };

  const std::size_t num_workers_;     // fixed at construction
  std::atomic<std::uint32_t> state_;  // (num_unparked << 16) | num_searching
  Mutex mu_;                          // guards sleepers_
  std::vector<std::size_t> sleepers_ SPINDLE_GUARDED_BY(mu_);  // asleep, most recent last
  std::unique_ptr<ParkedFlag[]> parked_;                       // per worker: in sleepers_
};

}  // namespace spindle::detail
