#include "floodgate/redis/internal/reply_reader.h"

#include <charconv>
#include <cstdio>
#include <utility>

namespace floodgate::internal {
namespace {

// The fewest bytes an element can take ("+\r\n").
constexpr std::size_t kMinElementBytes = 3;

Result<std::int64_t> parse_length(std::string_view digits, char type) {
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    std::string shown(digits.substr(0, 32));
    return Error(std::string("the length of a '") + type + "' reply is not a number (got \"" +
                 shown + (digits.size() > 32 ? "...\")" : "\")"));
  }
  return n;
}

}  // namespace

void ReplyReader::reset() {
  buffer_.clear();
  consumed_ = 0;
  reply_bytes_ = 0;
  elements_ = 0;
  stack_.clear();
}

Result<std::optional<std::size_t>> ReplyReader::line_end() const {
  const std::size_t at = buffer_.find("\r\n", consumed_);
  if (at == std::string::npos) {
    if (buffer_.size() - consumed_ > kMaxReplyLine) {
      return Error("a line longer than " + std::to_string(kMaxReplyLine) + " bytes");
    }
    if (Result<void> ok = check_size(buffer_.size()); !ok) return ok.error();
    return std::optional<std::size_t>();
  }
  if (at - consumed_ > kMaxReplyLine) {
    return Error("a line longer than " + std::to_string(kMaxReplyLine) + " bytes");
  }
  return std::optional<std::size_t>(at);
}

Result<void> ReplyReader::check_size(std::size_t end) const {
  if (reply_bytes_ + (end - consumed_) > max_bytes_) {
    return Error("a reply larger than " + std::to_string(max_bytes_) + " bytes");
  }
  return {};
}

Result<std::optional<Reply>> ReplyReader::next() {
  for (;;) {
    Reply value;
    Result<Step> step = read_value(value);
    if (!step) return step.error();
    if (*step == Step::NeedMore) {
      // Keep only what is not parsed yet: at most a partial reply and one read's worth.
      buffer_.erase(0, consumed_);
      consumed_ = 0;
      return std::optional<Reply>();
    }
    if (*step == Step::ArrayOpened) continue;
    // A whole value: it ends the reply, or fills the innermost array's next element.
    for (;;) {
      if (stack_.empty()) {
        reply_bytes_ = 0;
        elements_ = 0;
        return std::optional<Reply>(std::move(value));
      }
      Frame& top = stack_.back();
      top.array.elements.push_back(std::move(value));
      if (--top.left > 0) break;
      value = std::move(top.array);
      stack_.pop_back();
    }
  }
}

Result<ReplyReader::Step> ReplyReader::read_value(Reply& out) {
  if (consumed_ >= buffer_.size()) return Step::NeedMore;
  const char type = buffer_[consumed_];
  if (type != '+' && type != '-' && type != ':' && type != '$' && type != '*') {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x",
                  static_cast<unsigned>(static_cast<unsigned char>(type)));
    return Error(std::string("a reply that starts with byte ") + hex +
                 " (not a RESP2 type: + - : $ *)");
  }
  Result<std::optional<std::size_t>> end = line_end();
  if (!end) return end.error();
  if (!*end) return Step::NeedMore;
  const std::string_view line(buffer_.data() + consumed_ + 1, **end - consumed_ - 1);
  const std::size_t after = **end + 2;
  const auto consume = [&](std::size_t to) {
    reply_bytes_ += to - consumed_;
    consumed_ = to;
  };
  switch (type) {
    case '+':
    case '-': {
      if (Result<void> ok = check_size(after); !ok) return ok.error();
      out.type = type == '+' ? Reply::Type::Status : Reply::Type::Error;
      out.text.assign(line);
      consume(after);
      return Step::Value;
    }
    case ':': {
      if (Result<void> ok = check_size(after); !ok) return ok.error();
      Result<std::int64_t> n = parse_length(line, type);
      if (!n) return n.error();
      out.type = Reply::Type::Integer;
      out.integer = *n;
      consume(after);
      return Step::Value;
    }
    case '$': {
      Result<std::int64_t> n = parse_length(line, type);
      if (!n) return n.error();
      if (*n == -1) {
        if (Result<void> ok = check_size(after); !ok) return ok.error();
        out.type = Reply::Type::Nil;
        consume(after);
        return Step::Value;
      }
      if (*n < -1) return Error("a bulk string of length " + std::to_string(*n));
      if (static_cast<std::uint64_t>(*n) > max_bytes_) {
        return Error("a bulk string of " + std::to_string(*n) + " bytes (more than the " +
                     std::to_string(max_bytes_) + "-byte reply limit)");
      }
      const std::size_t length = static_cast<std::size_t>(*n);
      const std::size_t need = after + length + 2;
      if (Result<void> ok = check_size(need); !ok) return ok.error();
      if (buffer_.size() < need) return Step::NeedMore;
      if (buffer_[after + length] != '\r' || buffer_[after + length + 1] != '\n') {
        return Error("a bulk string of " + std::to_string(length) + " bytes not followed by CRLF");
      }
      out.type = Reply::Type::String;
      out.text.assign(buffer_, after, length);
      consume(need);
      return Step::Value;
    }
    case '*': {
      Result<std::int64_t> n = parse_length(line, type);
      if (!n) return n.error();
      if (Result<void> ok = check_size(after); !ok) return ok.error();
      if (*n < -1) return Error("an array of length " + std::to_string(*n));
      if (*n <= 0) {
        out.type = *n == -1 ? Reply::Type::Nil : Reply::Type::Array;
        consume(after);
        return Step::Value;
      }
      const auto count = static_cast<std::uint64_t>(*n);
      if (stack_.size() + 1 > kMaxReplyDepth) {
        return Error("arrays nested more than " + std::to_string(kMaxReplyDepth) + " deep");
      }
      if (count > kMaxReplyElements - elements_) {
        return Error("an array of " + std::to_string(count) + " elements (more than " +
                     std::to_string(kMaxReplyElements) + " values in one reply)");
      }
      if (count > (max_bytes_ - reply_bytes_) / kMinElementBytes) {
        return Error("an array of " + std::to_string(count) + " elements (more than fit in the " +
                     std::to_string(max_bytes_) + "-byte reply limit)");
      }
      elements_ += count;
      consume(after);
      Frame frame;
      frame.array.type = Reply::Type::Array;
      frame.left = *n;
      stack_.push_back(std::move(frame));
      return Step::ArrayOpened;
    }
    default:
      return Error("not reached");  // Every other byte was refused above.
  }
}

}  // namespace floodgate::internal
