// spindle/runtime/runtime.hpp — the runtime: workers that poll tasks, and the ways in.
//
//   spindle::Runtime           owns the workers; shuts them down when destroyed
//   spindle::Runtime::Builder  chooses multi_thread (default) or current_thread and tunes it
//   spindle::Handle            a cheap, copyable reference that spawns from any thread
//   spindle::spawn(task)       spawns onto the runtime of the calling task
//
// Example:
//   auto rt = spindle::Runtime::Builder().worker_threads(2).build();
//   int v = rt.block_on([]() -> spindle::Task<int> {
//     auto h = spindle::spawn(work());
//     co_return co_await h;
//   }());
//
// Model (see the scheduler's file comment in runtime/src/scheduler.cpp for
// the algorithm): a multi_thread runtime runs N worker threads, each with a
// bounded local run queue, a LIFO slot for the task it last woke, and its
// own asio::io_context for timers and I/O; idle workers steal half of
// another worker's queue. A current_thread runtime runs everything on the
// thread that calls block_on; its tasks make progress only during block_on.
//
// Thread safety: Runtime's member functions may be called from any thread
// except where noted; destroying it from one of its own workers is a fatal
// error. Handle is safe to copy and use from any thread.
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <type_traits>

#include "spindle/runtime/counters.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/inline_hooks.hpp"
#include "spindle/runtime/detail/task_cell.hpp"
#include "spindle/runtime/errors.hpp"
#include "spindle/runtime/executor.hpp"
#include "spindle/runtime/hooks.hpp"
#include "spindle/runtime/join_handle.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

class Runtime;
template <class F>
class HookedCallable;

namespace detail {
void core_ref(Core* core) noexcept;
void core_unref(Core* core) noexcept;
/// The runtime the calling thread works for; throws UsageError with `what`
/// in the message when there is none.
Core* current_core_or_throw(const char* what);
/// Runs (current_thread) or waits for (multi_thread) `cell` until it completes.
void drive_until_complete(Core* core, CellBase* cell);

/// The one-poll coroutine that runs a spawn_blocking function.
template <class F>
Task<std::invoke_result_t<F&>> run_blocking(F f) {
  co_return f();
}

void spawn_blocking_cell(Core* core, CellBase* cell, SourceLocation loc);

/// Creates the cell of a spawn_blocking job and queues it on `core`'s blocking pool.
template <class F>
JoinHandle<std::invoke_result_t<F&>> spawn_blocking_on(Core* core, F&& f, SourceLocation loc) {
  using R = std::invoke_result_t<F&>;
  auto* cell = new TaskCell<R>(run_blocking(std::forward<F>(f)));
  spawn_blocking_cell(core, cell, loc);
  return JoinHandleAccess::make(cell);
}

/// Creates a new root task's cell with `make(trailing)` (a TaskCell<T>*
/// with `trailing` bytes of hooks storage), attaches its hooks (`hooks`,
/// already built, or built from the reservation `pending` inside the cell:
/// one block for both) and queues it on `core`. Whatever happens, `hooks`
/// gets on_release() and `pending` ends exactly once: when `make` throws,
/// here; later, with the cell (on failure spawn_cell destroys it and throws
/// RuntimeShutdown).
template <class T, class Make>
JoinHandle<T> spawn_new(Core* core, TaskHooks* hooks, PendingHooks pending, SourceLocation loc,
                        Make&& make) {
  TaskCell<T>* cell = nullptr;
  try {
    cell = make(pending.recipe != nullptr ? pending.recipe->hooks_size() : 0);
  } catch (...) {
    if (hooks != nullptr) hooks->on_release();
    if (pending.recipe != nullptr) pending.recipe->forget_hooks(pending.reserved_at);
    throw;
  }
  if (pending.recipe != nullptr) {
    hooks = pending.recipe->build_hooks(cell->trailing_storage(), pending.reserved_at,
                                        /*free_on_release=*/false);
  }
  spawn_cell(core, cell, hooks, loc);
  return JoinHandleAccess::make(cell);
}

/// Creates the cell of root task `task` and queues it on `core` (see spawn_new).
template <class T>
JoinHandle<T> spawn_on(Core* core, Task<T>&& task, TaskHooks* hooks, PendingHooks pending,
                       SourceLocation loc) {
  return spawn_new<T>(core, hooks, pending, loc, [&task](std::size_t trailing) {
    if (!task.valid()) throw UsageError("spindle: spawn of an empty (moved-from) Task");
    return TaskCell<T>::create(std::move(task), trailing);
  });
}
template <class T>
JoinHandle<T> spawn_on(Core* core, Task<T>&& task, TaskHooks* hooks, SourceLocation loc) {
  return spawn_on(core, std::move(task), hooks, PendingHooks{}, loc);
}

template <class X>
inline constexpr bool kIsTask = false;
template <class T>
inline constexpr bool kIsTask<Task<T>> = true;

/// A callable that returns a Task when invoked with no arguments (a
/// coroutine lambda, with or without captures).
template <class F>
concept TaskFactory = std::invocable < std::decay_t<F>
& > &&kIsTask<std::invoke_result_t<std::decay_t<F>&>>;

/// The value type of the Task that factory F returns.
template <class F>
using FactoryValue = typename std::invoke_result_t<std::decay_t<F>&>::value_type;

/// The frame that owns a callable for as long as the Task it returns runs:
/// `f` is a parameter, so it lives in this coroutine's frame, and the
/// callable's captures with it.
template <class F>
Task<FactoryValue<F>> invoke_owned(F f) {
  Task<FactoryValue<F>> inner = std::invoke(f);
  co_return co_await std::move(inner);
}

/// spawn(callable): the callable lives in the task's cell, after its hooks
/// storage (built from `pending`, if set), and is called there
/// (TaskCell::create_from): the task is two blocks, its frame and its cell.
/// An over-aligned callable gets a frame of its own instead (invoke_owned).
/// `pending` ends exactly once, as in spawn_new.
template <class F>
JoinHandle<FactoryValue<F>> spawn_factory_on(Core* core, F&& f, PendingHooks pending,
                                             SourceLocation loc) {
  using V = FactoryValue<F>;
  return spawn_new<V>(core, nullptr, pending, loc, [&f](std::size_t trailing) {
    if constexpr (kBoxableFactory<std::decay_t<F>>) {
      return TaskCell<V>::create_from(std::forward<F>(f), trailing);
    } else {
      return TaskCell<V>::create(invoke_owned(std::decay_t<F>(std::forward<F>(f))), trailing);
    }
  });
}
}  // namespace detail

/// A Task with instrumentation attached, ready to spawn like a Task
/// (spindle::monitor's TaskMonitor::instrument makes these). Move-only;
/// dropping it unspawned destroys the task and releases the hooks.
template <class T>
class [[nodiscard]] HookedTask {
 public:
  /// Takes ownership of `task`; `hooks` receives on_release() exactly once.
  HookedTask(Task<T> task, TaskHooks* hooks) noexcept : task_(std::move(task)), hooks_(hooks) {}
  /// Takes ownership of `task` and of the reservation `pending`: spawning
  /// builds the hooks inside the task's cell (one block for both); any
  /// other use builds them on their own first; dropping the HookedTask
  /// forgets them (HooksRecipe).
  HookedTask(Task<T> task, PendingHooks pending) noexcept
      : task_(std::move(task)), pending_(pending) {}
  HookedTask(HookedTask&& o) noexcept
      : task_(std::move(o.task_)),
        hooks_(std::exchange(o.hooks_, nullptr)),
        pending_(std::exchange(o.pending_, PendingHooks{})) {}
  HookedTask& operator=(HookedTask&&) = delete;
  HookedTask(const HookedTask&) = delete;
  ~HookedTask() {
    if (hooks_ != nullptr) hooks_->on_release();
    if (pending_.recipe != nullptr) pending_.recipe->forget_hooks(pending_.reserved_at);
  }
  /// The attached hooks (nullptr once spawned or moved from). Builds
  /// reserved hooks on their own block first (throws std::bad_alloc).
  [[nodiscard]] TaskHooks* hooks() {
    materialize();
    return hooks_;
  }

  /// Gives up both parts, building reserved hooks on their own block first
  /// (throws std::bad_alloc; nothing is given up then).
  std::pair<Task<T>, TaskHooks*> release() {
    materialize();
    return {std::move(task_), std::exchange(hooks_, nullptr)};
  }

  /// The parts a spawn takes: the task and either built hooks or a
  /// reservation (at most one of the two is set).
  struct Parts {
    Task<T> task;
    TaskHooks* hooks;
    PendingHooks pending;
  };
  /// Gives up every part (to spawn): no allocation, no throw.
  Parts release_parts() noexcept {
    return Parts{std::move(task_), std::exchange(hooks_, nullptr),
                 std::exchange(pending_, PendingHooks{})};
  }

  /// `co_await mon.instrument(task)`: runs the task inline, inside the
  /// awaiting task (no spawn), measured by its hooks: each resumption of it
  /// is one of its polls (part of the caller's poll), its scheduled and
  /// idle time are the caller's, and it is dropped when the await ends.
  /// The caller's own monitor, if any, still measures the whole poll.
  /// Cancelling the caller cancels the operand like timeout()'s. Throws
  /// UsageError for an empty task; awaiting an lvalue does not compile.
  auto operator co_await() && {
    auto [task, hooks] = release();
    return detail::OwningAwaiter<T>{
        detail::run_hooked_inline(std::move(task), hooks, SourceLocation::current())};
  }
  void operator co_await() & = delete;

 private:
  /// Builds reserved hooks in a block of their own.
  void materialize() {
    if (pending_.recipe != nullptr) hooks_ = detail::build_hooks_alone(pending_);
  }

  Task<T> task_;                // the coroutine
  TaskHooks* hooks_ = nullptr;  // its built instrumentation; null once released
  PendingHooks pending_;        // or its reservation, built at spawn (empty once released)
};

namespace detail {
/// Spawns the parts of a HookedTask on `core`.
template <class T>
JoinHandle<T> spawn_parts(Core* core, typename HookedTask<T>::Parts parts, SourceLocation loc) {
  return spawn_on(core, std::move(parts.task), parts.hooks, parts.pending, loc);
}
template <class F>
JoinHandle<FactoryValue<F>> spawn_hooked_callable(Core* core, HookedCallable<F>&& c,
                                                  SourceLocation loc);
}  // namespace detail

/// A callable with instrumentation reserved for the task it makes, ready
/// to spawn like a HookedTask: TaskMonitor::instrument(callable) makes
/// these. Spawning builds the callable and the hooks inside the task's
/// cell and calls it there (see Handle::spawn(F&&)): the task is two
/// blocks, the frame that call makes and the cell, as a plain Task is.
/// Every other use turns it into a HookedTask first (implicitly, or with
/// to_task()): the callable then lives in a coroutine frame of its own.
/// Move-only; dropping it unspawned destroys the callable and gives the
/// reservation up.
template <class F>
class [[nodiscard]] HookedCallable {
 public:
  using value_type = detail::FactoryValue<F>;

  /// Takes `f` and the reservation `pending` (given up if moving `f` throws).
  HookedCallable(F&& f, PendingHooks pending) try
      : f_(std::in_place, std::move(f)), pending_(pending) {
  } catch (...) {
    if (pending.recipe != nullptr) pending.recipe->forget_hooks(pending.reserved_at);
  }
  HookedCallable(HookedCallable&& o) noexcept(std::is_nothrow_move_constructible_v<F>)
      : f_(std::move(o.f_)), pending_(std::exchange(o.pending_, PendingHooks{})) {
    o.f_.reset();
  }
  HookedCallable& operator=(HookedCallable&&) = delete;
  HookedCallable(const HookedCallable&) = delete;
  ~HookedCallable() {
    if (pending_.recipe != nullptr) pending_.recipe->forget_hooks(pending_.reserved_at);
  }

  /// The same task as a HookedTask (the callable moves into a frame of its
  /// own). Throws std::bad_alloc (the callable may then be moved from) and
  /// UsageError when already spawned or converted.
  HookedTask<value_type> to_task() && {
    if (!f_) throw UsageError("spindle: a HookedCallable used after it was spawned or converted");
    Task<value_type> task = detail::invoke_owned(std::move(*f_));
    f_.reset();
    return HookedTask<value_type>(std::move(task), std::exchange(pending_, PendingHooks{}));
  }
  operator HookedTask<value_type>() && { return std::move(*this).to_task(); }  // NOLINT

  /// `co_await mon.instrument(callable)`: as HookedTask's.
  auto operator co_await() && { return std::move(*this).to_task().operator co_await(); }
  void operator co_await() & = delete;

 private:
  friend JoinHandle<value_type> detail::spawn_hooked_callable<F>(detail::Core*, HookedCallable&&,
                                                                 SourceLocation);
  std::optional<F> f_;    // the callable; empty once spawned or converted
  PendingHooks pending_;  // its task's reservation (empty once handed on)
};

namespace detail {
/// Spawns a HookedCallable on `core` (see spawn_factory_on).
template <class F>
JoinHandle<FactoryValue<F>> spawn_hooked_callable(Core* core, HookedCallable<F>&& c,
                                                  SourceLocation loc) {
  if (!c.f_)
    throw UsageError("spindle: a HookedCallable spawned after it was spawned or converted");
  return spawn_factory_on(core, std::move(*c.f_), std::exchange(c.pending_, PendingHooks{}), loc);
}
}  // namespace detail

/// A cheap, copyable reference to a runtime: spawns and reads counters from
/// any thread. Keeps the runtime's shared state alive, not its workers: once
/// the Runtime is destroyed, spawn() throws RuntimeShutdown.
class Handle {
 public:
  /// An empty handle; valid() is false.
  Handle() noexcept = default;
  Handle(const Handle& other) noexcept : core_(other.core_) {
    if (core_ != nullptr) detail::core_ref(core_);
  }
  Handle(Handle&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  Handle& operator=(Handle other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~Handle() {
    if (core_ != nullptr) detail::core_unref(core_);
  }

  /// The runtime of the calling task or worker thread. Throws UsageError
  /// when called outside one.
  static Handle current();
  /// Like current(), but an empty Handle outside a runtime.
  static Handle try_current() noexcept;

  [[nodiscard]] bool valid() const noexcept { return core_ != nullptr; }

  /// Spawns `task` as a root task: queued at once, first polled by a worker
  /// (or, on a current_thread runtime, during block_on). Callable from any
  /// thread. Throws RuntimeShutdown when the runtime is shutting down (the
  /// task is destroyed unpolled) and UsageError for an empty Task.
  template <class T>
  JoinHandle<T> spawn(Task<T> task, SourceLocation loc = SourceLocation::current()) const {
    return detail::spawn_on(require_core(), std::move(task), nullptr, loc);
  }

  /// Spawns `f()`, keeping the callable `f` (a coroutine lambda and its
  /// captures) alive inside the task for as long as the task runs: the
  /// safe way to spawn a lambda with captures (see task.hpp, "Lifetimes").
  /// `f` is moved or copied into the task's cell and called there, at once
  /// and on the calling thread (a coroutine lambda's call only creates its
  /// frame); the captures are destroyed right after the task's frame. Throws
  /// as spawn(Task), and what copying or calling `f` throws (nothing is
  /// spawned then); UsageError when `f` returns an empty Task.
  template <detail::TaskFactory F>
  JoinHandle<detail::FactoryValue<F>> spawn(F&& f,
                                            SourceLocation loc = SourceLocation::current()) const {
    return detail::spawn_factory_on(require_core(), std::forward<F>(f), PendingHooks{}, loc);
  }

  /// Spawns an instrumented task (see HookedTask; TaskMonitor::instrument).
  template <class T>
  JoinHandle<T> spawn(HookedTask<T> task, SourceLocation loc = SourceLocation::current()) const {
    detail::Core* core = require_core();  // before release: on failure `task` releases its hooks
    return detail::spawn_parts<T>(core, task.release_parts(), loc);
  }
  /// Spawns an instrumented callable (see HookedCallable; TaskMonitor::instrument).
  template <class F>
  JoinHandle<typename HookedCallable<F>::value_type> spawn(
      HookedCallable<F> c, SourceLocation loc = SourceLocation::current()) const {
    detail::Core* core = require_core();  // on failure `c` gives its reservation up
    return detail::spawn_hooked_callable(core, std::move(c), loc);
  }

  /// Spawns `task` with instrumentation `hooks` attached (the monitor layer
  /// uses this; the runtime calls on_release() on them exactly once, also
  /// when this throws).
  template <class T>
  JoinHandle<T> spawn_with_hooks(Task<T> task, TaskHooks* hooks,
                                 SourceLocation loc = SourceLocation::current()) const {
    return detail::spawn_on(require_core(), std::move(task), hooks, loc);
  }

  /// Runs `task` to completion and returns its value (or rethrows its
  /// exception). Blocks the calling thread. On a current_thread runtime the
  /// calling thread is the worker for the duration: every spawned task of
  /// the runtime makes progress meanwhile (concurrent block_on calls take
  /// turns). Throws UsageError when called on any runtime's worker thread,
  /// which would deadlock, and RuntimeShutdown after shutdown.
  template <class T>
  T block_on(Task<T> task, SourceLocation loc = SourceLocation::current()) const {
    detail::Core* core = require_core();
    detail::check_may_block("block_on");  // throws UsageError on a worker thread
    JoinHandle<T> handle = detail::spawn_on(core, std::move(task), nullptr, loc);
    detail::drive_until_complete(core, detail::JoinHandleAccess::cell(handle));
    return handle.join();
  }

  /// Runs `f()` on the runtime's blocking pool, a separate, growing set of
  /// threads for work that blocks or computes for long (synchronous file or
  /// socket I/O, sleeping library calls, hashing a large file): on a worker
  /// it would stall every task queued behind it. Returns at once; the
  /// JoinHandle yields f's result or rethrows what it threw. abort() before
  /// the job starts means it never runs; a running job cannot be
  /// interrupted. Callable from any thread. Throws RuntimeShutdown during
  /// shutdown and std::system_error when no pool thread can be started.
  template <class F>
  JoinHandle<std::invoke_result_t<std::decay_t<F>&>> spawn_blocking(
      F&& f, SourceLocation loc = SourceLocation::current()) const {
    return detail::spawn_blocking_on(require_core(), std::decay_t<F>(std::forward<F>(f)), loc);
  }

  /// The executor of one of the runtime's workers (chosen round-robin), on
  /// which to create I/O objects from outside the runtime (inside a task,
  /// spindle::this_executor() picks the task's own worker). Valid until the
  /// runtime shuts down.
  [[nodiscard]] Executor executor() const;

  /// Number of worker threads (1 for current_thread).
  [[nodiscard]] std::size_t num_workers() const;
  /// True for a current_thread runtime.
  [[nodiscard]] bool is_current_thread() const;
  /// The blocking pool's thread cap (Builder::max_blocking_threads).
  [[nodiscard]] std::size_t max_blocking_threads() const;
  /// Whether every poll is timed (Builder::poll_timing).
  [[nodiscard]] bool poll_timing() const;
  /// Events each worker's flight recorder keeps (0: none; Builder::flight_recorder).
  [[nodiscard]] std::size_t flight_recorder_events() const;

  /// A snapshot of the scheduler's counters; never blocks the workers.
  [[nodiscard]] RuntimeCounters counters() const;
  /// The runtime's clock (spindle::clock_now unless one was injected).
  [[nodiscard]] Instant now() const;
  /// What each worker is polling right now (for watchdogs); never blocks a worker.
  [[nodiscard]] std::vector<WorkerPollState> poll_states() const;
  /// Every live task — id, monitor, spawn location, state, polls, and with
  /// Builder::poll_timing(true) also age and busy time — like tokio-console's
  /// task list, without a separate process. Takes each shard lock of the
  /// task list briefly (spawns and completions on that shard wait).
  [[nodiscard]] std::vector<TaskSnapshot> dump() const;
  /// Writes what every worker did lately, from its flight recorder
  /// (Builder::flight_recorder), as Chrome trace-event JSON: one track per
  /// worker, each poll a complete event named after its task and monitor,
  /// wakes, steals, parks and unparks as instant events, a poll still
  /// running as an open begin event. Perfetto (ui.perfetto.dev) and
  /// chrome://tracing open it. Never blocks the workers (a poll recorded
  /// while the copy is taken may be left out). Throws UsageError when the
  /// runtime has no flight recorder.
  void write_trace(std::ostream& os) const;

  friend bool operator==(const Handle& a, const Handle& b) noexcept { return a.core_ == b.core_; }

  /// Internal: the shared state (for the monitor and exporter layers).
  [[nodiscard]] detail::Core* core() const noexcept { return core_; }

 private:
  friend class Runtime;
  explicit Handle(detail::Core* adopted) noexcept : core_(adopted) {}
  detail::Core* require_core() const;

  detail::Core* core_ = nullptr;  // counted reference to the runtime's shared state
};

/// Owns a runtime's workers. Destroying it shuts the runtime down: the
/// workers stop after their current poll, every unfinished task is
/// destroyed exactly once (its JoinHandle then reports Cancelled), spawns
/// are refused with RuntimeShutdown, and the destructor returns when all of
/// that is done (it waits for running polls without a time limit; see
/// shutdown_timeout).
class Runtime {
 public:
  class Builder;

  Runtime(Runtime&& other) noexcept = default;
  Runtime& operator=(Runtime&& other) noexcept;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  /// See Handle::spawn.
  template <class T>
  JoinHandle<T> spawn(HookedTask<T> task, SourceLocation loc = SourceLocation::current()) {
    return handle_.spawn(std::move(task), loc);
  }
  /// See Handle::spawn.
  template <class F>
  JoinHandle<typename HookedCallable<F>::value_type> spawn(
      HookedCallable<F> c, SourceLocation loc = SourceLocation::current()) {
    return handle_.spawn(std::move(c), loc);
  }
  /// See Handle::block_on.
  template <class T>
  T block_on(Task<T> task, SourceLocation loc = SourceLocation::current()) {
    return handle_.block_on(std::move(task), loc);
  }
  /// See Handle::spawn.
  template <class T>
  JoinHandle<T> spawn(Task<T> task, SourceLocation loc = SourceLocation::current()) {
    return handle_.spawn(std::move(task), loc);
  }
  /// See Handle::spawn(F&&): the callable and its captures live in the task.
  template <detail::TaskFactory F>
  JoinHandle<detail::FactoryValue<F>> spawn(F&& f, SourceLocation loc = SourceLocation::current()) {
    return handle_.spawn(std::forward<F>(f), loc);
  }

  /// A copyable reference to this runtime.
  [[nodiscard]] Handle handle() const { return handle_; }

  /// Shuts down now, waiting at most `timeout` for the workers to finish
  /// their current polls. Returns true on a clean shutdown. When a worker is
  /// still inside a poll at the deadline (a task that never yields), the
  /// runtime's state is deliberately leaked rather than destroyed under the
  /// running task, a message names the stuck workers, and false is
  /// returned. Afterwards spawn() and block_on() throw RuntimeShutdown, and
  /// calling shutdown_timeout() again returns true at once. Throws
  /// UsageError for a negative timeout. Fatal when called from one of the
  /// runtime's workers.
  bool shutdown_timeout(std::chrono::nanoseconds timeout);

 private:
  friend class Builder;
  explicit Runtime(Handle handle) noexcept : handle_(std::move(handle)) {}

  Handle handle_;  // the runtime's shared state; empty once shut down or moved from
};

/// Configures and builds a Runtime. Every setting is checked by build(),
/// which throws ConfigError naming the setting that is out of range.
class Runtime::Builder {
 public:
  /// A multi_thread runtime with one worker per hardware thread.
  Builder();

  /// multi_thread: worker threads that poll tasks and steal from each other (default).
  Builder& multi_thread();
  /// current_thread: no threads; tasks run on the thread that calls block_on.
  Builder& current_thread();
  /// Number of worker threads (multi_thread), >= 1. Default: hardware concurrency.
  Builder& worker_threads(int n);
  /// Prefix of thread names: workers are "<name>-<index>", blocking-pool
  /// threads "<name>-blk". Linux keeps 15 bytes of a name, so a long prefix
  /// is shortened to keep the index. Default "spindle".
  Builder& thread_name(std::string name);
  /// Called on each worker thread when it starts / before it exits.
  Builder& on_thread_start(std::function<void()> f);
  Builder& on_thread_stop(std::function<void()> f);
  /// A worker checks the shared injection queue first every `n` polls (>= 1; default 61;
  /// 31 for current_thread), so that remote spawns are not starved by local work.
  Builder& global_queue_interval(int n);
  /// A busy worker polls its io_context (timers, I/O) every `n` polls (>= 1; default 61).
  Builder& event_interval(int n);
  /// Capacity of each worker's local run queue: a power of two in [2, 65536]. Default 256.
  /// Tests shrink it to reach overflow and steal paths.
  Builder& local_queue_capacity(int n);
  /// Whether a task woken by a running task runs next on the same worker (default true).
  Builder& lifo_slot(bool enabled);
  /// Cooperative budget: awaits that complete at once, per poll, before the
  /// task is made to yield (>= 1; default 128). See spindle/runtime/coop.hpp.
  Builder& budget(int units);
  /// Turns the cooperative budget on (default) or off. With it off a task
  /// that never suspends for real is never made to yield.
  Builder& cooperation(bool enabled);
  /// The clock the runtime reads for busy time and task instrumentation
  /// (default steady_clock). Tests inject a manual clock here.
  Builder& clock(std::function<Instant()> now);
  /// Cap on the blocking pool's threads (>= 1; default 512). Jobs beyond it wait in a queue.
  Builder& max_blocking_threads(int n);
  /// How long an idle blocking-pool thread waits for a job before it exits
  /// (> 0; default 10 s).
  Builder& thread_keep_alive(std::chrono::nanoseconds d);
  /// Times every poll and every wake of every task (default off: a clock
  /// reading per poll and per wake costs about a third of a poll). Enables
  /// each task's age and busy time in dump(), and the runtime-wide
  /// poll-duration and scheduled-delay histograms in counters() (tokio's
  /// opt-in poll-time histogram, plus the scheduled delay). Instrumented
  /// tasks (TaskHooks) are timed either way.
  Builder& poll_timing(bool enabled);
  /// Keeps, per worker, a ring of its latest `events_per_worker` events
  /// (poll starts and ends with task and monitor, wakes, steals, parks;
  /// rounded up to a power of two, at least 64; 32 bytes each) for
  /// Handle::write_trace and for TaskMonitor's delay blame (who held the
  /// worker while a task waited to be scheduled). Default 0: no recorder.
  /// Turning it on times every poll, like poll_timing (a clock reading per
  /// poll boundary and four relaxed stores per event, on the polling
  /// worker only). Throws ConfigError at build() above 2^24 events.
  Builder& flight_recorder(std::size_t events_per_worker);
  /// Receives the exception of a task that finished by throwing while
  /// nobody held its JoinHandle (a detached task). Called once per such
  /// task, on whichever thread dropped the result; must not throw. Default:
  /// one line on stderr. Such exceptions are also counted
  /// (RuntimeCounters::unhandled_exceptions).
  Builder& on_unhandled_exception(std::function<void(TaskId, std::exception_ptr)> f);

  /// Validates the settings, starts the workers (multi_thread) and returns
  /// the runtime. Throws ConfigError naming the first invalid setting, or
  /// std::system_error when a thread cannot be started.
  [[nodiscard]] Runtime build() const;

 private:
  static constexpr int kMaxWorkers = 4096;  // upper bound of worker_threads

  bool current_thread_ = false;             // flavor
  int worker_threads_ = 0;                  // 0 = hardware concurrency (not settable)
  bool worker_threads_set_ = false;         // worker_threads() was called
  std::string thread_name_ = "spindle";     // thread name prefix
  std::function<void()> on_thread_start_;   // per-thread start callback
  std::function<void()> on_thread_stop_;    // per-thread stop callback
  int global_queue_interval_ = 61;          // see global_queue_interval()
  bool global_queue_interval_set_ = false;  // else: 61, or 31 for current_thread
  int event_interval_ = 61;                 // io_context poll interval, in polls
  int local_queue_capacity_ = 256;          // per-worker run queue slots
  bool lifo_slot_ = true;                   // LIFO slot enabled
  int budget_ = 128;                        // cooperative budget per poll
  bool cooperation_ = true;                 // cooperative budget enabled
  bool poll_timing_ = false;                // per-task timing for dump()
  std::size_t flight_recorder_ = 0;         // events per worker; 0: off

  int max_blocking_threads_ = 512;                                         // blocking pool cap
  std::chrono::nanoseconds thread_keep_alive_ = std::chrono::seconds(10);  // pool thread idle life
  std::function<Instant()> clock_;  // injected clock, or empty
  std::function<void(TaskId, std::exception_ptr)> on_unhandled_exception_;  // or empty
};

/// Spawns an instrumented task (see HookedTask) on the calling task's runtime.
template <class T>
JoinHandle<T> spawn(HookedTask<T> task, SourceLocation loc = SourceLocation::current()) {
  detail::Core* core = detail::current_core_or_throw("spindle::spawn");  // before release
  return detail::spawn_parts<T>(core, task.release_parts(), loc);
}

/// Spawns an instrumented callable (see HookedCallable) on the calling task's runtime.
template <class F>
JoinHandle<typename HookedCallable<F>::value_type> spawn(
    HookedCallable<F> c, SourceLocation loc = SourceLocation::current()) {
  detail::Core* core = detail::current_core_or_throw("spindle::spawn");
  return detail::spawn_hooked_callable(core, std::move(c), loc);
}

/// Runs `f()` on the blocking pool of the calling task's runtime (see

/// Handle::spawn_blocking). Throws UsageError outside a runtime.
template <class F>
JoinHandle<std::invoke_result_t<std::decay_t<F>&>> spawn_blocking(
    F&& f, SourceLocation loc = SourceLocation::current()) {
  return detail::spawn_blocking_on(detail::current_core_or_throw("spindle::spawn_blocking"),
                                   std::decay_t<F>(std::forward<F>(f)), loc);
}

/// Spawns `task` on the runtime of the calling task (or worker thread).

/// From a worker the task goes to that worker's LIFO slot, so it runs soon
/// and on a warm cache. Throws UsageError outside a runtime and
/// RuntimeShutdown while the runtime shuts down.
template <class T>
JoinHandle<T> spawn(Task<T> task, SourceLocation loc = SourceLocation::current()) {
  return detail::spawn_on(detail::current_core_or_throw("spindle::spawn"), std::move(task), nullptr,
                          loc);
}

/// Spawns `f()` on the runtime of the calling task, keeping the callable
/// and its captures alive inside the task for as long as it runs:
///   auto h = spindle::spawn([name = std::string("kept")]() -> spindle::Task<std::size_t> {
///     co_await spindle::yield_now();
///     co_return name.size();  // the capture is still alive here
///   });
/// Throws as Handle::spawn(F&&).
template <detail::TaskFactory F>
JoinHandle<detail::FactoryValue<F>> spawn(F&& f, SourceLocation loc = SourceLocation::current()) {
  return detail::spawn_factory_on(detail::current_core_or_throw("spindle::spawn"),
                                  std::forward<F>(f), PendingHooks{}, loc);
}

}  // namespace spindle
