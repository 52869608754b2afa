// spindle/runtime/errors.hpp — the exceptions the runtime layer reports.
//
//   spindle::Error          base of every runtime error (a std::runtime_error)
//   spindle::Cancelled      awaiting/joining a task that was aborted or destroyed at shutdown
//   spindle::RuntimeShutdown  a spawn refused because the runtime is shutting down
//   spindle::UsageError     an API used against its contract (a std::logic_error):
//                           block_on on a worker, awaiting a JoinHandle twice, ...
//   spindle::ConfigError    Runtime::Builder::build() rejected a setting (std::invalid_argument);
//                           what() names the setting
//
// Example:
//   try {
//     int v = co_await handle;
//   } catch (const spindle::Cancelled&) {
//     // the task was aborted before it produced a value
//   }
//
// Thread safety: these are plain exception types.
#pragma once

#include <stdexcept>
#include <string>

namespace spindle {

/// Base of the runtime's own runtime errors.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by awaiting or joining a JoinHandle whose task was aborted, or
/// destroyed unfinished when its runtime shut down. The task's frame has been
/// destroyed; no value exists.
class Cancelled : public Error {
 public:
  Cancelled() : Error("spindle: the task was cancelled before it finished") {}
  using Error::Error;
};

/// Thrown by spawn() when the runtime has begun shutting down: the task was
/// destroyed without ever being polled.
class RuntimeShutdown : public Error {
 public:
  RuntimeShutdown() : Error("spindle: spawn refused: the runtime is shutting down") {}
  using Error::Error;
};

/// An API called against its documented contract. Fix the calling code.
class UsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// A Runtime::Builder setting is out of range. what() names the setting, the
/// value given and what is accepted.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace spindle
