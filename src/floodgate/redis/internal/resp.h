// RESP, the Redis protocol: commands written into a buffer and replies as plain values. Replies
// are read by `ReplyReader` (reply_reader.h); this header owns the representation. Not part of
// the public API. Everything here is a value or a free function; thread-safe.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace floodgate::internal {

// One reply from Redis.
struct Reply {
  enum class Type : std::uint8_t { String, Status, Error, Integer, Nil, Array };

  Type type = Type::Nil;
  std::string text;  // String, Status and Error: the bytes.
  std::int64_t integer = 0;
  std::vector<Reply> elements;  // Array.

  bool is_error() const noexcept { return type == Type::Error; }
};

// Appends `args` to `out` as one RESP command (an array of bulk strings).
void append_command(std::string& out, std::initializer_list<std::string_view> args);
void append_command(std::string& out, std::span<const std::string_view> args);

// Returns a reply as one line for error messages and logs, such as `error "NOSCRIPT No matching
// script"` or `array of 3`.
std::string describe(const Reply& reply);

// Reports whether an error reply says the script is not loaded. The word is matched anywhere in
// the message: some proxies and managed services put their own prefix before it.
bool is_noscript(const Reply& reply) noexcept;

}  // namespace floodgate::internal
