#include <cstdio>
#include <cstdlib>

#include "fuzz_input.h"

namespace floodgate::fuzz {

void fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "fuzz invariant broken: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

}  // namespace floodgate::fuzz
