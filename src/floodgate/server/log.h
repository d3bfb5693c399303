// The service's log: each event one line, with its time (RFC 3339, UTC, milliseconds) and its
// level, as text or as JSON, those below a chosen level left out. The parts of the service say
// what happened through a `Log`; the program decides where lines go. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "floodgate/core/result.h"

namespace floodgate::server {

enum class LogLevel : std::uint8_t { Debug, Info, Warn, Error };

// Returns "debug", "info", "warn" or "error".
std::string_view to_string(LogLevel level) noexcept;
// Returns the level `text` names (as `to_string` writes it), or an error quoting it.
Result<LogLevel> parse_log_level(std::string_view text);

enum class LogFormat : std::uint8_t {
  // `2026-12-07T19:57:05.123Z info  message`: the level padded to 5, then the message.
  Text,
  // `{"time":"2026-12-07T19:57:05.123Z","level":"info","msg":"message"}` (control bytes in the
  // message as \u00XX).
  Json,
};
// Returns the format `text` names ("text", "json"), or an error quoting it.
Result<LogFormat> parse_log_format(std::string_view text);

// Where the service says what happened: `message` (one line, no newline) at `level`.
using Log = std::function<void(LogLevel level, const std::string& message)>;

// Returns `message` at `level` and `time` as one line in `format`, without a newline. A newline
// or other control character in `message` is escaped, so that one event is one line.
std::string format_log_line(LogFormat format, LogLevel level,
                            std::chrono::system_clock::time_point time, std::string_view message);

// Returns a `Log` that formats each message at `least` or above and hands the line (with its
// newline) to `write`, one call at a time.
Log make_log(LogFormat format, LogLevel least, std::function<void(const std::string&)> write);

}  // namespace floodgate::server
