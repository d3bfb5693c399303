// Reads a fuzzer's bytes as the choices of a test: numbers, picks from a list, and the rest as
// text. Every read succeeds: past the end it returns zeros and empty text.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace floodgate::fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool empty() const noexcept { return at_ >= size_; }

  std::uint8_t byte() noexcept { return at_ < size_ ? data_[at_++] : 0; }

  // Up to 8 bytes, little-endian.
  std::uint64_t u64() noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{byte()} << (8 * i);
    return v;
  }

  // One of `values`, chosen by one byte.
  template <typename T, std::size_t N>
  T pick(const T (&values)[N]) noexcept {
    return values[byte() % N];
  }
  template <typename T, std::size_t N>
  T pick(const std::array<T, N>& values) noexcept {
    return values[byte() % N];
  }

  // The next `n` bytes as text (fewer at the end).
  std::string_view take(std::size_t n) noexcept {
    const std::size_t from = at_ < size_ ? at_ : size_;
    const std::size_t count = n < size_ - from ? n : size_ - from;
    at_ = from + count;
    return {reinterpret_cast<const char*>(data_ + from), count};
  }

  // The rest of the input as text.
  std::string_view rest() noexcept {
    const std::size_t from = at_ < size_ ? at_ : size_;
    at_ = size_;
    return {reinterpret_cast<const char*>(data_ + from), size_ - from};
  }

  // Text up to the next '\n' (or the end), without it.
  std::string_view line() noexcept {
    const std::size_t from = at_ < size_ ? at_ : size_;
    const void* nl = std::memchr(data_ + from, '\n', size_ - from);
    const std::size_t end =
        nl != nullptr ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - data_)
                      : size_;
    at_ = nl != nullptr ? end + 1 : size_;
    return {reinterpret_cast<const char*>(data_ + from), end - from};
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// Stops the run with a message: a broken invariant is a finding, as a crash is.
[[noreturn]] void fail(const char* what, std::string_view detail = {});

}  // namespace floodgate::fuzz
