// Internal: the allocator for spindle's own per-task blocks (coroutine frames
// of Tasks, task cells, oneshot channels). Not part of the public API.
//
// Spawning a task allocates its frame and its cell; both are freed, often on
// another worker, when it finishes. A per-thread cache of freed blocks by
// size class (64-byte steps up to 1 KiB, a bounded number per class) turns
// most of those into a few plain loads and stores instead of a trip through
// the general-purpose allocator, whose cross-thread frees take locks.
// Blocks freed on one thread are reused by whichever thread allocates next
// on it. Sanitizer builds bypass the cache, so that AddressSanitizer still
// sees every use after free.
#pragma once

#include <cstddef>

namespace spindle::detail {

/// Allocates `size` bytes (aligned for any fundamental type). Throws std::bad_alloc.
void* task_alloc(std::size_t size);
/// Frees a block from task_alloc of the same `size`.
void task_free(void* p, std::size_t size) noexcept;

}  // namespace spindle::detail
