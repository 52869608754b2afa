# Compiler settings for spindle's own targets. Consumers only get the C++20
# requirement (a usage requirement of every spindle target); warnings and
# sanitizers stay private to this build.

# spindle_configure_target(<target>): warnings (as errors when SPINDLE_WERROR),
# and the sanitizer selected by SPINDLE_SANITIZER.
function(spindle_configure_target target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  # (No -Wnull-dereference: GCC reports it inside Asio's inlined reactor code.)
  set(warnings -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
      -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    # Checks ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotations.
    list(APPEND warnings -Wthread-safety)
  endif()
  if(SPINDLE_WERROR)
    list(APPEND warnings -Werror)
  endif()
  target_compile_options(${target} PRIVATE ${warnings})
endfunction()

if(SPINDLE_SANITIZER STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(SPINDLE_SANITIZER STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 15)
    # Clang 14 cannot emit inline coroutines with -fsanitize=function and -g
    # ("Cannot represent a difference across sections").
    add_compile_options(-fno-sanitize=function)
  endif()
  add_link_options(-fsanitize=address,undefined)
elseif(NOT SPINDLE_SANITIZER STREQUAL "")
  message(FATAL_ERROR "SPINDLE_SANITIZER must be '', 'thread' or 'address', not '${SPINDLE_SANITIZER}'")
endif()
if(SPINDLE_SANITIZER)
  add_compile_definitions(SPINDLE_SANITIZER_BUILD=1)
endif()
