// tests/support/recording_hooks.hpp — a TaskHooks that records and checks every call.
//
//   spindle::test::RecordingHooks  records one task's hook calls, checks them against
//                                  the order documented in spindle/runtime/hooks.hpp,
//                                  and detects calls that overlap
//
// Example:
//   spindle::test::RecordingHooks hooks;
//   auto h = rt.handle().spawn_with_hooks(work(), &hooks);
//   h.join();
//   h = {};
//   ASSERT_TRUE(hooks.wait_released());
//   EXPECT_EQ(hooks.trace(), "spawn start end:ready drop release");
//   EXPECT_EQ(hooks.violations(), "");
//
// trace() spells the calls as: spawn, start, end / end:ready, wake / wake:self,
// drop / drop:cancelled, release. A wake is not a call of its own: the
// runtime reports it in the next on_poll_start (PollStart::wake), and the
// recorder writes it as a "wake" event just before that "start", with the
// wake's own time.
//
// It also checks that the poll calls run on the polling worker: the thread
// of on_poll_start and on_poll_end runs the worker named by
// PollStart::worker_slot (spindle::detail::worker_slot()).
//
// Thread safety: the runtime may call the hooks from any thread; the
// accessors are safe from any thread. The object must outlive on_release().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <spindle/runtime/detail/context.hpp>
#include <spindle/runtime/hooks.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/sync.hpp"

namespace spindle::test {

/// One hook call.
struct HookEvent {
  enum class Kind { kSpawn, kWake, kPollStart, kPollEnd, kDrop, kRelease };
  Kind kind;
  Instant at{};            // the Instant passed (spawn, wake, poll start/end)
  bool flag = false;       // wake: self_wake; poll end: ready; drop: cancelled
  std::size_t worker = 0;  // poll start: the worker
  std::thread::id thread{};  // the thread that made the call (a wake: the poll start's)
};

class RecordingHooks final : public TaskHooks {
 public:
  void on_spawn(const TaskInfo& info, Instant now) noexcept override {
    Guard g(*this);
    info_ = info;
    add({HookEvent::Kind::kSpawn, now, false, 0, std::this_thread::get_id()}, State::kNew,
        State::kScheduled);
  }
  void on_poll_start(const PollStart& p) noexcept override {
    Guard g(*this);
    const std::thread::id self = std::this_thread::get_id();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (spindle::detail::worker_slot() != p.worker_slot) {
        violation("on_poll_start off its worker (slot " + std::to_string(p.worker_slot) +
                  ", thread's " + std::to_string(spindle::detail::worker_slot()) + ")");
      }
      if ((p.wake == WakeKind::kFirstPoll) != (state_ == State::kScheduled)) {
        violation(std::string("poll start reports ") +
                  (p.wake == WakeKind::kFirstPoll ? "a first poll" : "a wake") + " in state " +
                  name(state_));
      }
      poll_slot_ = p.worker_slot;
      if (p.wake == WakeKind::kFirstPoll) first_poll_slot_ = p.worker_slot;
    }
    if (p.wake != WakeKind::kFirstPoll) {
      add({HookEvent::Kind::kWake, p.woken_at, p.self_wake, 0, self}, State::kIdle,
          State::kScheduled);
    }
    add({HookEvent::Kind::kPollStart, p.now, false, p.worker, self}, State::kScheduled,
        State::kPolling);
  }
  void on_poll_end(Instant now, bool ready) noexcept override {
    Guard g(*this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (spindle::detail::worker_slot() != poll_slot_) {
        violation("on_poll_end off the worker of its poll start");
      }
    }
    add({HookEvent::Kind::kPollEnd, now, ready, 0, std::this_thread::get_id()}, State::kPolling,
        ready ? State::kReady : State::kIdle);
  }
  void on_drop(bool cancelled) noexcept override {
    Guard g(*this);
    std::lock_guard<std::mutex> lock(mu_);
    // A finished task is dropped uncancelled; a queued, idle or refused one cancelled.
    bool ok = cancelled ? (state_ == State::kScheduled || state_ == State::kIdle)
                        : state_ == State::kReady;
    if (!ok)
      violation("on_drop(" + std::string(cancelled ? "true" : "false") + ") in state " +
                name(state_));
    events_.push_back({HookEvent::Kind::kDrop, Instant{}, cancelled, 0, std::this_thread::get_id()});
    state_ = State::kDropped;
    cv_.notify_all();
  }
  void on_release() noexcept override {
    Guard g(*this);
    std::lock_guard<std::mutex> lock(mu_);
    // Dropped tasks are released; an empty Task refused at spawn is released at once.
    if (state_ != State::kDropped && state_ != State::kNew) {
      violation("on_release in state " + name(state_));
    }
    events_.push_back({HookEvent::Kind::kRelease, Instant{}, false, 0, std::this_thread::get_id()});
    state_ = State::kReleased;
    ++releases_;
    cv_.notify_all();
  }

  /// Every call so far.
  [[nodiscard]] std::vector<HookEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  /// The calls so far as words (see the file comment).
  [[nodiscard]] std::string trace() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s;
    for (const HookEvent& e : events_) {
      if (!s.empty()) s += ' ';
      s += word(e);
    }
    return s;
  }
  /// What broke the documented order or overlapped; empty when nothing did.
  [[nodiscard]] std::string violations() const {
    std::lock_guard<std::mutex> lock(mu_);
    return violations_;
  }
  [[nodiscard]] TaskInfo info() const {
    std::lock_guard<std::mutex> lock(mu_);
    return info_;
  }
  /// The worker slot of the first poll (PollStart::worker_slot).
  [[nodiscard]] std::uint32_t first_poll_slot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_poll_slot_;
  }
  [[nodiscard]] int releases() const {
    std::lock_guard<std::mutex> lock(mu_);
    return releases_;
  }
  /// Waits until on_release was called.
  [[nodiscard]] bool wait_released(std::chrono::nanoseconds limit = kPatience) const {
    return wait_for(
        [](const std::vector<HookEvent>& ev) {
          return !ev.empty() && ev.back().kind == HookEvent::Kind::kRelease;
        },
        limit);
  }
  /// Waits until `pred(events)` holds.
  template <class Pred>
  [[nodiscard]] bool wait_for(Pred pred, std::chrono::nanoseconds limit = kPatience) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return pred(events_); });
  }
  /// Number of recorded calls of `kind`.
  [[nodiscard]] int count(HookEvent::Kind kind) const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const HookEvent& e : events_) n += e.kind == kind ? 1 : 0;
    return n;
  }

 private:
  enum class State { kNew, kScheduled, kPolling, kIdle, kReady, kDropped, kReleased };

  /// Detects two hook calls of the same task running at once.
  struct Guard {
    explicit Guard(RecordingHooks& h) : hooks(h) {
      if (hooks.in_call_.fetch_add(1) != 0) {
        std::lock_guard<std::mutex> lock(hooks.mu_);
        hooks.violation("two hook calls overlapped");
      }
    }
    ~Guard() { hooks.in_call_.fetch_sub(1); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    RecordingHooks& hooks;
  };

  void add(HookEvent e, State from, State to) {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != from) violation(word(e) + " in state " + name(state_));
    events_.push_back(e);
    state_ = to;
    cv_.notify_all();
  }
  void violation(const std::string& what) {  // mu_ held
    if (!violations_.empty()) violations_ += "; ";
    violations_ += what;
  }
  static std::string word(const HookEvent& e) {
    switch (e.kind) {
      case HookEvent::Kind::kSpawn:
        return "spawn";
      case HookEvent::Kind::kWake:
        return e.flag ? "wake:self" : "wake";
      case HookEvent::Kind::kPollStart:
        return "start";
      case HookEvent::Kind::kPollEnd:
        return e.flag ? "end:ready" : "end";
      case HookEvent::Kind::kDrop:
        return e.flag ? "drop:cancelled" : "drop";
      case HookEvent::Kind::kRelease:
        return "release";
    }
    return "?";
  }
  static std::string name(State s) {
    switch (s) {
      case State::kNew:
        return "new";
      case State::kScheduled:
        return "scheduled";
      case State::kPolling:
        return "polling";
      case State::kIdle:
        return "idle";
      case State::kReady:
        return "ready";
      case State::kDropped:
        return "dropped";
      case State::kReleased:
        return "released";
    }
    return "?";
  }

  mutable std::mutex mu_;                   // guards everything below but in_call_
  mutable std::condition_variable cv_;      // signalled on every call
  std::vector<HookEvent> events_;           // every call, in order
  State state_ = State::kNew;               // where the documented order stands
  std::string violations_;                  // broken-order and overlap reports
  TaskInfo info_;                           // from on_spawn
  int releases_ = 0;                        // on_release calls
  std::atomic<int> in_call_{0};             // hook calls running now
  std::uint32_t poll_slot_ = 0;             // worker slot of the poll in progress
  std::uint32_t first_poll_slot_ = 0;       // worker slot of the first poll
};

}  // namespace spindle::test
