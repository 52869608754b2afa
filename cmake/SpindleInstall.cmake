# Install rules: `cmake --install` yields a CMake package with one component
# per layer, so that consumers write
#   find_package(spindle REQUIRED)                      # every installed layer
#   find_package(spindle REQUIRED COMPONENTS runtime)   # just spindle::runtime
# and link spindle::runtime, spindle::monitor, spindle::exporter. Each layer
# has its own export file, so that loading the runtime never needs the
# exporter's dependencies (prometheus-cpp); see spindleConfig.cmake.in.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SPINDLE_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/spindle")

# Export sets, one per layer (spindle_add_library names them):
# spindleRuntimeTargets, spindleMonitorTargets, spindleExporterTargets.
install(EXPORT spindleRuntimeTargets
        NAMESPACE spindle::
        FILE spindleRuntimeTargets.cmake
        DESTINATION "${SPINDLE_CMAKE_INSTALL_DIR}")
install(EXPORT spindleMonitorTargets
        NAMESPACE spindle::
        FILE spindleMonitorTargets.cmake
        DESTINATION "${SPINDLE_CMAKE_INSTALL_DIR}")
if(SPINDLE_BUILD_EXPORTER)
  install(EXPORT spindleExporterTargets
          NAMESPACE spindle::
          FILE spindleExporterTargets.cmake
          DESTINATION "${SPINDLE_CMAKE_INSTALL_DIR}")
endif()

# Values spindleConfig.cmake.in substitutes.
if(SPINDLE_BUILD_EXPORTER)
  set(SPINDLE_INSTALLED_COMPONENTS "runtime;monitor;exporter")
else()
  set(SPINDLE_INSTALLED_COMPONENTS "runtime;monitor")
endif()
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/spindleConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/spindleConfig.cmake"
  INSTALL_DESTINATION "${SPINDLE_CMAKE_INSTALL_DIR}")
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/spindleConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
          "${PROJECT_BINARY_DIR}/spindleConfig.cmake"
          "${PROJECT_BINARY_DIR}/spindleConfigVersion.cmake"
          "${PROJECT_SOURCE_DIR}/cmake/FindAsio.cmake"
        DESTINATION "${SPINDLE_CMAKE_INSTALL_DIR}")
