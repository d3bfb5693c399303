// What this build of the floodgate programs is: the project's version and the git commit it was
// built from, written at build time (cmake/BuildInfo.cmake).
#pragma once

namespace floodgate::app {

extern const char* const kVersion;  // The project's version, as CMake's project() says.
// The commit's short hash, "-dirty" appended when tracked files differed from it; "unknown" when
// not built from a git checkout.
extern const char* const kCommit;

}  // namespace floodgate::app
