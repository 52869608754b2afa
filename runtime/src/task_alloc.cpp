// The per-thread heaps behind task_alloc (see detail/task_alloc.hpp).
//
// Why not just the general-purpose allocator: a spawned task's frame and cell are
// allocated by the spawning thread and, once another worker has stolen and finished
// the task, freed by that other thread. glibc puts such a cross-thread free back into
// the allocating thread's arena under that arena's lock, so with many workers
// finishing tasks that one thread spawns (BENCH_SHAPES.md's parallel_work) every free
// and the spawner's every malloc queue on one lock: measured on 16 cores, spindle
// stopped scaling at 5.4x over one worker, and reached 14.5x with the same binary
// under jemalloc.
//
// The scheme (the remote-free idea of mimalloc and snmalloc, written for our one
// kind of block):
//   * Each thread owns a Heap: per size class (64-byte steps up to 1 KiB) a local
//     free list, touched by the owner only, and a remote free list, an atomic stack
//     that any thread may push onto.
//   * Every block carries a 16-byte header naming the Heap that allocated it. A free
//     on the owner pushes onto the local list; a free anywhere else pushes onto the
//     owner's remote list (one compare-and-swap, no lock).
//   * The owner takes a whole remote list with one exchange when its local list of
//     that class runs dry, so the stack is only ever popped all at once: no ABA.
//   * New blocks come from ::operator new on the owner, and blocks beyond the cache
//     limit go back with ::operator delete on the owner: glibc only ever sees
//     same-thread frees.
//   * Memory: while busy, a heap keeps at most kCacheBytes (4 MiB) per class of
//     blocks it freed locally, plus whatever other threads have handed back since it
//     last allocated (never more than it had outstanding): enough that a burst of
//     10,000 spawns is served from the cache the next time. trim() — run by a worker
//     that stayed parked for a while — drains the remote lists and keeps at most
//     kIdleCacheBytes (256 KiB) per class; a thread's exit gives back everything.
//   * A thread's Heap outlives the thread: at exit its cache is emptied and the heap
//     goes onto a list of abandoned heaps that the next new thread adopts, together
//     with whatever was pushed onto it in between. Heaps are never destroyed, so a
//     late remote free always has somewhere to go; their number is bounded by the
//     most threads that ever allocated at once.
// Sanitizer builds bypass all of it (plain ::operator new/delete per block), so that
// AddressSanitizer still sees every use after free and LeakSanitizer every leak.

#include "spindle/runtime/detail/task_alloc.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>

namespace spindle::detail {

namespace {

constexpr std::size_t kGranule = 64;  // size-class step
constexpr std::size_t kClasses = 16;  // 64 B … 1 KiB of payload
constexpr std::size_t kMaxPayload = kClasses * kGranule;
constexpr std::size_t kCacheBytes = 4 * 1024 * 1024;  // cached per class and heap while busy
constexpr std::size_t kIdleCacheBytes = 256 * 1024;   // what trim() keeps per class
constexpr std::size_t kHeaderSize = 16;               // keeps the payload 16-byte aligned

#if defined(SPINDLE_SANITIZER_BUILD)
constexpr bool kHeapsEnabled = false;
#else
constexpr bool kHeapsEnabled = true;
#endif

constexpr std::size_t class_of(std::size_t size) noexcept { return (size - 1) / kGranule; }
constexpr std::size_t class_payload(std::size_t k) noexcept { return (k + 1) * kGranule; }
constexpr std::uint32_t class_limit(std::size_t k) noexcept {
  return static_cast<std::uint32_t>(kCacheBytes / class_payload(k));
}
constexpr std::uint32_t idle_class_limit(std::size_t k) noexcept {
  return static_cast<std::uint32_t>(kIdleCacheBytes / class_payload(k));
}

struct Heap;

/// What precedes every payload. Written once, when the block is first allocated;
/// a block always returns to the heap that allocated it.
struct alignas(16) Header {
  Heap* owner;
};
static_assert(sizeof(Header) == kHeaderSize);

/// A free block's payload: the link of whichever list it is on.
struct FreeBlock {
  FreeBlock* next;
};

struct Heap {
  // Owner-only: the local free lists and their lengths.
  std::array<FreeBlock*, kClasses> local{};
  std::array<std::uint32_t, kClasses> count{};
  // Blocks taken from `remote` by trim() or a dry allocation and not yet counted.
  std::array<FreeBlock*, kClasses> collected{};
  Heap* next_abandoned = nullptr;  // guarded by g_abandoned_mutex while abandoned

  // Pushed by other threads; one cache line each so that classes do not share.
  struct alignas(64) Remote {
    std::atomic<FreeBlock*> head{nullptr};
  };
  std::array<Remote, kClasses> remote{};
};

std::mutex g_abandoned_mutex;  // constant-initialized, trivially destroyed
Heap* g_abandoned = nullptr;   // guarded by g_abandoned_mutex

/// The calling thread's heap; constant-initialized so that reaching it is one TLS load.
thread_local Heap* tls_heap = nullptr;
/// Set once the thread's exit hook ran: blocks allocated later bypass the heaps.
thread_local bool tls_exited = false;
/// task_alloc and task_free calls made by this thread (task_alloc_calls()):
/// one increment each, so that tests can count a task's blocks.
thread_local constinit std::uint64_t tls_alloc_calls = 0;
thread_local constinit std::uint64_t tls_free_calls = 0;

void* header_to_payload(Header* h) noexcept { return reinterpret_cast<char*>(h) + kHeaderSize; }
Header* payload_to_header(void* p) noexcept {
  return reinterpret_cast<Header*>(static_cast<char*>(p) - kHeaderSize);
}

void release_block(FreeBlock* b) noexcept { ::operator delete(payload_to_header(b)); }

void release_list(FreeBlock* b) noexcept {
  while (b != nullptr) {
    FreeBlock* next = b->next;
    release_block(b);
    b = next;
  }
}

/// Takes every remote block of every class into `collected` (owner only).
void collect_all(Heap& h) noexcept {
  for (std::size_t k = 0; k < kClasses; ++k) {
    if (h.remote[k].head.load(std::memory_order_relaxed) == nullptr) continue;
    FreeBlock* list = h.remote[k].head.exchange(nullptr, std::memory_order_acquire);
    if (list == nullptr) continue;
    FreeBlock* tail = list;
    while (tail->next != nullptr) tail = tail->next;
    tail->next = h.collected[k];
    h.collected[k] = list;
  }
}

/// Brings every class down to its idle limit: takes the remote blocks, keeps what
/// fits and gives the rest back to the system allocator (owner only).
void settle(Heap& h) noexcept {
  collect_all(h);
  for (std::size_t k = 0; k < kClasses; ++k) {
    const std::uint32_t limit = idle_class_limit(k);
    if (h.collected[k] == nullptr && h.count[k] <= limit) continue;
    while (h.count[k] > limit) {  // local list first: it is counted
      FreeBlock* b = h.local[k];
      h.local[k] = b->next;
      --h.count[k];
      release_block(b);
    }
    FreeBlock* b = h.collected[k];
    h.collected[k] = nullptr;
    while (b != nullptr) {
      FreeBlock* next = b->next;
      if (h.count[k] < limit) {
        b->next = h.local[k];
        h.local[k] = b;
        ++h.count[k];
      } else {
        release_block(b);
      }
      b = next;
    }
  }
}

/// Empties a heap completely (owner only, at thread exit).
void drain(Heap& h) noexcept {
  collect_all(h);
  for (std::size_t k = 0; k < kClasses; ++k) {
    release_list(h.local[k]);
    release_list(h.collected[k]);
    h.local[k] = nullptr;
    h.collected[k] = nullptr;
    h.count[k] = 0;
  }
}

/// Abandons the thread's heap at its exit (see the file comment).
struct HeapExit {
  ~HeapExit() {
    tls_exited = true;
    Heap* h = tls_heap;
    if (h == nullptr) return;
    tls_heap = nullptr;
    drain(*h);
    std::lock_guard lock(g_abandoned_mutex);
    h->next_abandoned = g_abandoned;
    g_abandoned = h;
  }
};
thread_local HeapExit tls_heap_exit;

/// The calling thread's heap, adopting an abandoned one or making one on first use;
/// nullptr once the thread is exiting.
Heap* this_heap() {
  if (Heap* h = tls_heap) [[likely]]
    return h;
  if (tls_exited) return nullptr;
  (void)&tls_heap_exit;  // arms the exit hook for this thread
  Heap* h = nullptr;
  {
    std::lock_guard lock(g_abandoned_mutex);
    if (g_abandoned != nullptr) {
      h = g_abandoned;
      g_abandoned = h->next_abandoned;
      h->next_abandoned = nullptr;
    }
  }
  if (h == nullptr) h = new Heap();  // never deleted: see the file comment
  tls_heap = h;
  return h;
}

void* new_block(Heap* owner, std::size_t payload) {
  auto* hdr = static_cast<Header*>(::operator new(kHeaderSize + payload));
  hdr->owner = owner;
  return header_to_payload(hdr);
}

}  // namespace

void* task_alloc(std::size_t size) {
  ++tls_alloc_calls;
  if (size == 0) size = 1;
  if (!kHeapsEnabled || size > kMaxPayload) return ::operator new(size);
  const std::size_t k = class_of(size);
  Heap* h = this_heap();
  if (h == nullptr) return new_block(nullptr, class_payload(k));
  if (FreeBlock* b = h->local[k]) [[likely]] {
    h->local[k] = b->next;
    --h->count[k];
    return b;
  }
  if (FreeBlock* b = h->collected[k]) {
    h->collected[k] = b->next;
    return b;
  }
  if (h->remote[k].head.load(std::memory_order_relaxed) != nullptr) {
    if (FreeBlock* b = h->remote[k].head.exchange(nullptr, std::memory_order_acquire)) {
      h->collected[k] = b->next;  // uncounted until the next trim()
      return b;
    }
  }
  return new_block(h, class_payload(k));
}

void task_free(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  ++tls_free_calls;
  if (size == 0) size = 1;
  if (!kHeapsEnabled || size > kMaxPayload) {
    ::operator delete(p);
    return;
  }
  const std::size_t k = class_of(size);
  Heap* owner = payload_to_header(p)->owner;
  auto* b = static_cast<FreeBlock*>(p);
  if (owner == nullptr) {  // allocated while its thread was exiting
    release_block(b);
    return;
  }
  if (owner == tls_heap) {
    if (owner->count[k] >= class_limit(k)) {
      release_block(b);
      return;
    }
    b->next = owner->local[k];
    owner->local[k] = b;
    ++owner->count[k];
    return;
  }
  // Another thread's block (or ours after our exit hook ran): hand it back.
  auto& head = owner->remote[k].head;
  FreeBlock* top = head.load(std::memory_order_relaxed);
  do {
    b->next = top;
  } while (
      !head.compare_exchange_weak(top, b, std::memory_order_release, std::memory_order_relaxed));
}

TaskAllocCalls task_alloc_calls() noexcept { return {tls_alloc_calls, tls_free_calls}; }

void task_alloc_trim() noexcept {
  if (!kHeapsEnabled) return;
  if (Heap* h = tls_heap) settle(*h);
}

}  // namespace spindle::detail
