# Helpers shared by every folder's CMakeLists.txt.
include(GoogleTest)

# floodgate_warnings(target): our warning set, as errors when FLOODGATE_WERROR is on. Applied to
# our own targets only; installed targets carry no warning flags to consumers.
function(floodgate_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
    -Wnon-virtual-dtor -Woverloaded-virtual -Wcast-align -Wdouble-promotion
    -Wimplicit-fallthrough -Wformat=2)
  if(FLOODGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# floodgate_test(NAME name SOURCES ... LIBS ... LABEL label): one GoogleTest binary, registered
# with CTest test by test so failures name the test and `ctest -L` selects by label.
function(floodgate_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT;LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
  floodgate_warnings(${ARG_NAME})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  # One label per binary: gtest_discover_tests() flattens a list-valued property.
  gtest_discover_tests(${ARG_NAME}
    PROPERTIES LABELS "${ARG_LABEL}" TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()
