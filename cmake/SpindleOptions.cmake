# Compiler settings for spindle's own targets.
#
# Warnings are private to spindle's targets, and errors only when
# SPINDLE_WERROR is ON (CMakePresets.json and CI turn it on; a plain
# `cmake -DCMAKE_BUILD_TYPE=Release` does not, so a compiler newer or older
# than the ones CI runs never breaks a user's build over a warning).
#
# The sanitizer selected by SPINDLE_SANITIZER instruments everything built in
# this tree, and is also a usage requirement of spindle's libraries: an
# installed sanitizer build exports its -fsanitize flags on spindle::runtime,
# spindle::monitor and spindle::exporter (INTERFACE_COMPILE_OPTIONS and
# INTERFACE_LINK_OPTIONS), so a consumer that links them is instrumented
# and linked against the sanitizer runtime without further set-up.

if(SPINDLE_SANITIZER STREQUAL "thread")
  set(SPINDLE_SANITIZER_COMPILE_OPTIONS -fsanitize=thread -fno-omit-frame-pointer)
  set(SPINDLE_SANITIZER_LINK_OPTIONS -fsanitize=thread)
elseif(SPINDLE_SANITIZER STREQUAL "address")
  set(SPINDLE_SANITIZER_COMPILE_OPTIONS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
  set(SPINDLE_SANITIZER_LINK_OPTIONS -fsanitize=address,undefined)
elseif(NOT SPINDLE_SANITIZER STREQUAL "")
  message(FATAL_ERROR "SPINDLE_SANITIZER must be '', 'thread' or 'address', not '${SPINDLE_SANITIZER}'")
else()
  set(SPINDLE_SANITIZER_COMPILE_OPTIONS "")
  set(SPINDLE_SANITIZER_LINK_OPTIONS "")
endif()

# Clang 14 cannot emit inline coroutines with -fsanitize=function and -g
# ("Cannot represent a difference across sections"). Written as a generator
# expression so that, exported, it applies when the *consumer's* compiler is
# such a Clang (a consumer compiles spindle's coroutine headers too).
set(_spindle_clang14
    "$<AND:$<CXX_COMPILER_ID:Clang>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,15>>")
if(SPINDLE_SANITIZER STREQUAL "address")
  list(APPEND SPINDLE_SANITIZER_COMPILE_OPTIONS "$<${_spindle_clang14}:-fno-sanitize=function>")
endif()

# The whole tree (tests, examples, benchmarks) is built instrumented; the
# libraries' usage requirements below carry the same flags to consumers.
# (Identical options are de-duplicated on each command line.)
if(SPINDLE_SANITIZER)
  add_compile_options(${SPINDLE_SANITIZER_COMPILE_OPTIONS})
  add_link_options(${SPINDLE_SANITIZER_LINK_OPTIONS})
  add_compile_definitions(SPINDLE_SANITIZER_BUILD=1)
endif()

# spindle_configure_target(<target>): C++20, warnings (as errors when
# SPINDLE_WERROR), and, for a library, the sanitizer flags as a usage
# requirement.
function(spindle_configure_target target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  # (No -Wnull-dereference: GCC reports it inside Asio's inlined reactor code.)
  set(warnings -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
      -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    # Checks ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations.
    list(APPEND warnings -Wthread-safety)
  endif()
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
     AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12's -Wrestrict (part of -Wall) reports a bogus overlapping memcpy
    # inside libstdc++'s std::string when optimizing, e.g. for
    # `"literal" + std::string(...)` (runtime/src/worker.cpp at -O3): GCC bugs
    # 105329 and 105651 ("accessing 9223372036854775810 or more bytes").
    list(APPEND warnings -Wno-restrict)
  endif()
  if(SPINDLE_WERROR)
    list(APPEND warnings -Werror)
  endif()
  target_compile_options(${target} PRIVATE ${warnings})

  get_target_property(type ${target} TYPE)
  if(SPINDLE_SANITIZER AND type MATCHES "^(STATIC|SHARED|MODULE|OBJECT)_LIBRARY$")
    target_compile_options(${target} INTERFACE ${SPINDLE_SANITIZER_COMPILE_OPTIONS})
    target_link_options(${target} INTERFACE ${SPINDLE_SANITIZER_LINK_OPTIONS})
  endif()
endfunction()
