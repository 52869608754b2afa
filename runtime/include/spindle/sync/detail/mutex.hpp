// Internal: the short-held lock inside every spindle::sync primitive.
//
// Every primitive guards its state (counts, queues, wait lists) with one
// spindle::detail::Mutex (spindle/runtime/detail/mutex.hpp). It is held for a
// few instructions at a time and never across a suspension: a task that
// must wait is linked into a wait list and the lock is released before the
// task suspends. Wakers are woken after the lock is released (see
// detail::WakeList), so a woken task never contends on it with its waker.
#pragma once

#include "spindle/runtime/detail/mutex.hpp"

namespace spindle::sync::detail {

using RawMutex = spindle::detail::Mutex;
using Lock = spindle::detail::MutexLock;

}  // namespace spindle::sync::detail
