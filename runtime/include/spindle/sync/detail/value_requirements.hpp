// Internal: what spindle::sync's channels require of the type of their values.
//
//   detail::check_channel_value<T, Queue>()  static_asserts, one message per requirement
//
// Each channel type asserts it in its class body, so that a channel of an
// unsuitable type fails to compile with one sentence saying why, at the
// user's channel<T>() / oneshot<T>() call, instead of deep inside
// std::deque or std::optional. The requirements follow from what the
// channels do with a value:
//   - it is an object: the channel stores it (no reference, void, function
//     or C array: send a pointer, std::reference_wrapper or std::array);
//   - it can be move-constructed: send() moves it in, a receive moves it out;
//   - its destructor does not throw: values still queued are destroyed by the
//     Receiver's (or the shared block's) noexcept clean-up;
//   - for a queue (mpsc), it is not const or volatile: std::deque cannot
//     hold such elements, and a received value is moved out of the queue.
#pragma once

#include <type_traits>

namespace spindle::sync::detail {

/// Fails to compile when T cannot be the value type of a channel, with the
/// message of the first requirement it breaks; otherwise true. Use it as
/// `static_assert(check_channel_value<T, Queue>());` in a class body.
/// `Queue`: the values wait in a std::deque (mpsc), which also rules out
/// cv-qualified T.
template <class T, bool Queue>
constexpr bool check_channel_value() noexcept {
  if constexpr (std::is_reference_v<T>) {
    static_assert(!std::is_reference_v<T>,
                  "spindle::sync: a channel's value type must not be a reference: the channel "
                  "stores the value (send a pointer or a std::reference_wrapper)");
  } else if constexpr (std::is_void_v<T>) {
    static_assert(!std::is_void_v<T>,
                  "spindle::sync: a channel's value type must not be void (send an empty struct, "
                  "or use spindle::sync::Notify to signal without data)");
  } else if constexpr (!std::is_object_v<T> || std::is_array_v<T>) {
    static_assert(std::is_object_v<T> && !std::is_array_v<T>,
                  "spindle::sync: a channel's value type must be an object type, not a function "
                  "or a C array (send a function pointer, a std::function or a std::array)");
  } else if constexpr (Queue && (std::is_const_v<T> || std::is_volatile_v<T>)) {
    static_assert(!std::is_const_v<T> && !std::is_volatile_v<T>,
                  "spindle::sync::mpsc: a channel's value type must not be const or volatile: "
                  "values are moved out of the channel's queue (drop the qualifier)");
  } else if constexpr (!std::is_move_constructible_v<T>) {
    static_assert(std::is_move_constructible_v<T>,
                  "spindle::sync: a channel's value type must be move-constructible: a send "
                  "moves the value into the channel and a receive moves it out (wrap a "
                  "non-movable type in a std::unique_ptr)");
  } else if constexpr (!std::is_nothrow_destructible_v<T>) {
    static_assert(std::is_nothrow_destructible_v<T>,
                  "spindle::sync: a channel's value type must be nothrow-destructible: values "
                  "still in the channel are destroyed by its noexcept clean-up");
  }
  return true;
}

}  // namespace spindle::sync::detail
