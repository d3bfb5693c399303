// Line formats for `floodgate replay`: how the named fields of a log line are found, whatever
// wrote the log.
//
// - `make_pattern_format`: a format string as the server that wrote the log was configured with,
//   nginx's `log_format` (`$remote_addr - $remote_user [$time_local] "$request" ...`) or Envoy's
//   access log format (`[%START_TIME%] "%REQ(:METHOD)% ..."`), or a preset by name ("combined",
//   "common", "envoy", "istio"). Each variable is a field, named as the format names it
//   (`remote_addr`, `REQ(X-FORWARDED-FOR)`).
// - `make_json_format`: JSON lines, one object a line; a field is a member by name, `a.b` one
//   inside an object.
// - CSV and the Common/Combined Log Format are read by trace.h, through the same interface.
//
// A `FieldRef` reads one value from a parsed line, by the format's own name for it or by a name
// every format answers (`client`, `method`, `path`, `status`, `host`, `xff`: see
// `FieldRef::resolve`). A `LineFilter` keeps or drops lines by their fields' values.
//
// Not thread-safe: a format parses one line at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/core/result.h"
#include "floodgate/core/time.h"

namespace floodgate::replay {

// The fields of one parsed line. A value points into the line (or the format's scratch), valid
// until the next line is parsed; an absent value has a null data pointer.
struct Record {
  Instant time{};                        // The line's time.
  std::vector<std::string_view> values;  // By slot: see `LineFormat::slot`.
};

// Returns whether `value` is present in its record (a present value may be empty).
inline bool present(std::string_view value) noexcept { return value.data() != nullptr; }

// How a field's value is turned into the value wanted.
enum class Derive : std::uint8_t {
  None,
  Method,      // The first word of a request line, "GET /a?b HTTP/1.1" -> "GET".
  Path,        // The target of a request line without its query string -> "/a".
  StripQuery,  // A target without its query string, "/a?b" -> "/a".
  FirstHop,    // The first address of an X-Forwarded-For list, "a, b" -> "a".
  StripPort,   // An address without its port, "1.2.3.4:80" -> "1.2.3.4", "[::1]:80" -> "::1".
};

// Returns `value` derived as `derive` says.
std::string_view derive(std::string_view value, Derive derive) noexcept;

// One line format.
class LineFormat {
 public:
  virtual ~LineFormat() = default;

  // Returns a short description for messages ("nginx log_format", "JSON lines").
  virtual std::string describe() const = 0;

  // Returns the slot of the field named exactly `name`, or nothing if this format has no such
  // field. A format whose fields are not known in advance (JSON) makes one.
  virtual std::optional<std::size_t> slot(std::string_view name) = 0;

  // Returns the names of the fields, for messages (empty for JSON).
  virtual std::vector<std::string> names() const = 0;

  // Parses `line` into `record` (its time and the value of every slot), or returns an error
  // naming the field and its value.
  virtual Result<void> parse(std::string_view line, Record& record) = 0;

 protected:
  // Returns the index of `name` in `names`, or nothing.
  static std::optional<std::size_t> index_of(const std::vector<std::string>& names,
                                             std::string_view name) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return i;
    }
    return std::nullopt;
  }
};

// Returns the format that a format string or preset describes, or an error naming what in it
// cannot be read: two fields with no text between them, an unclosed `%`, no time field. The time
// comes from nginx's `$time_local`, `$time_iso8601` or `$msec`, or Envoy's `%START_TIME%`
// (RFC 3339, or `%START_TIME(%s)%` and `(%s.%3f)` and the like).
Result<std::unique_ptr<LineFormat>> make_pattern_format(std::string_view format);

// The units of a number that is a time in JSON lines.
enum class TimeUnit : std::uint8_t { Seconds, Milliseconds, Microseconds, Nanoseconds };

// Returns the unit named `name` ("s", "ms", "us", "ns"), or an error naming it.
Result<TimeUnit> parse_time_unit(std::string_view name);

// Returns a JSON-lines format whose time is the member `time_field` (empty: the first of time,
// timestamp, ts, @timestamp, start_time, time_iso8601, time_local, msec a line has): a string in
// RFC 3339 or the access log's form, or a number of `unit`s since the epoch.
std::unique_ptr<LineFormat> make_json_format(std::string time_field, TimeUnit unit);

// A value read from a record: the first present one of its candidate fields, derived.
class FieldRef {
 public:
  // Returns a reference to the field `name` of `format`: one of the names every format answers,
  // else the format's own field. Names every format answers, each from the first of its
  // candidates a line has:
  //   client  the client's address (remote_addr, DOWNSTREAM_REMOTE_ADDRESS without its port, ...)
  //   method  the request method (request_method, REQ(:METHOD), or the request line's first word)
  //   path    the request's path without its query string
  //   status  the response status (status, RESPONSE_CODE)
  //   host    the host the request named (http_host, REQ(:AUTHORITY))
  //   xff     the first address of X-Forwarded-For (http_x_forwarded_for, REQ(X-FORWARDED-FOR))
  //   user, ident, request, referer, agent  as in the Combined Log Format
  // Returns an error naming the field and the format's fields if it has none of them.
  static Result<FieldRef> resolve(LineFormat& format, std::string_view name);

  // Returns the value in `record`, or an absent one (see `present`).
  std::string_view get(const Record& record) const noexcept;

  // Returns the name it was resolved from.
  const std::string& name() const noexcept { return name_; }

 private:
  struct Candidate {
    std::size_t slot;
    Derive derive;
  };
  std::string name_;
  std::vector<Candidate> candidates_;
};

// A condition on one field, `NAME=GLOB[,GLOB...]` (`*` any run, `?` one byte, `\` escapes): true
// when the field is present and matches one of the globs.
class LineFilter {
 public:
  // Returns the filter that `text` says, or an error quoting it.
  static Result<LineFilter> parse(std::string_view text);

  // Resolves the field in `format`; returns an error naming it if the format has no such field.
  Result<void> bind(LineFormat& format);

  // Reports whether `record` meets the condition (after `bind`).
  bool matches(const Record& record) const noexcept;

  // Returns the condition as given, `NAME=GLOB[,GLOB...]`.
  const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
  std::string field_;
  std::vector<std::string> globs_;
  std::optional<FieldRef> ref_;
};

}  // namespace floodgate::replay
