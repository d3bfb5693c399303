# Fails if clang-format (with the repository's .clang-format) would change any C++ file.
file(GLOB_RECURSE sources RELATIVE "${ROOT}"
  "${ROOT}/src/*.h" "${ROOT}/src/*.cc" "${ROOT}/bench/*.h" "${ROOT}/bench/*.cc"
  "${ROOT}/examples/*.cc" "${ROOT}/tests/*.cc" "${ROOT}/apps/*.h" "${ROOT}/apps/*.cc")
execute_process(COMMAND "${CLANG_FORMAT}" --dry-run -Werror ${sources}
  WORKING_DIRECTORY "${ROOT}" RESULT_VARIABLE rc ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format would change these files (run `make format`):\n${out}")
endif()
list(LENGTH sources n)
message(STATUS "${n} files formatted")
