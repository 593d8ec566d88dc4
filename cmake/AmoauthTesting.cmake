include(GoogleTest)

# amoauth_add_test(NAME <target> LABEL <unit|integration|e2e|system> SOURCES ... LIBS ...
#                  [TIMEOUT seconds])
# One gtest executable; its tests are discovered at test time and carry LABEL. TIMEOUT: 120.
function(amoauth_add_test)
  cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main
                                          amoauth::warnings)
  gtest_discover_tests(${T_NAME} DISCOVERY_MODE PRE_TEST PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT})
endfunction()
