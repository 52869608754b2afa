// The per-thread block cache behind task_alloc (see detail/task_alloc.hpp).

#include "spindle/runtime/detail/task_alloc.hpp"

#include <array>
#include <cstdint>
#include <new>

namespace spindle::detail {

namespace {

constexpr std::size_t kGranule = 64;       // size-class step
constexpr std::size_t kClasses = 16;       // 64 B … 1 KiB
constexpr std::size_t kMaxCached = 256;    // blocks kept per class and thread

struct FreeBlock {
  FreeBlock* next;  // next cached block of the same class
};

/// Trivial and constant-initialized, so that reaching it is one TLS access.
struct Cache {
  std::array<FreeBlock*, kClasses> head{};    // cached blocks per class
  std::array<std::uint32_t, kClasses> count{};  // how many per class
  bool cleanup_registered = false;            // the exit hook is armed
  bool exited = false;                        // the exit hook ran: no more caching
};

thread_local Cache tls_cache;

/// Returns a thread's cached blocks to the system allocator when it exits.
struct CacheCleanup {
  ~CacheCleanup() {
    Cache& c = tls_cache;
    for (std::size_t k = 0; k < kClasses; ++k) {
      for (FreeBlock* b = c.head[k]; b != nullptr;) {
        FreeBlock* next = b->next;
        ::operator delete(b);
        b = next;
      }
      c.head[k] = nullptr;
      c.count[k] = 0;
    }
    c.exited = true;  // blocks freed by later thread-exit code go straight back
  }
};
thread_local CacheCleanup tls_cleanup;

constexpr std::size_t class_of(std::size_t size) noexcept { return (size - 1) / kGranule; }
constexpr std::size_t class_size(std::size_t k) noexcept { return (k + 1) * kGranule; }

#if defined(SPINDLE_SANITIZER_BUILD)
constexpr bool kCacheEnabled = false;
#else
constexpr bool kCacheEnabled = true;
#endif

}  // namespace

void* task_alloc(std::size_t size) {
  if (size == 0) size = 1;
  if (!kCacheEnabled || size > kClasses * kGranule) return ::operator new(size);
  const std::size_t k = class_of(size);
  Cache& c = tls_cache;
  if (FreeBlock* b = c.head[k]) {
    c.head[k] = b->next;
    --c.count[k];
    return b;
  }
  return ::operator new(class_size(k));  // the whole class size, so any thread can cache it
}

void task_free(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  if (size == 0) size = 1;
  if (!kCacheEnabled || size > kClasses * kGranule) {
    ::operator delete(p);
    return;
  }
  const std::size_t k = class_of(size);
  Cache& c = tls_cache;
  if (c.count[k] >= kMaxCached || c.exited) {
    ::operator delete(p);
    return;
  }
  if (!c.cleanup_registered) {
    c.cleanup_registered = true;
    (void)&tls_cleanup;  // constructs the exit hook for this thread
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = c.head[k];
  c.head[k] = b;
  ++c.count[k];
}

}  // namespace spindle::detail
