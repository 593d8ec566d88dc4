# AMOAUTH_SANITIZE="address;undefined" or "thread"; set by the asan/tsan presets.
set(AMOAUTH_SANITIZE "" CACHE STRING "Sanitizers to build with (address;undefined or thread)")
if(AMOAUTH_SANITIZE)
  list(JOIN AMOAUTH_SANITIZE "," _amoauth_san)
  add_compile_options(-fsanitize=${_amoauth_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_amoauth_san})
endif()
