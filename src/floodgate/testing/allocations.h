// Counting the calls to the global allocation function, for tests that promise "allocates
// nothing". A test binary that includes this header links testing/allocations.cc, which
// replaces the global `operator new` and `operator delete`. Not installed.
#pragma once

#include <utility>

namespace floodgate::testkit {

// Starts counting calls to `operator new`, from zero.
void start_counting_allocations() noexcept;

// Stops counting and returns the calls counted since `start_counting_allocations`.
long stop_counting_allocations() noexcept;

// Returns the calls to `operator new` that `calls()` makes.
template <typename F>
long allocations_in(F&& calls) {
  start_counting_allocations();
  std::forward<F>(calls)();
  return stop_counting_allocations();
}

}  // namespace floodgate::testkit
