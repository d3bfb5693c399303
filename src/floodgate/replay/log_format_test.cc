// Line formats: nginx and Envoy format strings, JSON lines, the names every format answers, and
// filters, each with good and hostile lines.
#include "floodgate/replay/log_format.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "floodgate/replay/trace.h"

namespace floodgate::replay {
namespace {

std::int64_t ns(const Result<Instant>& t) { return t->time_since_epoch().count(); }

// Parses `line` and returns the values of `names`, each "(absent)" if the line has none, or the
// parse error as the only element.
std::vector<std::string> fields(LineFormat& format, std::string_view line,
                                std::initializer_list<std::string_view> names,
                                std::int64_t* time_ns = nullptr) {
  std::vector<FieldRef> refs;
  for (const std::string_view name : names) {
    Result<FieldRef> ref = FieldRef::resolve(format, name);
    if (!ref) return {"error " + ref.error().message()};
    refs.push_back(*ref);
  }
  Record record;
  if (Result<void> parsed = format.parse(line, record); !parsed) {
    return {"error " + parsed.error().message()};
  }
  if (time_ns != nullptr) *time_ns = record.time.time_since_epoch().count();
  std::vector<std::string> out;
  for (const FieldRef& ref : refs) {
    const std::string_view value = ref.get(record);
    out.push_back(present(value) ? std::string(value) : "(absent)");
  }
  return out;
}

std::unique_ptr<LineFormat> pattern(std::string_view text) {
  Result<std::unique_ptr<LineFormat>> made = make_pattern_format(text);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

using Strings = std::vector<std::string>;

TEST(LogFormatTest, NginxLogFormatGivesEachVariableAndTheNamesEveryFormatAnswers) {
  const auto log =
      pattern(R"($remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent )"
              R"("$http_referer" "$http_user_agent" "$http_x_forwarded_for" rt=$request_time)");
  const std::string line =
      R"(10.0.0.7 - - [27/Nov/2026:13:00:00 +0000] "POST /api/v1/login?next=%2F HTTP/1.1" 401 )"
      R"(23 "-" "curl/8.5.0 \x22quoted\x22" "203.0.113.9, 10.0.0.1" rt=0.004)";
  std::int64_t t = 0;
  EXPECT_EQ(fields(*log, line,
                   {"client", "method", "path", "status", "xff", "agent", "request_time",
                    "http_x_forwarded_for"},
                   &t),
            (Strings{"10.0.0.7", "POST", "/api/v1/login", "401", "203.0.113.9",
                     R"(curl/8.5.0 \x22quoted\x22)", "0.004", "203.0.113.9, 10.0.0.1"}));
  EXPECT_EQ(t, 1795784400LL * 1'000'000'000);
  // Apache escapes a quote as \": the quoted field still ends at the real closing quote.
  const auto combined = pattern("combined");
  EXPECT_EQ(fields(*combined,
                   R"(1.2.3.4 - - [27/Nov/2026:13:00:00 +0000] "GET /a HTTP/1.1" 200 5 "-" )"
                   R"("say \"hi\" now")",
                   {"agent", "path"}),
            (Strings{R"(say \"hi\" now)", "/a"}));
  // $time_iso8601 and $msec are times too; ${name} is a variable.
  const auto iso = pattern(R"(${remote_addr}|$time_iso8601|$uri)");
  EXPECT_EQ(fields(*iso, "::1|2026-11-27T14:00:00+01:00|/x", {"client", "path"}, &t),
            (Strings{"::1", "/x"}));
  EXPECT_EQ(t, 1795784400LL * 1'000'000'000);
  const auto msec = pattern("$msec $remote_addr");
  EXPECT_EQ(fields(*msec, "1795784400.123 a", {"client"}, &t), (Strings{"a"}));
  EXPECT_EQ(t, 1795784400123LL * 1'000'000);
}

TEST(LogFormatTest, EnvoysDefaultFormatIsReadAsEnvoyWritesIt) {
  // Envoy's documented example line.
  const std::string line =
      R"([2016-04-15T20:17:00.310Z] "POST /api/v1/locations?x=1 HTTP/2" 204 - 154 0 226 100 )"
      R"("10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" )"
      R"("tcp://10.0.2.1:80")";
  const auto envoy = pattern("envoy");
  std::int64_t t = 0;
  EXPECT_EQ(fields(*envoy, line,
                   {"method", "path", "status", "xff", "host", "agent", "UPSTREAM_HOST",
                    "RESPONSE_FLAGS"},
                   &t),
            (Strings{"POST", "/api/v1/locations", "204", "10.0.35.28", "locations", "nsq2http",
                     "tcp://10.0.2.1:80", "-"}));
  EXPECT_EQ(t, 1460751420310LL * 1'000'000);
  // Its format has no client address of its own: `client` is an error that says so.
  const Strings client = fields(*envoy, line, {"client"});
  EXPECT_NE(client[0].find("none of its sources"), std::string::npos) << client[0];
  // Fields appended at the end (as formats grow) are ignored.
  EXPECT_EQ(fields(*envoy, line + " extra fields", {"status"}), (Strings{"204"}));
  // Istio's format: the client from DOWNSTREAM_REMOTE_ADDRESS, without its port.
  const auto istio = pattern("istio");
  const std::string istio_line =
      R"([2026-11-27T13:00:00.000Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 )"
      R"(4 4 "-" "curl/8.5.0" "7ff1" "httpbin:8000" "10.244.0.12:80" )"
      R"(outbound|8000||httpbin.default.svc.cluster.local 10.244.0.11:41546 10.96.1.5:8000 )"
      R"(10.244.0.11:50126 - default)";
  EXPECT_EQ(fields(*istio, istio_line, {"client", "path", "status", "ROUTE_NAME"}),
            (Strings{"10.244.0.11", "/status/418", "418", "default"}));
  // The Envoy format as written in its configuration, with %START_TIME(%s.%3f)%.
  const auto custom =
      pattern(R"(%START_TIME(%s.%3f)% %DOWNSTREAM_REMOTE_ADDRESS% %RESPONSE_CODE%\n)");
  EXPECT_EQ(fields(*custom, "1795784400.5 [::1]:443 429", {"client", "status"}, &t),
            (Strings{"::1", "429"}));
  EXPECT_EQ(t, 1795784400500LL * 1'000'000);
}

TEST(LogFormatTest, AFormatStringThatCannotBeReadBackIsRefusedWithItsReason) {
  const auto error = [](std::string_view text) {
    Result<std::unique_ptr<LineFormat>> made = make_pattern_format(text);
    return made ? std::string("(made)") : made.error().message();
  };
  EXPECT_NE(error("$remote_addr$status [$time_local]").find("no text between them"),
            std::string::npos);
  EXPECT_NE(error("$remote_addr $status").find("no time"), std::string::npos);
  EXPECT_NE(error("%RESPONSE_CODE%").find("%START_TIME%"), std::string::npos);
  EXPECT_NE(error("[%START_TIME% %REQ(:PATH%").find("not closed"), std::string::npos);
  EXPECT_NE(error("[%START_TIME%] %REQ(A)").find("no closing '%'"), std::string::npos);
  EXPECT_NE(error("%START_TIME(%Y/%m/%d)% %RESPONSE_CODE%").find("cannot read back"),
            std::string::npos);
  EXPECT_NE(error("plain text").find("preset"), std::string::npos);
  EXPECT_NE(error("$ [$time_local]").find("starts no variable"), std::string::npos);
  // A line that does not follow the format names the field and what was expected.
  const auto log = pattern(R"($remote_addr [$time_local] "$request" $status)");
  const Strings bad =
      fields(*log, R"(1.2.3.4 [27/Nov/2026:13:00:00 +0000] "GET / HTTP/1.1)", {"status"});
  EXPECT_NE(bad[0].find("field request"), std::string::npos) << bad[0];
  const Strings bad_time =
      fields(*log, R"(1.2.3.4 [27/Nov/2026:25:00:00 +0000] "GET / HTTP/1.1" 200)", {"status"});
  EXPECT_NE(bad_time[0].find("field time_local"), std::string::npos) << bad_time[0];
  const Strings unknown = fields(*log, "", {"nope"});
  EXPECT_NE(unknown[0].find("\"nope\": the nginx log_format has no such field; its fields: "
                            "remote_addr, time_local, request, status"),
            std::string::npos)
      << unknown[0];
}

TEST(LogFormatTest, JsonLinesGiveMembersByNameAndNestedOnesByPath) {
  const auto json = make_json_format("", TimeUnit::Seconds);
  std::int64_t t = 0;
  EXPECT_EQ(
      fields(*json,
             R"( {"time":"2026-11-27T13:00:00.25Z","client":"a\"b","req":{"path":"/x?y",)"
             R"("h":{"xff":"1.1.1.1, 2.2.2.2"}},"list":[{"client":"no"},[1,2]],"n":12.5,)"
             R"("u":"\u00e9\ud83d\ude00","nil":null,"ok":true} )",
             {"client", "req.path", "path", "req.h.xff", "n", "u", "nil", "ok", "missing"}, &t),
      (Strings{"a\"b", "/x?y", "(absent)", "1.1.1.1, 2.2.2.2", "12.5", "\xC3\xA9\xF0\x9F\x98\x80",
               "(absent)", "true", "(absent)"}));
  EXPECT_EQ(t, 1795784400250LL * 1'000'000);
  // Times as numbers in the unit given, or as access log and RFC 3339 strings.
  const auto ms = make_json_format("ts", TimeUnit::Milliseconds);
  EXPECT_EQ(fields(*ms, R"({"ts":1795784400123,"k":1})", {"k"}, &t), (Strings{"1"}));
  EXPECT_EQ(t, 1795784400123LL * 1'000'000);
  EXPECT_EQ(fields(*json, R"({"time_local":"27/Nov/2026:13:00:00 +0000","k":"v"})", {"k"}, &t),
            (Strings{"v"}));
  EXPECT_EQ(t, 1795784400LL * 1'000'000'000);
  const auto error = [&](std::string_view line) { return fields(*json, line, {"client"})[0]; };
  EXPECT_NE(error(R"({"client":"a"})").find("no time"), std::string::npos);
  EXPECT_NE(error(R"({"time":"yesterday"})").find("field time"), std::string::npos);
  EXPECT_NE(error(R"({"time":1,"client":"a")").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error(R"({"time":1} x)").find("text after"), std::string::npos);
  EXPECT_NE(error(R"(["time"])").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error(R"({"time":1,"client":"\q"})").find("unknown escape"), std::string::npos);
  EXPECT_NE(error(R"({"time":1,"client":nope})").find("not a string, number"), std::string::npos);
  EXPECT_NE(error(std::string(40, '[')).find("not a JSON object"), std::string::npos);
  std::string deep = R"({"time":1,"a":)";
  for (int i = 0; i < 40; ++i) deep += R"({"a":)";
  EXPECT_NE(error(deep).find("deeper than 32"), std::string::npos);
}

TEST(LogFormatTest, TimesAreExactAndBounded) {
  EXPECT_EQ(ns(parse_rfc3339("1970-01-01T00:00:00Z")), 0);
  EXPECT_EQ(ns(parse_rfc3339("2026-11-27 13:00:00.123456789")), 1795784400123456789);
  EXPECT_EQ(ns(parse_rfc3339("2026-11-27T15:00:00+0200")), 1795784400LL * 1'000'000'000);
  EXPECT_EQ(ns(parse_rfc3339("1969-12-31T23:59:59.5Z")), -500'000'000);
  EXPECT_FALSE(parse_rfc3339("2026-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2026-11-27T13:00:00.Z"));
  EXPECT_FALSE(parse_rfc3339("2026-11-27T13:00:00.1234567891Z"));
  EXPECT_FALSE(parse_rfc3339("2026-11-27T13:00:00 UTC"));
  EXPECT_FALSE(parse_rfc3339("9999-12-31T23:59:59Z"));
  EXPECT_EQ(ns(parse_decimal_time("1.5", TimeUnit::Seconds)), 1'500'000'000);
  EXPECT_EQ(ns(parse_decimal_time("-2", TimeUnit::Milliseconds)), -2'000'000);
  EXPECT_EQ(ns(parse_decimal_time("7.001", TimeUnit::Microseconds)), 7001);
  EXPECT_EQ(ns(parse_decimal_time("4611686018427387903", TimeUnit::Nanoseconds)),
            4611686018427387903);
  EXPECT_FALSE(parse_decimal_time("4611686018427387904", TimeUnit::Nanoseconds));
  EXPECT_FALSE(parse_decimal_time("99999999999999999999999", TimeUnit::Seconds));
  EXPECT_FALSE(parse_decimal_time("1.5", TimeUnit::Nanoseconds));
  EXPECT_FALSE(parse_decimal_time("1e9", TimeUnit::Seconds));
  EXPECT_FALSE(parse_decimal_time("", TimeUnit::Seconds));
  EXPECT_FALSE(parse_time_unit("min"));
}

TEST(LogFormatTest, DerivedValuesTakeTheirPartOnly) {
  EXPECT_EQ(derive("GET /a?b HTTP/1.1", Derive::Method), "GET");
  EXPECT_EQ(derive("GET /a?b HTTP/1.1", Derive::Path), "/a");
  EXPECT_FALSE(present(derive("\\x16\\x03", Derive::Path)));
  EXPECT_EQ(derive("/a?b?c", Derive::StripQuery), "/a");
  EXPECT_EQ(derive(" 203.0.113.9 , 10.0.0.1", Derive::FirstHop), "203.0.113.9");
  EXPECT_EQ(derive("1.2.3.4:80", Derive::StripPort), "1.2.3.4");
  EXPECT_EQ(derive("[2001:db8::1]:443", Derive::StripPort), "2001:db8::1");
  EXPECT_EQ(derive("2001:db8::1", Derive::StripPort), "2001:db8::1");
}

// Reads `text` with `options` and returns "key time" per request, then "filtered N".
Strings read_all(const std::string& text, TraceOptions options) {
  std::FILE* file = fmemopen(const_cast<char*>(text.data()), text.size(), "r");
  TraceReader reader(file, "t.log", std::move(options));
  Strings out;
  while (true) {
    auto next = reader.next();
    if (!next) {
      out.push_back("error " + next.error().message());
      if (reader.stopped() != TraceReader::Stop::No) break;
      continue;
    }
    if (!next->has_value()) break;
    std::string line = std::string((*next)->key);
    for (std::size_t i = 0; i < reader.field_count(); ++i) {
      const std::string_view v = reader.field(i);
      line += " " + (present(v) ? std::string(v) : std::string("(absent)"));
    }
    out.push_back(line);
  }
  out.push_back("filtered " + std::to_string(reader.filtered()));
  std::fclose(file);
  return out;
}

TEST(LogFormatTest, TheReaderFindsTheFormatKeysByAnyFieldAndFiltersLines) {
  const std::string envoy =
      R"([2026-11-27T13:00:00.000Z] "GET /api/a HTTP/1.1" 200 - 0 5 1 1 "9.9.9.9, 10.0.0.1" )"
      R"("ua" "id1" "example.com" "10.0.2.1:80")"
      "\n"
      R"([2026-11-27T13:00:01.000Z] "POST /api/b?x HTTP/1.1" 503 UO 0 5 1 1 "8.8.8.8" )"
      R"("ua" "id2" "example.com" "10.0.2.1:80")"
      "\n"
      R"([2026-11-27T13:00:02.000Z] "GET /static/c HTTP/1.1" 404 - 0 5 1 1 "-" )"
      R"("ua" "id3" "example.com" "10.0.2.1:80")"
      "\n";
  TraceOptions options;
  options.key_field = "xff";
  options.fields = {"method", "path"};
  EXPECT_EQ(read_all(envoy, options), (Strings{"9.9.9.9 GET /api/a", "8.8.8.8 POST /api/b",
                                               "- GET /static/c", "filtered 0"}));
  options.include = {*LineFilter::parse("path=/api/*")};
  options.exclude = {*LineFilter::parse("status=5??,429")};
  EXPECT_EQ(read_all(envoy, options), (Strings{"9.9.9.9 GET /api/a", "filtered 2"}));
  // A filter on a field the format does not have stops the reader at the first line, naming it.
  options.include = {*LineFilter::parse("referer=x")};
  const Strings missing = read_all(envoy, options);
  ASSERT_EQ(missing.size(), 2u);
  EXPECT_NE(missing[0].find("t.log:1: --include \"referer=x\": field \"referer\""),
            std::string::npos)
      << missing[0];
  // JSON lines, found from their first line, keyed by a nested member.
  TraceOptions json;
  json.key_field = "user.id";
  json.include = {*LineFilter::parse("method=GET")};
  EXPECT_EQ(
      read_all(R"({"ts":1,"user":{"id":"u1"},"method":"GET"})"
               "\n"
               R"({"ts":2,"user":{"id":"u2"},"method":"PUT"})"
               "\n"
               R"({"ts":3,"method":"GET"})"
               "\n",
               json),
      (Strings{"u1", "error t.log:3: field user.id (the key) is absent or empty", "filtered 1"}));
  EXPECT_FALSE(LineFilter::parse("status"));
  EXPECT_FALSE(LineFilter::parse("=x"));
}

}  // namespace
}  // namespace floodgate::replay
