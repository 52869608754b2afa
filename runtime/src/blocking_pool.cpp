#include "blocking_pool.hpp"

#include <pthread.h>

#include <utility>

#include "cell_fields.hpp"
#include "scheduler.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "task_state.hpp"

namespace spindle::detail {

BlockingPool::BlockingPool(Core& core, std::size_t max_threads, std::chrono::nanoseconds keep_alive,
                           std::string thread_name)
    : core_(core),
      max_threads_(max_threads),
      keep_alive_(keep_alive),
      thread_name_(std::move(thread_name)) {}

BlockingPool::~BlockingPool() {
  // shutdown() has joined or detached every thread; join the last one that
  // left on its own.
  MutexLock lock(mu_);
  if (last_exited_ && last_exited_->joinable()) last_exited_->join();
}

bool BlockingPool::push(CellBase* cell) {
  MutexLock lock(mu_);
  if (shutdown_) return false;
  queue_.push_back(cell);
  queue_depth_.store(queue_.size(), std::memory_order_relaxed);
  if (idle_ > notified_) {
    ++notified_;
    cv_.notify_one();
  } else if (threads_.size() < max_threads_) {
    try {
      spawn_thread();
    } catch (...) {
      // With another thread alive the job will still run; alone, it cannot.
      if (threads_.empty()) {
        queue_.pop_back();
        queue_depth_.store(queue_.size(), std::memory_order_relaxed);
        throw;
      }
    }
  }
  return true;
}

void BlockingPool::spawn_thread() {
  std::size_t id = next_id_++;
  threads_.emplace(id, std::thread([this, id] { thread_main(id); }));
  num_threads_.store(threads_.size(), std::memory_order_relaxed);
}

void BlockingPool::thread_main(std::size_t id) {
  std::string name = thread_name_ + "-blk";
  if (name.size() > 15) name.resize(15);
  pthread_setname_np(pthread_self(), name.c_str());
  // Not a worker: spawn() from here goes through the injection queue, and
  // block_on is allowed (the thread may block).
  tls_context = ThreadContext{&core_, nullptr, nullptr, false, false};

  mu_.lock();
  for (;;) {
    if (!queue_.empty()) {
      CellBase* cell = queue_.front();
      queue_.pop_front();
      queue_depth_.store(queue_.size(), std::memory_order_relaxed);
      ++running_;
      mu_.unlock();
      run(cell);
      mu_.lock();
      --running_;
      if (shutdown_) cv_.notify_all();  // shutdown() waits for running_ == 0
      continue;
    }
    if (shutdown_) break;
    ++idle_;
    num_idle_.store(idle_, std::memory_order_relaxed);
    const auto deadline = std::chrono::steady_clock::now() + keep_alive_;
    bool woken = true;
    while (notified_ == 0 && !shutdown_) {
      if (cv_.wait_until(mu_, deadline) == std::cv_status::timeout) {
        woken = notified_ != 0 || shutdown_;
        break;
      }
    }
    if (notified_ != 0) --notified_;
    --idle_;
    num_idle_.store(idle_, std::memory_order_relaxed);
    if (!woken && queue_.empty()) {
      // Idle for keep_alive: leave. Our std::thread object is parked in
      // last_exited_ so that someone joins it; join the previous one first.
      if (last_exited_ && last_exited_->joinable()) last_exited_->join();
      auto it = threads_.find(id);
      last_exited_ = std::move(it->second);
      threads_.erase(it);
      num_threads_.store(threads_.size(), std::memory_order_relaxed);
      cv_.notify_all();  // shutdown() may be waiting for threads to leave
      break;
    }
  }
  mu_.unlock();
  tls_context = ThreadContext{};
}

void BlockingPool::run(CellBase* cell) noexcept {
  switch (transition_to_running(cell)) {
    case RunTransition::kGone:
      core_.drop_task_ref(cell);  // destroyed by shutdown while queued
      return;
    case RunTransition::kAbort:
      core_.cancel_task(cell, true);  // aborted before it started: never runs
      return;
    case RunTransition::kRun:
      break;
  }
  // The cell's frame is spindle's one-poll wrapper: resuming it runs the
  // user's function to completion (its exception is stored, not thrown).
  cell->sched().wait_.resume_point.resume();
  if (!cell->root_.done()) fatal("a spawn_blocking job suspended; it must run to completion");
  core_.finish_task(cell);
}

std::size_t BlockingPool::shutdown(std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::vector<std::thread> to_join;
  std::size_t abandoned = 0;
  {
    MutexLock lock(mu_);
    shutdown_ = true;
    cv_.notify_all();
    // Queued jobs stay queued: they are cancelled by the owned-task drain
    // and their references dropped by drain(). Wait for the running ones.
    while (running_ != 0) {
      if (deadline) {
        if (cv_.wait_until(mu_, *deadline) == std::cv_status::timeout && running_ != 0) break;
      } else {
        cv_.wait(mu_);
      }
    }
    abandoned = running_;
    for (auto& [id, t] : threads_) to_join.push_back(std::move(t));
    threads_.clear();
    num_threads_.store(0, std::memory_order_relaxed);
    if (last_exited_ && last_exited_->joinable()) to_join.push_back(std::move(*last_exited_));
    last_exited_.reset();
  }
  for (auto& t : to_join) {
    if (abandoned != 0) {
      t.detach();  // some of these are still running a job; none can be joined safely in time
    } else {
      t.join();
    }
  }
  return abandoned;
}

}  // namespace spindle::detail
