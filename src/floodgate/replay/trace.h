// Traces for `floodgate replay`: requests read one line at a time from a CSV trace or a web
// server's access log, each with its instant, its key and its cost.
//
// Two formats, told apart by the first line:
// - CSV with a header naming the columns, in any order: `time_ns` (integer nanoseconds) or
//   `time` (seconds with up to nine decimals), `key`, and optionally `cost` (1 when absent).
//   Other columns are ignored. Fields may be quoted as RFC 4180 says ("a,b", "say ""hi""").
// - Common or Combined Log Format (nginx, Apache):
//     127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "ref" "agent"
//   The key is one of the fields (`LogField`, the client address by default), the instant the
//   bracketed timestamp (one-second resolution), the cost 1.
// Every malformed line is an `Error` naming the line number, the field and the value. Instants
// must lie within +-kTimeLimit nanoseconds of the epoch (about 146 years), where limiters decide
// exactly.
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

namespace floodgate::replay {

// One request of a trace. `key` points into the reader's line buffer: valid until the next read.
struct Request {
  Instant time{};
  std::string_view key;
  std::uint64_t cost = 1;
};

// The field of an access log line that keys a request.
enum class LogField : std::uint8_t {
  Client,   // The client address (the first field): the default.
  Ident,    // The RFC 1413 identity (usually "-").
  User,     // The authenticated user.
  Request,  // The whole request line, "GET /a.gif HTTP/1.0".
  Path,     // The request line's target, "/a.gif", without its query string.
  Status,   // The status code.
  Referer,  // Combined format only.
  Agent,    // Combined format only: the user agent.
};

// Returns the field named `name` ("client", "ident", "user", "request", "path", "status",
// "referer", "agent"), or an error naming it and the choices.
Result<LogField> parse_log_field(std::string_view name);

// The format of a trace.
enum class TraceFormat : std::uint8_t { Auto, Csv, AccessLog };

// Returns the format named `name` ("auto", "csv", "log"), or an error naming it.
Result<TraceFormat> parse_trace_format(std::string_view name);

// The columns of a CSV trace, as its header names them.
struct CsvColumns {
  int time = -1;            // Index of `time_ns` or `time`.
  bool in_seconds = false;  // `time` (seconds with a fraction) rather than `time_ns`.
  int key = -1;
  int cost = -1;  // -1: every cost is 1.
  int count = 0;  // Columns in the header.
};

// Returns the columns of the CSV header `line`, or an error naming what is missing or doubled.
Result<CsvColumns> parse_csv_header(std::string_view line);

// Parses one CSV data line into a request whose key may point into `scratch` (kept by the
// caller until the request is used). Returns an error naming the field and its value.
Result<Request> parse_csv_line(std::string_view line, const CsvColumns& columns,
                               std::string& scratch);

// Parses one access log line, keyed by `field`. Returns an error naming the field and its value.
Result<Request> parse_access_log_line(std::string_view line, LogField field);

// Parses an access log timestamp, "10/Oct/2000:13:55:36 -0700" (without brackets).
Result<Instant> parse_log_time(std::string_view text);

// Parses integer nanoseconds, "1700000000123456789", within +-kTimeLimit.
Result<Instant> parse_time_ns(std::string_view text);

// Parses seconds with up to nine decimals, "1700000000.123456789", within +-kTimeLimit.
Result<Instant> parse_time_seconds(std::string_view text);

// Parses a cost: a decimal integer in [0, 2^64).
Result<std::uint64_t> parse_cost(std::string_view text);

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
    BadHeader,  // The CSV header names no usable columns, so no line after it can be read.
  };

  // Reads from `file` (not owned), named `name` in errors ("-" for standard input).
  TraceReader(std::FILE* file, std::string name, TraceFormat format, LogField field);
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
  TraceFormat format() const noexcept { return format_; }

 private:
  // Reads the next line into `line_`: true if there is one, false at the end of the stream.
  Result<bool> read_line();
  Error error_at(const Error& error) const;

  std::FILE* file_;
  std::string name_;
  TraceFormat format_;
  LogField field_;
  CsvColumns columns_;
  std::unique_ptr<char[]> line_;  // kMaxLineBytes + 1 bytes.
  std::size_t length_ = 0;        // Of the line in `line_`, without its newline.
  bool skipping_ = false;         // The last line was too long: its rest is still to skip.
  Stop stop_ = Stop::No;
  std::string scratch_;
  std::uint64_t line_number_ = 0;
  std::uint64_t bytes_read_ = 0;
};

}  // namespace floodgate::replay
