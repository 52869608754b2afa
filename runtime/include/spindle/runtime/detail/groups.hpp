// Internal: names of hook groups (TaskHooks::group_id(), a TaskMonitor's id)
// by id, for everything that sees only the id: the flight recorder's trace,
// stall reports, delay blame. The monitor layer registers a monitor's name
// for as long as the monitor lives.
#pragma once

#include <cstdint>
#include <string>

namespace spindle::detail {

/// Makes `name` the name of group `id` (non-zero) until unregister_group(id).
void register_group(std::uint64_t id, std::string name);
/// Forgets group `id`.
void unregister_group(std::uint64_t id) noexcept;
/// The name of a live group; empty when `id` is 0 or no longer registered.
std::string group_name(std::uint64_t id);

}  // namespace spindle::detail
