// Internal: the allocator for spindle's own per-task blocks (coroutine frames
// of Tasks, task cells, oneshot channels). Not part of the public API.
//
// Spawning a task allocates its frame and its cell (with the monitor's
// record inside, when instrumented); both are freed, often on
// another worker, when it finishes. Each thread allocates from its own heap of
// size-classed blocks (64-byte steps up to 1 KiB); a block freed on another thread
// goes back to the heap that allocated it through a lock-free list, so the system
// allocator never sees a cross-thread free (glibc serializes those on the owning
// arena's lock, which capped scaling at 16 workers). The design and its memory
// bounds are in task_alloc.cpp. Sanitizer builds bypass the heaps, so that
// AddressSanitizer still sees every use after free.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spindle::detail {

/// Allocates `size` bytes (aligned for any fundamental type). Throws std::bad_alloc.
void* task_alloc(std::size_t size);
/// Frees a block from task_alloc of the same `size`.
void task_free(void* p, std::size_t size) noexcept;
/// Takes the blocks other threads handed back to the calling thread's heap and
/// gives those above the idle cache limit back to the system allocator. Workers
/// call it once they have been parked for a while (not at every park: a busy
/// worker parks between bursts and should find its cache still there).
void task_alloc_trim() noexcept;

/// How many blocks the calling thread allocated and freed through
/// task_alloc / task_free so far (the sanitizer builds' bypass included).
/// For lifetime tests: on a current_thread runtime every block of a task
/// is allocated and freed on the thread that drives it.
struct TaskAllocCalls {
  std::uint64_t allocs = 0;  ///< task_alloc calls
  std::uint64_t frees = 0;   ///< task_free calls with a non-null block
};
TaskAllocCalls task_alloc_calls() noexcept;

/// A standard allocator over the task heaps, for Asio's handler memory (the
/// associated allocator of spindle's I/O handlers and of the wake a worker
/// posts to a parked one). Asio allocates each operation's block, and each
/// step's state of a composed operation, through it. Such blocks are freed
/// wherever the operation ends, often on another thread or inside an
/// io_context::run_one()/poll() call, whose per-call cache Asio's default
/// recycling allocator would lose; the task heaps take such frees without a
/// lock and serve the next operation from the cache.
template <class T>
struct TaskHeapAllocator {
  using value_type = T;
  TaskHeapAllocator() noexcept = default;
  template <class U>
  TaskHeapAllocator(const TaskHeapAllocator<U>& /*other*/) noexcept {}  // NOLINT: implicit
  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= 16, "task heaps align blocks to 16 bytes");
    return static_cast<T*>(task_alloc(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { task_free(p, n * sizeof(T)); }
  template <class U>
  friend bool operator==(const TaskHeapAllocator& /*a*/,
                         const TaskHeapAllocator<U>& /*b*/) noexcept {
    return true;
  }
};

}  // namespace spindle::detail
