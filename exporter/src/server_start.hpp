// Internal: starting the exporter's HTTP server (civetweb's CivetServer) with
// errors a user can act on.
//
// civetweb reports why it could not start (the port is in use, the address
// is not this machine's, a malformed port spec) only to its log callback;
// CivetServer then throws "null context when constructing CivetServer",
// which names neither the address nor the reason. start_server() installs
// a log callback that, on the calling thread and only while the server is
// being constructed, records those messages, and turns a failure into an
// ExporterError naming both.
//
// Example:
//   auto server = start_server("127.0.0.1:0", {"listening_ports", "127.0.0.1:0"});
//   server->addHandler("/metrics", handler);
//
// Thread safety: start_server() may be called from any thread.
#pragma once

#include <CivetServer.h>

#include <memory>
#include <string>
#include <vector>

namespace spindle::detail {

/// Whether this civetweb build can listen on IPv6 addresses.
bool civetweb_has_ipv6() noexcept;

/// Starts a server with civetweb `options` (which include
/// "listening_ports" = `bind_address`) and no handlers yet: until one is
/// added every request gets 404. Blocks until it listens. Throws
/// ExporterError when it cannot (the message names `bind_address` and the
/// reason).
std::unique_ptr<CivetServer> start_server(const std::string& bind_address,
                                          const std::vector<std::string>& options);

}  // namespace spindle::detail
