// The service's log lines: RFC 3339 UTC times with milliseconds, the level, one event a line
// whatever the message holds, JSON that parses, and the levels below the chosen one left out.
#include "floodgate/server/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace floodgate::server {
namespace {

// 2026-12-07T19:57:05.123Z.
const std::chrono::system_clock::time_point kWhen =
    std::chrono::system_clock::time_point(std::chrono::seconds(1796673425)) +
    std::chrono::milliseconds(123);

TEST(LogTest, TextLinesHaveTheTimeInUtcTheLevelAndTheMessage) {
  EXPECT_EQ(format_log_line(LogFormat::Text, LogLevel::Info, kWhen, "gRPC on 127.0.0.1:8081"),
            "2026-12-07T19:57:05.123Z info  gRPC on 127.0.0.1:8081");
  EXPECT_EQ(format_log_line(LogFormat::Text, LogLevel::Error, kWhen, "x"),
            "2026-12-07T19:57:05.123Z error x");
  // One event, one line: a newline or another control character in a message is escaped.
  EXPECT_EQ(format_log_line(LogFormat::Text, LogLevel::Warn, kWhen, "a\nb\tc\x01\"d\\"),
            "2026-12-07T19:57:05.123Z warn  a\\nb\\tc\\u0001\"d\\");
  // The epoch, and a time before it, are written as such.
  EXPECT_EQ(format_log_line(LogFormat::Text, LogLevel::Debug,
                            std::chrono::system_clock::time_point{}, ""),
            "1970-01-01T00:00:00.000Z debug ");
}

TEST(LogTest, JsonLinesAreObjectsWithTimeLevelAndMsg) {
  EXPECT_EQ(format_log_line(LogFormat::Json, LogLevel::Warn, kWhen, "say \"hi\"\\\n"),
            R"({"time":"2026-12-07T19:57:05.123Z","level":"warn","msg":"say \"hi\"\\\u000a"})");
}

TEST(LogTest, LevelsAndFormatsAreReadByNameAndAWrongOneIsNamed) {
  EXPECT_EQ(*parse_log_level("debug"), LogLevel::Debug);
  EXPECT_EQ(*parse_log_level("error"), LogLevel::Error);
  EXPECT_EQ(parse_log_level("INFO").error().message(),
            "\"INFO\" is not a log level (debug, info, warn or error)");
  EXPECT_EQ(*parse_log_format("json"), LogFormat::Json);
  EXPECT_EQ(parse_log_format("xml").error().message(),
            "\"xml\" is not a log format (text or json)");
}

TEST(LogTest, ALogWritesOneLineAnEventAtItsLevelAndAbove) {
  std::vector<std::string> lines;
  const Log log = make_log(LogFormat::Text, LogLevel::Warn,
                           [&lines](const std::string& line) { lines.push_back(line); });
  log(LogLevel::Debug, "no");
  log(LogLevel::Info, "no");
  log(LogLevel::Warn, "yes warn");
  log(LogLevel::Error, "yes error");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].ends_with(" warn  yes warn\n")) << lines[0];
  EXPECT_TRUE(lines[1].ends_with(" error yes error\n")) << lines[1];
  EXPECT_EQ(lines[0][4], '-');
  EXPECT_EQ(lines[0][23], 'Z') << lines[0];
}

}  // namespace
}  // namespace floodgate::server
