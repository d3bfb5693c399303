# Writes OUT, a C++ source defining floodgate::app::kVersion and kCommit: VERSION, and the git
# commit SOURCE_DIR is checked out at ("unknown" outside a git checkout, "-dirty" appended when
# tracked files differ from it). Run at every build (cmake -P); the file is rewritten only when
# its text changes, so that a build at the same commit compiles nothing again.
set(commit "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} rev-parse --short=12 HEAD
    OUTPUT_VARIABLE head OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE failed ERROR_QUIET)
  if(NOT failed AND head)
    set(commit "${head}")
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} diff-index --quiet HEAD --
      RESULT_VARIABLE changed ERROR_QUIET)
    if(changed)
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
set(text "// Written by cmake/BuildInfo.cmake at build time.\n#include \"build_info.h\"\n\nnamespace floodgate::app {\nconst char* const kVersion = \"${VERSION}\";\nconst char* const kCommit = \"${commit}\";\n}  // namespace floodgate::app\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
