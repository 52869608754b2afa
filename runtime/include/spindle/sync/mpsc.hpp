// spindle/sync/mpsc.hpp — multi-producer, single-consumer channels.
//
//   spindle::sync::mpsc::channel<T>(capacity)    bounded: {Sender<T>, Receiver<T>}
//   spindle::sync::mpsc::unbounded_channel<T>()  unbounded: {UnboundedSender<T>, Receiver<T>}
//   spindle::sync::mpsc::Sender<T>           copyable; co_await send(v) waits for room
//   spindle::sync::mpsc::UnboundedSender<T>  copyable; send(v) never waits (any thread)
//   spindle::sync::mpsc::Receiver<T>         move-only; co_await recv(), try_recv(),
//   blocking_recv() spindle::sync::mpsc::UnboundedReceiver<T>  the same type as Receiver<T>
//   spindle::sync::mpsc::SendError<T>        the receiver is closed or gone; carries the value back
//
// Example:
//   auto [tx, rx] = spindle::sync::mpsc::channel<Job>(64);
//   for (int i = 0; i < 4; ++i) {
//     spindle::spawn([](spindle::sync::mpsc::Sender<Job> tx, int id) -> spindle::Task<void> {
//       for (Job j : make_jobs(id)) co_await tx.send(std::move(j));  // waits while full
//     }(tx, i));
//   }
//   tx = {};  // drop our own sender, or recv() would never report the end
//   while (std::optional<Job> j = co_await rx.recv()) run(*j);  // nullopt: all senders gone
//
// Semantics:
//   - Values are received in the order their sends completed; each value
//     is received exactly once or, if never received, destroyed exactly once
//     (with the Receiver, or with the last reference to the channel).
//   - Bounded: at most `capacity` values are queued. co_await send(v) waits
//     while the channel is full; waiting senders get room in FIFO order
//     (a sender that finds others waiting queues behind them).
//   - Errors: sending after the receiver closed or was destroyed throws
//     SendError<T>, from which the unsent value can be taken back
//     (e.value()). A bounded sender waiting for room when the receiver
//     closes fails the same way. Unbounded send() throws it directly.
//   - The end: recv() returns std::nullopt once the queue is empty and
//     either every Sender is gone or the receiver called close(). Values
//     queued before close() can still be received.
//
// Budget: a recv() that finds a value (or the end) and a send() that finds
// room complete at once and spend one unit of the task's cooperative
// budget; when the budget is spent the task yields first, so a task
// draining an always-full channel still lets its neighbours run. A recv
// that yields has not taken its value yet (it stays first in the queue); a
// send that yields holds a reserved slot and queues its value when it
// resumes.
//
// Cancellation (a task destroyed while suspended, by JoinHandle::abort or
// shutdown): a send waiting for room leaves the queue and its value is
// destroyed with the frame, never queued; if room had just been handed to
// it (or reserved before a budget yield), the room passes to the next
// waiting sender. A recv leaves the value in the channel for the next recv.
// Nothing is lost or delivered twice.
//
// The value type T: an object type (no reference, void, function or C
// array), not const or volatile, move-constructible, with a destructor that
// does not throw. Each is a static_assert that says which one failed
// (spindle/sync/detail/value_requirements.hpp). Copyable is not required.
//
// Thread safety: Senders (bounded and unbounded) may be copied, used and
// destroyed on any threads, each object by one thread at a time. The
// Receiver is one object: one thread (one task) at a time, and one recv()
// at a time. UnboundedSender::send, try_send and the Receiver's try_recv,
// close and blocking_recv work from threads outside the runtime; co_await
// only inside a spindle task. A Sender or Receiver must outlive the
// co_await of its send()/recv().
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

#include "spindle/runtime/coop.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/thread_annotations.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/waker.hpp"
#include "spindle/sync/detail/errors.hpp"
#include "spindle/sync/detail/mutex.hpp"
#include "spindle/sync/detail/value_requirements.hpp"
#include "spindle/sync/detail/wait_list.hpp"
#include "spindle/sync/oneshot.hpp"  // detail::block_on_waker

namespace spindle::sync::mpsc {

/// A send failed because the receiver closed or was destroyed. The value
/// that was not sent travels in the exception: take it with
/// std::move(e.value()). Copies of the exception share the one value.
template <class T>
class SendError : public Closed {
 public:
  explicit SendError(T value)
      : Closed(
            "spindle::sync::mpsc: send failed: the receiver is closed or gone (the unsent "
            "value is in the SendError)"),
        value_(std::make_shared<T>(std::move(value))) {}

  /// The value that was not sent.
  [[nodiscard]] T& value() const noexcept { return *value_; }

 private:
  std::shared_ptr<T> value_;  // the unsent value, shared by copies of the exception
};

template <class T>
class Sender;
template <class T>
class UnboundedSender;
template <class T>
class Receiver;
template <class T>
using UnboundedReceiver = Receiver<T>;

/// The largest capacity of a bounded channel.
inline constexpr std::size_t kMaxCapacity = std::numeric_limits<std::size_t>::max() >> 3;

namespace detail {

using spindle::sync::detail::DeferredWake;
using spindle::sync::detail::Lock;
using spindle::sync::detail::RawMutex;
using spindle::sync::detail::Waiter;
using spindle::sync::detail::WaitList;
using spindle::sync::detail::WaitState;
using spindle::sync::detail::WakeList;

/// The state shared by a channel's ends (one heap block, freed with the
/// last end). Its mutex guards the queue, the room count and both kinds of
/// waiters: the one receiver (rx_waiter_) and the queue of senders waiting
/// for room (send_waiters_, bounded channels only).
template <class T>
class Chan {
 public:
  /// capacity 0: unbounded.
  explicit Chan(std::size_t capacity) : capacity_(capacity), free_slots_(capacity) {}
  Chan(const Chan&) = delete;
  Chan& operator=(const Chan&) = delete;

  [[nodiscard]] bool bounded() const noexcept { return capacity_ != 0; }

  // ---- senders ---------------------------------------------------------------

  void add_sender() noexcept {
    // relaxed: the caller already holds a sender, so the count cannot be
    // zero or reach zero concurrently; nobody orders anything on an increment.
    senders_.fetch_add(1, std::memory_order_relaxed);
  }

  /// Drops one sender; the last one wakes a waiting receiver (which then
  /// sees the end once the queue is drained).
  void drop_sender() noexcept {
    // acq_rel: the sender's sends happen-before a receiver that reads 0.
    if (senders_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // A receiver that checked senders_ before our decrement did so under
    // mu_ and is therefore registered by the time we take mu_ here; one that
    // checks after it takes mu_ after us and reads 0. Either way it wakes.
    DeferredWake wake;  // woken after `lock` is released (declared first)
    Lock lock(mu_);
    take_receiver_locked(wake);
  }

  [[nodiscard]] std::size_t sender_count() const noexcept {
    return senders_.load(std::memory_order_relaxed);
  }

  /// Queues `value` (room is already accounted for). On exception (T's move
  /// constructor, or the deque's allocation) nothing is queued and `value`
  /// is as T's move constructor left it.
  void push_locked(T&& value, DeferredWake& wake) SPINDLE_REQUIRES(mu_) {
    queue_.push_back(std::move(value));
    take_receiver_locked(wake);
  }

  /// Takes one slot for a sender that found room. False when full or when
  /// senders already wait (FIFO: they go first).
  bool try_reserve_locked() SPINDLE_REQUIRES(mu_) {
    if (!bounded()) return true;
    if (!send_waiters_.empty() || free_slots_ == 0) return false;
    --free_slots_;
    return true;
  }

  /// Frees one slot: it goes straight to the oldest waiting sender, if any.
  void release_slot_locked(DeferredWake& wake) SPINDLE_REQUIRES(mu_) {
    if (!bounded()) return;
    if (Waiter* w = send_waiters_.pop_front()) {
      wake.set(w->complete(WaitState::kGranted));  // the slot is its own now; last touch
    } else {
      ++free_slots_;
    }
  }

  // ---- receiver --------------------------------------------------------------

  /// The oldest value, if any; its slot goes to the next waiting sender.
  std::optional<T> pop_locked(DeferredWake& wake) SPINDLE_REQUIRES(mu_) {
    if (queue_.empty()) return std::nullopt;
    std::optional<T> v(std::move(queue_.front()));
    queue_.pop_front();
    release_slot_locked(wake);
    return v;
  }

  /// Nothing queued, and nothing can come any more.
  [[nodiscard]] bool finished_locked() const SPINDLE_REQUIRES(mu_) {
    // acquire: pairs with drop_sender's acq_rel decrement.
    return queue_.empty() && (rx_closed_ || senders_.load(std::memory_order_acquire) == 0);
  }

  /// Completes the waiting receiver (if one is registered).
  void take_receiver_locked(DeferredWake& wake) SPINDLE_REQUIRES(mu_) {
    if (Waiter* w = std::exchange(rx_waiter_, nullptr)) {
      wake.set(w->complete(WaitState::kGranted));  // last touch of *w
    }
  }

  /// Registers the receiver's waiter, or returns false when a value (or the
  /// end) is already there. Throws UsageError when another receive waits.
  bool register_receiver_locked(Waiter* w, Waker waker) SPINDLE_REQUIRES(mu_) {
    if (!queue_.empty() || finished_locked()) return false;
    if (rx_waiter_ != nullptr) {
      throw UsageError(
          "spindle::sync::mpsc::Receiver: two receives wait at once (a Receiver serves one "
          "recv at a time)");
    }
    w->waker = std::move(waker);
    w->state.store(WaitState::kQueued, std::memory_order_relaxed);
    rx_waiter_ = w;
    return true;
  }

  /// Removes the receiver's waiter if it is still registered.
  void unregister_receiver_locked(const Waiter* w) SPINDLE_REQUIRES(mu_) {
    if (rx_waiter_ == w) rx_waiter_ = nullptr;
  }

  /// Closes the receiving side: later sends fail, waiting senders fail. A
  /// receive waiting on another thread is woken too (it then drains what is
  /// queued and sees the end).
  void close_locked(WakeList& wakes) SPINDLE_REQUIRES(mu_) {
    rx_closed_ = true;
    if (Waiter* w = std::exchange(rx_waiter_, nullptr)) {
      wakes.push(w->complete(WaitState::kGranted));  // `wakes` is empty: room for one
    }
    spindle::sync::detail::complete_all_locked(mu_, send_waiters_, WaitState::kClosed, wakes);
  }

  const std::size_t capacity_;                             // the bound; 0 for an unbounded channel
  std::atomic<std::size_t> senders_{1};                    // live Sender objects (see drop_sender)
  mutable RawMutex mu_;                                    // guards everything below
  std::deque<T> queue_ SPINDLE_GUARDED_BY(mu_);            // values sent, not yet received
  std::size_t free_slots_ SPINDLE_GUARDED_BY(mu_);         // bounded: capacity - queued - reserved
  bool rx_closed_ SPINDLE_GUARDED_BY(mu_) = false;         // receiver closed or destroyed
  Waiter* rx_waiter_ SPINDLE_GUARDED_BY(mu_) = nullptr;    // the waiting receive, if any
  WaitList<Waiter> send_waiters_ SPINDLE_GUARDED_BY(mu_);  // senders waiting for room, FIFO
};

/// What Sender and UnboundedSender share: the counted reference.
template <class T>
class SenderBase {
  static_assert(spindle::sync::detail::check_channel_value<T, true>());

 public:
  /// Number of live senders of this channel (bounded and copies); 0 for an
  /// empty sender. A snapshot.
  [[nodiscard]] std::size_t sender_count() const noexcept {
    return chan_ ? chan_->sender_count() : 0;
  }
  /// True once the receiver has closed or been destroyed (sends would fail),
  /// or for an empty sender.
  [[nodiscard]] bool is_closed() const {
    if (!chan_) return true;
    Lock lock(chan_->mu_);
    return chan_->rx_closed_;
  }
  /// False for a default-constructed or moved-from sender.
  [[nodiscard]] bool valid() const noexcept { return chan_ != nullptr; }
  /// True when both refer to the same channel.
  [[nodiscard]] bool same_channel(const SenderBase& other) const noexcept {
    return chan_ == other.chan_;
  }

 protected:
  SenderBase() noexcept = default;
  explicit SenderBase(std::shared_ptr<Chan<T>> chan) noexcept : chan_(std::move(chan)) {}
  SenderBase(const SenderBase& other) noexcept : chan_(other.chan_) {
    if (chan_) chan_->add_sender();
  }
  SenderBase(SenderBase&& other) noexcept : chan_(std::move(other.chan_)) {}
  SenderBase& operator=(const SenderBase& other) noexcept {
    SenderBase copy(other);
    std::swap(chan_, copy.chan_);
    return *this;
  }
  SenderBase& operator=(SenderBase&& other) noexcept {
    if (this != &other) {
      drop();
      chan_ = std::move(other.chan_);
    }
    return *this;
  }
  ~SenderBase() { drop(); }

  Chan<T>& require(const char* what) const {
    if (!chan_) throw UsageError(what);
    return *chan_;
  }

  std::shared_ptr<Chan<T>> chan_;  // the channel; null when empty

 private:
  void drop() noexcept {
    if (chan_) {
      chan_->drop_sender();
      chan_.reset();
    }
  }
};

}  // namespace detail

/// The sending end of a bounded channel. Copyable: every copy counts as a
/// sender; the channel ends for the receiver when the last one is gone.
template <class T>
class Sender : public detail::SenderBase<T> {
 public:
  class Send;

  /// An empty sender (valid() is false).
  Sender() noexcept = default;
  Sender(const Sender&) noexcept = default;
  Sender(Sender&&) noexcept = default;
  Sender& operator=(const Sender&) noexcept = default;
  Sender& operator=(Sender&&) noexcept = default;
  ~Sender() = default;

  /// co_await inside a spindle task: queues `value`, first waiting (FIFO
  /// among senders) while the channel is full. Throws SendError<T> (from
  /// the co_await, carrying the value) when the receiver is closed or gone,
  /// also if it closes while this send waits; UsageError on an empty
  /// sender. If the task is destroyed while waiting, the value is never
  /// queued and is destroyed with the task's frame.
  [[nodiscard(
      "the value is not sent until the Send is co_awaited (a discarded Send destroys it)")]] Send
  send(T value) {
    return Send(&this->require("spindle::sync::mpsc::Sender::send on an empty sender"),
                std::move(value));
  }

  /// Never waits: queues `value` if there is room now (and no sender is
  /// waiting for room). Returns std::nullopt when queued, or the value
  /// itself, untouched, when the channel is full. Throws SendError<T>
  /// (carrying the value) when the receiver is closed or gone; UsageError
  /// on an empty sender. Spends no budget. Safe from any thread.
  [[nodiscard(
      "a full channel hands the value back in the result; discarding it loses the value")]] std::
      optional<T>
      try_send(T value) {
    auto& chan = this->require("spindle::sync::mpsc::Sender::try_send on an empty sender");
    {
      detail::DeferredWake wake;  // woken after `lock` is released (declared first)
      detail::Lock lock(chan.mu_);
      if (!chan.rx_closed_) {
        if (!chan.try_reserve_locked()) return std::optional<T>(std::move(value));
        try {
          chan.push_locked(std::move(value), wake);
        } catch (...) {
          chan.release_slot_locked(wake);
          throw;
        }
        return std::nullopt;
      }
    }
    throw SendError<T>(std::move(value));
  }

  /// The free room right now (capacity minus queued and reserved values).
  [[nodiscard]] std::size_t capacity() const {
    auto& chan = this->require("spindle::sync::mpsc::Sender::capacity on an empty sender");
    detail::Lock lock(chan.mu_);
    return chan.free_slots_;
  }
  /// The capacity the channel was created with.
  [[nodiscard]] std::size_t max_capacity() const {
    return this->require("spindle::sync::mpsc::Sender::max_capacity on an empty sender").capacity_;
  }
  /// Senders waiting for room right now (a snapshot).
  [[nodiscard]] std::size_t waiting_senders() const {
    auto& chan = this->require("spindle::sync::mpsc::Sender::waiting_senders on an empty sender");
    detail::Lock lock(chan.mu_);
    return chan.send_waiters_.size();
  }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel(std::size_t capacity);
  explicit Sender(std::shared_ptr<detail::Chan<T>> chan) noexcept
      : detail::SenderBase<T>(std::move(chan)) {}
};

/// The awaitable of Sender<T>::send(value); holds the value until it is
/// queued. Not copyable or movable; co_await it once.
template <class T>
class [[nodiscard(
    "the value is not sent until the Send is co_awaited (a discarded Send destroys "
    "it)")]] Sender<T>::Send {
 public:
  Send(const Send&) = delete;
  Send& operator=(const Send&) = delete;

  /// A send that never got its value queued leaves the queue of waiting
  /// senders, or passes on the slot it had been given; the value is
  /// destroyed with this object.
  ~Send() {
    if (consumed_) return;
    if (!linked_) {
      // Never queued (relaxed: only this task has seen the state).
      if (node_.state.load(std::memory_order_relaxed) == detail::WaitState::kGranted) {
        detail::DeferredWake wake;  // woken after `lock` is released (declared first)
        detail::Lock lock(chan_->mu_);
        chan_->release_slot_locked(wake);
      }
      return;
    }
    detail::DeferredWake wake;  // woken after `lock` is released (declared first)
    detail::Lock lock(chan_->mu_);
    // relaxed: state is only written under mu_, which we hold.
    switch (node_.state.load(std::memory_order_relaxed)) {
      case detail::WaitState::kQueued:
        node_.unlink();
        break;
      case detail::WaitState::kGranted:
        chan_->release_slot_locked(wake);  // the slot we were handed goes on
        break;
      default:
        break;
    }
  }

  [[nodiscard]] bool await_ready() {
    if (std::exchange(awaited_, true)) {
      throw UsageError("spindle::sync::mpsc::Sender: a Send awaitable was awaited twice");
    }
    detail::DeferredWake wake;  // woken after `lock` is released (declared first)
    detail::Lock lock(chan_->mu_);
    if (!try_decide_locked()) return false;
    if (!coop::try_consume()) {
      yield_ = true;  // keep the outcome (a reserved slot, or closed); yield first
      return false;
    }
    if (node_.state.load(std::memory_order_relaxed) == detail::WaitState::kGranted) {
      // Room and budget: queue the value right here, under the same lock.
      consumed_ = true;
      push_reserved_locked(wake);
    }
    return true;  // queued, or closed (await_resume throws)
  }

  bool await_suspend(std::coroutine_handle<> h) {
    if (yield_) {
      coop::forced_yield(h);
      return true;
    }
    Waker waker = current_waker(h, node_.ready_check());
    {
      detail::Lock lock(chan_->mu_);
      if (!try_decide_locked()) {
        node_.waker = std::move(waker);
        node_.state.store(detail::WaitState::kQueued, std::memory_order_relaxed);
        linked_ = true;
        chan_->send_waiters_.push_back(&node_);
        return true;
      }
    }
    // Room appeared (reserved) or the receiver closed since await_ready.
    if (coop::try_consume()) return false;
    coop::forced_yield(h);
    return true;
  }

  /// Queues the value into the slot this send holds, or throws SendError<T>.
  void await_resume() {
    if (consumed_) return;  // queued in await_ready
    // acquire: pairs with the release in complete() (slot granted / closed).
    detail::WaitState s = node_.state.load(std::memory_order_acquire);
    if (s == detail::WaitState::kClosed) {
      consumed_ = true;
      throw SendError<T>(std::move(value_));
    }
    if (s != detail::WaitState::kGranted) {
      throw UsageError(
          "spindle::sync::mpsc::Sender::send resumed before it had room (internal error)");
    }
    {
      detail::DeferredWake wake;  // woken after `lock` is released (declared first)
      detail::Lock lock(chan_->mu_);
      consumed_ = true;  // from here on the slot is queued or released below
      if (!chan_->rx_closed_) {
        push_reserved_locked(wake);
        return;
      }
      chan_->release_slot_locked(wake);  // closed after we got room
    }
    throw SendError<T>(std::move(value_));
  }

 private:
  friend class Sender;
  Send(detail::Chan<T> * chan, T && value) : chan_(chan), value_(std::move(value)) {}

  /// Decides the send at once if it can be: the receiver is closed
  /// (kClosed), or there is room (a slot is reserved: kGranted). False:
  /// it must wait for room.
  bool try_decide_locked() SPINDLE_REQUIRES(chan_->mu_) {
    if (chan_->rx_closed_) {
      node_.state.store(detail::WaitState::kClosed, std::memory_order_relaxed);
      return true;
    }
    if (chan_->try_reserve_locked()) {
      node_.state.store(detail::WaitState::kGranted, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  /// Queues the value into this send's reserved slot; on exception the slot
  /// is given back and the exception propagates.
  void push_reserved_locked(detail::DeferredWake & wake) SPINDLE_REQUIRES(chan_->mu_) {
    try {
      chan_->push_locked(std::move(value_), wake);
    } catch (...) {
      chan_->release_slot_locked(wake);
      throw;
    }
  }

  detail::Chan<T>* chan_;  // the channel (the Sender that made us keeps it alive)
  T value_;                // the value to send; moved into the queue once sent
  detail::Waiter node_;    // wait-list node while waiting for room
  bool linked_ = false;    // was queued: the destructor must take the lock
  bool consumed_ = false;  // the value was queued (or handed back in a SendError)
  bool yield_ = false;     // decided at once but out of budget: yield first
  bool awaited_ = false;   // await_ready ran: a second co_await is refused
};

/// The sending end of an unbounded channel. Copyable; send() never waits.
template <class T>
class UnboundedSender : public detail::SenderBase<T> {
 public:
  /// An empty sender (valid() is false).
  UnboundedSender() noexcept = default;
  UnboundedSender(const UnboundedSender&) noexcept = default;
  UnboundedSender(UnboundedSender&&) noexcept = default;
  UnboundedSender& operator=(const UnboundedSender&) noexcept = default;
  UnboundedSender& operator=(UnboundedSender&&) noexcept = default;
  ~UnboundedSender() = default;

  /// Queues `value` and wakes the receiver. Never waits (beyond the
  /// channel's short internal lock), from any thread, inside or outside the
  /// runtime. Throws SendError<T> (carrying the value) when the receiver
  /// is closed or gone; UsageError on an empty sender; std::bad_alloc.
  void send(T value) {
    auto& chan = this->require("spindle::sync::mpsc::UnboundedSender::send on an empty sender");
    {
      detail::DeferredWake wake;  // woken after `lock` is released (declared first)
      detail::Lock lock(chan.mu_);
      if (!chan.rx_closed_) {
        chan.push_locked(std::move(value), wake);
        return;
      }
    }
    throw SendError<T>(std::move(value));
  }

 private:
  template <class U>
  friend std::pair<UnboundedSender<U>, Receiver<U>> unbounded_channel();
  explicit UnboundedSender(std::shared_ptr<detail::Chan<T>> chan) noexcept
      : detail::SenderBase<T>(std::move(chan)) {}
};

/// The receiving end (of a bounded or an unbounded channel). Move-only.
/// Destroying it closes the channel and destroys the values still queued.
template <class T>
class Receiver {
  static_assert(spindle::sync::detail::check_channel_value<T, true>());

 public:
  class Recv;

  /// An empty receiver (valid() is false).
  Receiver() noexcept = default;
  Receiver(Receiver&& other) noexcept = default;
  Receiver& operator=(Receiver&& other) noexcept {
    if (this != &other) {
      drop();
      chan_ = std::move(other.chan_);
    }
    return *this;
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;
  ~Receiver() { drop(); }

  /// co_await inside a spindle task: the next value, waiting until one is
  /// sent; std::nullopt once the queue is empty and every sender is gone
  /// (or close() was called). Throws UsageError on an empty receiver, or
  /// when another recv of this receiver is already waiting.
  [[nodiscard("no value is received until the Recv is co_awaited")]] Recv recv() {
    return Recv(&require("spindle::sync::mpsc::Receiver::recv on an empty receiver"));
  }

  /// Never waits: the next value if one is queued, else std::nullopt (use
  /// is_closed() to tell "nothing yet" from "nothing ever again"). Safe from
  /// any thread. Spends no budget. Throws UsageError on an empty receiver.
  [[nodiscard("the value received is destroyed when the result is discarded")]] std::optional<T>
  try_recv() {
    auto& chan = require("spindle::sync::mpsc::Receiver::try_recv on an empty receiver");
    detail::DeferredWake wake;  // woken after `lock` is released (declared first)
    detail::Lock lock(chan.mu_);
    return chan.pop_locked(wake);
  }

  /// Blocks the calling thread until a value arrives (returned) or the
  /// channel ends (std::nullopt). For threads outside the runtime: throws
  /// UsageError on a runtime worker thread (it would block the tasks that
  /// must send), or on an empty receiver.
  [[nodiscard("the value received is destroyed when the result is discarded")]] std::optional<T>
  blocking_recv() {
    auto& chan = require("spindle::sync::mpsc::Receiver::blocking_recv on an empty receiver");
    if (spindle::detail::this_thread_context().worker != nullptr) {
      throw UsageError(
          "spindle::sync::mpsc::Receiver::blocking_recv called on a runtime worker thread; it "
          "would block the worker. co_await recv() inside tasks.");
    }
    for (;;) {
      {
        detail::DeferredWake wake;  // woken after `lock` is released (declared first)
        detail::Lock lock(chan.mu_);
        if (std::optional<T> v = chan.pop_locked(wake)) return v;
        if (chan.finished_locked()) return std::nullopt;
      }
      // Park this thread until a sender (or the last sender's drop) wakes it,
      // then look again. The waiter lives on this stack frame: the waking
      // thread unregisters it under the mutex before it wakes us.
      BlockingWait wait{&chan, {}};
      sync::detail::block_on_waker(&BlockingWait::arm, &wait);
    }
  }

  /// Closes the channel from the receiving side: waiting and later sends
  /// fail with SendError<T>; values already queued can still be received,
  /// after which recv() returns std::nullopt. Idempotent. Safe from any
  /// thread. Throws UsageError on an empty receiver.
  void close() {
    auto& chan = require("spindle::sync::mpsc::Receiver::close on an empty receiver");
    detail::WakeList wakes;  // woken after `lock` is released (declared first)
    detail::Lock lock(chan.mu_);
    chan.close_locked(wakes);
  }

  /// True once close() was called or every sender is gone (values may
  /// still be queued). True for an empty receiver.
  [[nodiscard]] bool is_closed() const {
    if (!chan_) return true;
    detail::Lock lock(chan_->mu_);
    return chan_->rx_closed_ || chan_->sender_count() == 0;
  }
  /// Values queued right now (a snapshot).
  [[nodiscard]] std::size_t len() const {
    if (!chan_) return 0;
    detail::Lock lock(chan_->mu_);
    return chan_->queue_.size();
  }
  [[nodiscard]] bool is_empty() const { return len() == 0; }
  /// Live senders of the channel (a snapshot).
  [[nodiscard]] std::size_t sender_count() const noexcept {
    return chan_ ? chan_->sender_count() : 0;
  }
  /// False for a default-constructed or moved-from receiver.
  [[nodiscard]] bool valid() const noexcept { return chan_ != nullptr; }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel(std::size_t capacity);
  template <class U>
  friend std::pair<UnboundedSender<U>, Receiver<U>> unbounded_channel();
  explicit Receiver(std::shared_ptr<detail::Chan<T>> chan) noexcept : chan_(std::move(chan)) {}

  /// blocking_recv's registration with the thread's waker.
  struct BlockingWait {
    detail::Chan<T>* chan;  // the channel
    detail::Waiter node;    // registered as the channel's receiver while parked
    static bool arm(void* self, Waker w) {
      auto* bw = static_cast<BlockingWait*>(self);
      detail::Lock lock(bw->chan->mu_);
      return bw->chan->register_receiver_locked(&bw->node, std::move(w));
    }
  };

  detail::Chan<T>& require(const char* what) const {
    if (!chan_) throw UsageError(what);
    return *chan_;
  }

  /// Closes the channel and destroys the queued values (outside the lock:
  /// a value's destructor may use the channel, e.g. drop a Sender of it).
  void drop() noexcept {
    if (!chan_) return;
    std::deque<T> doomed;
    {
      detail::WakeList wakes;  // woken after `lock` is released (declared first)
      detail::Lock lock(chan_->mu_);
      chan_->close_locked(wakes);
      doomed.swap(chan_->queue_);
      if (chan_->bounded()) chan_->free_slots_ += doomed.size();
    }
    chan_.reset();
  }

  std::shared_ptr<detail::Chan<T>> chan_;  // the channel; null when empty
};

/// The awaitable of Receiver<T>::recv(). Not copyable or movable; co_await it once.
template <class T>
class [[nodiscard("no value is received until the Recv is co_awaited")]] Receiver<T>::Recv {
 public:
  Recv(const Recv&) = delete;
  Recv& operator=(const Recv&) = delete;

  /// Unregisters a receive that is still waiting. A value that arrived for
  /// it stays queued for the next receive: nothing to hand on.
  ~Recv() {
    if (!linked_) return;
    detail::Lock lock(chan_->mu_);
    chan_->unregister_receiver_locked(&node_);
  }

  [[nodiscard]] bool await_ready() {
    if (std::exchange(awaited_, true)) {
      throw UsageError("spindle::sync::mpsc::Receiver: a Recv awaitable was awaited twice");
    }
    detail::DeferredWake wake;  // woken after `lock` is released (declared first)
    detail::Lock lock(chan_->mu_);
    if (!chan_->queue_.empty()) {
      if (!coop::try_consume()) {
        yield_ = true;  // the value stays queued; await_resume takes it
        return false;
      }
      result_ = chan_->pop_locked(wake);
      ready_ = true;
      return true;
    }
    if (!chan_->finished_locked()) return false;
    if (!coop::try_consume()) {
      yield_ = true;
      return false;
    }
    ready_ = true;  // the end: result_ stays std::nullopt
    return true;
  }

  bool await_suspend(std::coroutine_handle<> h) {
    if (yield_) {
      coop::forced_yield(h);
      return true;
    }
    Waker waker = current_waker(h, node_.ready_check());
    {
      detail::Lock lock(chan_->mu_);
      if (chan_->register_receiver_locked(&node_, std::move(waker))) {
        linked_ = true;
        return true;
      }
    }
    // A value (or the end) arrived since await_ready: only this receiver
    // takes values, so it stays there while we resume or yield.
    if (coop::try_consume()) return false;
    coop::forced_yield(h);
    return true;
  }

  /// The value, or std::nullopt at the end of the channel.
  std::optional<T> await_resume() {
    if (ready_) return std::move(result_);
    detail::DeferredWake wake;  // woken after `lock` is released (declared first)
    detail::Lock lock(chan_->mu_);
    if (linked_) {
      linked_ = false;
      // Normally already done by the waking sender.
      chan_->unregister_receiver_locked(&node_);
    }
    if (std::optional<T> v = chan_->pop_locked(wake)) return v;
    if (chan_->finished_locked()) return std::nullopt;
    throw UsageError(
        "spindle::sync::mpsc::Receiver::recv resumed before a value arrived (internal error)");
  }

 private:
  friend class Receiver;
  explicit Recv(detail::Chan<T> * chan) noexcept : chan_(chan) {}

  detail::Chan<T>* chan_;    // the channel (the Receiver keeps it alive)
  detail::Waiter node_;      // registered as the channel's receiver while waiting
  std::optional<T> result_;  // the value taken in await_ready
  bool ready_ = false;       // await_ready completed the receive (result_ is the answer)
  bool linked_ = false;      // registered: the destructor must take the lock
  bool yield_ = false;       // ready but out of budget: yield first
  bool awaited_ = false;     // await_ready ran: a second co_await is refused
};

/// Creates a bounded channel holding at most `capacity` queued values.
/// Throws std::invalid_argument when capacity is 0 (use unbounded_channel()
/// for no limit) or above kMaxCapacity; std::bad_alloc.
template <class T>
[[nodiscard(
    "a channel whose ends are discarded is destroyed at once")]] std::pair<Sender<T>, Receiver<T>>
channel(std::size_t capacity) {
  if (capacity == 0) {
    throw std::invalid_argument(
        "spindle::sync::mpsc::channel: capacity must be at least 1 (use unbounded_channel() for a "
        "channel without a limit)");
  }
  if (capacity > kMaxCapacity) {
    throw std::invalid_argument(
        "spindle::sync::mpsc::channel: capacity exceeds spindle::sync::mpsc::kMaxCapacity");
  }
  auto chan = std::make_shared<detail::Chan<T>>(capacity);
  return {Sender<T>(chan), Receiver<T>(chan)};
}

/// Creates an unbounded channel: send() never waits (memory is the limit).
/// Throws std::bad_alloc.
template <class T>
[[nodiscard("a channel whose ends are discarded is destroyed at once")]] std::pair<
    UnboundedSender<T>, Receiver<T>>
unbounded_channel() {
  auto chan = std::make_shared<detail::Chan<T>>(0);
  return {UnboundedSender<T>(chan), Receiver<T>(chan)};
}

}  // namespace spindle::sync::mpsc
