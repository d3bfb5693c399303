// Fuzz target: the Redis reply reader on any bytes, as a server (or whatever answers on its
// port) would send them, cut into reads of any size. No crash; what it holds stays within one
// reply's bound plus one read; every reply it returns is within the bounds; an error resets it
// and reading goes on (as a connection that is closed and opened again).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "floodgate/redis/internal/reply_reader.h"
#include "fuzz_input.h"

namespace {

using floodgate::internal::Reply;

// Returns the values in `r`, itself included, and checks its depth.
std::size_t values_in(const Reply& r, std::size_t depth) {
  if (depth > floodgate::internal::kMaxReplyDepth + 1) {
    floodgate::fuzz::fail("a reply nested deeper than the bound");
  }
  std::size_t n = 1;
  for (const Reply& e : r.elements) n += values_in(e, depth + 1);
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using floodgate::fuzz::fail;
  floodgate::fuzz::FuzzInput in(data, size);
  // A small limit too, so that short inputs reach the byte bound.
  const std::size_t limit = in.byte() % 2 == 0 ? floodgate::internal::kMaxReplyBytes : 64;
  floodgate::internal::ReplyReader reader(limit);
  std::size_t errors = 0;
  while (!in.empty()) {
    const std::size_t read = 1 + in.byte() % 64;
    const std::string_view chunk = in.take(read);
    reader.feed(chunk);
    for (;;) {
      floodgate::Result<std::optional<Reply>> r = reader.next();
      if (!r) {
        if (r.error().message().empty()) fail("an error without a message");
        ++errors;
        reader.reset();
        break;
      }
      if (!*r) break;
      if (values_in(**r, 1) > floodgate::internal::kMaxReplyElements + 1) {
        fail("a reply with more values than the bound");
      }
    }
    if (reader.buffered() > limit + read) {
      fail("the reader holds more than a reply's bound and a read");
    }
  }
  (void)errors;
  return 0;
}
