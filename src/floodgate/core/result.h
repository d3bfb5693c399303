// `Result<T>` and `Error`: the return type of every call that reads untrusted input (quota text,
// flags, trace files, requests).
//
// `Result<T>` is shaped like C++23's `std::expected<T, Error>`: it holds either a value or an
// `Error` (`Result<void>`: nothing, or an `Error`) whose message names the input, the rule it broke
// and the value, for example `quota "0/s": rate must be at least 1 per period (got 0)`. Asking a
// `Result` for the value it does not hold is a broken precondition and aborts
// (floodgate/core/internal/check.h). A `Result` is a plain value: not thread-safe to mutate, safe
// to read from many threads.
//
//   floodgate::Result<floodgate::Quota> quota = floodgate::Quota::parse(text);
//   if (!quota) {
//     std::cerr << quota.error().message() << "\n";
//     return 2;
//   }
//   floodgate::GcraLimiter limiter{*quota};
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "floodgate/core/internal/check.h"

namespace floodgate {

// Why an untrusted input was rejected, in one human-readable sentence.
class Error {
 public:
  // An error with `message`, which should name the input, the rule and the value.
  explicit Error(std::string message) : message_(std::move(message)) {}

  // Returns the message, which names the input, the rule and the offending value.
  const std::string& message() const noexcept { return message_; }

  // Errors are equal when their messages are.
  friend bool operator==(const Error&, const Error&) = default;

 private:
  std::string message_;
};

// Either a `T` or an `Error`.
template <typename T>
class [[nodiscard]] Result {
 public:
  // A result that holds `value`, or `error`. Implicit, so a function returns either directly.
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit

  // Reports whether the result holds a value.
  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // Returns the value. Aborts if the result holds an error, printing the error's message.
  const T& value() const& {
    check_value();
    return *std::get_if<0>(&state_);
  }
  T& value() & {
    check_value();
    return *std::get_if<0>(&state_);
  }
  T&& value() && {
    check_value();
    return std::move(*std::get_if<0>(&state_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // Returns the value, or `fallback` if the result holds an error.
  T value_or(T fallback) const& { return has_value() ? *std::get_if<0>(&state_) : fallback; }

  // Returns the error. Aborts if the result holds a value.
  const Error& error() const& {
    FLOODGATE_CHECK(!has_value(), "Result::error() called on a Result that holds a value");
    return *std::get_if<1>(&state_);
  }

 private:
  void check_value() const {
    if (!has_value()) [[unlikely]] {
      internal::check_failed(__FILE__, __LINE__, "Result::value()",
                             std::get_if<1>(&state_)->message());
    }
  }

  std::variant<T, Error> state_;
};

// Either success or an `Error`, for calls that return nothing else.
template <>
class [[nodiscard]] Result<void> {
 public:
  // Success, or `error`. Implicit, as for `Result<T>`.
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit, as for Result<T>

  // Reports whether the call succeeded.
  bool has_value() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

  // Returns the error. Aborts if the call succeeded.
  const Error& error() const& {
    FLOODGATE_CHECK(error_.has_value(), "Result::error() called on a Result that holds a value");
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

}  // namespace floodgate
