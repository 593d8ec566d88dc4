# AMOAUTH_SANITIZE="address;undefined" or "thread"; set by the asan/tsan presets.
set(AMOAUTH_SANITIZE "" CACHE STRING "Sanitizers to build with (address;undefined or thread)")
if(AMOAUTH_SANITIZE)
  list(JOIN AMOAUTH_SANITIZE "," _amoauth_san)
  add_compile_options(-fsanitize=${_amoauth_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_amoauth_san})
  # GCC 12 warns (-Wtsan) that TSan ignores std::atomic_thread_fence, once per Asio handler:
  # Asio's std_fenced_block puts fences around every handler it runs. They order nothing TSan
  # needs: handlers pass between threads through the scheduler's mutex and op queue, which TSan
  # sees. The warning would bury real ones in the log.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND "thread" IN_LIST AMOAUTH_SANITIZE)
    add_compile_options(-Wno-tsan)
  endif()
  # clang 14's -fsanitize=function (part of `undefined`) puts a section-relative offset before
  # every function, which the coroutine frames split off by CoroSplit cannot hold: the assembler
  # fails with "Cannot represent a difference across sections" (libs/service). GCC has no such check.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND "undefined" IN_LIST AMOAUTH_SANITIZE)
    add_compile_options(-fno-sanitize=function)
  endif()
endif()
# The fuzz preset: everything it compiles carries libFuzzer's coverage instrumentation; only the
# fuzz targets link libFuzzer itself (fuzz/CMakeLists.txt).
if(AMOAUTH_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "AMOAUTH_FUZZ needs clang (the fuzz preset uses clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
