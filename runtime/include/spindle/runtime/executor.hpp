// spindle/runtime/executor.hpp — the executor I/O objects are created on.
//
//   spindle::Executor   a worker's io_context executor that keeps the io_context alive
//                       (spindle::this_executor(), Handle::executor())
//
// Example:
//   asio::ip::tcp::socket sock(spindle::this_executor());   // inside a task
//   asio::steady_timer t(rt.handle().executor());            // from any thread
//
// An Executor behaves like asio::io_context::executor_type (it is an Asio
// standard executor; sockets, timers and any_io_executor take it) and in
// addition holds a reference on the worker's io_context, as tokio's I/O
// objects hold their driver: an I/O object made on it can outlive its
// Runtime (returned as a task's result, kept in a global) and is destroyed
// safely afterwards. Once the runtime has shut down, its io_contexts run
// no more handlers: an operation started on such an object through
// spindle::use_task throws RuntimeShutdown, and one started with another
// completion token never completes (its handler is destroyed with the
// last object).
//
// Thread safety: as io_context::executor_type. Copies are cheap (one
// atomic increment) and may be used from any thread.
#pragma once

#include <asio/execution.hpp>
#include <asio/io_context.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace spindle {

namespace detail {

/// A worker's io_context, freed when the worker and the last Executor
/// referring to it have let go (see executor.hpp).
class IoHost {
 public:
  /// A new io_context with one reference (the worker's).
  static IoHost* create() { return new IoHost(); }
  IoHost(const IoHost&) = delete;
  IoHost& operator=(const IoHost&) = delete;

  [[nodiscard]] asio::io_context& io() noexcept { return io_; }
  void ref() noexcept {
    // relaxed: the caller already holds a reference.
    refs_.fetch_add(1, std::memory_order_relaxed);
  }
  void unref() noexcept {
    // acq_rel: every holder's use happens-before the delete.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  /// Runtime shutdown: destroys every pending handler (releasing what
  /// they hold) and shuts the io_context's services down; objects still
  /// registered stay destroyable. Called once, with no thread running it.
  void close() noexcept {
    closed_.store(true, std::memory_order_release);
    io_.close();
  }
  /// True once the runtime that owned the io_context has shut down.
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

 private:
  /// io_context with execution_context::shutdown() reachable.
  class Io : public asio::io_context {
   public:
    void close() { shutdown(); }
  };
  IoHost() = default;
  ~IoHost() = default;

  Io io_;                              // the worker's reactor, timers and parking place
  std::atomic<std::int64_t> refs_{1};  // the worker's, plus one per Executor copy
  std::atomic<bool> closed_{false};    // the runtime shut down
};

}  // namespace detail

/// An Asio standard executor over a worker's io_context that keeps the
/// io_context alive (see the file comment). `Inner` is the io_context
/// executor type with the properties required of it; spindle::Executor is
/// the plain one.
template <class Inner>
class BasicExecutor {
 public:
  /// Refers to `host`'s io_context through `inner` (takes a new reference).
  BasicExecutor(Inner inner, detail::IoHost* host) noexcept
      : inner_(std::move(inner)), host_(host) {
    if (host_ != nullptr) host_->ref();
  }
  BasicExecutor(const BasicExecutor& o) noexcept : inner_(o.inner_), host_(o.host_) {
    if (host_ != nullptr) host_->ref();
  }
  BasicExecutor(BasicExecutor&& o) noexcept
      : inner_(std::move(o.inner_)), host_(std::exchange(o.host_, nullptr)) {}
  BasicExecutor& operator=(BasicExecutor o) noexcept {
    std::swap(inner_, o.inner_);
    std::swap(host_, o.host_);
    return *this;
  }
  ~BasicExecutor() {
    if (host_ != nullptr) host_->unref();
  }

  /// Submits `f` (Asio's execution concept).
  template <class F>
  void execute(F&& f) const {
    asio::execution::execute(inner_, std::forward<F>(f));
  }

  /// Properties: answered by the io_context executor.
  template <class P>
  requires asio::can_query<const Inner&, const P&>::value auto query(const P& p) const
      noexcept(asio::is_nothrow_query<const Inner&, const P&>::value) ->
      typename asio::query_result<const Inner&, const P&>::type {
    return asio::query(inner_, p);
  }
  /// Requirements and preferences keep the io_context reference.
  template <class P>
  requires asio::can_require<const Inner&, const P&>::value auto require(const P& p) const
      -> BasicExecutor<std::decay_t<typename asio::require_result<const Inner&, const P&>::type>> {
    return {asio::require(inner_, p), host_};
  }
  template <class P>
  requires asio::can_prefer<const Inner&, const P&>::value auto prefer(const P& p) const
      -> BasicExecutor<std::decay_t<typename asio::prefer_result<const Inner&, const P&>::type>> {
    return {asio::prefer(inner_, p), host_};
  }

  /// The io_context (alive as long as this executor).
  [[nodiscard]] asio::io_context& context() const noexcept { return host_->io(); }
  /// The io_context's own executor, which holds no reference: valid only
  /// while this executor (or another reference to the io_context) lives.
  [[nodiscard]] const Inner& io_executor() const noexcept { return inner_; }
  /// True when the calling thread is running the io_context.
  [[nodiscard]] bool running_in_this_thread() const noexcept {
    return inner_.running_in_this_thread();
  }
  /// True once the runtime that created this executor has shut down.
  [[nodiscard]] bool runtime_shut_down() const noexcept {
    return host_ == nullptr || host_->closed();
  }

  friend bool operator==(const BasicExecutor& a, const BasicExecutor& b) noexcept {
    return a.inner_ == b.inner_;
  }
  friend bool operator!=(const BasicExecutor& a, const BasicExecutor& b) noexcept {
    return !(a == b);
  }

 private:
  template <class>
  friend class BasicExecutor;

  Inner inner_;                     // the io_context's own executor
  detail::IoHost* host_ = nullptr;  // one reference; null once moved from
};

/// The executor of a worker's io_context, on which I/O objects are created.
using Executor = BasicExecutor<asio::io_context::executor_type>;

}  // namespace spindle
