# Warnings for our own targets only (never global flags): link amoauth::warnings.
add_library(amoauth_warnings INTERFACE)
target_compile_options(amoauth_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual -Wformat=2
  -Wimplicit-fallthrough -Wmissing-declarations -Wold-style-cast
  -Wno-missing-field-initializers  # designated initializers leave defaulted members out on purpose
  $<$<CONFIG:Debug>:-D_GLIBCXX_ASSERTIONS>)
add_library(amoauth::warnings ALIAS amoauth_warnings)
