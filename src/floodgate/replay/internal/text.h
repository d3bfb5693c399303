// Reading text for the trace formats (trace.cc, log_format.cc). Not part of the public API.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "floodgate/core/internal/format.h"
#include "floodgate/core/result.h"

namespace floodgate::internal {

// Returns the error "field NAME: "VALUE" PROBLEM", the value quoted for a message.
inline Error field_error(std::string_view field, std::string_view value, std::string_view problem) {
  return Error("field " + std::string(field) + ": " + quoted(value) + " " + std::string(problem));
}

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Returns the index of the first double quote at or after `from` that no backslash escapes (as
// Apache writes \" inside a quoted field), or npos.
inline std::size_t closing_quote(std::string_view text, std::size_t from) noexcept {
  for (std::size_t i = from; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace floodgate::internal
