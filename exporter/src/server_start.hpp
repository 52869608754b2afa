// Internal: starting prometheus-cpp's Exposer (civetweb) with errors a user can act on.
//
// civetweb reports why it could not start (the port is in use, the address
// is not this machine's, a malformed port spec) only to its log callback;
// CivetServer then throws "null context when constructing CivetServer",
// which names neither the address nor the reason. start_exposer() installs
// a log callback that, on the calling thread and only while the server is
// being constructed, records those messages, and turns a failure into an
// ExporterError naming both.
#pragma once

#include <prometheus/exposer.h>

#include <memory>
#include <string>
#include <vector>

namespace spindle::detail {

/// Whether this civetweb build can listen on IPv6 addresses.
bool civetweb_has_ipv6() noexcept;

/// Starts an Exposer with civetweb `options` (which include
/// "listening_ports" = `bind_address`). Throws ExporterError when it cannot.
std::unique_ptr<prometheus::Exposer> start_exposer(const std::string& bind_address,
                                                   std::vector<std::string> options);

}  // namespace spindle::detail
