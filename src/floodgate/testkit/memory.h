// `resident_bytes()`: the process's resident memory, for tests and benchmarks that check a
// memory bound (Linux; 0 elsewhere). Header-only; thread-safe.
#pragma once

#include <cstddef>
#include <cstdio>

namespace floodgate::testkit {

// Returns the resident set size of this process in bytes, from /proc/self/statm, or 0 if it
// cannot be read. Under a sanitizer it counts the sanitizer's shadow memory too.
inline std::size_t resident_bytes() {
  long pages = 0;
  long resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<std::size_t>(resident) * 4096;
}

}  // namespace floodgate::testkit
