#include "floodgate/replay/trace.h"

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "floodgate/core/internal/format.h"
#include "floodgate/core/internal/time_math.h"

namespace floodgate::replay {
namespace {

using internal::quoted;

// Returns a CSV header field as a column name: without surrounding spaces and quotes.
std::string_view csv_header_name(std::string_view field) {
  while (!field.empty() && field.front() == ' ') field.remove_prefix(1);
  while (!field.empty() && field.back() == ' ') field.remove_suffix(1);
  if (field.size() >= 2 && field.front() == '"' && field.back() == '"') {
    field = field.substr(1, field.size() - 2);
  }
  return field;
}

Error field_error(std::string_view field, std::string_view value, std::string_view problem) {
  return Error("field " + std::string(field) + ": " + quoted(value) + " " + std::string(problem));
}

constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

Result<Instant> instant_in_range(std::int64_t ns, std::string_view field, std::string_view text) {
  if (ns < -internal::kTimeLimit || ns > internal::kTimeLimit) {
    return field_error(field, text,
                       "is outside the supported range of +-4611686018427387903 ns (about 146 "
                       "years either side of the epoch)");
  }
  return Instant{Nanos{ns}};
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Splits the next space-separated token off `rest`.
std::string_view take_token(std::string_view& rest) {
  const std::size_t end = rest.find(' ');
  const std::string_view token = rest.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  return token;
}

// Splits a double-quoted field (with backslash escapes left as they are) off `rest`, which
// starts with the opening quote. Returns nothing if the quote is not closed.
std::optional<std::string_view> take_quoted(std::string_view& rest) {
  if (rest.empty() || rest.front() != '"') return std::nullopt;
  for (std::size_t i = 1; i < rest.size(); ++i) {
    if (rest[i] == '\\') {
      ++i;
    } else if (rest[i] == '"') {
      const std::string_view inside = rest.substr(1, i - 1);
      rest = rest.substr(i + 1);
      if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      return inside;
    }
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days from 1970-01-01 to the civil date (proleptic Gregorian), after Howard Hinnant's
// days_from_civil.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

}  // namespace

Result<LogField> parse_log_field(std::string_view name) {
  static constexpr std::pair<std::string_view, LogField> kFields[] = {
      {"client", LogField::Client},   {"ident", LogField::Ident}, {"user", LogField::User},
      {"request", LogField::Request}, {"path", LogField::Path},   {"status", LogField::Status},
      {"referer", LogField::Referer}, {"agent", LogField::Agent}};
  for (const auto& [text, field] : kFields) {
    if (name == text) return field;
  }
  return Error("log field " + quoted(name) +
               ": must be one of client, ident, user, request, path, status, referer, agent");
}

Result<TraceFormat> parse_trace_format(std::string_view name) {
  if (name == "auto") return TraceFormat::Auto;
  if (name == "csv") return TraceFormat::Csv;
  if (name == "log") return TraceFormat::AccessLog;
  return Error("format " + quoted(name) + ": must be auto, csv or log");
}

Result<Instant> parse_time_ns(std::string_view text) {
  if (text.empty() || (text.front() != '-' && !all_digits(text.substr(0, 1)))) {
    return field_error("time_ns", text, "is not an integer number of nanoseconds");
  }
  std::int64_t ns = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, ns);
  if (ec == std::errc::result_out_of_range) {
    return field_error("time_ns", text, "does not fit in 64 bits");
  }
  if (ec != std::errc() || ptr != end) {
    return field_error("time_ns", text, "is not an integer number of nanoseconds");
  }
  return instant_in_range(ns, "time_ns", text);
}

Result<Instant> parse_time_seconds(std::string_view text) {
  std::string_view s = text;
  const bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  const std::size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : s.substr(dot + 1);
  if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(fraction))) {
    return field_error("time", text,
                       "is not a number of seconds (digits, optionally a '.' and up "
                       "to nine decimals)");
  }
  if (fraction.size() > 9) {
    return field_error("time", text, "has more than nine decimals (finer than a nanosecond)");
  }
  constexpr std::int64_t kMaxSeconds = internal::kTimeLimit / kNanosPerSecond;
  std::int64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
  if (ec != std::errc() || seconds > kMaxSeconds) {
    return field_error("time", text,
                       "is outside the supported range of +-4611686018 s (about 146 years either "
                       "side of the epoch)");
  }
  std::int64_t nanos = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    nanos = nanos * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  }
  const std::int64_t total = seconds * kNanosPerSecond + nanos;
  return instant_in_range(negative ? -total : total, "time", text);
}

Result<std::uint64_t> parse_cost(std::string_view text) {
  if (!all_digits(text)) return field_error("cost", text, "is not a whole number of permits");
  std::uint64_t cost = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), cost);
  if (ec != std::errc()) return field_error("cost", text, "does not fit in 64 bits");
  return cost;
}

Result<Instant> parse_log_time(std::string_view text) {
  // dd/Mon/yyyy:HH:MM:SS +hhmm
  const auto bad = [&](std::string_view why) { return field_error("time", text, why); };
  if (text.size() != 26 || text[2] != '/' || text[6] != '/' || text[11] != ':' || text[14] != ':' ||
      text[17] != ':' || text[20] != ' ' || (text[21] != '+' && text[21] != '-')) {
    return bad("is not an access log timestamp like 10/Oct/2000:13:55:36 -0700");
  }
  const auto number = [&](std::size_t at, std::size_t width, int& out) {
    const std::string_view digits = text.substr(at, width);
    if (!all_digits(digits)) return false;
    out = 0;
    for (const char c : digits) out = out * 10 + (c - '0');
    return true;
  };
  int day = 0, year = 0, hour = 0, minute = 0, second = 0, zone_h = 0, zone_m = 0;
  if (!number(0, 2, day) || !number(7, 4, year) || !number(12, 2, hour) || !number(15, 2, minute) ||
      !number(18, 2, second) || !number(22, 2, zone_h) || !number(24, 2, zone_m)) {
    return bad("is not an access log timestamp like 10/Oct/2000:13:55:36 -0700");
  }
  unsigned month = 0;
  for (unsigned i = 0; i < kMonths.size(); ++i) {
    if (text.substr(3, 3) == kMonths[i]) month = i + 1;
  }
  if (month == 0) return bad("has no month name Jan..Dec");
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int days_in_month = kDays[month - 1] + (month == 2 && is_leap(year) ? 1 : 0);
  if (day < 1 || day > days_in_month) return bad("has no such day in that month");
  if (hour > 23 || minute > 59 || second > 60) return bad("has no such time of day");
  if (zone_h > 23 || zone_m > 59) return bad("has no such time zone offset");
  const std::int64_t zone = (zone_h * 60 + zone_m) * 60 * (text[21] == '-' ? -1 : 1);
  // A leap second (:60) counts as the next second's start. Years 0000 to 9999 keep the seconds
  // far inside int64; their nanoseconds may not fit, so the range is checked first.
  const std::int64_t seconds = days_from_civil(year, month, static_cast<unsigned>(day)) * 86400 +
                               hour * 3600 + minute * 60 + second - zone;
  constexpr std::int64_t kMaxSeconds = internal::kTimeLimit / kNanosPerSecond;
  if (seconds > kMaxSeconds || seconds < -kMaxSeconds) {
    return bad("is outside the supported range (about 1824 to 2116)");
  }
  return instant_in_range(seconds * kNanosPerSecond, "time", text);
}

Result<CsvColumns> parse_csv_header(std::string_view line) {
  CsvColumns columns;
  std::string_view rest = line;
  for (int index = 0;; ++index) {
    const std::size_t comma = rest.find(',');
    const std::string_view name = csv_header_name(rest.substr(0, comma));
    const auto claim = [&](int& slot) -> std::optional<Error> {
      if (slot >= 0) return Error("header: column " + quoted(name) + " appears twice");
      slot = index;
      return std::nullopt;
    };
    std::optional<Error> error;
    if (name == "time_ns" || name == "time") {
      if (columns.time >= 0) {
        return Error("header: both time and time_ns, or one of them twice; give exactly one");
      }
      columns.time = index;
      columns.in_seconds = name == "time";
    } else if (name == "key") {
      error = claim(columns.key);
    } else if (name == "cost") {
      error = claim(columns.cost);
    }
    if (error) return *error;
    columns.count = index + 1;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (columns.time < 0) return Error("header " + quoted(line) + ": no time_ns or time column");
  if (columns.key < 0) return Error("header " + quoted(line) + ": no key column");
  return columns;
}

Result<Request> parse_csv_line(std::string_view line, const CsvColumns& columns,
                               std::string& scratch) {
  std::string_view time_text, key_text, cost_text;
  bool key_unescaped = false;
  std::size_t at = 0;
  int index = 0;
  for (;; ++index) {
    std::string_view field;
    bool escaped = false;
    if (at < line.size() && line[at] == '"') {
      // A quoted field ends at a quote that is not doubled.
      std::size_t i = at + 1;
      for (;; ++i) {
        if (i >= line.size()) {
          return Error("field " + std::to_string(index + 1) + ": quote opened and never closed");
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            escaped = true;
            ++i;
            continue;
          }
          break;
        }
      }
      field = line.substr(at + 1, i - at - 1);
      at = i + 1;
      if (at < line.size() && line[at] != ',') {
        return Error("field " + std::to_string(index + 1) +
                     ": text after the closing quote: " + quoted(line.substr(at)));
      }
    } else {
      const std::size_t comma = line.find(',', at);
      field = line.substr(at, comma == std::string_view::npos ? line.size() - at : comma - at);
      at = comma == std::string_view::npos ? line.size() : comma;
    }
    if (index == columns.time) time_text = field;
    if (index == columns.key) {
      key_text = field;
      key_unescaped = escaped;
    }
    if (index == columns.cost) cost_text = field;
    if (at >= line.size()) break;
    ++at;  // The comma.
  }
  if (index + 1 < columns.count) {
    return Error("expected " + std::to_string(columns.count) +
                 " fields as the header says, found " + std::to_string(index + 1));
  }
  Request request;
  Result<Instant> time =
      columns.in_seconds ? parse_time_seconds(time_text) : parse_time_ns(time_text);
  if (!time) return time.error();
  request.time = *time;
  if (columns.cost >= 0) {
    Result<std::uint64_t> cost = parse_cost(cost_text);
    if (!cost) return cost.error();
    request.cost = *cost;
  }
  if (key_unescaped) {
    scratch.clear();
    for (std::size_t i = 0; i < key_text.size(); ++i) {
      scratch += key_text[i];
      if (key_text[i] == '"') ++i;  // The second quote of a doubled pair.
    }
    request.key = scratch;
  } else {
    request.key = key_text;
  }
  return request;
}

Result<Request> parse_access_log_line(std::string_view line, LogField field) {
  std::string_view rest = line;
  const std::string_view client = take_token(rest);
  const std::string_view ident = take_token(rest);
  const std::string_view user = take_token(rest);
  if (client.empty() || rest.empty()) {
    return Error("not an access log line (client ident user [time] \"request\" status bytes): " +
                 quoted(line));
  }
  if (rest.front() != '[') return field_error("time", rest, "does not start with '['");
  const std::size_t close = rest.find(']');
  if (close == std::string_view::npos) return field_error("time", rest, "has no closing ']'");
  Result<Instant> time = parse_log_time(rest.substr(1, close - 1));
  if (!time) return time.error();
  rest = rest.substr(close + 1);
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const std::optional<std::string_view> request_line = take_quoted(rest);
  if (!request_line) return field_error("request", rest, "is not a double-quoted request line");
  const std::string_view status = take_token(rest);
  const std::string_view bytes = take_token(rest);
  if (status.empty() || bytes.empty()) {
    return field_error("status", line, "is missing: the line ends after the request");
  }
  std::optional<std::string_view> referer, agent;
  if (!rest.empty()) {
    referer = take_quoted(rest);
    agent = take_quoted(rest);
    if (!referer || !agent) {
      return field_error("referer", rest, "is not a double-quoted referer and user agent");
    }
  }
  Request request;
  request.time = *time;
  switch (field) {
    case LogField::Client:
      request.key = client;
      break;
    case LogField::Ident:
      request.key = ident;
      break;
    case LogField::User:
      request.key = user;
      break;
    case LogField::Request:
      request.key = *request_line;
      break;
    case LogField::Path: {
      std::string_view target = *request_line;
      take_token(target);  // The method.
      target = target.substr(0, target.find(' '));
      target = target.substr(0, target.find('?'));
      if (target.empty()) {
        return field_error("path", *request_line, "has no target (METHOD /path PROTOCOL)");
      }
      request.key = target;
      break;
    }
    case LogField::Status:
      request.key = status;
      break;
    case LogField::Referer:
    case LogField::Agent:
      if (!referer) {
        return field_error(field == LogField::Referer ? "referer" : "agent", line,
                           "is absent: the line is in Common, not Combined, Log Format");
      }
      request.key = field == LogField::Referer ? *referer : *agent;
      break;
  }
  return request;
}

TraceReader::TraceReader(std::FILE* file, std::string name, TraceFormat format, LogField field)
    : file_(file),
      name_(std::move(name)),
      format_(format),
      field_(field),
      line_(std::make_unique<char[]>(kMaxLineBytes + 1)) {}

Error TraceReader::error_at(const Error& error) const {
  return Error(name_ + ":" + std::to_string(line_number_) + ": " + error.message());
}

Result<bool> TraceReader::read_line() {
  // One byte at a time from the stream's own buffer: a line is never held past the limit, and a
  // slow pipe is read as its lines arrive.
  int c = 0;
  errno = 0;
  if (skipping_) {
    while ((c = getc_unlocked(file_)) != EOF) {
      ++bytes_read_;
      if (c == '\n') break;
    }
    skipping_ = false;
  }
  length_ = 0;
  bool any = false;
  if (c != EOF) {
    while ((c = getc_unlocked(file_)) != EOF) {
      any = true;
      ++bytes_read_;
      if (c == '\n') break;
      if (length_ == kMaxLineBytes) {
        ++line_number_;
        skipping_ = true;
        return error_at(Error("line longer than the " + std::to_string(kMaxLineBytes) +
                              " bytes a trace line may have (the rest of it is skipped)"));
      }
      line_[length_++] = static_cast<char>(c);
    }
  }
  if (c == EOF && std::ferror(file_)) {
    const int error = errno;
    stop_ = Stop::ReadError;
    return Error(name_ + ": read error after line " + std::to_string(line_number_) + ": " +
                 (error != 0 ? std::strerror(error) : "unknown error"));
  }
  if (!any) return false;
  ++line_number_;
  return true;
}

Result<std::optional<Request>> TraceReader::next() {
  while (stop_ == Stop::No) {
    Result<bool> read = read_line();
    if (!read) return read.error();
    if (!*read) break;
    std::string_view line(line_.get(), length_);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_number_ == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // BOM.
    if (line.empty()) continue;
    if (format_ == TraceFormat::Auto) {
      const std::string_view first = csv_header_name(line.substr(0, line.find(',')));
      format_ = first == "time_ns" || first == "time" || first == "key" || first == "cost"
                    ? TraceFormat::Csv
                    : TraceFormat::AccessLog;
    }
    if (format_ == TraceFormat::Csv && columns_.count == 0) {
      Result<CsvColumns> columns = parse_csv_header(line);
      if (!columns) {
        stop_ = Stop::BadHeader;
        return error_at(columns.error());
      }
      columns_ = *columns;
      continue;
    }
    Result<Request> request = format_ == TraceFormat::Csv ? parse_csv_line(line, columns_, scratch_)
                                                          : parse_access_log_line(line, field_);
    if (!request) return error_at(request.error());
    return std::optional<Request>(*request);
  }
  return std::optional<Request>();
}

}  // namespace floodgate::replay
