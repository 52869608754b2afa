// Internal: the set of runtimes and task monitors a MetricsCollectable exports.
//
// Registration is separate from export: add/remove edit this set under a
// mutex; a scrape takes a Snapshot under the same mutex (copies of the
// TaskMonitor and Handle references, which keep their shared state alive,
// and the stall detectors' counts, read under the lock because the
// detectors are not owned) and reads the monitors after releasing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/monitor/stall_detector.hpp"
#include "spindle/monitor/task_monitor.hpp"
#include "spindle/runtime/detail/mutex.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle::detail {

class Sources {
 public:
  /// One registered runtime, as a scrape sees it.
  struct RuntimeReading {
    std::string name;                                  // the `runtime` label
    Handle handle;                                     // keeps the runtime's shared state alive
    std::optional<std::vector<std::uint64_t>> stalls;  // per-worker reports, with a detector
  };
  /// What one scrape reads.
  struct Snapshot {
    std::vector<RuntimeReading> runtimes;  // in registration order
    std::vector<TaskMonitor> monitors;     // sorted by name
  };

  explicit Sources(std::size_t max_monitors) : max_monitors_(max_monitors) {}

  /// See MetricsCollectable::add_runtime / remove_runtime.
  void add_runtime(const Handle& runtime, std::string name,
                   std::shared_ptr<const StallDetector> stalls);
  bool remove_runtime(std::string_view name);
  /// See MetricsCollectable::add_monitor / remove_monitor.
  void add_monitor(const TaskMonitor& monitor);
  bool remove_monitor(const TaskMonitor& monitor);
  bool remove_monitor(std::string_view name);

  [[nodiscard]] std::size_t monitor_count() const;
  [[nodiscard]] std::size_t runtime_count() const;

  /// Copies what a scrape needs. Holds the mutex for the copy only.
  [[nodiscard]] Snapshot snapshot() const;

  /// The delay blame of monitor `monitor` as exported: at most kBlameCulprits
  /// named culprits, the rest summed as "other". Which culprits are named is
  /// decided once per monitor (the largest ones when it is first blamed,
  /// then each newcomer while there is room) and kept, so that every
  /// exported series is a counter that only grows: a culprit never moves
  /// between its own series and "other". Forgotten when the monitor is
  /// removed.
  static constexpr std::size_t kBlameCulprits = 5;
  [[nodiscard]] std::vector<DelayBlame> exported_blame(const std::string& monitor,
                                                       const std::vector<DelayBlame>& all) const;

 private:
  struct RuntimeEntry {
    std::string name;                             // the `runtime` label
    Handle handle;                                // the runtime
    std::shared_ptr<const StallDetector> stalls;  // shared with the caller; null for none
  };

  const std::size_t max_monitors_;                              // cap on monitors_.size()
  mutable Mutex mu_;                                            // guards the two sets below
  std::vector<RuntimeEntry> runtimes_ SPINDLE_GUARDED_BY(mu_);  // in registration order
  std::vector<TaskMonitor> monitors_ SPINDLE_GUARDED_BY(mu_);   // sorted by name, names unique
  mutable Mutex blame_mu_;                                      // guards named_culprits_
  mutable std::map<std::string, std::vector<std::string>> named_culprits_
      SPINDLE_GUARDED_BY(blame_mu_);  // monitor → its culprits with a series of their own
};

}  // namespace spindle::detail
