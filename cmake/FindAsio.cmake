# FindAsio: locates standalone Asio (Debian: libasio-dev), a header-only library.
# Defines Asio_FOUND, Asio_INCLUDE_DIR, Asio_VERSION and the imported target Asio::asio.
find_path(Asio_INCLUDE_DIR NAMES asio.hpp DOC "Standalone Asio include directory")
if(Asio_INCLUDE_DIR AND EXISTS "${Asio_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${Asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line
       REGEX "^#define ASIO_VERSION [0-9]+")
  string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" _asio_v "${_asio_version_line}")
  math(EXPR _asio_major "${_asio_v} / 100000")
  math(EXPR _asio_minor "${_asio_v} / 100 % 1000")
  math(EXPR _asio_patch "${_asio_v} % 100")
  set(Asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio REQUIRED_VARS Asio_INCLUDE_DIR VERSION_VAR Asio_VERSION)
# ASIO_DISABLE_STD_ALIGNED_ALLOC: Asio 1.22 decides between aligned_alloc/free
# and operator new/delete from _GLIBCXX_HAVE_ALIGNED_ALLOC, which is defined
# only once a standard header has been included. A file that includes Asio
# first (runtime/src/worker.cpp) and one that does not (a consumer's) then
# hold different inline asio::aligned_new/aligned_delete, and memory that one
# allocates with operator new the other frees with free() (AddressSanitizer:
# alloc-dealloc-mismatch, seen in tests/consumer's AddressSanitizer consumer).
# Disabling the aligned_alloc path makes every file agree.
if(Asio_FOUND AND NOT TARGET Asio::asio)
  find_package(Threads REQUIRED)
  add_library(Asio::asio INTERFACE IMPORTED)
  set_target_properties(Asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${Asio_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED;ASIO_DISABLE_STD_ALIGNED_ALLOC"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
mark_as_advanced(Asio_INCLUDE_DIR)
