#include "floodgate/redis/internal/resp.h"

#include <charconv>

namespace floodgate::internal {
namespace {

void append_length(std::string& out, char tag, std::size_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.push_back(tag);
  out.append(digits, end);
  out.append("\r\n");
}

template <class Args>
void append_all(std::string& out, const Args& args) {
  append_length(out, '*', args.size());
  for (std::string_view arg : args) {
    append_length(out, '$', arg.size());
    out.append(arg);
    out.append("\r\n");
  }
}

}  // namespace

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  append_all(out, args);
}

void append_command(std::string& out, std::span<const std::string_view> args) {
  append_all(out, args);
}

std::string describe(const Reply& reply) {
  constexpr std::size_t kMax = 200;
  const auto quoted = [](const std::string& text) {
    return "\"" + (text.size() > kMax ? text.substr(0, kMax) + "..." : text) + "\"";
  };
  switch (reply.type) {
    case Reply::Type::String:
      return "string " + quoted(reply.text);
    case Reply::Type::Status:
      return "status " + quoted(reply.text);
    case Reply::Type::Error:
      return "error " + quoted(reply.text);
    case Reply::Type::Integer:
      return "integer " + std::to_string(reply.integer);
    case Reply::Type::Nil:
      return "nil";
    case Reply::Type::Array:
      return "array of " + std::to_string(reply.elements.size());
  }
  return "?";
}

bool is_noscript(const Reply& reply) noexcept {
  return reply.type == Reply::Type::Error && reply.text.find("NOSCRIPT") != std::string::npos;
}

}  // namespace floodgate::internal
