// examples/demo/routes.hpp — spindle-demo's routes: the seed talk's causes of slow tasks,
// each with its fixed twin, each under its own TaskMonitor.
//
//   demo::Timings     how long each route's simulated work takes (normal, or --quick)
//   demo::RouteArgs   a request's `?ms=N` override of that duration
//   demo::Route       one route: name (= monitor name), path, description, monitor, handler
//   demo::RouteTable  every route, the shared state of their handlers, and spawn()
//
//   route                  what it does                                  shows up as
//   /healthy               awaits a 1 ms timer                           idle; fast polls
//   /blocking-sleep        std::this_thread::sleep_for(20 ms) in the task slow polls; long delays
//   /blocking-sleep-fixed  the same sleep via spawn_blocking             idle; fast polls
//   /file-read             reads a 16 MiB temp file synchronously        slow polls
//   /file-read-fixed       the same read via spawn_blocking              idle; fast polls
//   /big-loop              computes for 10 ms without awaiting           slow polls
//   /big-loop-fixed        the same work, yield_now() every 0.5 ms       fast polls, self-wakes
//   /lock                  a thread-blocking lock held across a 5 ms     slow polls (blocked
//                          await, under contention                      waiters); long delays
//   /lock-fixed            spindle::sync::Mutex held across the await    idle (waiting as tasks)
//   /slow-downstream       awaits 50 ms "backend" (a timer)              idle dominates: not a bug
//   /victim                20 steps of 20 us, yield_now() after each    waiting for a worker
//                          (well-behaved: nothing to fix in it)          dominates: a victim
// "Long delays" land on every task that shares the stalled workers, not only on the
// culprit's own monitor: that is the seed talk's "one task can starve others". /victim
// makes it plain: its tasks compute for microseconds and are always ready, so nearly all
// their time is spent queued for a worker, and the delay blame names who held it
// (blocking-sleep, the biggest hog of the load plan). (A timer
// or socket belongs to one worker's io_context: when that worker is the stuck one, the
// expiry is noticed late and the victim's extra wait counts as idle instead.)
//
// Example (inside a task on the service runtime):
//   auto routes = std::make_shared<const demo::RouteTable>(demo::Timings::normal());
//   if (const demo::Route* r = routes->find("/big-loop")) {
//     std::string what = co_await routes->spawn(*r, {});
//   }
//
// Each request's handling is spawned as a root task under the route's monitor, so the
// monitor measures exactly that work: its polls, the delays before each poll, its idle
// time. The monitors use 1 ms slow-poll and long-delay thresholds (tokio-metrics' default
// is 50 us) so that big-loop-fixed's 0.5 ms slices count as fast polls; pick thresholds
// for your own latency budget.
//
// Thread safety: a RouteTable is immutable after construction and safe to share between
// tasks and threads; handlers synchronize on their own (see routes.cpp for the locks).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <spindle/monitor.hpp>
#include <spindle/runtime.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace demo {

/// Slow-poll threshold of every route's monitor.
inline constexpr std::chrono::milliseconds kSlowPollThreshold{1};
/// Long-delay threshold of every route's monitor.
inline constexpr std::chrono::milliseconds kLongDelayThreshold{1};

/// The simulated work of each route.
struct Timings {
  std::chrono::nanoseconds healthy_sleep;    ///< /healthy's timer
  std::chrono::nanoseconds blocking_sleep;   ///< /blocking-sleep(-fixed)'s sleep_for
  std::size_t file_bytes;                    ///< size of /file-read(-fixed)'s temp file
  std::chrono::nanoseconds big_loop;         ///< /big-loop(-fixed)'s computation
  std::chrono::nanoseconds yield_every;      ///< /big-loop-fixed's slice between yields
  std::chrono::nanoseconds lock_hold;        ///< how long /lock(-fixed) hold the lock (awaiting)
  std::chrono::nanoseconds lock_wait_slice;  ///< /lock's longest single blocking wait
  std::chrono::nanoseconds downstream;       ///< /slow-downstream's "backend" latency
  int victim_steps;                          ///< /victim's steps, each followed by yield_now()
  std::chrono::nanoseconds victim_step;      ///< /victim's computation in each step

  /// 1 ms, 20 ms, 16 MiB, 10 ms (0.5 ms slices), 5 ms (2 ms waits), 50 ms, 20 x 20 us.
  static Timings normal();
  /// Shorter work for tests (--quick): 1 ms, 5 ms, 2 MiB, 3 ms, 2 ms (1 ms waits), 10 ms,
  /// 20 x 20 us (the victim's work is already tiny).
  static Timings quick();
};

/// A request's override of its route's duration: `?ms=N`, 0 <= N <= kMaxMs (e.g.
/// /blocking-sleep?ms=150 trips the stall detector). Ignored by the file routes and /victim.
struct RouteArgs {
  static constexpr int kMaxMs = 2000;           ///< the largest override accepted
  std::optional<std::chrono::milliseconds> ms;  ///< the override, if given

  /// Parses a query string; nullopt (and `error` set) when `ms` is not a number in range.
  static std::optional<RouteArgs> parse(std::string_view query, std::string& error);
};

class Workload;  // the handlers' shared state (temp file, locks); defined in routes.cpp

/// A route's request handler: the work of one request, spawned as a root task.
using Handler = spindle::Task<std::string> (*)(std::shared_ptr<Workload>, RouteArgs);

/// One route.
struct Route {
  std::string name;              ///< also its monitor's name, e.g. "blocking-sleep"
  std::string path;              ///< "/" + name
  std::string description;       ///< one line, for the index page
  std::string fixed_by;          ///< the path of its fixed twin, or empty
  spindle::TaskMonitor monitor;  ///< measures every request of this route
  Handler handler;               ///< the work
};

/// Every route of the demo.
class RouteTable {
 public:
  /// Creates the monitors and /file-read's temp file (Timings::file_bytes, in the
  /// system's temp directory; removed when the last user of the table's state is gone).
  /// Throws std::system_error when the file cannot be written.
  explicit RouteTable(const Timings& timings);

  /// In the order of the index page: each cause, then its fixed twin.
  [[nodiscard]] const std::vector<Route>& routes() const noexcept { return routes_; }
  /// The route serving `path`, or nullptr.
  [[nodiscard]] const Route* find(std::string_view path) const noexcept;
  /// The index of the route named `name` in routes(), or nullopt.
  [[nodiscard]] std::optional<std::size_t> index_of(std::string_view name) const noexcept;
  /// The body of GET /: every route, what it does and its fixed twin.
  [[nodiscard]] std::string index_text() const;
  [[nodiscard]] const Timings& timings() const noexcept { return timings_; }

  /// Spawns `route`'s handler under its monitor as a root task on the calling task's
  /// runtime; the JoinHandle yields what the handler did, in words (or its exception).
  /// Throws spindle::UsageError outside a task and RuntimeShutdown during shutdown.
  spindle::JoinHandle<std::string> spawn(const Route& route, RouteArgs args) const;

 private:
  Timings timings_;                     // the durations the handlers use
  std::shared_ptr<Workload> workload_;  // shared with every running handler
  std::vector<Route> routes_;           // the table
};

}  // namespace demo
