// Traces for `floodgate replay`: requests read one line at a time from a CSV trace, a web
// server's or proxy's access log or JSON lines, each with its instant, its key and its cost.
//
// Formats (`TraceFormat`), told apart by the first line unless named:
// - CSV with a header naming the columns, in any order: `time_ns` (integer nanoseconds) or
//   `time` (seconds with up to nine decimals), `key`, and optionally `cost` (1 when absent).
//   Other columns are fields too. Fields may be quoted as RFC 4180 says ("a,b", "say ""hi""").
// - An access log. Without a format string, the Common or Combined Log Format (nginx, Apache):
//     127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "ref" "agent"
//   With one (`TraceOptions::log_format`), the lines that nginx's `log_format` or Envoy's access
//   log format writes (log_format.h); a first line like `[2026-11-27T13:00:00.310Z] "GET ...` is
//   Envoy's default format.
// - JSON lines, `{"time": "2026-11-27T13:00:00Z", "client": "a", ...}`.
// The key is a field (`TraceOptions::key_field`: the `key` column of a CSV trace, the client's
// address in a log by default). Lines may be kept or dropped by their fields (`include`,
// `exclude`). Every malformed line is an `Error` naming the line number, the field and the
// value. Instants must lie within +-kTimeLimit nanoseconds of the epoch (about 146 years), where
// limiters decide exactly.
//
// Not thread-safe: one reader per thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"
#include "floodgate/core/time.h"
#include "floodgate/replay/log_format.h"

namespace floodgate::replay {

// One request of a trace. `key` points into the reader's line buffer: valid until the next read.
struct Request {
  Instant time{};          // When it came.
  std::string_view key;    // What it is limited by.
  std::uint64_t cost = 1;  // The permits it takes.
};

// The format of a trace.
enum class TraceFormat : std::uint8_t { Auto, Csv, AccessLog, Json };

// Returns the format named `name` ("auto", "csv", "log", "json"), or an error naming it.
Result<TraceFormat> parse_trace_format(std::string_view name);

// The columns of a CSV trace, as its header names them.
struct CsvColumns {
  int time = -1;            // Index of `time_ns` or `time`.
  bool in_seconds = false;  // `time` (seconds with a fraction) rather than `time_ns`.
  int key = -1;             // Index of `key`.
  int cost = -1;            // -1: every cost is 1.
  int count = 0;            // Columns in the header.
};

// Returns the columns of the CSV header `line`, or an error naming what is missing or doubled.
Result<CsvColumns> parse_csv_header(std::string_view line);

// Returns the format of the CSV trace whose header is `line`: one field per column, named as the
// header names it; or an error naming what is missing or doubled.
Result<std::unique_ptr<LineFormat>> make_csv_format(std::string_view line);

// Returns the Common or Combined Log Format (each line may be either), with nginx's names for its
// fields: remote_addr, ident, remote_user, time_local, request, status, body_bytes_sent,
// http_referer and http_user_agent (Combined only).
std::unique_ptr<LineFormat> make_access_log_format();

// Parses an access log timestamp, "10/Oct/2000:13:55:36 -0700" (without brackets).
Result<Instant> parse_log_time(std::string_view text);

// Parses integer nanoseconds, "1700000000123456789", within +-kTimeLimit.
Result<Instant> parse_time_ns(std::string_view text);

// Parses seconds with up to nine decimals, "1700000000.123456789", within +-kTimeLimit.
Result<Instant> parse_time_seconds(std::string_view text);

// Parses an RFC 3339 time, "2026-11-27T13:00:00.123Z" ('T' or a space; up to nine decimals; 'Z'
// or an offset like +02:00; no zone is UTC), within +-kTimeLimit.
Result<Instant> parse_rfc3339(std::string_view text);

// Parses a decimal number of `unit`s since the epoch, "1700000000.123" (up to nine decimals,
// exact to the nanosecond), within +-kTimeLimit.
Result<Instant> parse_decimal_time(std::string_view text, TimeUnit unit);

// Parses a cost: a decimal integer in [0, 2^64).
Result<std::uint64_t> parse_cost(std::string_view text);

// What a reader reads, and how.
struct TraceOptions {
  TraceFormat format = TraceFormat::Auto;  // Auto: told apart by the first line.
  // For an access log: a format string or preset (log_format.h); empty: Common or Combined.
  std::string log_format;
  // The field that keys a request; empty: `key` for CSV, `client` for the others.
  std::string key_field;
  // The field that is a request's cost; empty: the CSV column `cost` if there is one, else 1.
  std::string cost_field;
  // JSON lines: the member that is the time (empty: see `make_json_format`) and the unit of a
  // number there.
  std::string time_field;
  TimeUnit time_unit = TimeUnit::Seconds;  // The unit of a number in `time_field`.
  // A line is read if it meets every `include` condition and none of the `exclude` ones; the
  // others are counted (`filtered`), not returned.
  std::vector<LineFilter> include;
  std::vector<LineFilter> exclude;  // Lines meeting any of these are left out.
  // More fields the caller reads from each request (`TraceReader::field`).
  std::vector<std::string> fields;
};

// Reads requests from a stream, one line at a time, in constant memory: a line longer than
// `kMaxLineBytes` is reported as soon as the limit is passed and the rest of it is skipped, never
// held.
class TraceReader {
 public:
  // Longer lines are errors (a key of kilobytes is not a client's name).
  static constexpr std::size_t kMaxLineBytes = 64 * 1024;

  // Why a reader stopped before the end of its stream.
  enum class Stop : std::uint8_t {
    No,         // It has not: reading goes on (past a malformed line, to the next one).
    ReadError,  // The stream failed (a directory, a closed descriptor, an I/O error).
    BadHeader,  // The format cannot give a field asked for (a CSV header without the key
                // column, a log format without the field named), so no line can be read.
  };

  // Reads from `file` (not owned), named `name` in errors ("-" for standard input).
  TraceReader(std::FILE* file, std::string name, TraceOptions options);
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  // Returns the next request, nothing at the end of the stream, or an error naming the line (or,
  // for a read error, the stream and the system's reason). After a malformed line the reader
  // goes on with the next line; after a read error or a bad header (`stopped()`) it returns
  // nothing. Blank lines are skipped.
  Result<std::optional<Request>> next();

  // Reports whether, and why, the reader stopped before the end of the stream.
  Stop stopped() const noexcept { return stop_; }

  // Returns the number of the line last read (1 for the first).
  std::uint64_t line_number() const noexcept { return line_number_; }

  // Returns the bytes read so far.
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }

  // Returns the format, once the first line has decided it.
  TraceFormat format() const noexcept { return options_.format; }

  // Returns the value of `TraceOptions::fields[i]` in the request last returned, or an absent one
  // (`present`) if its line has none.
  std::string_view field(std::size_t i) const noexcept { return fields_[i].get(record_); }
  // Returns how many fields `field` reads: `TraceOptions::fields`' count.
  std::size_t field_count() const noexcept { return options_.fields.size(); }

  // Returns how many lines the filters dropped.
  std::uint64_t filtered() const noexcept { return filtered_; }

 private:
  // Reads the next line into `line_`: true if there is one, false at the end of the stream.
  Result<bool> read_line();
  Error error_at(const Error& error) const;
  // Decides the format from the first line (consumed if it is a CSV header: `header`) and binds
  // every field asked for.
  Result<void> start(std::string_view line, bool& header);

  std::FILE* file_;
  std::string name_;
  TraceOptions options_;
  std::unique_ptr<LineFormat> format_;
  std::optional<FieldRef> key_;
  std::optional<FieldRef> cost_;
  std::vector<FieldRef> fields_;
  Record record_;
  std::uint64_t filtered_ = 0;
  std::unique_ptr<char[]> line_;  // kMaxLineBytes + 1 bytes.
  std::size_t length_ = 0;        // Of the line in `line_`, without its newline.
  bool skipping_ = false;         // The last line was too long: its rest is still to skip.
  Stop stop_ = Stop::No;
  std::uint64_t line_number_ = 0;
  std::uint64_t bytes_read_ = 0;
};

}  // namespace floodgate::replay
