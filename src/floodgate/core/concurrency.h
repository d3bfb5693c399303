// Concurrency constants and helpers shared by the limiters: the cache-line size hot atomics are
// aligned to, whether the process is still single-threaded, and the one-word commit every
// lock-free limiter uses. Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>

#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>  // glibc >= 2.32: __libc_single_threaded
#define FLOODGATE_HAS_SINGLE_THREADED 1
#else
#define FLOODGATE_HAS_SINGLE_THREADED 0
#endif

namespace floodgate {

// The size of a cache line on the platforms floodgate targets; hot atomics are aligned to it so
// that two limiters never share one.
inline constexpr std::size_t kCacheLineSize = 64;

namespace internal {

// Reports whether the process has never started a second thread (glibc's
// `__libc_single_threaded`; always false where the C library does not say). While it holds, no
// other thread exists to race with, so a read-modify-write may be a plain load and store, as
// glibc's own mutex and libstdc++'s `shared_ptr` do. Starting a thread clears it for good, and
// `pthread_create` publishes every earlier store to the new thread.
inline bool is_single_threaded() noexcept {
#if FLOODGATE_HAS_SINGLE_THREADED
  return __libc_single_threaded != 0;
#else
  return false;
#endif
}

// Replaces the value of `word` with `desired` if it still equals `expected`, and reports whether
// it did; otherwise loads the current value into `expected` (a compare-and-swap, which may also
// fail spuriously, so call it in a loop). While the process is single-threaded nothing can have
// changed `word` since it was loaded, so it stores `desired` with a plain store instead.
template <typename T>
bool commit_word(std::atomic<T>& word, T& expected, T desired) noexcept {
  if (is_single_threaded()) {
    word.store(desired, std::memory_order_relaxed);
    return true;
  }
  return word.compare_exchange_weak(expected, desired, std::memory_order_acq_rel,
                                    std::memory_order_acquire);
}

}  // namespace internal
}  // namespace floodgate
