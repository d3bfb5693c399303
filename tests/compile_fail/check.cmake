# Compiles SOURCE (-fsyntax-only) with CXX, first as it is, which must succeed, then once per case
# of CASES (each -DCASE_<name>=1, given as "name:line"), each of which must fail with an error at
# that line of SOURCE that names CONCEPT. Usage:
#   cmake -DCXX=... -DSOURCE=... -DINCLUDE=... -DCONCEPT=... -DCASES="a:13;b:16" -P check.cmake
get_filename_component(name ${SOURCE} NAME)
execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE} ${SOURCE}
  RESULT_VARIABLE status ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${name}: the right use does not compile:\n${err}")
endif()
foreach(case IN LISTS CASES)
  string(REPLACE ":" ";" parts ${case})
  list(GET parts 0 what)
  list(GET parts 1 line)
  execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE} -DCASE_${what}=1 ${SOURCE}
    RESULT_VARIABLE status ERROR_VARIABLE err)
  if(status EQUAL 0)
    message(FATAL_ERROR "${name}: case ${what} compiled; it must not")
  endif()
  if(NOT err MATCHES "${name}:${line}:[0-9]+: error: no matching function for call to")
    message(FATAL_ERROR "${name}: case ${what}: the first error is not at the call (line ${line}):\n${err}")
  endif()
  if(NOT err MATCHES "${CONCEPT}")
    message(FATAL_ERROR "${name}: case ${what}: the error does not name ${CONCEPT}:\n${err}")
  endif()
  message(STATUS "${name}: case ${what} fails at line ${line}, naming ${CONCEPT}")
endforeach()
