// Trace parsing: every field's good and hostile values, both formats, and a reader that names
// the line of every error and goes on after it.
#include "floodgate/replay/trace.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace floodgate::replay {
namespace {

// Expects `result` to be an error whose message contains every one of `parts`.
template <typename T>
void expect_error(const Result<T>& result, std::initializer_list<std::string_view> parts) {
  ASSERT_FALSE(result) << "expected an error";
  for (const std::string_view part : parts) {
    EXPECT_NE(result.error().message().find(part), std::string::npos)
        << "\"" << part << "\" not in: " << result.error().message();
  }
}

std::int64_t ns(const Result<Instant>& t) { return t->time_since_epoch().count(); }

TEST(TraceTest, TimesInNanosecondsAndSecondsAreExactAndBounded) {
  EXPECT_EQ(ns(parse_time_ns("1700000000123456789")), 1700000000123456789);
  EXPECT_EQ(ns(parse_time_ns("-5")), -5);
  EXPECT_EQ(ns(parse_time_seconds("1700000000.123456789")), 1700000000123456789);
  EXPECT_EQ(ns(parse_time_seconds("1.5")), 1'500'000'000);
  EXPECT_EQ(ns(parse_time_seconds("2")), 2'000'000'000);
  EXPECT_EQ(ns(parse_time_seconds("-0.000000001")), -1);
  expect_error(parse_time_ns("9223372036854775807"), {"time_ns", "9223372036854775807", "range"});
  expect_error(parse_time_ns("99999999999999999999"), {"time_ns", "does not fit in 64 bits"});
  expect_error(parse_time_ns("12a"), {"time_ns", "\"12a\"", "not an integer"});
  expect_error(parse_time_ns(""), {"time_ns", "not an integer"});
  expect_error(parse_time_ns("+5"), {"time_ns"});
  expect_error(parse_time_seconds("1.0000000001"), {"time", "nine decimals"});
  expect_error(parse_time_seconds("1e9"), {"time", "\"1e9\""});
  expect_error(parse_time_seconds("9223372036.0"), {"time", "range"});
  expect_error(parse_time_seconds("1."), {"time"});
}

TEST(TraceTest, CostsAreWholeNumbersUpTo64Bits) {
  EXPECT_EQ(*parse_cost("0"), 0u);
  EXPECT_EQ(*parse_cost("4294967295"), 4294967295u);
  EXPECT_EQ(*parse_cost("18446744073709551615"), UINT64_MAX);
  expect_error(parse_cost("18446744073709551616"), {"cost", "64 bits"});
  expect_error(parse_cost("-1"), {"cost", "\"-1\""});
  expect_error(parse_cost("1.5"), {"cost"});
  expect_error(parse_cost(""), {"cost"});
}

TEST(TraceTest, AccessLogTimestampsAreUtcWithTheirOffset) {
  // Apache's documentation example: 2000-10-10 20:55:36 UTC.
  EXPECT_EQ(ns(parse_log_time("10/Oct/2000:13:55:36 -0700")), 971211336LL * 1'000'000'000);
  EXPECT_EQ(ns(parse_log_time("01/Jan/1970:00:00:00 +0000")), 0);
  EXPECT_EQ(ns(parse_log_time("29/Feb/2024:00:00:00 +0100")), 1709161200LL * 1'000'000'000);
  expect_error(parse_log_time("29/Feb/2023:00:00:00 +0000"), {"time", "no such day"});
  expect_error(parse_log_time("10/Foo/2000:13:55:36 -0700"), {"time", "month"});
  expect_error(parse_log_time("10/Oct/2000:24:00:00 +0000"), {"time", "time of day"});
  expect_error(parse_log_time("10/Oct/2000 13:55:36"), {"time", "like 10/Oct/2000"});
  expect_error(parse_log_time("31/Dec/9999:23:59:59 +0000"),
               {"time", "outside the supported range"});
  expect_error(parse_log_time("01/Jan/0000:00:00:00 +0000"),
               {"time", "outside the supported range"});
  EXPECT_TRUE(parse_log_time("01/Jan/2100:00:00:00 +0000"));
}

// Parses `line` in `format` and returns the value of the field `name`, or "(absent)", or the
// error.
std::string field_of(LineFormat& format, std::string_view line, std::string_view name) {
  Record record;
  if (Result<void> parsed = format.parse(line, record); !parsed) {
    return "error " + parsed.error().message();
  }
  Result<FieldRef> ref = FieldRef::resolve(format, name);
  if (!ref) return "error " + ref.error().message();
  const std::string_view value = ref->get(record);
  return present(value) ? std::string(value) : "(absent)";
}

TEST(TraceTest, AccessLogLinesGiveEveryField) {
  const std::string combined =
      R"(203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif?x=1 HTTP/1.0" 200 2326 )"
      R"x("http://example.com/" "Mozilla/5.0 (X11; \"quoted\")")x";
  const std::unique_ptr<LineFormat> log = make_access_log_format();
  const auto key = [&](std::string_view name) { return field_of(*log, combined, name); };
  EXPECT_EQ(key("client"), "203.0.113.9");
  EXPECT_EQ(key("remote_addr"), "203.0.113.9");
  EXPECT_EQ(key("ident"), "-");
  EXPECT_EQ(key("user"), "frank");
  EXPECT_EQ(key("request"), "GET /a.gif?x=1 HTTP/1.0");
  EXPECT_EQ(key("method"), "GET");
  EXPECT_EQ(key("path"), "/a.gif");
  EXPECT_EQ(key("status"), "200");
  EXPECT_EQ(key("body_bytes_sent"), "2326");
  EXPECT_EQ(key("referer"), "http://example.com/");
  EXPECT_EQ(key("agent"), R"x(Mozilla/5.0 (X11; \"quoted\"))x");
  Record record;
  ASSERT_TRUE(log->parse(combined, record));
  EXPECT_EQ(record.time.time_since_epoch().count(), 971211336LL * 1'000'000'000);

  const std::string common = R"(::1 - - [10/Oct/2000:13:55:36 +0000] "GET / HTTP/1.1" 404 0)";
  EXPECT_EQ(field_of(*log, common, "client"), "::1");
  EXPECT_EQ(field_of(*log, common, "agent"), "(absent)");
  EXPECT_NE(
      field_of(*log, common, "xff").find("field \"xff\": the Common/Combined Log Format has none"),
      std::string::npos);
  const auto error = [&](std::string_view line, std::string_view name = "client") {
    return field_of(*log, line, name);
  };
  EXPECT_NE(error("garbage").find("not an access log line"), std::string::npos);
  EXPECT_NE(error(R"(1.2.3.4 - - 10/Oct/2000 "GET /" 200 1)").find("'['"), std::string::npos);
  EXPECT_NE(error(R"(1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "GET / 200 1)").find("request"),
            std::string::npos);
  EXPECT_EQ(error(R"(1.2.3.4 - - [10/Oct/2000:13:55:36 +0000] "\x16\x03" 400 0)", "path"),
            "(absent)");
}

TEST(TraceTest, CsvColumnsComeInAnyOrderAndFieldsMayBeQuoted) {
  const Result<CsvColumns> columns = parse_csv_header("region,cost,key,time_ns");
  ASSERT_TRUE(columns);
  EXPECT_EQ(columns->time, 3);
  EXPECT_EQ(columns->key, 2);
  EXPECT_EQ(columns->cost, 1);
  Result<std::unique_ptr<LineFormat>> csv = make_csv_format("region,cost,key,time_ns");
  ASSERT_TRUE(csv);
  const std::string line = R"(eu,5,"a,""b""",42)";
  EXPECT_EQ(field_of(**csv, line, "key"), R"(a,"b")");
  EXPECT_EQ(field_of(**csv, line, "cost"), "5");
  EXPECT_EQ(field_of(**csv, line, "region"), "eu");
  Record record;
  ASSERT_TRUE((*csv)->parse(line, record));
  EXPECT_EQ(record.time.time_since_epoch().count(), 42);
  EXPECT_NE(field_of(**csv, "eu,5,k", "key").find("expected 4 fields as the header says, found 3"),
            std::string::npos);
  EXPECT_NE(field_of(**csv, R"(eu,5,"open,42)", "key").find("never closed"), std::string::npos);
  expect_error(parse_csv_header("time,key,time_ns"), {"time and time_ns"});
  expect_error(parse_csv_header("time_ns,user"), {"no key column"});
  expect_error(parse_csv_header("key,cost"), {"no time_ns or time column"});
  expect_error(parse_csv_header("time,key,key"), {"\"key\" appears twice"});
}

std::vector<std::string> read_all(const std::string& text, TraceOptions options = {}) {
  std::FILE* file = fmemopen(const_cast<char*>(text.data()), text.size(), "r");
  TraceReader reader(file, "t.csv", std::move(options));
  std::vector<std::string> out;
  while (true) {
    auto next = reader.next();
    if (!next) {
      out.push_back("error " + next.error().message());
      continue;
    }
    if (!next->has_value()) break;
    out.push_back(std::to_string((*next)->time.time_since_epoch().count()) + " " +
                  std::string((*next)->key) + " " + std::to_string((*next)->cost));
  }
  std::fclose(file);
  return out;
}

TEST(TraceTest, TheReaderNamesTheLineOfEachErrorAndGoesOn) {
  EXPECT_EQ(read_all("\xEF\xBB\xBFtime,key\r\n1.5,a\r\n\r\nbad,b\n2,c"),
            (std::vector<std::string>{
                "1500000000 a 1",
                "error t.csv:4: field time: \"bad\" is not a number of seconds (digits, optionally "
                "a '.' and up to nine decimals)",
                "2000000000 c 1"}));
  EXPECT_EQ(read_all("1.2.3.4 - - [01/Jan/1970:00:00:01 +0000] \"GET / HTTP/1.1\" 200 5\n"),
            (std::vector<std::string>{"1000000000 1.2.3.4 1"}));
  // A line too long to be a request is an error, and the next line is read as usual.
  const auto long_line = read_all("time,key\n1," + std::string(70'000, 'k') + "\n2,b\n");
  ASSERT_EQ(long_line.size(), 2u);
  EXPECT_NE(long_line[0].find("t.csv:2: line longer than the 65536 bytes a trace line may have"),
            std::string::npos)
      << long_line[0];
  EXPECT_EQ(long_line[1], "2000000000 b 1");
  // A bad header ends the stream after one error: no later line has columns.
  TraceOptions csv;
  csv.format = TraceFormat::Csv;
  const auto bad_header = read_all("time_ns,user\n1,a\n", csv);
  ASSERT_EQ(bad_header.size(), 1u);
  EXPECT_NE(bad_header[0].find("t.csv:1: header"), std::string::npos) << bad_header[0];
}

TEST(TraceTest, AReadErrorIsReportedOnceWithItsReasonAndEndsTheStream) {
  // A directory opens as a stream and fails at the first read (EISDIR). The reader once went on
  // reading it forever, saying "Success".
  std::FILE* dir = std::fopen("/", "r");
  ASSERT_NE(dir, nullptr);
  TraceReader reader(dir, "/", {});
  const auto first = reader.next();
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().message(), "/: read error after line 0: Is a directory");
  EXPECT_EQ(reader.stopped(), TraceReader::Stop::ReadError);
  const auto second = reader.next();
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->has_value()) << "after a read error the stream has ended";
  std::fclose(dir);
}

TEST(TraceTest, ALineLongerThanTheLimitIsReportedAtTheLimitAndSkipped) {
  // Reported as soon as the limit is passed, before the rest of the line is read, so that a
  // stream without newlines (/dev/zero) cannot make the reader hold or wait for it.
  std::string text = "time,key\n1," + std::string(TraceReader::kMaxLineBytes, 'k');
  const std::size_t reported_after = text.size() + 1;  // One byte past the limit.
  text += std::string(200'000, 'k') + "\n2,b\n";
  std::FILE* file = fmemopen(text.data(), text.size(), "r");
  TraceReader reader(file, "t.csv", {});
  const auto error = reader.next();
  ASSERT_FALSE(error);
  EXPECT_EQ(reader.stopped(), TraceReader::Stop::No);
  EXPECT_LE(reader.bytes_read(), reported_after);
  const auto next = reader.next();
  ASSERT_TRUE(next && next->has_value());
  EXPECT_EQ((*next)->key, "b");
  EXPECT_EQ(reader.line_number(), 3u);
  std::fclose(file);
}

TEST(TraceTest, CsvHeadersWithSpacesOrQuotesAreDetectedAsCsv) {
  EXPECT_EQ(read_all(" time_ns , key\n1,a\n"), (std::vector<std::string>{"1 a 1"}));
  EXPECT_EQ(read_all("\"cost\",\"time_ns\",\"key\"\n2,1,a\n"), (std::vector<std::string>{"1 a 2"}));
}

}  // namespace
}  // namespace floodgate::replay
