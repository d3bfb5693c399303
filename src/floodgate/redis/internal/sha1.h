// SHA-1 of a script's text, as Redis names scripts for EVALSHA, so that a limiter can send
// EVALSHA before it has ever talked to a server. Not part of the public API; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace floodgate::internal {

// Returns the SHA-1 digest of `text` as 40 lowercase hexadecimal digits.
std::string sha1_hex(std::string_view text);

}  // namespace floodgate::internal
