// Core::shutdown: the protocol, and its implementation.
//
// ## Shutdown protocol (Core::shutdown)
//   1. Set the shutdown flag, then close the owned-task list and the
//      injection queue: from here on spawn() throws RuntimeShutdown, and a
//      wake from outside drops its reference instead of queueing (the woken
//      task is destroyed in step 4 anyway). The remote shards of the owned
//      list and the injection queue close under the same locks that step 4
//      drains them with, so no task is bound there after the drain; a
//      worker's own list closes through a flag, and a spawn on a worker that
//      misses it happens before that worker's thread is joined (step 3), so
//      before step 4 too.
//   2. Stop every io_context: a parked worker's run_one returns at once, and
//      every loop checks the flag between polls. A running poll is never
//      interrupted (C++ cannot preempt a coroutine).
//   3. Join the worker threads (bounded by shutdown_timeout; a worker still
//      inside a poll at the deadline means a task that never yields: the
//      state is then leaked on purpose, since destroying frames under a
//      running task would be a use-after-free). Then shut the blocking pool:
//      its queued jobs never start (step 4 cancels them); running jobs are
//      waited for until the same deadline, and any still running then are
//      abandoned (reported; the state is leaked for them, as above).
//   4. Take in the completions handed between the workers' owned lists and
//      free their retired cells (OwnedTasks::quiesce: the owners are gone,
//      this thread owns every list now; see owned_tasks.hpp). Then pop
//      every task from the owned list and destroy its frame, on this
//      thread, exactly once: the RUNNING bit is claimed first, so a task is
//      destroyed by whoever holds it and never twice. Each completes as
//      cancelled, which wakes its JoinHandle's waiter with Cancelled.
//      Frames' destructors may wake other tasks (dropping their references,
//      step 1) but cannot spawn.
//   5. Drain the local queues, LIFO slots and injection queue, dropping the
//      scheduler references they hold (every task in them is complete).
//   6. Close the io_contexts: pending handlers (timer waits, I/O) are
//      destroyed and release the task references their wakers hold. A
//      thread that is not joined (a spawner or waker posting a wake-up to a
//      parked worker, Handle::executor()) touches an io_context only inside
//      an IoGate, which refuses once step 1 has begun; the close waits for
//      the gates still open. This
//      must come after step 4 (those tasks must be complete) and before the
//      Core can be freed. An io_context itself is freed with the last
//      Executor that refers to it: an I/O object that outlives the runtime
//      (a task's result, a global) is still destroyed safely.
//   7. The Core itself is freed when its last reference goes: the Runtime's,
//      the Handles', and one per task cell still held by a JoinHandle or a
//      Waker somewhere. Those cells are complete, so using them never
//      touches the workers again.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <thread>

#include "scheduler.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "task_state.hpp"
#include "worker.hpp"

namespace spindle::detail {

bool Core::shutdown(std::optional<std::chrono::nanoseconds> timeout) {
  if (current_worker() != nullptr) {
    fatal(
        "a Runtime was destroyed or shut down from one of its own worker threads (inside one "
        "of its tasks); it would wait for itself. Shut it down from outside the runtime.");
  }
  const auto shutdown_started = std::chrono::steady_clock::now();
  // Step 1.
  // seq_cst: pairs with IoGate's (scheduler.cpp).
  if (shutdown_.exchange(true, std::memory_order_seq_cst)) return true;
  owned_.close();
  inject_.close();
  // Step 2.
  for (auto& w : workers_) w->stop_io();
  // current_thread: a thread inside block_on drives worker 0; it leaves the
  // loop at its next check (its target is then cancelled in step 4 and its
  // block_on throws Cancelled). Wait for it, and keep later block_on calls
  // out, by holding the drive lock for the rest of the shutdown.
  std::unique_lock<Mutex> driving(drive_mu_, std::defer_lock);
  if (config_.current_thread) {
    if (!timeout) {
      driving.lock();
    } else {
      while (!driving.try_lock()) {
        if (std::chrono::steady_clock::now() >= shutdown_started + *timeout) {
          std::fprintf(stderr,
                       "spindle: shutdown timed out: a block_on call is still polling on "
                       "another thread. The runtime's state is leaked rather than destroyed "
                       "under a running task.\n");
          ref();  // leak, as for a stuck worker
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  // Step 3.
  if (!threads_.empty()) {
    if (timeout) {
      const auto deadline = shutdown_started + *timeout;
      std::string stuck;
      {
        MutexLock lock(exit_mu_);
        for (;;) {
          if (exited_ == threads_.size()) break;
          if (std::chrono::steady_clock::now() >= deadline) {
            // Past the deadline, only a worker inside a poll is stuck; one
            // between polls is on its way out: keep waiting for it.
            stuck.clear();
            for (auto& w : workers_) {
              const WorkerPollState ps = w->poll_state();
              if (ps.polling) {
                stuck += " worker " + std::to_string(w->index()) + " (task " +
                         std::to_string(ps.task) + ")";
              }
            }
            if (!stuck.empty()) break;
          }
          exit_cv_.wait_for(exit_mu_, std::chrono::milliseconds(10));
        }
      }
      if (!stuck.empty()) {
        std::fprintf(stderr,
                     "spindle: shutdown timed out after %lld ns: still polling:%s. The runtime's "
                     "state is leaked rather than destroyed under a running task.\n",
                     static_cast<long long>(timeout->count()), stuck.c_str());
        for (auto& t : threads_) t.detach();
        threads_.clear();
        // The blocking pool stops too: its queued jobs never start, and its
        // threads are left to finish what they run (deadline already past).
        const std::size_t abandoned = blocking_.shutdown(deadline);
        if (abandoned != 0) {
          std::fprintf(stderr, "spindle: shutdown also abandoned %zu spawn_blocking job(s).\n",
                       abandoned);
        }
        ref();  // leak: never freed, the detached threads may still use it
        return false;
      }
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  // Step 3b: the blocking pool, within what is left of the timeout.
  std::optional<std::chrono::steady_clock::time_point> pool_deadline;
  if (timeout) pool_deadline = shutdown_started + *timeout;
  const std::size_t abandoned = blocking_.shutdown(pool_deadline);
  if (abandoned != 0) {
    std::fprintf(stderr,
                 "spindle: shutdown abandoned %zu spawn_blocking job(s) still running after the "
                 "shutdown timeout; their threads are detached and the runtime's state is "
                 "leaked for them to finish with.\n",
                 abandoned);
    ref();  // leak: the abandoned jobs still complete through this Core
  }
  // Step 4. The owners have stopped: take in the completions they were
  // handed and free their retired cells first, so that every cell still
  // listed is unfinished.
  owned_.quiesce();
  while (CellBase* task = owned_.pop_any()) shutdown_task(task);
  // Step 5.
  for (auto& w : workers_) w->drain([this](CellBase* t) { drop_task_ref(t); });
  while (CellBase* t = inject_.pop()) drop_task_ref(t);
  blocking_.drain([this](CellBase* t) { drop_task_ref(t); });
  // Step 6.
  wait_for_io_users();
  for (auto& w : workers_) w->destroy_io();
  return abandoned == 0;
}

void Core::shutdown_task(CellBase* task) noexcept {
  // We hold the owned list's reference (pop_any transferred it).
  if (!claim_to_cancel(task)) {
    drop_task_ref(task);  // not ours to destroy (cannot happen once workers stopped)
    return;
  }
  task->vtable_->cancel(task);
  publish_complete(task, true);
  drop_task_ref(task);  // the list's reference, which pop_any handed us
}

}  // namespace spindle::detail
