// <spindle/runtime.hpp> — everything a service needs to run tasks on spindle.
//
//   spindle::Runtime, Runtime::Builder, Handle   (spindle/runtime/runtime.hpp)
//   spindle::Task<T>                             (spindle/runtime/task.hpp)
//   spindle::JoinHandle<T>                       (spindle/runtime/join_handle.hpp)
//   spindle::spawn, spindle::yield_now           (runtime.hpp, yield.hpp)
//   spindle::spawn_blocking                      (runtime.hpp: the blocking pool)
//   spindle::use_task, this_executor             (use_task.hpp: awaiting Asio operations)
//   spindle::sleep, timeout, interval            (time.hpp)
//   spindle::coop                                (coop.hpp: the cooperative budget)

//   spindle::sync::oneshot                       (spindle/sync/oneshot.hpp)
//   spindle::sync::mpsc::channel, unbounded_channel  (spindle/sync/mpsc.hpp)
//   spindle::sync::Mutex<T>, MutexGuard<T>       (spindle/sync/mutex.hpp: async, FIFO)
//   spindle::sync::Semaphore, SemaphorePermit    (spindle/sync/semaphore.hpp)
//   spindle::sync::Notify                        (spindle/sync/notify.hpp)
//   spindle::Waker, TaskHooks, RuntimeCounters   (for awaitables and the monitor layer)
//   spindle::Error and friends                   (spindle/runtime/errors.hpp)
//
// Example:
//   #include <spindle/runtime.hpp>
//
//   spindle::Task<int> add(int a, int b) { co_return a + b; }
//
//   int main() {
//     auto rt = spindle::Runtime::Builder().worker_threads(2).build();
//     return rt.block_on([]() -> spindle::Task<int> {
//       auto h = spindle::spawn(add(1, 2));
//       co_await spindle::yield_now();
//       co_return co_await h - 3;
//     }());
//   }
#pragma once

#include "spindle/runtime/clock.hpp"
#include "spindle/runtime/combinators.hpp"
#include "spindle/runtime/coop.hpp"
#include "spindle/runtime/counters.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/hooks.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/runtime/use_task.hpp"
#include "spindle/runtime/waker.hpp"
#include "spindle/runtime/yield.hpp"
#include "spindle/sync/mpsc.hpp"
#include "spindle/sync/mutex.hpp"
#include "spindle/sync/notify.hpp"
#include "spindle/sync/oneshot.hpp"
#include "spindle/sync/semaphore.hpp"
