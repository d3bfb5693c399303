#include "floodgate/core/internal/thread_index.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <vector>

namespace floodgate::internal {
namespace {

// Indices given back by exited threads, as a min-heap, and the next never-used one.
struct Registry {
  std::mutex mu;
  std::vector<std::size_t> free;  // Guarded by mu.
  std::size_t next = 0;           // Guarded by mu.
};

// Never destroyed: threads may exit after static destruction has begun.
Registry& registry() {
  static Registry* const r = new Registry;
  return *r;
}

// Gives the thread's index back when the thread exits. The registry's mutex orders the exited
// thread's writes to its slots before the next holder's reads.
struct Holder {
  std::size_t index;
  ~Holder() {
    tls_thread_index = kExitingThreadIndex;
    Registry& r = registry();
    const std::lock_guard lock(r.mu);
    r.free.push_back(index);
    std::push_heap(r.free.begin(), r.free.end(), std::greater<>{});
  }
};

std::size_t take() {
  Registry& r = registry();
  const std::lock_guard lock(r.mu);
  if (r.free.empty()) return r.next++;
  std::pop_heap(r.free.begin(), r.free.end(), std::greater<>{});
  const std::size_t index = r.free.back();
  r.free.pop_back();
  return index;
}

}  // namespace

std::size_t claim_thread_index() {
  if (tls_thread_index != kUnclaimedThreadIndex) return tls_thread_index;
  thread_local const Holder holder{take()};
  tls_thread_index = holder.index;
  return holder.index;
}

}  // namespace floodgate::internal
