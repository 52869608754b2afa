// spindle/exporter/errors.hpp — the exceptions the exporter layer reports.
//
//   spindle::ExporterError  the exporter cannot serve: the port is in use, the
//                           address is not this machine's (a std::runtime_error)
//
// Bad input to the exporter is reported with the runtime layer's types (see
// spindle/runtime/errors.hpp), each at the call that caused it:
//   spindle::ConfigError  an Options field is invalid (bind address syntax,
//                         path, constant labels, a timeout or the connection
//                         cap out of range, a TLS file that cannot be used)
//   spindle::UsageError   add/remove called against its contract (empty or
//                         duplicate monitor name, the same monitor twice,
//                         max_monitors reached, an empty runtime Handle)
// A failed call changes nothing: the exporter keeps serving what it had.
//
// Example:
//   try {
//     spindle::PrometheusExporter exporter({.bind_address = "127.0.0.1:9464"});
//   } catch (const spindle::ExporterError& e) {
//     std::cerr << e.what() << "\n";   // "...cannot listen on 127.0.0.1:9464: the port is in
//     use..."
//   }
//
// Thread safety: plain exception types.
#pragma once

#include "spindle/runtime/errors.hpp"

namespace spindle {

/// The exporter could not start serving (what() names the address and the
/// reason: the port is in use, the address is not this machine's, ...).
class ExporterError : public Error {
 public:
  using Error::Error;
};

}  // namespace spindle
