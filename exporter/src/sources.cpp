#include "sources.hpp"

#include <algorithm>
#include <utility>

#include "spindle/runtime/errors.hpp"
#include "validate.hpp"

namespace spindle::detail {

namespace {

bool name_less(const TaskMonitor& m, std::string_view name) { return m.name() < name; }

}  // namespace

void Sources::add_runtime(const Handle& runtime, std::string name,
                          std::shared_ptr<const StallDetector> stalls) {
  if (!runtime.valid()) {
    throw UsageError("spindle exporter: add_runtime(\"" + name +
                     "\") was given an empty Handle (use Runtime::handle())");
  }
  check_source_name(name, "runtime");
  if (stalls != nullptr && !(stalls->handle() == runtime)) {
    throw UsageError("spindle exporter: add_runtime(\"" + name +
                     "\"): the StallDetector watches a different runtime");
  }
  MutexLock lock(mu_);
  for (const RuntimeEntry& e : runtimes_) {
    if (e.name == name) {
      throw UsageError("spindle exporter: a runtime named \"" + name +
                       "\" is already registered (remove_runtime it first, or choose another "
                       "name)");
    }
    if (e.handle == runtime) {
      throw UsageError("spindle exporter: add_runtime(\"" + name +
                       "\"): this runtime is already registered as \"" + e.name + "\"");
    }
  }
  runtimes_.push_back(RuntimeEntry{std::move(name), runtime, std::move(stalls)});
}

bool Sources::remove_runtime(std::string_view name) {
  std::shared_ptr<const StallDetector> stalls;  // dropped after unlocking: it may be the last
  MutexLock lock(mu_);
  const auto it = std::find_if(runtimes_.begin(), runtimes_.end(),
                               [&](const RuntimeEntry& e) { return e.name == name; });
  if (it == runtimes_.end()) return false;
  stalls = std::move(it->stalls);
  runtimes_.erase(it);
  return true;
}

void Sources::add_monitor(const TaskMonitor& monitor) {
  const std::string& name = monitor.name();
  check_source_name(name, "monitor");
  MutexLock lock(mu_);
  const auto it = std::lower_bound(monitors_.begin(), monitors_.end(), name, name_less);
  if (it != monitors_.end() && it->name() == name) {
    if (*it == monitor) {
      throw UsageError("spindle exporter: monitor \"" + name +
                       "\" is already registered (add_monitor was called twice with the same "
                       "monitor)");
    }
    throw UsageError("spindle exporter: another monitor named \"" + name +
                     "\" is already registered; monitor names must be unique, since the name is "
                     "the `monitor` label");
  }
  if (monitors_.size() >= max_monitors_) {
    throw UsageError("spindle exporter: cannot add monitor \"" + name + "\": max_monitors (" +
                     std::to_string(max_monitors_) +
                     ") are registered; remove one or raise Options::max_monitors");
  }
  monitors_.insert(it, monitor);
}

bool Sources::remove_monitor(const TaskMonitor& monitor) {
  MutexLock lock(mu_);
  const auto it = std::find(monitors_.begin(), monitors_.end(), monitor);
  if (it == monitors_.end()) return false;
  {
    MutexLock blame_lock(blame_mu_);
    named_culprits_.erase(it->name());
  }
  monitors_.erase(it);
  return true;
}

bool Sources::remove_monitor(std::string_view name) {
  MutexLock lock(mu_);
  const auto it = std::lower_bound(monitors_.begin(), monitors_.end(), name, name_less);
  if (it == monitors_.end() || it->name() != name) return false;
  {
    MutexLock blame_lock(blame_mu_);
    named_culprits_.erase(it->name());
  }
  monitors_.erase(it);
  return true;
}

std::size_t Sources::monitor_count() const {
  MutexLock lock(mu_);
  return monitors_.size();
}

std::size_t Sources::runtime_count() const {
  MutexLock lock(mu_);
  return runtimes_.size();
}

std::vector<DelayBlame> Sources::exported_blame(const std::string& monitor,
                                                const std::vector<DelayBlame>& all) const {
  if (all.empty()) return {};
  MutexLock lock(blame_mu_);
  std::vector<std::string>& named = named_culprits_[monitor];
  // `all` is largest first: newcomers get the free places in that order.
  for (const DelayBlame& b : all) {
    if (named.size() >= kBlameCulprits) break;
    if (b.culprit == "other") continue;  // the name of the rest (BlameTable's overflow)
    if (std::find(named.begin(), named.end(), b.culprit) == named.end()) {
      named.push_back(b.culprit);
    }
  }
  std::vector<DelayBlame> out;
  out.reserve(named.size() + 1);
  for (const std::string& name : named) out.push_back(DelayBlame{name, {}});
  DelayBlame other{"other", {}};
  for (const DelayBlame& b : all) {
    auto it = std::find(named.begin(), named.end(), b.culprit);
    if (it != named.end()) {
      out[static_cast<std::size_t>(it - named.begin())].duration += b.duration;
    } else {
      other.duration += b.duration;
    }
  }
  out.push_back(other);
  return out;
}

Sources::Snapshot Sources::snapshot() const {
  Snapshot s;
  MutexLock lock(mu_);
  s.monitors = monitors_;
  s.runtimes.reserve(runtimes_.size());
  for (const RuntimeEntry& e : runtimes_) {
    RuntimeReading r{e.name, e.handle, std::nullopt};
    // The entry shares the detector: it is alive while registered.
    if (e.stalls != nullptr) r.stalls = e.stalls->stall_counts();
    s.runtimes.push_back(std::move(r));
  }
  return s;
}

}  // namespace spindle::detail
