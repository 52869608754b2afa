// Runtime, Runtime::Builder and Handle: configuration checks and the thin
// layer over Core.

#include "spindle/runtime/runtime.hpp"

#include <algorithm>
#include <bit>
#include <string>
#include <thread>

#include "scheduler.hpp"
#include "spindle/runtime/use_task.hpp"
#include "worker.hpp"

namespace spindle {

namespace detail {

void core_ref(Core* core) noexcept { core->ref(); }
void core_unref(Core* core) noexcept { core->unref(); }

Core* current_core_or_throw(const char* what) {
  Core* core = tls_context.core;
  if (core == nullptr) {
    throw UsageError(std::string(what) +
                     " called outside a spindle runtime (no task or worker on this thread); use "
                     "Runtime::spawn or Handle::spawn instead");
  }
  return core;
}

void drive_until_complete(Core* core, CellBase* cell) { core->drive(cell); }

void spawn_blocking_cell(Core* core, CellBase* cell, SourceLocation loc) {
  core->spawn_blocking(cell, loc);
}

}  // namespace detail

// ---- Handle ------------------------------------------------------------------------

Handle Handle::current() {
  detail::Core* core = detail::current_core_or_throw("spindle::Handle::current()");
  core->ref();
  return Handle(core);
}

Handle Handle::try_current() noexcept {
  detail::Core* core = detail::tls_context.core;
  if (core == nullptr) return Handle();
  core->ref();
  return Handle(core);
}

detail::Core* Handle::require_core() const {
  if (core_ == nullptr) throw UsageError("spindle: use of an empty Handle");
  return core_;
}

std::size_t Handle::num_workers() const { return require_core()->num_workers(); }
bool Handle::is_current_thread() const { return require_core()->config().current_thread; }
std::size_t Handle::max_blocking_threads() const {
  return require_core()->config().max_blocking_threads;
}
bool Handle::poll_timing() const { return require_core()->config().poll_timing; }

RuntimeCounters Handle::counters() const { return require_core()->counters(); }
Instant Handle::now() const { return require_core()->now(); }
std::vector<WorkerPollState> Handle::poll_states() const { return require_core()->poll_states(); }
std::vector<TaskSnapshot> Handle::dump() const { return require_core()->dump(); }
void Handle::write_trace(std::ostream& os) const { require_core()->write_trace(os); }
std::size_t Handle::flight_recorder_events() const {
  return require_core()->config().flight_recorder_events;
}
Executor Handle::executor() const { return require_core()->next_executor(); }

Executor this_executor() {
  detail::Worker* worker = detail::tls_context.worker;
  if (worker == nullptr) {
    throw UsageError(
        "spindle::this_executor() called outside a runtime worker; use Handle::executor() to "
        "create I/O objects from other threads");
  }
  return worker->executor();
}

namespace detail {
asio::io_context::executor_type this_io_executor() {
  Worker* worker = tls_context.worker;
  if (worker == nullptr) {
    throw UsageError("spindle: a timer (sleep, timeout) was awaited outside a runtime worker");
  }
  return worker->io().get_executor();
}

WorkerTimer* take_timer(std::chrono::steady_clock::time_point at) {
  Worker* worker = tls_context.worker;
  if (worker == nullptr) {
    throw UsageError("spindle: a timer (sleep, timeout) was awaited outside a runtime worker");
  }
  if (WorkerTimer* t = worker->pop_timer()) {
    t->expires_at(at);
    return t;
  }
  return new WorkerTimer(worker->io().get_executor(), at);
}

void give_back_timer(WorkerTimer* t) noexcept {
  t->cancel();
  Worker* worker = tls_context.worker;
  if (worker != nullptr && &t->get_executor().context() == &worker->io() && worker->push_timer(t)) {
    return;
  }
  delete t;
}
}  // namespace detail

// ---- Runtime -----------------------------------------------------------------------

Runtime& Runtime::operator=(Runtime&& other) noexcept {
  if (this != &other) {
    if (handle_.valid()) handle_.core()->shutdown(std::nullopt);
    handle_ = std::move(other.handle_);
  }
  return *this;
}

Runtime::~Runtime() {
  if (handle_.valid()) handle_.core()->shutdown(std::nullopt);
}

bool Runtime::shutdown_timeout(std::chrono::nanoseconds timeout) {
  if (timeout.count() < 0) {
    throw UsageError("spindle: Runtime::shutdown_timeout: the timeout must not be negative");
  }
  if (!handle_.valid()) return true;
  // The handle stays: later spawns and block_on calls through this Runtime
  // are refused with RuntimeShutdown, and the destructor's shutdown is a no-op.
  return handle_.core()->shutdown(timeout);
}

// ---- Builder -----------------------------------------------------------------------

Runtime::Builder::Builder() = default;

Runtime::Builder& Runtime::Builder::multi_thread() {
  current_thread_ = false;
  return *this;
}
Runtime::Builder& Runtime::Builder::current_thread() {
  current_thread_ = true;
  return *this;
}
Runtime::Builder& Runtime::Builder::worker_threads(int n) {
  worker_threads_ = n;
  worker_threads_set_ = true;
  return *this;
}
Runtime::Builder& Runtime::Builder::thread_name(std::string name) {
  thread_name_ = std::move(name);
  return *this;
}
Runtime::Builder& Runtime::Builder::on_thread_start(std::function<void()> f) {
  on_thread_start_ = std::move(f);
  return *this;
}
Runtime::Builder& Runtime::Builder::on_thread_stop(std::function<void()> f) {
  on_thread_stop_ = std::move(f);
  return *this;
}
Runtime::Builder& Runtime::Builder::global_queue_interval(int n) {
  global_queue_interval_ = n;
  global_queue_interval_set_ = true;
  return *this;
}
Runtime::Builder& Runtime::Builder::event_interval(int n) {
  event_interval_ = n;
  return *this;
}
Runtime::Builder& Runtime::Builder::local_queue_capacity(int n) {
  local_queue_capacity_ = n;
  return *this;
}
Runtime::Builder& Runtime::Builder::lifo_slot(bool enabled) {
  lifo_slot_ = enabled;
  return *this;
}
Runtime::Builder& Runtime::Builder::budget(int units) {
  budget_ = units;
  return *this;
}
Runtime::Builder& Runtime::Builder::cooperation(bool enabled) {
  cooperation_ = enabled;
  return *this;
}
Runtime::Builder& Runtime::Builder::max_blocking_threads(int n) {
  max_blocking_threads_ = n;
  return *this;
}
Runtime::Builder& Runtime::Builder::thread_keep_alive(std::chrono::nanoseconds d) {
  thread_keep_alive_ = d;
  return *this;
}
Runtime::Builder& Runtime::Builder::poll_timing(bool enabled) {
  poll_timing_ = enabled;
  return *this;
}
Runtime::Builder& Runtime::Builder::flight_recorder(std::size_t events_per_worker) {
  flight_recorder_ = events_per_worker;
  return *this;
}
Runtime::Builder& Runtime::Builder::clock(std::function<Instant()> now) {
  clock_ = std::move(now);
  return *this;
}
Runtime::Builder& Runtime::Builder::on_unhandled_exception(
    std::function<void(TaskId, std::exception_ptr)> f) {
  on_unhandled_exception_ = std::move(f);
  return *this;
}

namespace {
[[noreturn]] void bad_setting(const std::string& setting, long long value, const char* accepted) {
  throw ConfigError("spindle: Runtime::Builder: " + setting + " = " + std::to_string(value) +
                    " is out of range: " + accepted);
}
}  // namespace

Runtime Runtime::Builder::build() const {
  detail::Config cfg;
  cfg.current_thread = current_thread_;
  if (current_thread_) {
    if (worker_threads_set_ && worker_threads_ != 1) {
      bad_setting("worker_threads", worker_threads_,
                  "a current_thread runtime has exactly 1 worker (the block_on thread)");
    }
    cfg.workers = 1;
  } else if (worker_threads_set_) {
    if (worker_threads_ < 1 || worker_threads_ > kMaxWorkers) {
      bad_setting("worker_threads", worker_threads_, "must be between 1 and 4096");
    }
    cfg.workers = static_cast<std::size_t>(worker_threads_);
  } else {
    cfg.workers = std::max(1U, std::thread::hardware_concurrency());
  }
  if (thread_name_.empty()) {
    throw ConfigError("spindle: Runtime::Builder: thread_name must not be empty");
  }
  cfg.thread_name = thread_name_;
  cfg.on_thread_start = on_thread_start_;
  cfg.on_thread_stop = on_thread_stop_;
  int gqi = global_queue_interval_set_ ? global_queue_interval_ : (current_thread_ ? 31 : 61);
  if (gqi < 1) bad_setting("global_queue_interval", gqi, "must be at least 1 (polls)");
  cfg.global_queue_interval = static_cast<std::uint32_t>(gqi);
  if (event_interval_ < 1)
    bad_setting("event_interval", event_interval_, "must be at least 1 (polls)");
  cfg.event_interval = static_cast<std::uint32_t>(event_interval_);
  if (local_queue_capacity_ < 2 || local_queue_capacity_ > 65536 ||
      !std::has_single_bit(static_cast<unsigned>(local_queue_capacity_))) {
    bad_setting("local_queue_capacity", local_queue_capacity_,
                "must be a power of two between 2 and 65536");
  }
  cfg.local_queue_capacity = static_cast<std::uint32_t>(local_queue_capacity_);
  cfg.lifo_slot = lifo_slot_;
  if (cooperation_) {
    if (budget_ < 1) {
      bad_setting("budget", budget_,
                  "must be at least 1 while cooperation is on (use cooperation(false) to turn the "
                  "budget off)");
    }
    cfg.budget = static_cast<std::uint32_t>(budget_);
  } else {
    cfg.budget = UINT32_MAX;
  }
  if (max_blocking_threads_ < 1) {
    bad_setting("max_blocking_threads", max_blocking_threads_, "must be at least 1");
  }
  cfg.max_blocking_threads = static_cast<std::size_t>(max_blocking_threads_);
  if (thread_keep_alive_.count() <= 0) {
    bad_setting("thread_keep_alive (ns)", thread_keep_alive_.count(), "must be positive");
  }
  cfg.thread_keep_alive = thread_keep_alive_;
  cfg.poll_timing = poll_timing_;
  if (flight_recorder_ > (std::size_t{1} << 24)) {
    bad_setting("flight_recorder (events per worker)", static_cast<long long>(flight_recorder_),
                "must be at most 16,777,216");
  }
  cfg.flight_recorder_events =
      flight_recorder_ == 0 ? 0 : std::bit_ceil(std::max<std::size_t>(flight_recorder_, 64));
  cfg.time_every_poll = cfg.poll_timing || cfg.flight_recorder_events != 0;
  cfg.clock = clock_;

  cfg.on_unhandled_exception = on_unhandled_exception_;

  auto* core = new detail::Core(std::move(cfg));
  Runtime rt{Handle(core)};  // adopts the initial reference
  core->start();             // on failure rt's destructor shuts the started workers down
  return rt;
}

}  // namespace spindle
