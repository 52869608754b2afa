#include "owned_tasks.hpp"

#include <bit>

namespace spindle::detail {

OwnedTasks::OwnedTasks(std::size_t num_workers)
    : num_shards_(std::bit_ceil(num_workers * 4)),
      shards_(std::make_unique<Shard[]>(num_shards_)) {}

bool OwnedTasks::bind(CellBase* task, std::size_t worker) {
  const std::uint64_t key = worker != SIZE_MAX ? worker : task->id_;
  task->owned_shard_ = static_cast<std::uint32_t>(key & (num_shards_ - 1));
  Shard& s = shard_for(task);
  MutexLock lock(s.mu);
  if (s.closed) return false;
  task->owned_prev_ = nullptr;
  task->owned_next_ = s.head;
  if (s.head != nullptr) s.head->owned_prev_ = task;
  s.head = task;
  s.count.store(s.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return true;
}

bool OwnedTasks::remove(CellBase* task) {
  Shard& s = shard_for(task);
  MutexLock lock(s.mu);
  // A task that is neither linked nor the head was already drained.
  if (task->owned_prev_ == nullptr && s.head != task) return false;
  if (task->owned_prev_ != nullptr) {
    task->owned_prev_->owned_next_ = task->owned_next_;
  } else {
    s.head = task->owned_next_;
  }
  if (task->owned_next_ != nullptr) task->owned_next_->owned_prev_ = task->owned_prev_;
  task->owned_prev_ = nullptr;
  task->owned_next_ = nullptr;
  s.count.store(s.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  return true;
}

void OwnedTasks::close() {
  for (std::size_t i = 0; i < num_shards_; ++i) {
    MutexLock lock(shards_[i].mu);
    shards_[i].closed = true;
  }
}

CellBase* OwnedTasks::pop_any() {
  for (std::size_t i = 0; i < num_shards_; ++i) {
    Shard& s = shards_[i];
    MutexLock lock(s.mu);
    CellBase* task = s.head;
    if (task == nullptr) continue;
    s.head = task->owned_next_;
    if (s.head != nullptr) s.head->owned_prev_ = nullptr;
    task->owned_prev_ = nullptr;
    task->owned_next_ = nullptr;
    s.count.store(s.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return task;
  }
  return nullptr;
}

std::size_t OwnedTasks::live() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < num_shards_; ++i)
    n += shards_[i].count.load(std::memory_order_relaxed);
  return n;
}

}  // namespace spindle::detail
