// Internal: a small, dense index per live thread, for per-thread slots.
//
// Monitors keep one block of counters per thread that records into them, so
// that every counter has a single writer. Indices are handed out on a
// thread's first use and returned when it exits, so they stay below the
// number of threads alive at once; a returned index is reused by a later
// thread, which then continues the same counters (the previous owner has
// exited: the free list's mutex orders the two).
#pragma once

#include <cstddef>
#include <cstdint>

namespace spindle::detail {

/// The calling thread's index, or SIZE_MAX before its first use. Trivial
/// and constant-initialized, so reading it is one thread-local load.
inline thread_local std::size_t tls_thread_index = SIZE_MAX;

/// Allocates the calling thread's index (first use) and arranges for its
/// return at thread exit.
std::size_t thread_index_slow() noexcept;

/// The calling thread's index.
inline std::size_t thread_index() noexcept {
  const std::size_t i = tls_thread_index;
  if (i != SIZE_MAX) [[likely]] return i;
  return thread_index_slow();
}

}  // namespace spindle::detail
