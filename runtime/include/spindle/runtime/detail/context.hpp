// Internal: the per-thread scheduler context. Not part of the public API.
#pragma once

#include <cstdint>

namespace spindle::detail {

class Core;
class Worker;
class CellBase;

/// What the current thread is doing for a runtime. Plain (non-atomic) data:
/// only its own thread reads or writes it.
struct ThreadContext {
  Core* core = nullptr;         // runtime this thread is a worker of (or drives in block_on)
  Worker* worker = nullptr;     // the worker this thread runs; null outside workers
  CellBase* current = nullptr;  // the root task being polled; null between polls
  bool yielded = false;         // the current poll asked to be re-queued (yield_now)
  bool self_woken = false;      // the current task woke itself during this poll
  std::uint32_t budget = UINT32_MAX;  // cooperative budget left in this poll (unlimited outside)
};

// Constant-initialized and trivially destructible: access is a plain TLS load.
inline thread_local ThreadContext tls_context;

}  // namespace spindle::detail
