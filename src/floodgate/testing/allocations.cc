// The replaced global allocation functions behind floodgate/testing/allocations.h.
#include "floodgate/testing/allocations.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC sees a `delete` of memory from a `new` it inlined as malloc, and warns of a mismatch that
// the replacement pair makes correct.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace floodgate::testkit {

void start_counting_allocations() noexcept {
  allocations.store(0);
  counting.store(true);
}

long stop_counting_allocations() noexcept {
  counting.store(false);
  return allocations.load();
}

}  // namespace floodgate::testkit
