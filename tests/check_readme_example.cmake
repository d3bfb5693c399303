# Fails unless the page README (README.md or a docs/ page) holds EXAMPLE (a path relative to
# EXAMPLE_DIR) verbatim inside a ```cpp block that follows the marker line
# "<!-- example: EXAMPLE -->".
file(READ "${README}" readme)
file(READ "${EXAMPLE_DIR}/${EXAMPLE}" example)
set(marker "<!-- example: ${EXAMPLE} -->\n```cpp\n")
string(FIND "${readme}" "${marker}" start)
if(start EQUAL -1)
  message(FATAL_ERROR "${README}: no marker line \"<!-- example: ${EXAMPLE} -->\" followed by ```cpp")
endif()
string(LENGTH "${marker}" marker_length)
math(EXPR start "${start} + ${marker_length}")
string(SUBSTRING "${readme}" ${start} -1 rest)
string(FIND "${rest}" "```" end)
string(SUBSTRING "${rest}" 0 ${end} block)
if(NOT block STREQUAL example)
  get_filename_component(name "${EXAMPLE}" NAME)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/readme_${name}" "${block}")
  message(FATAL_ERROR "${README}'s copy of ${EXAMPLE} differs from the file; copy the file into "
    "the page (the page's copy is in ${CMAKE_CURRENT_BINARY_DIR}/readme_${name})")
endif()
message(STATUS "${README}'s copy of ${EXAMPLE} matches")
