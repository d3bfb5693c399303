// Fuzz target: `Quota::parse` on any text. A quota parsed is valid and reads back from its
// `to_string()`; an error names the text without letting a byte that is not printable through.
#include <cstddef>
#include <cstdint>
#include <string>

#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using floodgate::fuzz::fail;
  floodgate::fuzz::FuzzInput in(data, size);
  const std::string_view text = in.rest();
  const floodgate::Result<floodgate::Quota> quota = floodgate::Quota::parse(text);
  if (!quota) {
    const std::string& message = quota.error().message();
    if (message.empty()) fail("an error without a message", text);
    for (const char c : message) {
      const auto b = static_cast<unsigned char>(c);
      if (b < 0x20 || b >= 0x7f) fail("an unescaped byte in the message", message);
    }
    return 0;
  }
  const floodgate::Quota& q = *quota;
  if (q.count() == 0 || q.burst() == 0 || q.period().count() <= 0) fail("a zero quota", text);
  if (q.interval().count() < 1) fail("an interval under 1 ns", text);
  __extension__ using Wide = unsigned __int128;
  if (static_cast<Wide>(q.burst()) * static_cast<std::uint64_t>(q.interval().count()) >
      static_cast<std::uint64_t>(floodgate::internal::kMaxWindow)) {
    fail("a window over 2^61 ns", text);
  }
  const std::string again = q.to_string();
  const floodgate::Result<floodgate::Quota> back = floodgate::Quota::parse(again);
  if (!back || !(*back == q)) fail("to_string does not read back", again);
  return 0;
}
