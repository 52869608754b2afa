// Internal header, public types: the errors shared by spindle::sync's primitives.
//
//   spindle::sync::Closed  an await failed because the primitive was closed
//                          (Semaphore::close, mpsc Receiver::close or drop)
//
// Included by semaphore.hpp and mpsc.hpp, which document where they throw it.
#pragma once

#include "spindle/runtime/detail/fatal.hpp"
#include "spindle/runtime/errors.hpp"

namespace spindle::sync {

/// The primitive was closed: a Semaphore after close(), or an mpsc channel
/// whose receiver closed or was destroyed (mpsc::SendError<T> derives from
/// it). what() names the primitive and the operation.
class Closed : public spindle::Error {
 public:
  Closed() : Error("spindle::sync: the primitive is closed") {}
  using Error::Error;
};

namespace detail {

/// Ends the process with a message: a primitive was misused in a way that
/// would otherwise corrupt memory (destroyed while tasks still wait on it).
using spindle::detail::fatal;

}  // namespace detail
}  // namespace spindle::sync
