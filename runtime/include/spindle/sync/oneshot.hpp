// spindle/sync/oneshot.hpp — a channel that carries exactly one value.
//
//   spindle::sync::oneshot<T>()  creates a connected {Sender<T>, Receiver<T>} pair
//   spindle::sync::Sender<T>     sends the value once (from any thread)
//   spindle::sync::Receiver<T>   co_await it (inside a task) or blocking_recv() (outside)
//   spindle::sync::RecvError     the sender was dropped without sending
//
// Example:
//   auto [tx, rx] = spindle::sync::oneshot<int>();
//   spindle::spawn([](spindle::sync::Sender<int> tx) -> spindle::Task<void> {
//     tx.send(7);
//     co_return;
//   }(std::move(tx)));
//   int v = co_await rx;   // 7; throws RecvError had the sender been dropped unsent
//
// Cancellation: destroying a task suspended on a Receiver loses nothing and
// delivers nothing twice — the value stays in the channel until the Receiver
// is destroyed. Destroying the Receiver first makes send() return false.
//
// The value type T: an object type (no reference, void, function or C
// array), move-constructible, with a destructor that does not throw; each
// is a static_assert that says which one failed.
//
// Thread safety: the Sender and the Receiver may be used concurrently by
// different threads; each one must not be used by two threads at once.
// Memory: one heap block per channel, freed when both ends are gone.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <utility>

#include "spindle/runtime/coop.hpp"
#include "spindle/runtime/detail/task_alloc.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/waker.hpp"
#include "spindle/sync/detail/value_requirements.hpp"

namespace spindle::detail {
void check_may_block(const char* what);  // runtime/src/task_cell.cpp
}  // namespace spindle::detail

namespace spindle::sync {

/// The Sender was destroyed without sending a value.
class RecvError : public spindle::Error {
 public:
  RecvError() : Error("spindle::sync::oneshot: the sender was dropped without sending a value") {}
};

namespace detail {

/// Blocks the calling (non-worker) thread until `ready()` is true; `arm`
/// registers a Waker and returns false if the event already happened.
/// Throws UsageError on a runtime worker thread.
void block_on_waker(bool (*arm)(void* ctx, Waker w), void* ctx);

/// The block shared by both ends. Flags:
///   kValue     the value is stored (written before the flag, by the sender)
///   kTxDropped the sender is gone (after sending, or without)
///   kRxDropped the receiver is gone
///   kRxWaker   rx_waker_ holds the receiver's waker; while set and neither
///              kValue nor kTxDropped is, only the sender may read it
/// The block is freed by whichever end drops the last of the two references.
template <class T>
class OneshotState {
 public:
  static constexpr std::uint32_t kValue = 1;
  static constexpr std::uint32_t kTxDropped = 2;
  static constexpr std::uint32_t kRxDropped = 4;
  static constexpr std::uint32_t kRxWaker = 8;

  std::atomic<std::uint32_t> flags{0};  // see above
  std::atomic<std::uint32_t> refs{2};   // one per end
  std::optional<T> value;               // the sent value (sender writes, receiver reads)
  Waker rx_waker;                       // the suspended receiver's waker

  static void* operator new(std::size_t size) { return spindle::detail::task_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept {
    spindle::detail::task_free(p, size);
  }

  void release() noexcept {
    // acq_rel: both ends' accesses happen-before the delete.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

}  // namespace detail

template <class T>
class Receiver;

/// The sending end. Move-only.
template <class T>
class Sender {
  static_assert(detail::check_channel_value<T, false>());

 public:
  Sender() noexcept = default;
  Sender(Sender&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  Sender& operator=(Sender&& o) noexcept {
    if (this != &o) {
      close();
      state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;
  /// Dropping an unsent Sender wakes the receiver, which then gets RecvError.
  ~Sender() { close(); }

  /// Sends the value and wakes the receiver. Returns false when the
  /// receiver is already gone (the value is destroyed). The Sender is
  /// consumed: afterwards valid() is false. Throws UsageError on an empty
  /// Sender (moved from or already used). Never blocks.
  bool send(T value) {
    if (state_ == nullptr) throw UsageError("spindle::sync::Sender::send on an empty sender");
    auto* s = std::exchange(state_, nullptr);
    s->value.emplace(std::move(value));
    // acq_rel: release publishes the value to the receiver; acquire makes
    // the receiver's waker (written before it set kRxWaker) visible here.
    std::uint32_t prev = s->flags.fetch_or(S::kValue | S::kTxDropped, std::memory_order_acq_rel);
    bool delivered = (prev & S::kRxDropped) == 0;
    if (delivered && (prev & S::kRxWaker) != 0) s->rx_waker.wake_by_ref();
    s->release();
    return delivered;
  }

  /// True once the receiver has been destroyed (a send would be lost).
  [[nodiscard]] bool is_closed() const noexcept {
    return state_ == nullptr ||
           (state_->flags.load(std::memory_order_acquire) & S::kRxDropped) != 0;
  }
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

 private:
  using S = detail::OneshotState<T>;
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> oneshot();
  explicit Sender(S* s) noexcept : state_(s) {}

  void close() noexcept {
    if (state_ == nullptr) return;
    auto* s = std::exchange(state_, nullptr);
    std::uint32_t prev = s->flags.fetch_or(S::kTxDropped, std::memory_order_acq_rel);
    if ((prev & (S::kRxWaker | S::kRxDropped)) == S::kRxWaker) s->rx_waker.wake_by_ref();
    s->release();
  }

  S* state_ = nullptr;  // shared block; null once sent, closed or moved from
};

/// The receiving end. Move-only. Await it once.
template <class T>
class Receiver {
  static_assert(detail::check_channel_value<T, false>());

 public:
  Receiver() noexcept = default;
  Receiver(Receiver&& o) noexcept
      : state_(std::exchange(o.state_, nullptr)), taken_(std::exchange(o.taken_, false)) {}
  Receiver& operator=(Receiver&& o) noexcept {
    if (this != &o) {
      close();
      state_ = std::exchange(o.state_, nullptr);
      taken_ = std::exchange(o.taken_, false);
    }
    return *this;
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;
  ~Receiver() { close(); }

  /// co_await inside a spindle task: the value, once sent. Throws RecvError
  /// when the sender was dropped unsent, UsageError when the value was
  /// already received or the Receiver is empty.
  auto operator co_await() & noexcept { return Awaiter{this, {}}; }
  auto operator co_await() && noexcept { return Awaiter{this, {}}; }

  /// Never blocks: the value if it has been sent, std::nullopt if not yet.
  /// Throws RecvError when the sender was dropped unsent, UsageError when
  /// the value was already received.
  [[nodiscard("the value received is destroyed when the result is discarded")]] std::optional<T>
  try_recv() {
    std::uint32_t f = flags();
    if ((f & S::kValue) != 0) return take();
    if ((f & S::kTxDropped) != 0) throw RecvError();
    return std::nullopt;
  }

  /// Blocks the calling thread until the value is sent (or the sender is
  /// dropped: RecvError). For threads outside the runtime; throws
  /// UsageError on a runtime worker thread.
  [[nodiscard("the value received is destroyed when the result is discarded")]] T blocking_recv() {
    spindle::detail::check_may_block("spindle::sync::Receiver::blocking_recv()");
    if ((flags() & (S::kValue | S::kTxDropped)) == 0) {
      detail::block_on_waker(
          [](void* self, Waker w) {
            return static_cast<Receiver*>(self)->register_waker(std::move(w));
          },
          this);
    }
    return finish();
  }

  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

 private:
  using S = detail::OneshotState<T>;
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> oneshot();
  explicit Receiver(S* s) noexcept : state_(s) {}

  std::uint32_t flags() const {
    if (state_ == nullptr) throw UsageError("spindle::sync::Receiver used while empty");
    if (taken_) throw UsageError("spindle::sync::Receiver: the value was already received");
    return state_->flags.load(std::memory_order_acquire);
  }
  T take() {
    taken_ = true;
    return std::move(*state_->value);
  }
  T finish() {
    std::uint32_t f = flags();
    if ((f & S::kValue) != 0) return take();
    if ((f & S::kTxDropped) != 0) throw RecvError();
    throw UsageError("spindle::sync::Receiver: internal error: resumed before a send");
  }

  /// Stores `w` as the receiver's waker. False when the value (or the
  /// sender's drop) has already arrived, so there is nothing to wait for.
  bool register_waker(Waker w) noexcept {
    S* s = state_;
    std::uint32_t cur = s->flags.load(std::memory_order_acquire);
    if ((cur & S::kRxWaker) != 0) {
      // A previous registration: take the slot back before rewriting it.
      for (;;) {
        if ((cur & (S::kValue | S::kTxDropped)) != 0) return false;
        if (s->flags.compare_exchange_weak(cur, cur & ~S::kRxWaker, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
          break;
        }
      }
    }
    s->rx_waker = std::move(w);
    cur = s->flags.load(std::memory_order_acquire);
    for (;;) {
      if ((cur & (S::kValue | S::kTxDropped)) != 0) return false;
      // release: publishes rx_waker to the sender.
      if (s->flags.compare_exchange_weak(cur, cur | S::kRxWaker, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
        return true;
      }
    }
  }

  void close() noexcept {
    if (state_ == nullptr) return;
    auto* s = std::exchange(state_, nullptr);
    const std::uint32_t prev = s->flags.fetch_or(S::kRxDropped, std::memory_order_acq_rel);
    // Neither sent nor dropped yet: the sender will see kRxDropped and never
    // touch the waker, so release it now rather than with the block (it
    // keeps the waiting task's state alive, e.g. an aborted task's).
    if ((prev & (S::kValue | S::kTxDropped)) == 0 && (prev & S::kRxWaker) != 0) {
      s->rx_waker = Waker();
    }
    s->release();  // an unread value dies with the block
  }

  struct [[nodiscard("no value is received until the awaiter is co_awaited")]] Awaiter {
    Receiver* self;
    coop::BudgetedReady coop;  // a value already waiting costs one budget unit
    [[nodiscard]] bool await_ready() {
      return (self->flags() & (S::kValue | S::kTxDropped)) != 0 && coop.ready();
    }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      if (coop.exhausted()) {
        coop::forced_yield(h);
        return true;
      }
      return self->register_waker(current_waker(h, {&arrived, self->state_}));
    }
    T await_resume() { return self->finish(); }

    static bool arrived(const void* state) noexcept {
      return (static_cast<const S*>(state)->flags.load(std::memory_order_acquire) &
              (S::kValue | S::kTxDropped)) != 0;
    }
  };

  S* state_ = nullptr;  // shared block; null when moved from
  bool taken_ = false;  // the value has been received
};

/// Creates a connected oneshot channel. Throws std::bad_alloc.
template <class T>
[[nodiscard(
    "a channel whose ends are discarded is destroyed at once")]] std::pair<Sender<T>, Receiver<T>>
oneshot() {
  auto* s = new detail::OneshotState<T>();
  return {Sender<T>(s), Receiver<T>(s)};
}

}  // namespace spindle::sync
