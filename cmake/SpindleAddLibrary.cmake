# spindle_add_library(<component> SOURCES <file>... [EXPORT <set>])
#
# One of spindle's libraries, laid out the same way for every layer:
#   - target spindle_<component>, alias spindle::<component>, exported and
#     installed as spindle::<component> (library file libspindle_<component>);
#   - <dir>/include public (build tree) and the install include dir
#     (installed), <dir>/src private;
#   - spindle_configure_target(): warnings, sanitizer usage requirements;
#   - with SPINDLE_INSTALL: the library into export set <set> (default
#     spindle<Component>Targets, see SpindleInstall.cmake) and include/ into
#     the install include dir.
# Dependencies, definitions and per-file options stay in the caller.
function(spindle_add_library component)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "EXPORT" "SOURCES")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "spindle_add_library(${component}): SOURCES is required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "spindle_add_library(${component}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT ARG_EXPORT)
    string(SUBSTRING "${component}" 0 1 first)
    string(SUBSTRING "${component}" 1 -1 rest)
    string(TOUPPER "${first}" first)
    set(ARG_EXPORT "spindle${first}${rest}Targets")
  endif()
  set(target spindle_${component})
  add_library(${target} ${ARG_SOURCES})
  add_library(spindle::${component} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${component} OUTPUT_NAME ${target})
  target_include_directories(${target}
    PUBLIC
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE
      ${CMAKE_CURRENT_SOURCE_DIR}/src)
  spindle_configure_target(${target})
  if(SPINDLE_INSTALL)
    install(TARGETS ${target} EXPORT ${ARG_EXPORT}
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endfunction()
