include(GoogleTest)

# amoauth_add_test(NAME <target> LABEL <unit|integration|e2e|system> [POSTGRES] SOURCES ... LIBS ...
#                  [TIMEOUT seconds])
# One gtest executable; its tests are discovered at test time and carry LABEL. TIMEOUT: 120.
# POSTGRES: every test of the target needs the shared scratch PostgreSQL server (the `postgres`
# fixture below) and finds its URL in AMOAUTH_TEST_POSTGRES_URL.
function(amoauth_add_test)
  cmake_parse_arguments(T "POSTGRES;SERIAL" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main
                                          amoauth::warnings)
  set(postgres_properties)
  if(T_POSTGRES)
    set(postgres_properties FIXTURES_REQUIRED postgres
                            ENVIRONMENT "AMOAUTH_TEST_POSTGRES_URL=${AMOAUTH_TEST_POSTGRES_URL}")
  endif()
  # SERIAL: the test measures liveness under load it makes itself (several processes on two
  # cores); a neighbouring test's load would starve it, so ctest runs it alone.
  set(serial_properties)
  if(T_SERIAL)
    set(serial_properties RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST
                       PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT} ${postgres_properties}
                                  ${serial_properties})
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
