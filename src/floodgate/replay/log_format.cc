#include "floodgate/replay/log_format.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "floodgate/core/internal/format.h"
#include "floodgate/replay/internal/text.h"
#include "floodgate/replay/key_quotas.h"
#include "floodgate/replay/trace.h"

namespace floodgate::replay {
namespace {

using internal::field_error;
using internal::is_digit;
using internal::quoted;

// The presets `make_pattern_format` knows by name.
constexpr std::pair<std::string_view, std::string_view> kPresets[] = {
    {"common",
     R"($remote_addr $ident $remote_user [$time_local] "$request" $status $body_bytes_sent)"},
    {"combined",
     R"($remote_addr $ident $remote_user [$time_local] "$request" $status $body_bytes_sent )"
     R"("$http_referer" "$http_user_agent")"},
    // Envoy's default access log format.
    {"envoy",
     R"([%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" )"
     R"(%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% )"
     R"(%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" )"
     R"("%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%")"},
    // Istio's proxies' default, Envoy's with the upstream and downstream addresses.
    {"istio",
     R"([%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" )"
     R"(%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% )"
     R"("%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% )"
     R"(%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" )"
     R"("%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% )"
     R"(%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% )"
     R"(%REQUESTED_SERVER_NAME% %ROUTE_NAME%)"},
};

// How a time field's text is read.
enum class TimeForm : std::uint8_t { AccessLog, Rfc3339, Seconds };

// A format string: literal text and fields between them (`literals_` has one more entry).
class PatternFormat final : public LineFormat {
 public:
  PatternFormat(std::string kind, std::vector<std::string> literals, std::vector<std::string> names,
                std::size_t time_slot, TimeForm time_form)
      : kind_(std::move(kind)),
        literals_(std::move(literals)),
        names_(std::move(names)),
        time_slot_(time_slot),
        time_form_(time_form) {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      // A field between double quotes is read as a quoted string: up to a quote that no
      // backslash escapes, so that a quote inside it (Apache's \") does not end it.
      quoted_.push_back(literals_[i].ends_with('"') && literals_[i + 1].starts_with('"'));
    }
  }

  std::string describe() const override { return kind_; }

  std::optional<std::size_t> slot(std::string_view name) override { return index_of(names_, name); }

  std::vector<std::string> names() const override { return names_; }

  Result<void> parse(std::string_view line, Record& record) override {
    record.values.resize(names_.size());
    if (!line.starts_with(literals_[0])) {
      return Error("does not start with " + quoted(literals_[0]) + " as the " + kind_ +
                   " says: " + quoted(line.substr(0, 80)));
    }
    std::size_t at = literals_[0].size();
    for (std::size_t i = 0; i < names_.size(); ++i) {
      const std::string& next = literals_[i + 1];
      std::size_t end = std::string_view::npos;
      if (next.empty()) {  // The last field: the rest of the line.
        end = line.size();
      } else if (quoted_[i]) {
        end = internal::closing_quote(line, at);
        if (end != std::string_view::npos && line.compare(end, next.size(), next) != 0) {
          end = std::string_view::npos;
        }
      } else {
        end = line.find(next, at);
      }
      if (end == std::string_view::npos) {
        return field_error(names_[i], line.substr(at, 80),
                           "is not followed by " + quoted(next) + " as the " + kind_ + " says");
      }
      record.values[i] = line.substr(at, end - at);
      at = std::min(line.size(), end + next.size());
    }
    // Text after the last field is ignored: formats grow at their end.
    const std::string_view text = record.values[time_slot_];
    Result<Instant> time = time_form_ == TimeForm::AccessLog ? parse_log_time(text)
                           : time_form_ == TimeForm::Rfc3339
                               ? parse_rfc3339(text)
                               : parse_decimal_time(text, TimeUnit::Seconds);
    if (!time) {
      return field_error(names_[time_slot_], text, "is not a time: " + time.error().message());
    }
    record.time = *time;
    return {};
  }

 private:
  std::string kind_;
  std::vector<std::string> literals_;
  std::vector<std::string> names_;
  std::vector<bool> quoted_;
  std::size_t time_slot_;
  TimeForm time_form_;
};

// JSON lines: the members asked for, by name; `a.b` is `b` inside the object `a`.
class JsonFormat final : public LineFormat {
 public:
  JsonFormat(std::string time_field, TimeUnit unit) : unit_(unit) {
    static constexpr std::string_view kTimeNames[] = {"time",       "timestamp",  "ts",
                                                      "@timestamp", "start_time", "time_iso8601",
                                                      "time_local", "msec",       "START_TIME"};
    if (!time_field.empty()) {
      time_slots_.push_back(*slot(time_field));
    } else {
      for (const std::string_view name : kTimeNames) time_slots_.push_back(*slot(name));
    }
  }

  std::string describe() const override { return "JSON lines"; }

  std::optional<std::size_t> slot(std::string_view name) override {
    if (const std::optional<std::size_t> known = index_of(wanted_, name)) return known;
    wanted_.emplace_back(name);
    scratch_.emplace_back();
    is_string_.push_back(false);
    return wanted_.size() - 1;
  }

  std::vector<std::string> names() const override { return {}; }

  Result<void> parse(std::string_view line, Record& record) override {
    record.values.assign(wanted_.size(), std::string_view());
    line_ = line;
    at_ = 0;
    path_.clear();
    skip_space();
    if (at_ >= line_.size() || line_[at_] != '{') {
      return Error("not a JSON object: " + quoted(line.substr(0, 80)));
    }
    if (Result<void> read = object(record, 0); !read) return read;
    skip_space();
    if (at_ != line_.size()) {
      return Error("text after the JSON object: " + quoted(line_.substr(at_, 80)));
    }
    for (const std::size_t s : time_slots_) {
      const std::string_view text = record.values[s];
      if (!present(text)) continue;
      Result<Instant> time = is_string_[s] ? string_time(text) : parse_decimal_time(text, unit_);
      if (!time) return field_error(wanted_[s], text, "is not a time: " + time.error().message());
      record.time = *time;
      return {};
    }
    std::string names;
    for (const std::size_t s : time_slots_) names += (names.empty() ? "" : ", ") + wanted_[s];
    return Error("no time: the line has none of the members " + names +
                 " (--time-field names another)");
  }

 private:
  static constexpr int kMaxDepth = 32;

  static Result<Instant> string_time(std::string_view text) {
    if (text.size() == 26 && text[2] == '/') return parse_log_time(text);
    if (!text.empty() && text.find('-', 1) == std::string_view::npos) {
      return parse_decimal_time(text, TimeUnit::Seconds);
    }
    return parse_rfc3339(text);
  }

  void skip_space() {
    while (at_ < line_.size() &&
           (line_[at_] == ' ' || line_[at_] == '\t' || line_[at_] == '\r' || line_[at_] == '\n')) {
      ++at_;
    }
  }

  Error syntax(std::string_view what) const {
    return Error("not valid JSON at byte " + std::to_string(at_ + 1) + ": " + std::string(what));
  }

  // Reads a string at `at_` (its opening quote); its text is `raw` (escapes as written), and
  // `escaped` says whether it has any.
  Result<void> string(std::string_view& raw, bool& escaped) {
    ++at_;
    escaped = false;
    const std::size_t start = at_;
    while (at_ < line_.size()) {
      const char c = line_[at_];
      if (c == '"') {
        raw = line_.substr(start, at_ - start);
        ++at_;
        return {};
      }
      if (c == '\\') {
        escaped = true;
        ++at_;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        return syntax("a control byte inside a string");
      }
      ++at_;
    }
    return syntax("a string that is not closed");
  }

  // Writes the text of the string whose escaped form is `raw` to `out`.
  static Result<void> unescape(std::string_view raw, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        out += raw[i];
        continue;
      }
      if (++i >= raw.size()) return Error("a string ends in a backslash");
      switch (raw[i]) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const auto hex4 = [&](std::size_t from, std::uint32_t& v) {
            if (from + 4 > raw.size()) return false;
            v = 0;
            for (std::size_t k = from; k < from + 4; ++k) {
              const char h = raw[k];
              const int d = is_digit(h)              ? h - '0'
                            : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                            : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                     : -1;
              if (d < 0) return false;
              v = v * 16 + static_cast<std::uint32_t>(d);
            }
            return true;
          };
          std::uint32_t cp = 0;
          if (!hex4(i + 1, cp)) return Error("a \\u escape without four hex digits");
          i += 4;
          if (cp >= 0xD800 && cp < 0xDC00) {  // A surrogate pair.
            std::uint32_t low = 0;
            if (i + 2 < raw.size() && raw[i + 1] == '\\' && raw[i + 2] == 'u' && hex4(i + 3, low) &&
                low >= 0xDC00 && low < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              i += 6;
            } else {
              cp = 0xFFFD;
            }
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            cp = 0xFFFD;
          }
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          return Error("an unknown escape \\" + std::string(1, raw[i]));
      }
    }
    return {};
  }

  // The slot of the member at `path_`, if it was asked for.
  std::optional<std::size_t> wanted_slot() const { return index_of(wanted_, path_); }

  // Reads the object at `at_`, recording the members asked for.
  Result<void> object(Record& record, int depth) {
    if (depth >= kMaxDepth) return syntax("objects nested deeper than 32");
    ++at_;  // '{'
    skip_space();
    if (at_ < line_.size() && line_[at_] == '}') {
      ++at_;
      return {};
    }
    const std::size_t base = path_.size();
    while (true) {
      skip_space();
      if (at_ >= line_.size() || line_[at_] != '"') return syntax("expected a member's name");
      std::string_view name;
      bool escaped = false;
      if (Result<void> read = string(name, escaped); !read) return read;
      path_.resize(base);
      if (base > 0) path_ += '.';
      if (escaped) {
        std::string text;
        if (Result<void> ok = unescape(name, text); !ok) return syntax(ok.error().message());
        path_ += text;
      } else {
        path_ += name;
      }
      skip_space();
      if (at_ >= line_.size() || line_[at_] != ':') return syntax("expected ':' after a name");
      ++at_;
      skip_space();
      if (Result<void> read = value(record, depth); !read) return read;
      skip_space();
      if (at_ < line_.size() && line_[at_] == ',') {
        ++at_;
        continue;
      }
      if (at_ < line_.size() && line_[at_] == '}') {
        ++at_;
        path_.resize(base);
        return {};
      }
      return syntax("expected ',' or '}'");
    }
  }

  // Reads the value at `at_`, the member `path_`.
  Result<void> value(Record& record, int depth) {
    if (at_ >= line_.size()) return syntax("a member without a value");
    const char c = line_[at_];
    if (c == '{') return object(record, depth + 1);
    if (c == '[') return skip_array(record, depth + 1);
    if (c == '"') {
      std::string_view raw;
      bool escaped = false;
      if (Result<void> read = string(raw, escaped); !read) return read;
      if (const std::optional<std::size_t> s = wanted_slot()) {
        if (escaped) {
          if (Result<void> ok = unescape(raw, scratch_[*s]); !ok) {
            return syntax(ok.error().message());
          }
          // A view of the scratch string; a present value needs a non-null pointer.
          record.values[*s] = std::string_view(scratch_[*s].c_str(), scratch_[*s].size());
        } else {
          record.values[*s] = raw;
        }
        is_string_[*s] = true;
      }
      return {};
    }
    const std::size_t start = at_;
    while (at_ < line_.size() && line_[at_] != ',' && line_[at_] != '}' && line_[at_] != ']' &&
           line_[at_] != ' ' && line_[at_] != '\t') {
      ++at_;
    }
    const std::string_view scalar = line_.substr(start, at_ - start);
    const bool literal = scalar == "true" || scalar == "false" || scalar == "null";
    if (!literal && (scalar.empty() || !(is_digit(scalar[0]) || scalar[0] == '-'))) {
      at_ = start;
      return syntax("a value that is not a string, number, object, array, true, false or null");
    }
    if (scalar != "null") {
      if (const std::optional<std::size_t> s = wanted_slot()) {
        record.values[*s] = scalar;
        is_string_[*s] = false;
      }
    }
    return {};
  }

  // Skips the array at `at_`: its values cannot be named, so none is recorded in `record`.
  Result<void> skip_array(Record& record, int depth) {
    if (depth >= kMaxDepth) return syntax("arrays nested deeper than 32");
    ++at_;  // '['
    // No member asked for has a name with this byte: nothing inside is recorded.
    const std::size_t base = path_.size();
    path_ += '\x01';
    skip_space();
    if (at_ < line_.size() && line_[at_] == ']') {
      ++at_;
      path_.resize(base);
      return {};
    }
    while (true) {
      skip_space();
      Result<void> read = value(record, depth);
      path_.resize(base + 1);
      if (!read) return read;
      skip_space();
      if (at_ < line_.size() && line_[at_] == ',') {
        ++at_;
        continue;
      }
      if (at_ < line_.size() && line_[at_] == ']') {
        ++at_;
        path_.resize(base);
        return {};
      }
      return syntax("expected ',' or ']'");
    }
  }

  TimeUnit unit_;
  std::vector<std::string> wanted_;
  std::vector<std::string> scratch_;
  std::vector<bool> is_string_;
  std::vector<std::size_t> time_slots_;
  std::string_view line_;
  std::size_t at_ = 0;
  std::string path_;
};

}  // namespace

std::string_view derive(std::string_view value, Derive how) noexcept {
  switch (how) {
    case Derive::None:
      return value;
    case Derive::Method:
      return value.substr(0, value.find(' '));
    case Derive::Path: {
      const std::size_t space = value.find(' ');
      if (space == std::string_view::npos) return {};
      std::string_view target = value.substr(space + 1);
      target = target.substr(0, target.find(' '));
      target = target.substr(0, target.find('?'));
      return target.empty() ? std::string_view() : target;
    }
    case Derive::StripQuery:
      return value.substr(0, value.find('?'));
    case Derive::FirstHop: {
      std::string_view hop = value.substr(0, value.find(','));
      while (!hop.empty() && hop.front() == ' ') hop.remove_prefix(1);
      while (!hop.empty() && hop.back() == ' ') hop.remove_suffix(1);
      return hop;
    }
    case Derive::StripPort: {
      if (value.starts_with('[')) {
        const std::size_t close = value.find(']');
        return close == std::string_view::npos ? value : value.substr(1, close - 1);
      }
      const std::size_t colon = value.find(':');
      if (colon == std::string_view::npos || value.find(':', colon + 1) != std::string_view::npos) {
        return value;  // No port, or IPv6 without brackets.
      }
      return value.substr(0, colon);
    }
  }
  return value;
}

Result<TimeUnit> parse_time_unit(std::string_view name) {
  if (name == "s") return TimeUnit::Seconds;
  if (name == "ms") return TimeUnit::Milliseconds;
  if (name == "us") return TimeUnit::Microseconds;
  if (name == "ns") return TimeUnit::Nanoseconds;
  return Error("time unit " + quoted(name) + ": must be s, ms, us or ns");
}

Result<std::unique_ptr<LineFormat>> make_pattern_format(std::string_view format) {
  for (const auto& [name, text] : kPresets) {
    if (format == name) return make_pattern_format(text);
  }
  std::string_view body = format;
  // Envoy's format strings end with a newline, written or escaped; the line has none.
  while (body.ends_with('\n')) body.remove_suffix(1);
  if (body.ends_with("\\n")) body.remove_suffix(2);
  const std::size_t dollar = body.find('$');
  const std::size_t percent = body.find('%');
  if (dollar == std::string_view::npos && percent == std::string_view::npos) {
    return Error("log format " + quoted(format) +
                 ": no fields ($name as nginx writes them, %NAME% as Envoy does) and not a "
                 "preset (combined, common, envoy, istio)");
  }
  const bool envoy = percent < dollar;
  const std::string kind = envoy ? "Envoy access log format" : "nginx log_format";
  std::vector<std::string> literals(1);
  std::vector<std::string> names;
  std::size_t i = 0;
  const auto bad = [&](const std::string& what) {
    return Error("log format " + quoted(format) + ": " + what);
  };
  while (i < body.size()) {
    const char c = body[i];
    if (envoy && c == '%') {
      // %COMMAND%, %COMMAND(args)%, %COMMAND(args):LENGTH%
      std::size_t k = i + 1;
      while (k < body.size() &&
             ((body[k] >= 'A' && body[k] <= 'Z') || is_digit(body[k]) || body[k] == '_')) {
        ++k;
      }
      if (k == i + 1) return bad("a '%' at byte " + std::to_string(i + 1) + " starts no field");
      if (k < body.size() && body[k] == '(') {
        const std::size_t close = body.find(')', k);
        if (close == std::string_view::npos) {
          return bad("'(' at byte " + std::to_string(k + 1) + " is not closed");
        }
        k = close + 1;
      }
      const std::size_t name_end = k;
      if (k < body.size() && body[k] == ':') {
        ++k;
        while (k < body.size() && is_digit(body[k])) ++k;
      }
      if (k >= body.size() || body[k] != '%') {
        return bad("the field at byte " + std::to_string(i + 1) + " has no closing '%'");
      }
      names.emplace_back(body.substr(i + 1, name_end - i - 1));
      i = k + 1;
    } else if (!envoy && c == '$') {
      std::size_t k = i + 1;
      const bool braced = k < body.size() && body[k] == '{';
      if (braced) ++k;
      const std::size_t start = k;
      while (k < body.size() &&
             ((body[k] >= 'a' && body[k] <= 'z') || (body[k] >= 'A' && body[k] <= 'Z') ||
              is_digit(body[k]) || body[k] == '_')) {
        ++k;
      }
      if (k == start || (braced && (k >= body.size() || body[k] != '}'))) {
        return bad("a '$' at byte " + std::to_string(i + 1) + " starts no variable");
      }
      names.emplace_back(body.substr(start, k - start));
      i = k + (braced ? 1 : 0);
    } else {
      literals.back() += c;
      ++i;
      continue;
    }
    if (names.size() >= 2 && literals.back().empty()) {
      return bad("fields " + names[names.size() - 2] + " and " + names.back() +
                 " have no text between them, so a line cannot be split between them");
    }
    literals.emplace_back();
  }
  std::optional<std::size_t> time_slot;
  TimeForm form = TimeForm::Rfc3339;
  for (std::size_t n = 0; n < names.size() && !time_slot; ++n) {
    const std::string& name = names[n];
    if (name == "time_local") {
      form = TimeForm::AccessLog;
    } else if (name == "time_iso8601" || name == "START_TIME") {
      form = TimeForm::Rfc3339;
    } else if (name == "msec" || name == "START_TIME(%s)" || name.starts_with("START_TIME(%s.%")) {
      form = TimeForm::Seconds;
    } else if (name.starts_with("START_TIME(")) {
      return bad("%" + name +
                 "% is a time this reader cannot read back: use %START_TIME%, "
                 "%START_TIME(%s)% or %START_TIME(%s.%3f)%");
    } else {
      continue;
    }
    time_slot = n;
  }
  if (!time_slot) {
    return bad(envoy ? "no time: the format needs %START_TIME%"
                     : "no time: the format needs $time_local, $time_iso8601 or $msec");
  }
  return std::unique_ptr<LineFormat>(
      new PatternFormat(kind, std::move(literals), std::move(names), *time_slot, form));
}

std::unique_ptr<LineFormat> make_json_format(std::string time_field, TimeUnit unit) {
  return std::make_unique<JsonFormat>(std::move(time_field), unit);
}

namespace {

struct Alias {
  std::string_view name;
  std::string_view field;
  Derive derive;
};

// The names every format answers, each with its candidates in order.
constexpr Alias kAliases[] = {
    {"client", "remote_addr", Derive::None},
    {"client", "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Derive::None},
    {"client", "DOWNSTREAM_REMOTE_ADDRESS", Derive::StripPort},
    {"client", "client", Derive::None},
    {"client", "client_ip", Derive::None},
    {"client", "downstream_remote_address", Derive::StripPort},
    {"method", "request_method", Derive::None},
    {"method", "REQ(:METHOD)", Derive::None},
    {"method", "method", Derive::None},
    {"method", "request", Derive::Method},
    {"path", "uri", Derive::None},
    {"path", "request_uri", Derive::StripQuery},
    {"path", "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)", Derive::StripQuery},
    {"path", "REQ(:PATH)", Derive::StripQuery},
    {"path", "path", Derive::StripQuery},
    {"path", "request", Derive::Path},
    {"status", "status", Derive::None},
    {"status", "RESPONSE_CODE", Derive::None},
    {"status", "response_code", Derive::None},
    {"host", "http_host", Derive::None},
    {"host", "host", Derive::None},
    {"host", "REQ(:AUTHORITY)", Derive::None},
    {"host", "authority", Derive::None},
    {"xff", "http_x_forwarded_for", Derive::FirstHop},
    {"xff", "REQ(X-FORWARDED-FOR)", Derive::FirstHop},
    {"xff", "x_forwarded_for", Derive::FirstHop},
    {"xff", "x-forwarded-for", Derive::FirstHop},
    {"user", "remote_user", Derive::None},
    {"user", "user", Derive::None},
    {"ident", "ident", Derive::None},
    {"request", "request", Derive::None},
    {"referer", "http_referer", Derive::None},
    {"referer", "REQ(REFERER)", Derive::None},
    {"referer", "referer", Derive::None},
    {"agent", "http_user_agent", Derive::None},
    {"agent", "REQ(USER-AGENT)", Derive::None},
    {"agent", "user_agent", Derive::None},
};

}  // namespace

Result<FieldRef> FieldRef::resolve(LineFormat& format, std::string_view name) {
  FieldRef ref;
  ref.name_ = std::string(name);
  bool alias = false;
  for (const Alias& a : kAliases) {
    if (a.name != name) continue;
    alias = true;
    if (const std::optional<std::size_t> s = format.slot(a.field)) {
      ref.candidates_.push_back({*s, a.derive});
    }
  }
  if (!alias) {
    if (const std::optional<std::size_t> s = format.slot(name)) {
      ref.candidates_.push_back({*s, Derive::None});
    }
  }
  if (!ref.candidates_.empty()) return ref;
  std::string fields;
  for (const std::string& n : format.names()) fields += (fields.empty() ? "" : ", ") + n;
  std::string sources;
  for (const Alias& a : kAliases) {
    if (a.name == name) sources += (sources.empty() ? "" : ", ") + std::string(a.field);
  }
  return Error("field " + quoted(name) + ": the " + format.describe() + " has " +
               (alias ? "none of its sources (" + sources + ")" : "no such field") +
               "; its fields: " + fields +
               "; and client, method, path, status, host, xff where it has their sources");
}

std::string_view FieldRef::get(const Record& record) const noexcept {
  for (const Candidate& c : candidates_) {
    const std::string_view value = record.values[c.slot];
    if (!present(value)) continue;
    const std::string_view derived = derive(value, c.derive);
    if (present(derived)) return derived;
  }
  return {};
}

Result<LineFilter> LineFilter::parse(std::string_view text) {
  const std::size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Error(quoted(text) +
                 " is not a condition like path=/api/*, status=5??,429 or method=GET,HEAD");
  }
  LineFilter filter;
  filter.text_ = std::string(text);
  filter.field_ = std::string(text.substr(0, eq));
  std::string_view rest = text.substr(eq + 1);
  while (true) {
    const std::size_t comma = rest.find(',');
    filter.globs_.emplace_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return filter;
}

Result<void> LineFilter::bind(LineFormat& format) {
  Result<FieldRef> ref = FieldRef::resolve(format, field_);
  if (!ref) return ref.error();
  ref_ = std::move(*ref);
  return {};
}

bool LineFilter::matches(const Record& record) const noexcept {
  const std::string_view value = ref_->get(record);
  if (!present(value)) return false;
  return std::any_of(globs_.begin(), globs_.end(),
                     [&](const std::string& glob) { return glob_match(glob, value); });
}

}  // namespace floodgate::replay
