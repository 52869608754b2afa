// The process-wide registry of hook group names (see detail/groups.hpp).

#include "spindle/runtime/detail/groups.hpp"

#include <mutex>
#include <unordered_map>
#include <utility>

namespace spindle::detail {

namespace {

struct GroupRegistry {
  std::mutex mu;                                         // guards names
  std::unordered_map<std::uint64_t, std::string> names;  // id → name of live groups
};

GroupRegistry& registry() {
  static auto* r = new GroupRegistry();  // never destroyed: used until process exit
  return *r;
}

}  // namespace

void register_group(std::uint64_t id, std::string name) {
  GroupRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.names[id] = std::move(name);
}

void unregister_group(std::uint64_t id) noexcept {
  GroupRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.names.erase(id);
}

std::string group_name(std::uint64_t id) {
  if (id == 0) return {};
  GroupRegistry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.names.find(id);
  return it == r.names.end() ? std::string() : it->second;
}

}  // namespace spindle::detail
