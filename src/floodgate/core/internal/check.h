// Precondition checks.
//
// `FLOODGATE_CHECK(cond, message)` is always on: a broken precondition on a trusted call (a quota
// of zero passed to `Quota::per_second`, `value()` on a `Result` holding an error) prints
// "floodgate: CHECK failed at file:line: cond: message" to stderr and aborts. floodgate throws
// nothing of its own. `FLOODGATE_DCHECK` is the same check compiled only when `NDEBUG` is not
// defined, for invariants on hot paths. Both are thread-safe.
#pragma once

#include <string_view>

namespace floodgate::internal {

// Prints the failed check and aborts. Never returns.
[[noreturn]] void check_failed(std::string_view file, int line, std::string_view condition,
                               std::string_view message) noexcept;

}  // namespace floodgate::internal

#define FLOODGATE_CHECK(cond, message)                                           \
  do {                                                                           \
    if (!(cond)) [[unlikely]] {                                                  \
      ::floodgate::internal::check_failed(__FILE__, __LINE__, #cond, (message)); \
    }                                                                            \
  } while (false)

#ifdef NDEBUG
#define FLOODGATE_DCHECK(cond, message) \
  do {                                  \
  } while (false && (cond))
#else
#define FLOODGATE_DCHECK(cond, message) FLOODGATE_CHECK(cond, message)
#endif
