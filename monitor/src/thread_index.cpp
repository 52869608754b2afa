#include "thread_index.hpp"

#include <mutex>
#include <vector>

namespace spindle::detail {

namespace {

struct IndexPool {
  std::mutex mu;                  // guards the members below
  std::vector<std::size_t> free;  // indices of exited threads
  std::size_t next = 0;           // the first never-used index
};

IndexPool& pool() {
  static IndexPool* p = new IndexPool();  // never destroyed: threads may exit after main
  return *p;
}

struct ThreadIndexHolder {
  std::size_t value;  // this thread's index
  ThreadIndexHolder() {
    IndexPool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.free.empty()) {
      value = p.next++;
    } else {
      value = p.free.back();
      p.free.pop_back();
    }
  }
  ~ThreadIndexHolder() {
    tls_thread_index = SIZE_MAX;
    IndexPool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    p.free.push_back(value);
  }
  ThreadIndexHolder(const ThreadIndexHolder&) = delete;
  ThreadIndexHolder& operator=(const ThreadIndexHolder&) = delete;
};

}  // namespace

std::size_t thread_index_slow() noexcept {
  // Constructed once per thread; its destructor returns the index at exit.
  thread_local ThreadIndexHolder holder;
  tls_thread_index = holder.value;
  return holder.value;
}

}  // namespace spindle::detail
