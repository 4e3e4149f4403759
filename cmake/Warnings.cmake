# Project-wide warning flags, applied through an interface target so that generated code
# (protobuf/gRPC stubs) can opt out.
add_library(dispotify_warnings INTERFACE)
target_compile_options(dispotify_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough -Wformat=2
  # -Wnull-dereference is left out: at -O2, GCC 12 reports it inside libstdc++'s <streambuf>
  # (istreambuf_iterator, getline) for correct code.
  # C++20 designated initializers leave the other members at their defaults on purpose.
  -Wno-missing-field-initializers)
if(DISPOTIFY_WERROR)
  target_compile_options(dispotify_warnings INTERFACE -Werror)
endif()
