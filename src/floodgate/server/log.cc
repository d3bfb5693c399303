#include "floodgate/server/log.h"

#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>

#include "floodgate/core/internal/format.h"
#include "floodgate/server/internal/json.h"

namespace floodgate::server {

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
  }
  return "?";
}

Result<LogLevel> parse_log_level(std::string_view text) {
  for (const LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error}) {
    if (text == to_string(l)) return l;
  }
  return Error(internal::quoted(text) + " is not a log level (debug, info, warn or error)");
}

Result<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::Text;
  if (text == "json") return LogFormat::Json;
  return Error(internal::quoted(text) + " is not a log format (text or json)");
}

namespace {

// Appends `message` with each control byte escaped (\n, \r, \t, else \u00XX), so that it stays
// on one line of text.
void append_one_line(std::string& out, std::string_view message) {
  for (const char c : message) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\u%04x", u);
      out += hex;
    } else {
      out += c;
    }
  }
}

}  // namespace

std::string format_log_line(LogFormat format, LogLevel level,
                            std::chrono::system_clock::time_point time, std::string_view message) {
  const auto since = time.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since - seconds);
  const std::time_t t = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  ::gmtime_r(&t, &utc);
  char stamp[96];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis.count()));
  std::string line;
  line.reserve(message.size() + 64);
  if (format == LogFormat::Json) {
    line.append("{\"time\":\"").append(stamp).append("\",\"level\":\"");
    line.append(to_string(level)).append("\",\"msg\":");
    internal::append_json_string(line, message);
    line.append("}");
    return line;
  }
  char head[128];
  const std::string_view name = to_string(level);
  std::snprintf(head, sizeof head, "%s %-5.*s ", stamp, static_cast<int>(name.size()), name.data());
  line.append(head);
  append_one_line(line, message);
  return line;
}

Log make_log(LogFormat format, LogLevel least, std::function<void(const std::string&)> write) {
  auto mu = std::make_shared<std::mutex>();
  return [format, least, write = std::move(write), mu](LogLevel level, const std::string& message) {
    if (level < least || !write) return;
    const std::string line =
        format_log_line(format, level, std::chrono::system_clock::now(), message) + "\n";
    const std::lock_guard lock(*mu);
    write(line);
  };
}

}  // namespace floodgate::server
