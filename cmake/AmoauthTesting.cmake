include(GoogleTest)

# AMOAUTH_TEST_LABELS: build only the test targets carrying one of these labels (empty: all). The
# sanitizer presets use it (docs/adr/0006-sanitizers-in-ci.md): asan builds `unit;integration`,
# tsan builds `concurrency`; the other test kinds (e2e, fuzz-smoke, package, lint) are left out too.
set(AMOAUTH_TEST_LABELS "" CACHE STRING "Only build test targets with one of these labels (empty: all)")
function(amoauth_test_label_wanted label out)
  set(wanted TRUE)
  if(AMOAUTH_TEST_LABELS)
    set(wanted FALSE)
    foreach(l IN LISTS label)
      if(l IN_LIST AMOAUTH_TEST_LABELS)
        set(wanted TRUE)
      endif()
    endforeach()
  endif()
  set(${out} ${wanted} PARENT_SCOPE)
endfunction()

# amoauth_tests: every test executable of this configuration (what the sanitizer builds build).
add_custom_target(amoauth_tests)

# Sanitizer builds: every test runs with these options (ctest's ENVIRONMENT), and so do the
# `amoauth` processes the process tests start, which inherit them. Any finding fails the test.
set(AMOAUTH_TEST_SANITIZER_ENV)
if(AMOAUTH_SANITIZE)
  set(AMOAUTH_TEST_SANITIZER_ENV
      "ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:print_stacktrace=1:check_initialization_order=1"
      "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
      "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${PROJECT_SOURCE_DIR}/cmake/tsan.supp"
      "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/cmake/lsan.supp")
endif()

# amoauth_add_test(NAME <target> LABEL <unit|integration|e2e|system> [POSTGRES] [SERIAL]
#                  [CONCURRENCY] SOURCES ... LIBS ... [TIMEOUT seconds])
# One gtest executable; its tests are discovered at test time and carry LABEL. TIMEOUT: 120.
# POSTGRES: every test of the target needs the shared scratch PostgreSQL server (the `postgres`
# fixture below) and finds its URL in AMOAUTH_TEST_POSTGRES_URL.
# CONCURRENCY: the target holds tests of code shared between threads (single flight, leases,
# pools, run_blocking…); its tests also carry the label `concurrency`, which the tsan build runs.
function(amoauth_add_test)
  cmake_parse_arguments(T "POSTGRES;SERIAL;CONCURRENCY" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set(labels ${T_LABEL})
  if(T_CONCURRENCY)
    list(APPEND labels concurrency)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main
                                          amoauth::warnings)
  # A label AMOAUTH_TEST_LABELS leaves out: the target stays (for the callers' target_* calls) but
  # is neither built by default nor run.
  amoauth_test_label_wanted("${labels}" wanted)
  if(NOT wanted)
    set_target_properties(${T_NAME} PROPERTIES EXCLUDE_FROM_ALL TRUE)
    return()
  endif()
  add_dependencies(amoauth_tests ${T_NAME})
  set(environment ${AMOAUTH_TEST_SANITIZER_ENV})
  set(postgres_properties)
  if(T_POSTGRES)
    set(postgres_properties FIXTURES_REQUIRED postgres)
    list(APPEND environment "AMOAUTH_TEST_POSTGRES_URL=${AMOAUTH_TEST_POSTGRES_URL}")
  endif()
  # SERIAL: the test measures liveness under load it makes itself (several processes on two
  # cores); a neighbouring test's load would starve it, so ctest runs it alone.
  set(serial_properties)
  if(T_SERIAL)
    set(serial_properties RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST
                       PROPERTIES TIMEOUT ${T_TIMEOUT} ${postgres_properties} ${serial_properties})
  # CMake 3.25's gtest_discover_tests passes each element of a list-valued property as an argument
  # of its own (LABELS unit concurrency → a property named "concurrency"), so the lists — labels,
  # environment — are set by a script ctest includes after the discovery, on the tests it found.
  set(properties_script ${CMAKE_CURRENT_BINARY_DIR}/${T_NAME}_properties.cmake)
  file(WRITE ${properties_script}
       "if(${T_NAME}_TESTS)\n"
       "  set_tests_properties(\${${T_NAME}_TESTS} PROPERTIES\n"
       "    LABELS [==[${labels}]==]\n"
       "    ENVIRONMENT [==[${environment}]==])\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${properties_script})
endfunction()

# The `postgres` fixture: one scratch PostgreSQL 15 for the whole test run, on a Unix socket in
# the build tree (scripts/postgres-scratch.sh), started before the first test that needs it and
# stopped after the last. Each test makes its own database on it (tests/support/postgres_scratch.hpp).
# A server left running by an interrupted run is reused; stale lock files are cleared.
set(AMOAUTH_TEST_POSTGRES_DIR ${CMAKE_BINARY_DIR}/pg-scratch)
set(AMOAUTH_TEST_POSTGRES_URL "postgresql://postgres@/postgres?host=${AMOAUTH_TEST_POSTGRES_DIR}")
add_test(NAME postgres.start
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/postgres-scratch.sh start ${AMOAUTH_TEST_POSTGRES_DIR})
add_test(NAME postgres.stop
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/postgres-scratch.sh stop ${AMOAUTH_TEST_POSTGRES_DIR})
set_tests_properties(postgres.start PROPERTIES FIXTURES_SETUP postgres TIMEOUT 120)
set_tests_properties(postgres.stop PROPERTIES FIXTURES_CLEANUP postgres TIMEOUT 120)
