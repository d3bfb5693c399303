#include "floodgate/redis/internal/reply_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace floodgate::internal {
namespace {

// Feeds `bytes` in pieces of `step` bytes, taking every reply as soon as it is whole; stops at
// the first error and returns it in `error`.
std::vector<Reply> read_all(std::string_view bytes, std::size_t step, std::string* error = nullptr,
                            std::size_t max = kMaxReplyBytes) {
  ReplyReader reader(max);
  std::vector<Reply> out;
  for (std::size_t at = 0; at < bytes.size(); at += step) {
    reader.feed(bytes.substr(at, step));
    for (;;) {
      Result<std::optional<Reply>> r = reader.next();
      if (!r) {
        if (error != nullptr) *error = r.error().message();
        return out;
      }
      if (!*r) break;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

std::string error_of(std::string_view bytes, std::size_t max = kMaxReplyBytes) {
  std::string error;
  (void)read_all(bytes, bytes.size(), &error, max);
  return error;
}

TEST(ReplyReaderTest, ReadsEveryTypeWholeOrAByteAtATime) {
  const std::string bytes =
      "+OK\r\n-NOSCRIPT No matching "
      "script\r\n:-42\r\n$5\r\nhe\r\no\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n"
      "*3\r\n:1\r\n*2\r\n$1\r\na\r\n:9223372036854775807\r\n+x\r\n";
  for (const std::size_t step : {bytes.size(), std::size_t{1}, std::size_t{7}}) {
    std::string error;
    const std::vector<Reply> r = read_all(bytes, step, &error);
    ASSERT_EQ(error, "") << step;
    ASSERT_EQ(r.size(), 9u) << step;
    EXPECT_EQ(r[0].type, Reply::Type::Status);
    EXPECT_EQ(r[0].text, "OK");
    EXPECT_TRUE(r[1].is_error());
    EXPECT_TRUE(is_noscript(r[1]));
    EXPECT_EQ(r[2].integer, -42);
    EXPECT_EQ(r[3].type, Reply::Type::String);
    EXPECT_EQ(r[3].text, std::string("he\r\no"));
    EXPECT_EQ(r[4].text, "");
    EXPECT_EQ(r[4].type, Reply::Type::String);
    EXPECT_EQ(r[5].type, Reply::Type::Nil);
    EXPECT_EQ(r[6].type, Reply::Type::Nil);
    EXPECT_EQ(r[7].type, Reply::Type::Array);
    EXPECT_TRUE(r[7].elements.empty());
    ASSERT_EQ(r[8].elements.size(), 3u);
    EXPECT_EQ(r[8].elements[0].integer, 1);
    ASSERT_EQ(r[8].elements[1].elements.size(), 2u);
    EXPECT_EQ(r[8].elements[1].elements[0].text, "a");
    EXPECT_EQ(r[8].elements[1].elements[1].integer, INT64_MAX);
    EXPECT_EQ(r[8].elements[2].text, "x");
  }
}

// What a server controls is refused as soon as its header says it is too much, before anything
// is allocated for it: a 512 MiB bulk string or an array of 2^31 elements (an endless reply of
// either used to be buffered until the server held gigabytes).
TEST(ReplyReaderTest, RefusesWhatNoCommandOfOursIsAnsweredWith) {
  EXPECT_EQ(error_of("$536870911\r\n"),
            "a bulk string of 536870911 bytes (more than the 1048576-byte reply limit)");
  EXPECT_EQ(error_of("*2147483647\r\n"),
            "an array of 2147483647 elements (more than 131072 values in one reply)");
  EXPECT_EQ(error_of("*100000\r\n", 1000),
            "an array of 100000 elements (more than fit in the 1000-byte reply limit)");
  EXPECT_EQ(error_of("*9223372036854775807\r\n"),
            "an array of 9223372036854775807 elements (more than 131072 values in one reply)");
  EXPECT_EQ(error_of("$-2\r\n"), "a bulk string of length -2");
  EXPECT_EQ(error_of("*-5\r\n"), "an array of length -5");
  EXPECT_EQ(error_of(":12x\r\n"), "the length of a ':' reply is not a number (got \"12x\")");
  EXPECT_EQ(error_of("$\r\n"), "the length of a '$' reply is not a number (got \"\")");
  EXPECT_EQ(error_of("$99999999999999999999\r\n"),
            "the length of a '$' reply is not a number (got \"99999999999999999999\")");
  EXPECT_EQ(error_of("$3\r\nabcd\r\n"), "a bulk string of 3 bytes not followed by CRLF");
  EXPECT_EQ(error_of("HTTP/1.1 400 Bad Request\r\n"),
            "a reply that starts with byte 0x48 (not a RESP2 type: + - : $ *)");
  EXPECT_EQ(error_of("%1\r\n"), "a reply that starts with byte 0x25 (not a RESP2 type: + - : $ *)");
  std::string deep;
  for (int i = 0; i < 9; ++i) deep += "*1\r\n";
  EXPECT_EQ(error_of(deep + ":1\r\n"), "arrays nested more than 8 deep");
  EXPECT_EQ(error_of(std::string(70'000, 'x')),
            "a reply that starts with byte 0x78 (not a RESP2 type: + - : $ *)");
  EXPECT_EQ(error_of("+" + std::string(70'000, 'x')), "a line longer than 65536 bytes");
  // Many values that each fit, adding up to more than the limit.
  std::string many = "*20\r\n";
  for (int i = 0; i < 20; ++i) many += "$100000\r\n" + std::string(100'000, 'v') + "\r\n";
  EXPECT_EQ(error_of(many), "a reply larger than 1048576 bytes");
  // The same found a byte at a time, without holding more than the limit.
  std::string error;
  (void)read_all(many, 4096, &error);
  EXPECT_EQ(error, "a reply larger than 1048576 bytes");
}

TEST(ReplyReaderTest, HoldsNoMoreThanAPartialReplyAndResetsAfterAnError) {
  ReplyReader reader;
  reader.feed("*2\r\n:1\r\n");
  Result<std::optional<Reply>> r = reader.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  reader.feed(":2\r\n+next\r\n");
  r = reader.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->elements.size(), 2u);
  EXPECT_EQ(reader.buffered(), 7u) << "the next reply, not yet asked for";
  r = reader.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->text, "next");
  EXPECT_EQ(reader.buffered(), 0u);

  reader.feed("?garbage\r\n");
  EXPECT_FALSE(reader.next());
  reader.reset();
  reader.feed(":7\r\n");
  r = reader.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->integer, 7);
}

}  // namespace
}  // namespace floodgate::internal
