# Fails if doxygen, run over the public headers as `make docs` runs it (docs/api/Doxyfile), warns
# about anything: a public member without a contract, or a contract doxygen cannot read. Writes
# the reference under WORK_DIR, not into the source tree.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
file(WRITE "${WORK_DIR}/Doxyfile"
  "@INCLUDE = ${ROOT}/docs/api/Doxyfile\n"
  "OUTPUT_DIRECTORY = ${WORK_DIR}\n"
  "WARN_LOGFILE = ${WORK_DIR}/warnings.log\n")
execute_process(COMMAND "${DOXYGEN}" "${WORK_DIR}/Doxyfile"
  WORKING_DIRECTORY "${ROOT}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "doxygen failed (exit ${rc}):\n${out}")
endif()
if(NOT EXISTS "${WORK_DIR}/html/index.html")
  message(FATAL_ERROR "doxygen wrote no ${WORK_DIR}/html/index.html:\n${out}")
endif()
file(READ "${WORK_DIR}/warnings.log" warnings)
if(NOT warnings STREQUAL "")
  string(REGEX MATCHALL "\n" lines "\n${warnings}")
  list(LENGTH lines n)
  message(FATAL_ERROR "doxygen warned about the public headers (${n} lines; `make docs` "
    "writes the same to build/docs/warnings.log): each public member needs a contract, a `//` "
    "comment directly above it or after it on its line:\n${warnings}")
endif()
file(GLOB pages "${WORK_DIR}/html/*.html")
list(LENGTH pages n)
message(STATUS "API reference: ${n} pages, no warning")
