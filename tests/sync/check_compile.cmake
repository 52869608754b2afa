# check_compile.cmake — one compile-time check, run as a CTest test:
#
#   cmake -DCOMPILER=<c++> -DFLAGS=<flag|flag|...> -DSOURCE=<file> -DSNIPPET=<NAME>
#         -DEXPECT=<text | "compiles"> -P check_compile.cmake
#
# Compiles SOURCE with -DSNIPPET_<NAME> (syntax only). EXPECT "compiles": the
# compiler must succeed. Otherwise it must fail, and its diagnostics must
# contain EXPECT (plain text): a failure for another reason (a missing
# include, a typo in the snippet) does not pass.
foreach(var COMPILER FLAGS SOURCE SNIPPET EXPECT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_compile.cmake: -D${var}=... is required")
  endif()
endforeach()
string(REPLACE "|" ";" flags "${FLAGS}")
execute_process(
  COMMAND "${COMPILER}" ${flags} -fsyntax-only "-DSNIPPET_${SNIPPET}" "${SOURCE}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
set(diagnostics "${out}${err}")
if(EXPECT STREQUAL "compiles")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "SNIPPET_${SNIPPET} should compile, but the compiler said:\n${diagnostics}")
  endif()
  message(STATUS "SNIPPET_${SNIPPET} compiles")
  return()
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "SNIPPET_${SNIPPET} compiled, but it should fail with \"${EXPECT}\"")
endif()
string(FIND "${diagnostics}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR
    "SNIPPET_${SNIPPET} failed to compile, but not with \"${EXPECT}\":\n${diagnostics}")
endif()
message(STATUS "SNIPPET_${SNIPPET} fails with \"${EXPECT}\"")
