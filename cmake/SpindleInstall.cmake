# Install rules: `cmake --install` yields a CMake package, so that consumers
# write `find_package(spindle)` and link spindle::runtime (and, when built,
# spindle::monitor and spindle::exporter).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SPINDLE_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/spindle")

install(EXPORT spindleTargets
        NAMESPACE spindle::
        FILE spindleTargets.cmake
        DESTINATION "${SPINDLE_CMAKE_INSTALL_DIR}")

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
