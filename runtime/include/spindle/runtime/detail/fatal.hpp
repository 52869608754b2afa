// Internal: the one way spindle ends the process on a contract violation.
//
//   detail::fatal(message)  prints "spindle: fatal: <message>" to stderr and aborts
//
// For violations that cannot be reported by an exception: noexcept
// scheduler paths, a sync primitive destroyed while tasks wait on it, a
// task state transition from a state it must never leave (debug builds).
#pragma once

namespace spindle::detail {

/// Prints `message` to stderr and aborts. Never returns; never throws.
[[noreturn]] void fatal(const char* message) noexcept;

}  // namespace spindle::detail
