// Writing JSON text by hand, where a message is small and fixed in shape (dynamic metadata, log
// lines). Not part of the public API.
#pragma once

#include <string>
#include <string_view>

namespace floodgate::internal {

// Appends `text` as a JSON string: in double quotes, with `"` and `\` escaped and every control
// byte as \u00XX. Other bytes are copied as they are.
inline void append_json_string(std::string& out, std::string_view text) {
  constexpr std::string_view kHex = "0123456789abcdef";
  out += '"';
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace floodgate::internal
