// `StringHash`: the transparent hash of `std::string` keys, so that unordered containers are
// looked up by `std::string_view` without making a string. Not part of the public API.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace floodgate::internal {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

}  // namespace floodgate::internal
