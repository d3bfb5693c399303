// `ReplyReader`: RESP2 replies read from bytes as they arrive, within bounds. A server (or a proxy,
// or whatever answers on the port) controls every byte: a reply larger than the reader's limit,
// nested deeper than `kMaxReplyDepth`, with more than `kMaxReplyElements` values, or malformed is
// an error found as soon as the bytes that say so arrive, before anything is allocated for it.
// Not part of the public API. Not thread-safe: one per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"
#include "floodgate/redis/internal/resp.h"

namespace floodgate::internal {

// The largest reply read: a script's verdict is a few dozen bytes and a slot map of a few
// thousand ranges fits; anything larger is not a reply floodgate asked for.
inline constexpr std::size_t kMaxReplyBytes = 1 << 20;
// The deepest nesting of arrays (a slot map is 3 deep, 4 with node metadata).
inline constexpr std::size_t kMaxReplyDepth = 8;
// The most values in one reply, arrays and their elements together.
inline constexpr std::size_t kMaxReplyElements = 1 << 17;
// The longest line (a status, an error, a length).
inline constexpr std::size_t kMaxReplyLine = 64 << 10;

class ReplyReader {
 public:
  explicit ReplyReader(std::size_t max_reply_bytes = kMaxReplyBytes)
      : max_bytes_(max_reply_bytes) {}

  // Appends bytes read from the server.
  void feed(std::string_view bytes) { buffer_.append(bytes); }

  // Returns the next complete reply, nothing if it needs more bytes, or an error saying what is
  // wrong with the bytes. After an error the reader must be `reset` (the stream is out of step).
  Result<std::optional<Reply>> next();

  // Drops every byte and partial reply.
  void reset();

  // Returns how many bytes are held, read but not yet returned as replies.
  std::size_t buffered() const noexcept { return buffer_.size() - consumed_; }

 private:
  struct Frame {
    Reply array;
    std::int64_t left = 0;  // Elements still to read.
  };

  // What a step of reading found.
  enum class Step : std::uint8_t { NeedMore, Value, ArrayOpened };

  // Reads one value at `consumed_`: a whole one into `out`, or an array's header (a frame is
  // pushed), or nothing when more bytes are needed (nothing is consumed then). Returns which,
  // or an error.
  Result<Step> read_value(Reply& out);
  // Returns the offset of the "\r\n" ending the line at `consumed_`, nothing if it has not
  // arrived, or an error if it is too long.
  Result<std::optional<std::size_t>> line_end() const;
  // Returns an error if the reply being read would pass the byte limit once `buffer_` is read up
  // to `end`.
  Result<void> check_size(std::size_t end) const;

  const std::size_t max_bytes_;
  std::string buffer_;
  std::size_t consumed_ = 0;     // Bytes of `buffer_` parsed.
  std::size_t reply_bytes_ = 0;  // Bytes of the reply being read consumed so far.
  std::size_t elements_ = 0;     // Values of the reply being read so far.
  std::vector<Frame> stack_;     // The arrays being read, outermost first.
};

}  // namespace floodgate::internal
