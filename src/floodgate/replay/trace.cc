#include "floodgate/replay/trace.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "floodgate/core/internal/format.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/replay/internal/text.h"

namespace floodgate::replay {
namespace {

using internal::field_error;
using internal::is_digit;
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
  const std::size_t close = internal::closing_quote(rest, 1);
  if (close == std::string_view::npos) return std::nullopt;
  const std::string_view inside = rest.substr(1, close - 1);
  rest = rest.substr(close + 1);
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return inside;
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

int days_in_month(std::int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[month - 1] + (month == 2 && is_leap(year) ? 1 : 0);
}

}  // namespace

Result<TraceFormat> parse_trace_format(std::string_view name) {
  if (name == "auto") return TraceFormat::Auto;
  if (name == "csv") return TraceFormat::Csv;
  if (name == "log") return TraceFormat::AccessLog;
  if (name == "json") return TraceFormat::Json;
  return Error("format " + quoted(name) + ": must be auto, csv, log or json");
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
  if (day < 1 || day > days_in_month(year, static_cast<int>(month))) {
    return bad("has no such day in that month");
  }
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

Result<Instant> parse_rfc3339(std::string_view text) {
  const auto bad = [&] {
    return Error(quoted(text) +
                 " is not an RFC 3339 time like 2026-11-27T13:00:00Z (decimals and an offset "
                 "like +02:00 allowed)");
  };
  const auto number = [&](std::size_t at, std::size_t width, int& out) {
    if (at + width > text.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + width; ++i) {
      if (!is_digit(text[i])) return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 19 || !number(0, 4, year) || text[4] != '-' || !number(5, 2, month) ||
      text[7] != '-' || !number(8, 2, day) || (text[10] != 'T' && text[10] != ' ') ||
      !number(11, 2, hour) || text[13] != ':' || !number(14, 2, minute) || text[16] != ':' ||
      !number(17, 2, second)) {
    return bad();
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return bad();
  }
  std::string_view rest = text.substr(19);
  std::int64_t nanos = 0;
  if (!rest.empty() && rest.front() == '.') {
    std::size_t i = 1;
    for (; i < rest.size() && is_digit(rest[i]); ++i) {
      if (i <= 9) nanos = nanos * 10 + (rest[i] - '0');
    }
    if (i == 1 || i > 10) return bad();
    for (std::size_t k = i; k <= 9; ++k) nanos *= 10;
    rest.remove_prefix(i);
  }
  std::int64_t offset = 0;
  if (!rest.empty() && (rest[0] == '+' || rest[0] == '-')) {
    int oh = 0, om = 0;
    const bool colon = rest.size() == 6 && rest[3] == ':';
    if (!(colon || rest.size() == 5) || !number(text.size() - rest.size() + 1, 2, oh) ||
        !number(text.size() - rest.size() + (colon ? 4 : 3), 2, om) || oh > 23 || om > 59) {
      return bad();
    }
    offset = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else if (rest != "Z" && rest != "z" && !rest.empty()) {
    return bad();
  }
  const std::int64_t seconds =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset;
  constexpr std::int64_t kMaxSeconds = internal::kTimeLimit / kNanosPerSecond - 1;
  if (seconds > kMaxSeconds || seconds < -kMaxSeconds) {
    return Error(quoted(text) + " is outside the supported range (about 1824 to 2116)");
  }
  return Instant{Nanos{seconds * kNanosPerSecond + nanos}};
}

Result<Instant> parse_decimal_time(std::string_view text, TimeUnit unit) {
  static constexpr int kDigits[] = {9, 6, 3, 0};  // Decimal digits of a nanosecond per unit.
  const int shift = kDigits[static_cast<int>(unit)];
  const bool negative = text.starts_with('-');
  std::string_view s = negative ? text.substr(1) : text;
  const std::size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : s.substr(dot + 1);
  const auto digits = [](std::string_view d) { return std::all_of(d.begin(), d.end(), is_digit); };
  if (whole.empty() || !digits(whole) || !digits(fraction) ||
      (dot != std::string_view::npos && fraction.empty())) {
    return Error(quoted(text) + " is not a number (digits, optionally a '.' and decimals)");
  }
  if (static_cast<int>(fraction.size()) > shift) {
    return Error(quoted(text) + " is finer than a nanosecond");
  }
  // Whole units, then the fraction, in nanoseconds; beyond 19 digits it is out of range anyway.
  const std::int64_t limit = internal::kTimeLimit;
  std::int64_t ns = 0;
  for (const char c : whole) {
    if (ns > limit / 10) {
      ns = limit + 1;
      break;
    }
    ns = ns * 10 + (c - '0');
  }
  for (int i = 0; i < shift && ns <= limit; ++i) ns = ns > limit / 10 ? limit + 1 : ns * 10;
  std::int64_t part = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(shift); ++i) {
    part = part * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  }
  if (ns > limit || part > limit - ns) {
    return Error(quoted(text) +
                 " is outside the supported range (about 146 years either side "
                 "of the epoch)");
  }
  ns += part;
  return Instant{Nanos{negative ? -ns : ns}};
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

namespace {

// A CSV trace: a field per column of its header.
class CsvFormat final : public LineFormat {
 public:
  CsvFormat(CsvColumns columns, std::vector<std::string> names)
      : columns_(columns), names_(std::move(names)), scratch_(names_.size()) {}

  std::string describe() const override { return "CSV header"; }

  std::optional<std::size_t> slot(std::string_view name) override { return index_of(names_, name); }

  std::vector<std::string> names() const override { return names_; }

  Result<void> parse(std::string_view line, Record& record) override {
    record.values.assign(names_.size(), std::string_view());
    std::size_t at = 0;
    std::size_t index = 0;
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
      if (index < names_.size()) {
        if (escaped) {
          std::string& out = scratch_[index];
          out.clear();
          for (std::size_t i = 0; i < field.size(); ++i) {
            out += field[i];
            if (field[i] == '"') ++i;  // The second quote of a doubled pair.
          }
          field = std::string_view(out.c_str(), out.size());
        } else if (field.data() == nullptr) {
          field = std::string_view(line.data(), 0);
        }
        record.values[index] = field;
      }
      if (at >= line.size()) break;
      ++at;  // The comma.
    }
    if (index + 1 < names_.size()) {
      return Error("expected " + std::to_string(names_.size()) +
                   " fields as the header says, found " + std::to_string(index + 1));
    }
    const std::string_view time_text = record.values[static_cast<std::size_t>(columns_.time)];
    Result<Instant> time =
        columns_.in_seconds ? parse_time_seconds(time_text) : parse_time_ns(time_text);
    if (!time) return time.error();
    record.time = *time;
    return {};
  }

 private:
  CsvColumns columns_;
  std::vector<std::string> names_;
  std::vector<std::string> scratch_;
};

// The Common or Combined Log Format, line by line.
class AccessLogFormat final : public LineFormat {
 public:
  std::string describe() const override { return "Common/Combined Log Format"; }

  std::optional<std::size_t> slot(std::string_view name) override {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
      if (kNames[i] == name) return i;
    }
    return std::nullopt;
  }

  std::vector<std::string> names() const override {
    return std::vector<std::string>(kNames.begin(), kNames.end());
  }

  Result<void> parse(std::string_view line, Record& record) override {
    record.values.assign(kNames.size(), std::string_view());
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
    const std::string_view time_text = rest.substr(1, close - 1);
    Result<Instant> time = parse_log_time(time_text);
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
    if (!rest.empty()) {
      const std::optional<std::string_view> referer = take_quoted(rest);
      const std::optional<std::string_view> agent = take_quoted(rest);
      if (!referer || !agent) {
        return field_error("referer", rest, "is not a double-quoted referer and user agent");
      }
      record.values[7] = present(*referer) ? *referer : line.substr(0, 0);
      record.values[8] = present(*agent) ? *agent : line.substr(0, 0);
    }
    record.time = *time;
    record.values[0] = client;
    record.values[1] = ident;
    record.values[2] = user;
    record.values[3] = time_text;
    record.values[4] = present(*request_line) ? *request_line : line.substr(0, 0);
    record.values[5] = status;
    record.values[6] = bytes;
    return {};
  }

 private:
  static constexpr std::array<std::string_view, 9> kNames = {
      "remote_addr", "ident",           "remote_user",  "time_local",     "request",
      "status",      "body_bytes_sent", "http_referer", "http_user_agent"};
};

}  // namespace

Result<std::unique_ptr<LineFormat>> make_csv_format(std::string_view line) {
  Result<CsvColumns> columns = parse_csv_header(line);
  if (!columns) return columns.error();
  std::vector<std::string> names;
  std::string_view rest = line;
  while (true) {
    const std::size_t comma = rest.find(',');
    names.emplace_back(csv_header_name(rest.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return std::unique_ptr<LineFormat>(new CsvFormat(*columns, std::move(names)));
}

std::unique_ptr<LineFormat> make_access_log_format() { return std::make_unique<AccessLogFormat>(); }

TraceReader::TraceReader(std::FILE* file, std::string name, TraceOptions options)
    : file_(file),
      name_(std::move(name)),
      options_(std::move(options)),
      line_(std::make_unique<char[]>(kMaxLineBytes + 1)) {}

Error TraceReader::error_at(const Error& error) const {
  return Error(name_ + ":" + std::to_string(line_number_) + ": " + error.message());
}

namespace {

// The bytes a stream has read ahead and not yet handed out, taken without a call per byte:
// glibc's FILE keeps them between _IO_read_ptr and _IO_read_end. Elsewhere none, and every byte
// comes through getc_unlocked.
std::string_view read_ahead(std::FILE* file) noexcept {
#if defined(__GLIBC__)
  return {file->_IO_read_ptr, static_cast<std::size_t>(file->_IO_read_end - file->_IO_read_ptr)};
#else
  (void)file;
  return {};
#endif
}

void consume(std::FILE* file, std::size_t n) noexcept {
#if defined(__GLIBC__)
  file->_IO_read_ptr += n;
#else
  (void)file;
  (void)n;
#endif
}

}  // namespace

Result<bool> TraceReader::read_line() {
  // From the stream's own buffer, a newline searched for in what it holds: a line is never held
  // past the limit, and a slow pipe is read as its lines arrive (a refill reads what the pipe
  // has).
  errno = 0;
  bool eof = false;
  if (skipping_) {
    while (true) {
      const std::string_view ahead = read_ahead(file_);
      if (ahead.empty()) {
        const int c = getc_unlocked(file_);
        if (c == EOF) {
          eof = true;
          break;
        }
        ++bytes_read_;
        if (c == '\n') break;
        continue;
      }
      const std::size_t newline = ahead.find('\n');
      const std::size_t n = newline == std::string_view::npos ? ahead.size() : newline + 1;
      consume(file_, n);
      bytes_read_ += n;
      if (newline != std::string_view::npos) break;
    }
    skipping_ = false;
  }
  length_ = 0;
  bool any = false;
  const auto too_long = [&] {
    ++line_number_;
    skipping_ = true;
    return error_at(Error("line longer than the " + std::to_string(kMaxLineBytes) +
                          " bytes a trace line may have (the rest of it is skipped)"));
  };
  while (!eof) {
    const std::string_view ahead = read_ahead(file_);
    if (ahead.empty()) {
      const int c = getc_unlocked(file_);
      if (c == EOF) break;
      any = true;
      ++bytes_read_;
      if (c == '\n') break;
      if (length_ == kMaxLineBytes) return too_long();
      line_[length_++] = static_cast<char>(c);
      continue;
    }
    any = true;
    const std::size_t newline = ahead.find('\n');
    const std::size_t n = newline == std::string_view::npos ? ahead.size() : newline;
    if (length_ + n > kMaxLineBytes) {
      // The byte past the limit is taken, as one at a time would; the rest is skipped later.
      const std::size_t room = kMaxLineBytes - length_;
      consume(file_, room + 1);
      bytes_read_ += room + 1;
      return too_long();
    }
    std::memcpy(line_.get() + length_, ahead.data(), n);
    length_ += n;
    const std::size_t taken = newline == std::string_view::npos ? n : n + 1;
    consume(file_, taken);
    bytes_read_ += taken;
    if (newline != std::string_view::npos) break;
  }
  if (std::ferror(file_)) {
    const int error = errno;
    stop_ = Stop::ReadError;
    return Error(name_ + ": read error after line " + std::to_string(line_number_) + ": " +
                 (error != 0 ? std::strerror(error) : "unknown error"));
  }
  if (!any) return false;
  ++line_number_;
  return true;
}

Result<void> TraceReader::start(std::string_view line, bool& header) {
  header = false;
  TraceFormat& format = options_.format;
  if (format == TraceFormat::Auto) {
    const std::string_view first = csv_header_name(line.substr(0, line.find(',')));
    if (line.starts_with('{')) {
      format = TraceFormat::Json;
    } else if (first == "time_ns" || first == "time" || first == "key" || first == "cost") {
      format = TraceFormat::Csv;
    } else {
      format = TraceFormat::AccessLog;
      // Envoy's default format starts with the bracketed RFC 3339 time.
      if (options_.log_format.empty() && line.size() > 5 && line[0] == '[' &&
          line.substr(1, 4).find_first_not_of("0123456789") == std::string_view::npos &&
          line[5] == '-') {
        options_.log_format = "envoy";
      }
    }
  }
  switch (format) {
    case TraceFormat::Csv: {
      Result<std::unique_ptr<LineFormat>> made = make_csv_format(line);
      if (!made) return made.error();
      format_ = std::move(*made);
      header = true;
      break;
    }
    case TraceFormat::Json:
      format_ = make_json_format(options_.time_field, options_.time_unit);
      break;
    case TraceFormat::AccessLog:
    case TraceFormat::Auto:
      if (options_.log_format.empty()) {
        format_ = make_access_log_format();
      } else {
        Result<std::unique_ptr<LineFormat>> made = make_pattern_format(options_.log_format);
        if (!made) return made.error();
        format_ = std::move(*made);
      }
      break;
  }
  const std::string key_name = !options_.key_field.empty()  ? options_.key_field
                               : format == TraceFormat::Csv ? "key"
                                                            : "client";
  Result<FieldRef> key = FieldRef::resolve(*format_, key_name);
  if (!key) return key.error();
  key_ = std::move(*key);
  if (!options_.cost_field.empty() || (format == TraceFormat::Csv && format_->slot("cost"))) {
    Result<FieldRef> cost =
        FieldRef::resolve(*format_, options_.cost_field.empty() ? "cost" : options_.cost_field);
    if (!cost) return cost.error();
    cost_ = std::move(*cost);
  }
  for (const std::string& name : options_.fields) {
    Result<FieldRef> ref = FieldRef::resolve(*format_, name);
    if (!ref) return ref.error();
    fields_.push_back(std::move(*ref));
  }
  for (auto* filters : {&options_.include, &options_.exclude}) {
    for (LineFilter& filter : *filters) {
      if (Result<void> bound = filter.bind(*format_); !bound) {
        return Error(std::string(filters == &options_.include ? "--include " : "--exclude ") +
                     quoted(filter.text()) + ": " + bound.error().message());
      }
    }
  }
  return {};
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
    if (format_ == nullptr) {
      bool header = false;
      if (Result<void> started = start(line, header); !started) {
        stop_ = Stop::BadHeader;
        return error_at(started.error());
      }
      if (header) continue;
    }
    if (Result<void> parsed = format_->parse(line, record_); !parsed) {
      return error_at(parsed.error());
    }
    bool keep = true;
    for (const LineFilter& filter : options_.include) keep = keep && filter.matches(record_);
    for (const LineFilter& filter : options_.exclude) keep = keep && !filter.matches(record_);
    if (!keep) {
      ++filtered_;
      continue;
    }
    Request request;
    request.time = record_.time;
    request.key = key_->get(record_);
    if (!present(request.key)) {
      return error_at(Error("field " + key_->name() + " (the key) is absent or empty"));
    }
    if (cost_) {
      const std::string_view text = cost_->get(record_);
      Result<std::uint64_t> cost = parse_cost(present(text) ? text : std::string_view());
      if (!cost) return error_at(cost.error());
      request.cost = *cost;
    }
    return std::optional<Request>(request);
  }
  return std::optional<Request>();
}

}  // namespace floodgate::replay
