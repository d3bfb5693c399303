// floodgate replay: decides every request of a trace under a policy and reports what happened.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "build_info.h"
#include "commands.h"
#include "flags.h"
#include "floodgate/core/internal/format.h"
#include "floodgate/core/internal/string_hash.h"
#include "floodgate/replay/key_quotas.h"
#include "floodgate/replay/replayer.h"
#include "floodgate/replay/report.h"
#include "floodgate/replay/summary.h"
#include "floodgate/replay/trace.h"
#ifdef FLOODGATE_CLI_HAS_REDIS
#include "redis_replay.h"
#endif
#ifdef FLOODGATE_CLI_HAS_SERVER
#include "floodgate/server/config.h"
#include "floodgate/server/service_replay.h"
#endif

namespace floodgate::app {
namespace {

using internal::percent;
using internal::with_commas;

constexpr std::string_view kHelp = R"(usage: floodgate replay [flags] TRACE

Decides every request of TRACE as a rate limiter with one limit per key would, writes the
decisions as CSV, and prints a summary on stderr. TRACE is a file, or - for standard input.

Trace formats (told apart by the first line, or by --format):
  CSV with a header naming its columns in any order: time_ns (integer nanoseconds) or time
  (seconds, up to nine decimals), key, and optionally cost (default 1); other columns are fields.
      time_ns,key,cost
      1700000000000000000,alice,1
  Access logs: the Common or Combined Log Format (nginx, Apache) by default; Envoy's default
  format when a line starts with "[2026-..."; or the format string the server was configured
  with (--log-format). The time is the log's own; every request costs 1.
  JSON lines, one object a line: members by name, nested ones as a.b; the time is the first of
  time, timestamp, ts, @timestamp, start_time, time_iso8601, time_local, msec (or --time-field).
  A request's key is a field (--key-field): the key column of CSV, else the client's address.

Policy:
  --quota TEXT          the default quota per key, e.g. "100/s burst 20", "1000/min" (default 10/s)
  --algorithm NAME      gcra (default), token-bucket, fixed-window, sliding-log, sliding-counter,
                        envoy-fixed-window; the window algorithms need a burst equal to the count
  --quotas FILE         per-key quotas, one "pattern quota" rule a line; the first glob that
                        matches the key wins (e.g. "premium:* 100/s burst 50"; # starts a comment)
  --max-keys N          room for keys with state at once, for every algorithm (default
                        1000000); keys whose state is full again are dropped first, losing
                        nothing. The room is split evenly over 64 shards by hash, so the fullest
                        shard fills first: N distinct keys at once can already find one full
                        (a million random keys: about 0.3% of first requests). Give twice the
                        keys you expect; the summary counts requests that found it full

Redis (the decisions of a fleet's shared limit, through floodgate's Redis backend):
  --redis URL           decide in Redis instead: redis://host:port[/db], unix:///path/to.sock or
                        redis+cluster://host:port[,host:port...]; gcra and token-bucket only,
                        with exactly the decisions of the in-process replay. Keys are stored
                        under a prefix of the run's own and expire once their buckets are full
                        (plus an hour, for traces denser than real time)
  --time trace|server   with --redis: decide at the trace's instants (default), or at Redis's
                        own clock, the instant each decision was made at then filling time_ns
  --redis-prefix TEXT   with --redis: the key prefix instead of the run's own (runs that share
                        one share their keys' state)

Input:
  --format auto|csv|log|json  the trace's format (default auto)
  --log-format TEXT       an access log's format as nginx's log_format or Envoy's access log
                          says it ('$remote_addr - $remote_user [$time_local] "$request" ...',
                          '[%START_TIME%] "%REQ(:METHOD)% ...'), or combined, common, envoy, istio;
                          each variable is a field of that name (remote_addr, REQ(:AUTHORITY))
  --key-field NAME        the field that keys a request: the format's own name for it, or one
                          of client, method, path (no query string), status, host, xff (the
                          first address of X-Forwarded-For), user, ident, request, referer,
                          agent, found in any format that has their source
  --cost-field NAME       the field that is a request's cost (default: CSV's cost column, or 1)
  --time-field NAME       JSON: the member that is the time; a string is RFC 3339 or an access
                          log's time, a number counts --time-unit s|ms|us|ns (default s)
  --include FIELD=GLOB[,GLOB...]  read only lines whose field matches a glob (* any run, ? one
                          byte); given again, every one must hold: --include method=GET,HEAD
  --exclude FIELD=GLOB[,GLOB...]  leave out lines whose field matches: --exclude 'path=/static/*'
                          --exclude 'status=5??'; the summary counts the lines left out
  --on-error stop|skip    at a malformed line: stop with exit status 2 (default), or report it and
                          go on; either way everything decided before it is written

A whole envoyproxy/ratelimit configuration (what floodgate serve would have answered):
  --config PATH         the configuration (a file or a directory of them, as floodgate serve
                        reads it); each line becomes one rate limit request, decided by the
                        service's own code at the line's time: nested descriptors, wildcards,
                        shadow mode, unlimited, replaces and the algorithm extensions
  --domain D            the domain the requests name
  --descriptor K=V[,K2=V2...]  one descriptor of each request (given again, more descriptors);
                        a value is text with the line's fields in it: remote_address=$client,
                        path=$path, generic_key=global, user=$user-$host, id=${req.client}
                        (braces for names with other characters). A descriptor that names a
                        field the line lacks, or whose value is "-" (nginx's and Envoy's "no
                        value"), is not sent, as Envoy sends none when a header is missing. A request is denied when a descriptor is over its
                        rule's limit; the decisions gain a column with each descriptor's status
                        (ok, over, shadow, - not sent), and the summary a row per rule: hits,
                        over the limit, shadowed, the most limited values. With --plot, a plot
                        per rule beside it (plot.svg -> plot.<rule>.svg). Not with --quota,
                        --algorithm, --quotas, --redis, --sweep, --max-keys

Output:
  --out FILE            the decisions, as CSV time_ns,key,cost,allowed,remaining,retry_after_ns
                        (default: standard output, unless it is a terminal: then none, and
                        the summary says so; "-" writes them there anyway, "none" nowhere)
  --plot FILE           an SVG of admitted and denied requests over time (each bar's counts in
                        its tooltip); with --plot-key, the key's quota as a line
  --plot-key KEY        plot (and --report) one key's requests and quota instead of the whole
                        trace
  --from T, --to T      plot the time [T, T2) only (every request is still decided): a time,
                        2026-11-27T13:00:00Z or "2026-11-27 13:00:00" (UTC; up to nine decimals;
                        an offset like +02:00), or seconds since the epoch, 1796288400.5
  --bar D               bars of D (10ms, 15s, 1m, 1h, 1d; a whole number of a unit, from 1 ms to
                        365 d) instead of about 240 round bars; past 4,096 of them, the bars
                        widen and the summary says so
  --top N               keys to list in the summary's top denials (default 10)
  --sweep Q1,Q2,...     also decide the trace under each of these quotas (the default quota of
                        every key in turn; --quotas rules still apply to the keys they match),
                        in the same pass, and compare them in the summary: requests denied,
                        distinct keys denied, the most denied keys (at most 32 quotas)
  --keys-out FILE       a CSV line per key: key,requests,denied,first_denied_ns,last_denied_ns
                        (the earliest and latest denials), peak_per_second (the most requests in
                        one UTC second, the trace read in order), the most denied first; at most 5,000,000 keys (the summary
                        says how many more there were)
  --sweep-out FILE      the comparison as CSV: quota,requests,denied,denied_fraction,
                        keys_denied,keys_denied_exact,most_denied (key=count;...)
  --report FILE         one self-contained HTML page (nothing fetched): the summary, the plot,
                        the keys (the 2,000 most denied, sortable by any column; #sort=keys:1:desc
                        in its address sorts as it opens), the --sweep comparison and, with
                        --config, a section per rule with its plot
  --quiet               no progress bar (it is drawn only when stderr is a terminal)

The decisions are a pure function of the trace and the policy: the same input gives
byte-identical output (with --time server, they depend on when Redis decides). An output that is
the same file as an input is refused. Exit status: 0 done, 1 bad flags or files (a trace that
cannot be read, at any line) or Redis failing to decide, 2 a malformed trace line or header (a
header is never skipped).
)";

// Writes CSV quickly: one buffer, numbers through to_chars.
class CsvWriter {
 public:
  explicit CsvWriter(std::FILE* file) : file_(file) { buffer_.reserve(kFlushAt + 4096); }
  ~CsvWriter() { flush(); }

  void text(std::string_view s) { buffer_.append(s); }
  void key(std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
      buffer_.append(s);
      return;
    }
    buffer_ += '"';
    for (const char c : s) {
      buffer_ += c;
      if (c == '"') buffer_ += '"';
    }
    buffer_ += '"';
  }
  template <typename T>
  void number(T value) {
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    buffer_.append(digits, result.ptr);
  }
  void end_line() {
    buffer_ += '\n';
    if (buffer_.size() >= kFlushAt) flush();
  }
  // Writes what is buffered; returns false on a write error.
  bool flush() {
    if (file_ == nullptr || buffer_.empty()) return true;
    const bool ok = std::fwrite(buffer_.data(), 1, buffer_.size(), file_) == buffer_.size();
    buffer_.clear();
    return ok && std::fflush(file_) == 0;
  }

 private:
  static constexpr std::size_t kFlushAt = 1 << 20;
  std::FILE* file_;
  std::string buffer_;
};

std::string utc(Instant t) {
  const std::int64_t ns = t.time_since_epoch().count();
  if (ns < 978'307'200'000'000'000LL) {  // Before 2001: not a date, a plain count, exact.
    const std::uint64_t magnitude =
        ns < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(ns) : static_cast<std::uint64_t>(ns);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%llu.%09llu s", ns < 0 ? "-" : "",
                  static_cast<unsigned long long>(magnitude / 1'000'000'000),
                  static_cast<unsigned long long>(magnitude % 1'000'000'000));
    return buf;
  }
  const std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// The progress bar: on stderr, only when it is a terminal.
class Progress {
 public:
  Progress(bool enabled, std::FILE* input) : enabled_(enabled) {
    struct stat st {};
    if (enabled_ && ::fstat(::fileno(input), &st) == 0 && S_ISREG(st.st_mode)) {
      total_ = static_cast<std::uint64_t>(st.st_size);
    }
  }
  void update(std::uint64_t lines, std::uint64_t bytes) {
    if (!enabled_) return;
    if (total_ > 0) {
      const double done = static_cast<double>(bytes) / static_cast<double>(total_);
      const int filled = static_cast<int>(done * 30);
      std::fprintf(stderr, "\rreplay [%.*s%*s] %3.0f%%  %s lines", filled,
                   "##############################", 30 - filled, "", done * 100,
                   with_commas(lines).c_str());
    } else {
      std::fprintf(stderr, "\rreplay: %s lines", with_commas(lines).c_str());
    }
    shown_ = true;
  }
  void clear() {
    if (shown_) std::fprintf(stderr, "\r%*s\r", 70, "");
  }

 private:
  bool enabled_;
  std::uint64_t total_ = 0;
  bool shown_ = false;
};

// What the flags ask for.
struct ReplayOptions {
  std::string trace_path;  // A file, or "-".
  std::string trace_name;  // For messages: the path, or "stdin".
  replay::Policy policy;
  replay::TraceOptions trace;  // The format, key field and filters.
  bool skip_bad_lines = false;
  std::uint64_t top = 10;
  std::string out_name = "-";  // A file, "-" or "none".
  bool out_held_back = false;  // No --out, and standard output is a terminal: none, said so.
  std::optional<std::string> quotas_path;
  std::optional<std::string> plot_path;
  std::optional<std::string> plot_key;
  bool quiet = false;
  std::optional<std::string> redis_url;
  bool server_time = false;
  std::string redis_prefix;
  std::vector<Quota> sweep;  // --sweep: each a default quota to compare.
  std::optional<std::string> sweep_out;
  std::optional<Instant> plot_from, plot_to;  // --from, --to.
  std::optional<std::string> keys_out;        // --keys-out.
  std::optional<Nanos> bar;                   // --bar.
  std::optional<std::string> report;          // --report.
#ifdef FLOODGATE_CLI_HAS_SERVER
  // --config, --domain, --descriptor: the requests decided by the service under a configuration.
  std::optional<std::string> config_path;
  std::shared_ptr<const server::Config> config;
  std::string domain;
  std::vector<server::DescriptorTemplate> descriptors;
#endif
  bool config_mode = false;
};

// The most bars --bar may draw over --from and --to.
constexpr std::int64_t kMaxBars = 10'000;

// Returns `text` as a duration for --bar: a whole number and a unit (ms, s, m or min, h, d), from
// 1 ms to 365 days; or an error quoting it.
Result<Nanos> parse_bar(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  const std::string_view unit = text.substr(digits);
  std::int64_t scale = 0;
  for (const auto& [name, ns] :
       {std::pair{"ms", std::int64_t{1'000'000}}, std::pair{"s", std::int64_t{1'000'000'000}},
        std::pair{"m", std::int64_t{60'000'000'000}},
        std::pair{"min", std::int64_t{60'000'000'000}},
        std::pair{"h", std::int64_t{3'600'000'000'000}},
        std::pair{"d", std::int64_t{86'400'000'000'000}}}) {
    if (unit == name) scale = ns;
  }
  constexpr std::uint64_t kMaxNs = 365ULL * 86'400'000'000'000;
  if (digits == 0 || ec != std::errc() || end != text.data() + digits || scale == 0 || n == 0 ||
      n > kMaxNs / static_cast<std::uint64_t>(scale)) {
    return Error("\"" + std::string(text) +
                 "\" is not a duration from 1 ms to 365 d (a whole number and ms, s, m, h or d)");
  }
  return Nanos{static_cast<std::int64_t>(n) * scale};
}

// Returns `text` as an instant for --from and --to: RFC 3339 (2026-11-27T13:00:00Z, decimals
// and an offset allowed) or seconds since the epoch; or an error quoting it.
Result<Instant> parse_plot_time(std::string_view text) {
  const auto bad = [&] {
    return Error("\"" + std::string(text) +
                 "\" is not a time like 2026-11-27T13:00:00Z (UTC without a zone; +02:00 for an "
                 "offset), nor seconds since the epoch");
  };
  if (text.find('-', 1) == std::string_view::npos) {
    Result<Instant> seconds = replay::parse_time_seconds(text);
    if (!seconds) return bad();
    return *seconds;
  }
  Result<Instant> time = replay::parse_rfc3339(text);
  if (!time) return bad();
  return *time;
}

// The most quotas one --sweep may compare.
constexpr std::size_t kMaxSweep = 32;

// Reads the flags, or returns an error naming the flag and its value.
Result<ReplayOptions> parse_options(const std::vector<std::string>& args) {
  Result<Flags> parsed = Flags::parse(
      "replay", args,
      {"quota",      "algorithm",  "quotas",    "max-keys", "format", "key-field", "on-error",
       "out",        "plot",       "plot-key",  "top",      "redis",  "time",      "redis-prefix",
       "sweep",      "sweep-out",  "from",      "to",       "bar",    "keys-out",  "log-format",
       "cost-field", "time-field", "time-unit", "config",   "domain", "report"},
      {"quiet"}, {"include", "exclude", "descriptor"});
  if (!parsed) return parsed.error();
  const Flags& flags = *parsed;
  if (flags.positional().size() != 1) {
    return Error(flags.positional().empty()
                     ? "no trace given (a file, or - for standard input; see --help)"
                     : "one trace at a time (got " + std::to_string(flags.positional().size()) +
                           " arguments)");
  }
  ReplayOptions o;
  o.trace_path = flags.positional()[0];
  o.trace_name = o.trace_path == "-" ? "stdin" : o.trace_path;
  Result<Quota> quota = Quota::parse(flags.get_or("quota", "10/s"));
  if (!quota) return Error("flag --quota: " + quota.error().message());
  o.policy.quota = *quota;
  Result<Algorithm> algorithm = parse_algorithm(flags.get_or("algorithm", "gcra"));
  if (!algorithm) return Error("flag --algorithm: " + algorithm.error().message());
  o.policy.algorithm = *algorithm;
  o.quotas_path = flags.get("quotas");
  if (const auto& path = o.quotas_path) {
    Result<replay::KeyQuotas> rules = replay::KeyQuotas::load(*path);
    if (!rules) return rules.error();
    o.policy.key_quotas = *rules;
  }
  Result<std::uint64_t> max_keys = flags.get_uint("max-keys", 1'000'000, 1, std::uint64_t{1} << 32);
  if (!max_keys) return max_keys.error();
  o.policy.max_keys = *max_keys;
  Result<replay::TraceFormat> format = replay::parse_trace_format(flags.get_or("format", "auto"));
  if (!format) return Error("flag --format: " + format.error().message());
  o.trace.format = *format;
  if (const std::optional<std::string> log_format = flags.get("log-format")) {
    if (o.trace.format == replay::TraceFormat::Csv || o.trace.format == replay::TraceFormat::Json) {
      return Error("flag --log-format: for access logs, not --format " + *flags.get("format"));
    }
    // Read now, so that a format that cannot be read is a flag's error, not line 1's.
    Result<std::unique_ptr<replay::LineFormat>> made = replay::make_pattern_format(*log_format);
    if (!made) return Error("flag --log-format: " + made.error().message());
    o.trace.log_format = *log_format;
  }
  o.trace.key_field = flags.get_or("key-field", "");
  o.trace.cost_field = flags.get_or("cost-field", "");
  o.trace.time_field = flags.get_or("time-field", "");
  Result<replay::TimeUnit> unit = replay::parse_time_unit(flags.get_or("time-unit", "s"));
  if (!unit) return Error("flag --time-unit: " + unit.error().message());
  o.trace.time_unit = *unit;
  for (const char* only : {"time-field", "time-unit"}) {
    if (flags.get(only) && o.trace.format != replay::TraceFormat::Json &&
        o.trace.format != replay::TraceFormat::Auto) {
      return Error("flag --" + std::string(only) + ": for JSON lines only (--format json)");
    }
  }
  for (const auto& [flag, into] :
       {std::pair{"include", &o.trace.include}, std::pair{"exclude", &o.trace.exclude}}) {
    for (const std::string& text : flags.get_all(flag)) {
      Result<replay::LineFilter> filter = replay::LineFilter::parse(text);
      if (!filter) return Error("flag --" + std::string(flag) + ": " + filter.error().message());
      into->push_back(std::move(*filter));
    }
  }
  const std::string on_error = flags.get_or("on-error", "stop");
  if (on_error != "stop" && on_error != "skip") {
    return Error("flag --on-error: \"" + on_error + "\" must be stop or skip");
  }
  o.skip_bad_lines = on_error == "skip";
  Result<std::uint64_t> top = flags.get_uint("top", 10, 0, 1000);
  if (!top) return top.error();
  o.top = *top;
  // Decisions go to standard output unless it is a terminal, where a trace's worth of lines
  // would scroll the summary away: there, only when asked (--out -).
  o.out_name = flags.get_or("out", "-");
  o.out_held_back = !flags.get("out") && ::isatty(STDOUT_FILENO) == 1;
  o.plot_path = flags.get("plot");
  o.report = flags.get("report");
  o.plot_key = flags.get("plot-key");
  const bool drawn = o.plot_path || o.report;
  if (o.plot_key && !drawn) return Error("flag --plot-key: needs --plot FILE or --report FILE");
  o.quiet = flags.has("quiet");
  o.redis_url = flags.get("redis");
  for (const char* only : {"time", "redis-prefix"}) {
    if (flags.get(only) && !o.redis_url) {
      return Error("flag --" + std::string(only) + ": needs --redis URL");
    }
  }
  const std::string time = flags.get_or("time", "trace");
  if (time != "trace" && time != "server") {
    return Error("flag --time: \"" + time + "\" must be trace or server");
  }
  o.server_time = time == "server";
  o.redis_prefix = flags.get_or("redis-prefix", "");
  if (const std::optional<std::string> sweep = flags.get("sweep")) {
    if (o.redis_url) return Error("flag --sweep: decides in this process only, not with --redis");
    std::string_view rest = *sweep;
    while (!rest.empty() || o.sweep.empty()) {
      const std::size_t comma = rest.find(',');
      std::string_view one = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
      while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
      Result<Quota> q = Quota::parse(one);
      if (!q) return Error("flag --sweep: " + q.error().message());
      if (o.sweep.size() == kMaxSweep) {
        return Error("flag --sweep: more than " + std::to_string(kMaxSweep) + " quotas");
      }
      o.sweep.push_back(*q);
    }
  }
  for (const auto& [flag, into] : {std::pair{"from", &o.plot_from}, std::pair{"to", &o.plot_to}}) {
    if (const std::optional<std::string> text = flags.get(flag)) {
      if (!drawn)
        return Error("flag --" + std::string(flag) + ": needs --plot FILE or --report FILE");
      Result<Instant> t = parse_plot_time(*text);
      if (!t) return Error("flag --" + std::string(flag) + ": " + t.error().message());
      *into = *t;
    }
  }
  if (o.plot_from.has_value() != o.plot_to.has_value()) {
    return Error(std::string("flag --") + (o.plot_from ? "from" : "to") + ": needs --" +
                 (o.plot_from ? "to" : "from") + " as well");
  }
  if (o.plot_from && *o.plot_from >= *o.plot_to) {
    return Error("flags --from and --to: --from \"" + *flags.get("from") +
                 "\" is not before --to \"" + *flags.get("to") + "\"");
  }
  if (const std::optional<std::string> text = flags.get("bar")) {
    if (!drawn) return Error("flag --bar: needs --plot FILE or --report FILE");
    Result<Nanos> bar = parse_bar(*text);
    if (!bar) return Error("flag --bar: " + bar.error().message());
    o.bar = *bar;
    if (o.plot_from && (*o.plot_to - *o.plot_from) / *o.bar > kMaxBars) {
      return Error("flag --bar: " + *text + " from --from to --to is more than " +
                   std::to_string(kMaxBars) + " bars");
    }
  }
  if (const std::optional<std::string> config = flags.get("config")) {
#ifdef FLOODGATE_CLI_HAS_SERVER
    for (const char* other : {"quota", "algorithm", "quotas", "redis", "sweep", "max-keys"}) {
      if (flags.get(other)) {
        return Error("flag --" + std::string(other) +
                     ": not with --config (the configuration's rules decide)");
      }
    }
    const std::optional<std::string> domain = flags.get("domain");
    if (!domain) return Error("flag --config: needs --domain D, the domain the requests name");
    const std::vector<std::string> descriptors = flags.get_all("descriptor");
    if (descriptors.empty()) {
      return Error("flag --config: needs at least one --descriptor, e.g. 'remote_address=$client'");
    }
    for (const std::string& text : descriptors) {
      Result<server::DescriptorTemplate> d = server::DescriptorTemplate::parse(text);
      if (!d) return Error("flag --descriptor: " + d.error().message());
      o.descriptors.push_back(std::move(*d));
    }
    Result<server::Config> loaded = server::Config::load(*config);
    if (!loaded) return Error("flag --config: " + loaded.error().message());
    o.config = std::make_shared<const server::Config>(std::move(*loaded));
    o.config_path = *config;
    o.domain = *domain;
    o.config_mode = true;
#else
    return Error(
        "flag --config: this floodgate was built without the service (install "
        "libyaml-dev: scripts/install-deps.sh)");
#endif
  } else {
    for (const char* only : {"domain", "descriptor"}) {
      if (flags.get(only) || !flags.get_all(only).empty()) {
        return Error("flag --" + std::string(only) + ": needs --config PATH");
      }
    }
  }
  o.sweep_out = flags.get("sweep-out");
  o.keys_out = flags.get("keys-out");
  if (o.sweep_out && o.sweep.empty()) return Error("flag --sweep-out: needs --sweep Q1,Q2,...");
  return o;
}

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

// The trace to read and the decisions' destination (null for "none"); standard streams are not
// owned.
struct Files {
  std::FILE* input = stdin;
  std::FILE* output = stdout;
  File input_owner{nullptr, &std::fclose};
  File output_owner{nullptr, &std::fclose};
};

// Identifies a file: its device and inode.
struct FileId {
  dev_t device;
  ino_t inode;
  friend bool operator==(const FileId&, const FileId&) = default;
};

// Returns the identity of the regular file at `path`, or nothing if there is none (yet) or it is
// not a regular file (a terminal or a pipe can be both read and written without loss).
std::optional<FileId> file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

// Returns an error if an output the options name is the same file as an input or as the other
// output: opening it for writing would destroy what is still to be read (or written).
Result<void> check_outputs_are_not_inputs(const ReplayOptions& o) {
  struct Named {
    std::string what;
    std::string path;
  };
  std::vector<Named> inputs;
  // Standard streams by their /dev names: `replay - < t.csv >> t.csv` would read its own output.
  inputs.push_back({"the trace", o.trace_path == "-" ? "/dev/stdin" : o.trace_path});
  if (o.quotas_path) inputs.push_back({"the --quotas file", *o.quotas_path});
  std::vector<Named> outputs;
  if (o.out_name != "none" && !o.out_held_back) {
    outputs.push_back({"--out", o.out_name == "-" ? "/dev/stdout" : o.out_name});
  }
  if (o.plot_path) outputs.push_back({"--plot", *o.plot_path});
  if (o.report) outputs.push_back({"--report", *o.report});
  if (o.keys_out) outputs.push_back({"--keys-out", *o.keys_out});
  if (o.sweep_out) outputs.push_back({"--sweep-out", *o.sweep_out});
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::optional<FileId> out = file_id(outputs[i].path);
    if (!out) continue;
    std::vector<Named> others = inputs;
    for (std::size_t j = 0; j < i; ++j) others.push_back({outputs[j].what, outputs[j].path});
    for (const Named& other : others) {
      if (file_id(other.path) == out) {
        const std::string output =
            outputs[i].path == "/dev/stdout"
                ? "standard output"
                : "flag " + outputs[i].what + ": \"" + outputs[i].path + "\"";
        return Error(output + " is " + other.what + " (\"" + other.path +
                     "\"); writing it would destroy it: name another file");
      }
    }
  }
  return {};
}

// Opens the files the options name, or returns an error naming the file and why.
Result<Files> open_files(const ReplayOptions& o) {
  Files f;
  if (o.trace_path != "-") {
    f.input = std::fopen(o.trace_path.c_str(), "rb");
    if (f.input == nullptr) {
      return Error("trace \"" + o.trace_path + "\": cannot open: " + std::strerror(errno));
    }
    f.input_owner.reset(f.input);
  }
  if (Result<void> distinct = check_outputs_are_not_inputs(o); !distinct) return distinct.error();
  if (o.out_name == "none" || o.out_held_back) {
    f.output = nullptr;
  } else if (o.out_name != "-") {
    f.output = std::fopen(o.out_name.c_str(), "wb");
    if (f.output == nullptr) {
      return Error("flag --out: \"" + o.out_name + "\": cannot create: " + std::strerror(errno));
    }
    f.output_owner.reset(f.output);
  }
  // Again, now that --out exists: --plot may name the same file.
  if (Result<void> distinct = check_outputs_are_not_inputs(o); !distinct) return distinct.error();
  return f;
}

// A decision made somewhere else than the in-process replayer, and the instant it was made at.
struct Decided {
  Decision decision;
  Instant at;
  std::string_view descriptors = {};  // With --config: each descriptor's status ("ok;over;-").
};
using Decide = std::function<Result<Decided>(const replay::Request&)>;

// What the decision loop counted.
struct Tally {
  std::uint64_t requests = 0;
  std::uint64_t admitted = 0;
  std::uint64_t never = 0;  // ExceedsBurst: can never pass.
  std::uint64_t skipped = 0;
  std::uint64_t filtered = 0;  // Lines --include and --exclude dropped.
  std::optional<Instant> first, last;
  replay::TopDenials denials;
  replay::DistinctKeys denied_keys;
  replay::TimeSeries series;  // Only when plotting.
  // Per key, for --keys-out: at most kMaxKeysOut of them; the requests of keys past it are
  // counted in `keys_left_out`.
  struct KeyRecord {
    std::uint64_t requests = 0;
    std::uint64_t denied = 0;
    std::int64_t first_denied = 0;  // The earliest and latest denials, when `denied` > 0.
    std::int64_t last_denied = 0;
    std::int64_t second = 0;  // The UTC second of the key's latest request, and its requests.
    std::uint64_t in_second = 0;
    std::uint64_t peak = 0;
  };
  std::unordered_map<std::string, KeyRecord, internal::StringHash, std::equal_to<>> keys;
  std::uint64_t keys_left_out = 0;
};

constexpr std::size_t kMaxKeysOut = 5'000'000;

// One quota of --sweep: the trace decided again under it.
struct SweepRun {
  Quota quota;
  replay::Replayer replayer;
  std::uint64_t denied = 0;
  replay::DistinctKeys denied_keys;
  replay::TopDenials denials;
};

// Writes one decision, made at `at`, as a CSV line.
void write_decision(CsvWriter& csv, const replay::Request& request, const Decision& decision,
                    Instant at, bool config_mode, std::string_view descriptors) {
  csv.number(at.time_since_epoch().count());
  csv.text(",");
  csv.key(request.key);
  csv.text(",");
  csv.number(request.cost);
  csv.text(decision.allowed() ? ",true," : ",false,");
  csv.number(decision.remaining());
  csv.text(",");
  csv.number(decision.retry_after().count());
  if (config_mode) {
    csv.text(",");
    csv.text(descriptors);
  }
  csv.end_line();
}

// Decides every request `reader` yields, in process or, when `elsewhere` is not null, by it (in
// Redis, or by the service under --config), writing each decision and counting into `tally`.
// Returns kExitOk; kExitBadInput if it stopped at a malformed line or header; kExitUsage if the
// trace could not be read or the decider failed.
int decide_all(const ReplayOptions& o, replay::TraceReader& reader, replay::Replayer& replayer,
               Decide* elsewhere, CsvWriter* csv, Progress& progress, Tally& tally,
               std::vector<SweepRun>& sweep) {
  while (true) {
    Result<std::optional<replay::Request>> next = reader.next();
    if (!next) {
      progress.clear();
      const std::string& message = next.error().message();
      switch (reader.stopped()) {
        case replay::TraceReader::Stop::ReadError:
          // Not a malformed line: the trace cannot be read on, whatever --on-error says.
          std::fprintf(stderr, "floodgate replay: %s\n", message.c_str());
          std::fprintf(stderr,
                       "floodgate replay: stopped; the %s decisions before it are written\n",
                       with_commas(tally.requests).c_str());
          return kExitUsage;
        case replay::TraceReader::Stop::BadHeader:
          std::fprintf(stderr, "floodgate replay: %s\n", message.c_str());
          std::fprintf(stderr,
                       "floodgate replay: stopped; without a usable header no line of the trace "
                       "can be read\n");
          return kExitBadInput;
        case replay::TraceReader::Stop::No:
          break;
      }
      if (!o.skip_bad_lines) {
        std::fprintf(stderr, "floodgate replay: %s\n", message.c_str());
        std::fprintf(stderr,
                     "floodgate replay: stopped; the %s decisions before it are written "
                     "(--on-error=skip goes on past bad lines)\n",
                     with_commas(tally.requests).c_str());
        return kExitBadInput;
      }
      if (++tally.skipped <= 10) {
        std::fprintf(stderr, "floodgate replay: skipped %s\n", message.c_str());
      }
      continue;
    }
    if (!next->has_value()) return kExitOk;
    const replay::Request& request = **next;
    Result<Decided> decided =
        elsewhere != nullptr ? (*elsewhere)(request)
                             : Result<Decided>(Decided{replayer.decide(request), request.time, {}});
    if (!decided) {
      progress.clear();
      std::fprintf(stderr, "floodgate replay: %s, at %s line %llu\n",
                   decided.error().message().c_str(), o.trace_name.c_str(),
                   static_cast<unsigned long long>(reader.line_number()));
      std::fprintf(stderr, "floodgate replay: stopped; the %s decisions before it are written\n",
                   with_commas(tally.requests).c_str());
      return kExitUsage;
    }
    const Decision& decision = decided->decision;
    const Instant at = decided->at;
    ++tally.requests;
    tally.admitted += decision.allowed() ? 1u : 0u;
    tally.never += decision.verdict() == Verdict::ExceedsBurst ? 1u : 0u;
    if (!decision.allowed()) {
      tally.denials.add(request.key);
      tally.denied_keys.add(request.key);
    }
    if (o.keys_out || o.report) {
      auto found = tally.keys.find(request.key);
      if (found == tally.keys.end() && tally.keys.size() < kMaxKeysOut) {
        found = tally.keys.emplace(std::string(request.key), Tally::KeyRecord{}).first;
      }
      if (found == tally.keys.end()) {
        ++tally.keys_left_out;
      } else {
        Tally::KeyRecord& k = found->second;
        const std::int64_t ns = at.time_since_epoch().count();
        const std::int64_t second = ns / 1'000'000'000 - (ns % 1'000'000'000 < 0 ? 1 : 0);
        if (k.requests == 0 || second != k.second) {
          k.second = second;
          k.in_second = 0;
        }
        k.peak = std::max(k.peak, ++k.in_second);
        ++k.requests;
        if (!decision.allowed()) {
          k.first_denied = k.denied == 0 ? ns : std::min(k.first_denied, ns);
          k.last_denied = k.denied == 0 ? ns : std::max(k.last_denied, ns);
          ++k.denied;
        }
      }
    }
    for (SweepRun& run : sweep) {
      if (run.replayer.decide(request).allowed()) continue;
      ++run.denied;
      run.denied_keys.add(request.key);
      run.denials.add(request.key);
    }
    if (!tally.first || at < *tally.first) tally.first = at;
    if (!tally.last || at > *tally.last) tally.last = at;
    if ((o.plot_path || o.report) && (!o.plot_key || request.key == *o.plot_key) &&
        (!o.plot_from || (at >= *o.plot_from && at < *o.plot_to))) {
      tally.series.add(at, decision.allowed());
    }
    if (csv != nullptr) {
      write_decision(*csv, request, decision, at, o.config_mode, decided->descriptors);
    }
    if ((tally.requests & 0xffff) == 0) progress.update(reader.line_number(), reader.bytes_read());
  }
}

// Prints the summary on stderr; `redis_line` says where the keys were, if in Redis.
void print_summary(const ReplayOptions& o, replay::Replayer& replayer, const Tally& tally,
                   const std::optional<std::string>& redis_line) {
  const replay::ReplayStats stats = replayer.stats();
  std::string rules;
  if (!o.policy.key_quotas.rules().empty()) {
    rules = ", " + std::to_string(o.policy.key_quotas.rules().size()) + " per-key rule(s)";
  }
  if (o.config_mode) {
#ifdef FLOODGATE_CLI_HAS_SERVER
    std::fprintf(stderr, "floodgate replay %s: configuration %s, domain %s, %zu descriptor(s)\n",
                 o.trace_name.c_str(), o.config_path->c_str(), o.domain.c_str(),
                 o.descriptors.size());
#endif
  } else {
    std::fprintf(stderr, "floodgate replay %s: %s, %s per key%s\n", o.trace_name.c_str(),
                 std::string(to_string(o.policy.algorithm)).c_str(),
                 o.policy.quota.to_string().c_str(), rules.c_str());
  }
  std::fprintf(stderr, "  requests  %14s", with_commas(tally.requests).c_str());
  if (tally.first) {
    std::fprintf(stderr, "   from %s to %s", utc(*tally.first).c_str(), utc(*tally.last).c_str());
  }
  const std::uint64_t denied = tally.requests - tally.admitted;
  std::fprintf(stderr, "\n  admitted  %14s   %s\n", with_commas(tally.admitted).c_str(),
               percent(tally.admitted, tally.requests).c_str());
  std::fprintf(stderr, "  denied    %14s   %s", with_commas(denied).c_str(),
               percent(denied, tally.requests).c_str());
  if (tally.never > 0) {
    std::fprintf(stderr, " (%s can never pass: cost above the burst)",
                 with_commas(tally.never).c_str());
  }
  std::fprintf(stderr, "\n  keys denied %12s   distinct keys with a request denied%s\n",
               with_commas(tally.denied_keys.count()).c_str(),
               tally.denied_keys.exact() ? "" : " (estimated: within about 2%)");
  if (tally.skipped > 0) {
    std::fprintf(stderr, "  skipped   %14s   malformed lines\n",
                 with_commas(tally.skipped).c_str());
  }
  if (tally.filtered > 0) {
    std::fprintf(stderr, "  filtered  %14s   lines that --include or --exclude left out\n",
                 with_commas(tally.filtered).c_str());
  }
  if (redis_line) {
    std::fprintf(stderr, "  %s\n", redis_line->c_str());
  } else if (!o.config_mode) {  // With --config the service keeps the state: rules follow.
    // A key keeps state until its bucket is full again; it need not be denying anyone.
    std::fprintf(stderr, "  keys not yet refilled at the end: %s",
                 with_commas(replayer.sweep()).c_str());
    if (stats.overflow_decisions > 0) {
      std::fprintf(stderr, "; %s requests found the limiter full (raise --max-keys)",
                   with_commas(stats.overflow_decisions).c_str());
    }
    std::fprintf(stderr, "\n");
  }
  if (o.out_held_back) {
    std::fprintf(
        stderr,
        "  decisions: not written to the terminal (--out FILE writes them, --out - here)\n");
  }
  const auto top = tally.denials.top(o.top);
  if (top.empty()) return;
  const std::uint64_t bound = tally.denials.error_bound();
  std::fprintf(
      stderr, "  most denied keys%s:\n",
      bound == 0 ? ""
                 : (" (approximate: each count may be high by up to " + std::to_string(bound) + ")")
                       .c_str());
  for (const auto& [key, count] : top) {
    if (o.config_mode) {
      std::fprintf(stderr, "    %12s  %s\n", with_commas(count).c_str(),
                   replay::printable_key(key).c_str());
    } else {
      std::fprintf(stderr, "    %12s  %-40s %s\n", with_commas(count).c_str(),
                   replay::printable_key(key).c_str(), replayer.quota_of(key).to_string().c_str());
    }
  }
}

// Writes `text` to the file `path`; returns false, having said why on stderr (naming it as
// `what`), if it cannot be written whole.
bool write_file(const std::string& path, const std::string& text, const char* what) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  bool written = file != nullptr && std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (file != nullptr) written = std::fclose(file) == 0 && written;
  if (!written) {
    std::fprintf(stderr, "floodgate replay: writing %s \"%s\" failed: %s\n", what, path.c_str(),
                 std::strerror(errno));
  }
  return written;
}

// Writes --keys-out: a line per key, the most denied first; returns false, having said why, if
// the file cannot be written.
using KeyEntry = std::pair<const std::string, Tally::KeyRecord>;

// Returns the keys counted, the most denied first (then the most requests, then by name).
std::vector<const KeyEntry*> sorted_keys(const Tally& tally) {
  std::vector<const KeyEntry*> order;
  order.reserve(tally.keys.size());
  for (const auto& entry : tally.keys) order.push_back(&entry);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    if (a->second.denied != b->second.denied) return a->second.denied > b->second.denied;
    if (a->second.requests != b->second.requests) return a->second.requests > b->second.requests;
    return a->first < b->first;
  });
  return order;
}

bool write_keys(const ReplayOptions& o, const Tally& tally) {
  if (!o.keys_out) return true;
  const std::vector<const KeyEntry*> order = sorted_keys(tally);
  std::FILE* file = std::fopen(o.keys_out->c_str(), "wb");
  bool written = file != nullptr;
  if (written) {
    CsvWriter csv(file);
    csv.text("key,requests,denied,first_denied_ns,last_denied_ns,peak_per_second\n");
    for (const auto* entry : order) {
      const Tally::KeyRecord& k = entry->second;
      csv.key(entry->first);
      csv.text(",");
      csv.number(k.requests);
      csv.text(",");
      csv.number(k.denied);
      csv.text(",");
      if (k.denied > 0) csv.number(k.first_denied);
      csv.text(",");
      if (k.denied > 0) csv.number(k.last_denied);
      csv.text(",");
      csv.number(k.peak);
      csv.end_line();
    }
    written = csv.flush();
    written = std::fclose(file) == 0 && written;
  }
  if (!written) {
    std::fprintf(stderr, "floodgate replay: writing --keys-out \"%s\" failed: %s\n",
                 o.keys_out->c_str(), std::strerror(errno));
    return false;
  }
  std::fprintf(stderr, "  keys: %s (%s keys%s)\n", o.keys_out->c_str(),
               with_commas(tally.keys.size()).c_str(),
               tally.keys_left_out == 0
                   ? ""
                   : ("; " + with_commas(tally.keys_left_out) + " requests of keys past " +
                      with_commas(kMaxKeysOut) + " left out")
                         .c_str());
  return true;
}

// Returns the `n` most denied keys of `run` as "key=count;key=count".
std::string most_denied(const SweepRun& run, std::size_t n) {
  std::string out;
  for (const auto& [key, count] : run.denials.top(n)) {
    out += (out.empty() ? "" : ";") + replay::printable_key(key) + "=" + std::to_string(count);
  }
  return out;
}

// Prints the --sweep comparison on stderr, and writes it to --sweep-out; returns false, having
// said why, if the file cannot be written.
bool report_sweep(const ReplayOptions& o, const Tally& tally, const std::vector<SweepRun>& sweep) {
  if (sweep.empty()) return true;
  std::fprintf(stderr,
               "  sweep: the same %s requests under each quota (--quotas rules still apply)\n"
               "    %-22s %14s %8s %13s   most denied keys\n",
               with_commas(tally.requests).c_str(), "quota", "denied", "", "keys denied");
  for (const SweepRun& run : sweep) {
    std::fprintf(stderr, "    %-22s %14s %8s %13s%s  %s\n", run.quota.to_string().c_str(),
                 with_commas(run.denied).c_str(), percent(run.denied, tally.requests).c_str(),
                 with_commas(run.denied_keys.count()).c_str(), run.denied_keys.exact() ? " " : "~",
                 most_denied(run, 3).c_str());
  }
  if (!o.sweep_out) return true;
  std::string csv =
      "quota,requests,denied,denied_fraction,keys_denied,keys_denied_exact,most_denied\n";
  const auto quoted = [](const std::string& field) {
    std::string q = "\"";
    for (const char c : field) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  for (const SweepRun& run : sweep) {
    char fraction[32];
    std::snprintf(fraction, sizeof fraction, "%.6f",
                  tally.requests == 0
                      ? 0.0
                      : static_cast<double>(run.denied) / static_cast<double>(tally.requests));
    csv += quoted(run.quota.to_string()) + "," + std::to_string(tally.requests) + "," +
           std::to_string(run.denied) + "," + fraction + "," +
           std::to_string(run.denied_keys.count()) + "," +
           (run.denied_keys.exact() ? "true" : "false") + "," + quoted(most_denied(run, o.top)) +
           "\n";
  }
  if (!write_file(*o.sweep_out, csv, "--sweep-out")) return false;
  std::fprintf(stderr, "  sweep: %s\n", o.sweep_out->c_str());
  return true;
}

// Returns the plot of every request (or of --plot-key's).
std::string plot_svg(const ReplayOptions& o, replay::Replayer& replayer,
                     const replay::TimeSeries& series) {
  replay::PlotLabels labels;
  // A key's plot has its quota as a line, and starts a bar before its first request. The quota
  // limits each key, not the sum the all-keys plot draws: there it is named, not drawn.
  labels.title = "floodgate replay: " + std::string(to_string(o.policy.algorithm)) + ", " +
                 (o.plot_key ? "key " + *o.plot_key
                             : "all keys (each key's quota: " + o.policy.quota.to_string() + ")");
  if (o.config_mode) {
    labels.title = "floodgate replay: domain " + o.domain + ", " +
                   (o.plot_key ? "key " + *o.plot_key : "every request") +
                   " (a request is denied when a rule it meets is over its limit)";
  }
  if (o.plot_key && !o.config_mode) {
    labels.quota = replayer.quota_of(*o.plot_key);
    labels.quota_label = "quota " + labels.quota->to_string();
    labels.lead_bar = true;
  }
  if (o.plot_from) labels.window = std::pair{*o.plot_from, *o.plot_to};
  labels.bar_is_bucket = o.bar.has_value();
  return replay::render_svg(series, labels);
}

// Draws the plot the options ask for; returns false, having said why, if it cannot be written.
bool write_plot(const ReplayOptions& o, replay::Replayer& replayer,
                const replay::TimeSeries& series) {
  if (!o.plot_path) return true;
  if (!write_file(*o.plot_path, plot_svg(o, replayer, series), "the plot")) return false;
  std::string note = series.empty() ? " (no requests to draw)" : "";
  if (o.bar && series.width() != *o.bar) {
    note += " (bars of " + internal::format_duration(series.width()) + ": --bar " +
            internal::format_duration(*o.bar) + " would be more than " +
            std::to_string(replay::TimeSeries::kMaxBuckets) +
            " bars over these requests; --from and --to narrow the time)";
  }
  std::fprintf(stderr, "  plot: %s%s\n", o.plot_path->c_str(), note.c_str());
  return true;
}

#ifdef FLOODGATE_CLI_HAS_SERVER
// Returns a rule's limit as text: "10/s", "100/min burst 20 gcra", "unlimited".
std::string limit_text(const server::Descriptor& rule) {
  const server::RateLimit& limit = *rule.rate_limit;
  if (limit.unlimited) return "unlimited";
  const std::optional<Quota> quota = limit.quota();
  std::string text = quota ? quota->to_string() : "0 (always over)";
  if (limit.algorithm != Algorithm::EnvoyFixedWindow) {
    text += " " + std::string(to_string(limit.algorithm));
  }
  return text;
}

// Returns where the plot of rule `id` of `domain` goes, beside --plot: "plot.svg" ->
// "plot.<id less the domain>.svg", bytes other than letters, digits, '.', '-' and '_' written
// as '_'.
std::string rule_plot_path(const std::string& plot, const std::string& domain,
                           const std::string& id) {
  std::string safe;
  const std::string_view name = std::string_view(id).starts_with(domain + ".")
                                    ? std::string_view(id).substr(domain.size() + 1)
                                    : std::string_view(id);
  for (const char c : name) {
    safe += std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_'
                ? c
                : '_';
  }
  const std::size_t slash = plot.rfind('/');
  const std::size_t dot = plot.rfind('.');
  const bool has_extension =
      dot != std::string::npos && (slash == std::string::npos || dot > slash);
  return (has_extension ? plot.substr(0, dot) : plot) + "." + safe + ".svg";
}

// Returns the plot of one rule's hits.
std::string rule_svg(const ReplayOptions& o, const server::RuleReplay& rule) {
  replay::PlotLabels labels;
  labels.title = "floodgate replay: rule " + rule.rule->id +
                 " (each value's limit: " + limit_text(*rule.rule) + ")";
  if (o.plot_from) labels.window = std::pair{*o.plot_from, *o.plot_to};
  labels.bar_is_bucket = o.bar.has_value();
  return replay::render_svg(rule.series, labels);
}

// Returns each rule's section of the report.
std::vector<replay::Report::Rule> report_rules_of(const ReplayOptions& o,
                                                  const server::ServiceReplay& service) {
  std::vector<replay::Report::Rule> out;
  for (const server::RuleReplay* rule : service.rules()) {
    out.push_back({.id = rule->rule->id,
                   .limit = limit_text(*rule->rule),
                   .hits = rule->hits,
                   .over = rule->over,
                   .shadowed = rule->shadowed,
                   .most_limited = rule->limited.top(std::max<std::uint64_t>(o.top, 10)),
                   .svg = rule_svg(o, *rule)});
  }
  return out;
}

// Prints what each rule did on stderr, and draws a plot per rule beside --plot; returns false,
// having said why, if a plot cannot be written.
bool report_rules(const ReplayOptions& o, const server::ServiceReplay& service,
                  std::uint64_t requests) {
  const std::vector<const server::RuleReplay*> rules = service.rules();
  std::fprintf(
      stderr, "  rules that requests met (%zu of %zu in domain %s):\n", rules.size(),
      [&] {
        std::size_t n = 0;
        server::for_each_descriptor(
            o.config->domain(o.domain)->descriptors,
            [&](const server::Descriptor& r) { n += r.rate_limit ? 1u : 0u; });
        return n;
      }(),
      o.domain.c_str());
  int width = 4;
  for (const server::RuleReplay* rule : rules) {
    width = std::max(width, static_cast<int>(rule->rule->id.size()));
  }
  std::fprintf(stderr, "    %-*s %-22s %12s %12s %8s %10s\n", width, "rule", "limit", "hits",
               "over limit", "", "shadowed");
  for (const server::RuleReplay* rule : rules) {
    std::fprintf(stderr, "    %-*s %-22s %12s %12s %8s %10s\n", width, rule->rule->id.c_str(),
                 limit_text(*rule->rule).c_str(), with_commas(rule->hits).c_str(),
                 with_commas(rule->over).c_str(), percent(rule->over, rule->hits).c_str(),
                 with_commas(rule->shadowed).c_str());
    const auto top = rule->limited.top(std::min<std::uint64_t>(o.top, 5));
    for (const auto& [value, count] : top) {
      std::fprintf(stderr, "        %12s  %s\n", with_commas(count).c_str(),
                   replay::printable_key(value).c_str());
    }
  }
  if (service.empty_requests() > 0) {
    std::fprintf(stderr,
                 "  %s of %s requests sent no descriptor (every --descriptor named a field "
                 "the line lacked)\n",
                 with_commas(service.empty_requests()).c_str(), with_commas(requests).c_str());
  }
  if (!o.plot_path) return true;
  for (const server::RuleReplay* rule : rules) {
    const std::string path = rule_plot_path(*o.plot_path, o.domain, rule->rule->id);
    if (!write_file(path, rule_svg(o, *rule), "a rule's plot")) return false;
    std::fprintf(stderr, "  plot of %s: %s\n", rule->rule->id.c_str(), path.c_str());
  }
  return true;
}
#endif

// Writes --report; returns false, having said why, if it cannot be written.
bool write_report(const ReplayOptions& o, replay::Replayer& replayer, const Tally& tally,
                  const std::vector<SweepRun>& sweep, std::vector<replay::Report::Rule> rules) {
  if (!o.report) return true;
  replay::Report r;
  r.title = "floodgate replay " + o.trace_name;
  if (o.config_mode) {
#ifdef FLOODGATE_CLI_HAS_SERVER
    r.subtitle = "The configuration " + *o.config_path + ", domain " + o.domain + ", descriptors:";
    for (const server::DescriptorTemplate& d : o.descriptors) r.subtitle += " " + d.text();
#endif
  } else {
    r.subtitle =
        std::string(to_string(o.policy.algorithm)) + ", " + o.policy.quota.to_string() + " per key";
    if (!o.policy.key_quotas.rules().empty()) {
      r.subtitle += ", " + std::to_string(o.policy.key_quotas.rules().size()) +
                    " per-key rule(s) from " + *o.quotas_path;
    }
  }
  if (tally.first) {
    r.subtitle += "; requests from " + utc(*tally.first) + " to " + utc(*tally.last);
  }
  const std::uint64_t denied = tally.requests - tally.admitted;
  r.requests = tally.requests;
  r.summary = {
      {"requests", "requests", tally.requests, ""},
      {"admitted", "admitted", tally.admitted, percent(tally.admitted, tally.requests)},
      {"denied", "denied", denied, percent(denied, tally.requests)},
      {"keys_denied", "distinct keys denied", tally.denied_keys.count(),
       tally.denied_keys.exact() ? "" : "estimated: within about 2%"},
  };
  if (tally.never > 0) {
    r.summary.push_back({"never", "can never pass (cost above the burst)", tally.never, ""});
  }
  if (tally.skipped > 0) {
    r.summary.push_back({"skipped", "malformed lines skipped", tally.skipped, ""});
  }
  if (tally.filtered > 0) {
    r.summary.push_back({"filtered", "lines --include/--exclude left out", tally.filtered, ""});
  }
  r.svg = plot_svg(o, replayer, tally.series);
  r.keys_asked = true;
  r.keys_total = tally.keys.size();
  for (const KeyEntry* entry : sorted_keys(tally)) {
    if (r.keys.size() == replay::kReportMaxKeys) break;
    const Tally::KeyRecord& k = entry->second;
    r.keys.push_back({.key = entry->first,
                      .requests = k.requests,
                      .denied = k.denied,
                      .first_denied = k.first_denied,
                      .last_denied = k.last_denied,
                      .peak_per_second = k.peak});
  }
  for (const SweepRun& run : sweep) {
    r.sweep.push_back({.quota = run.quota.to_string(),
                       .denied = run.denied,
                       .keys_denied = run.denied_keys.count(),
                       .keys_exact = run.denied_keys.exact(),
                       .most_denied = most_denied(run, o.top)});
  }
  r.rules = std::move(rules);
  r.generator = std::string("floodgate ") + kVersion + " (commit " + kCommit + ")";
  if (!write_file(*o.report, replay::render_report(r), "--report")) return false;
  std::fprintf(stderr, "  report: %s\n", o.report->c_str());
  return true;
}

}  // namespace

int run_replay(const std::vector<std::string>& args) {
  if (print_help_if_asked(args, kHelp)) return kExitOk;
  const auto fail = [](const std::string& message) { return usage_error("replay", message); };
  Result<ReplayOptions> options = parse_options(args);
  if (!options) return fail(options.error().message());
  const ReplayOptions& o = *options;
  Result<replay::Replayer> replayer = replay::Replayer::create(o.policy);
  if (!replayer) return fail(replayer.error().message());
  // Decisions in Redis: a function, so that this file needs no Redis headers.
  Decide redis;
  std::optional<std::string> redis_line;
  std::function<std::string()> redis_summary;
  if (o.redis_url) {
#ifdef FLOODGATE_CLI_HAS_REDIS
    Result<std::unique_ptr<RedisReplay>> made =
        RedisReplay::create({*o.redis_url, o.server_time, o.redis_prefix}, o.policy);
    if (!made) return fail(made.error().message());
    std::shared_ptr<RedisReplay> shared(std::move(*made));
    redis = [shared](const replay::Request& r) -> Result<Decided> {
      Result<RedisReplay::Decided> d = shared->decide(r);
      if (!d) return d.error();
      return Decided{d->decision, d->at, {}};
    };
    redis_summary = [shared] { return shared->summary(); };
#else
    return fail(
        "flag --redis: this floodgate was built without the Redis backend (install "
        "libhiredis-dev: scripts/install-deps.sh)");
#endif
  }
  Result<Files> files = open_files(o);
  if (!files) return fail(files.error().message());

  replay::TraceOptions trace = o.trace;
  Decide service_decide;
#ifdef FLOODGATE_CLI_HAS_SERVER
  std::optional<server::ServiceReplay> service;
  std::vector<std::string_view> values;  // A line's fields, for the service.
  std::string statuses;                  // Its descriptors' statuses, for the decisions.
  if (o.config_mode) {
    server::ServiceReplay::Options so;
    so.config = o.config;
    so.domain = o.domain;
    so.descriptors = o.descriptors;
    so.series = o.plot_path || o.report;
    so.bar = o.bar.value_or(Nanos{std::chrono::milliseconds(1)});
    Result<server::ServiceReplay> made = server::ServiceReplay::create(std::move(so));
    if (!made) return fail(made.error().message());
    service.emplace(std::move(*made));
    trace.fields = service->fields();
  }
#endif
  replay::TraceReader reader(files->input, o.trace_name, std::move(trace));
#ifdef FLOODGATE_CLI_HAS_SERVER
  if (service) {
    // Each descriptor's status, made only when decisions are written.
    const bool writing = files->output != nullptr;
    service_decide = [&, writing](const replay::Request& r) -> Result<Decided> {
      if (r.cost > UINT32_MAX) {
        return Error("cost " + std::to_string(r.cost) +
                     " is more hits than one rate limit request carries (at most 4294967295)");
      }
      values.clear();
      for (std::size_t i = 0; i < reader.field_count(); ++i) values.push_back(reader.field(i));
      const server::Response& response = service->decide(r.time, r.cost, values);
      std::uint64_t remaining = UINT32_MAX;
      Nanos retry{0};
      for (const server::DescriptorStatus& status : response.statuses) {
        const bool limited =
            status.own_limit.has_value() || (status.rule != nullptr && status.rule->rate_limit &&
                                             !status.rule->rate_limit->unlimited);
        if (limited) remaining = std::min<std::uint64_t>(remaining, status.limit_remaining);
        if (status.code == server::Code::OverLimit && !status.shadowed) {
          retry = std::max(retry, status.duration_until_reset);
        }
      }
      const bool allowed = response.overall == server::Code::Ok;
      return Decided{
          Decision(allowed ? Verdict::Allowed : Verdict::Denied, 0,
                   static_cast<std::int64_t>(remaining), 1, allowed ? Nanos{0} : retry, retry),
          r.time, writing ? (statuses = service->statuses()) : std::string_view()};
    };
  }
#endif
  CsvWriter csv(files->output);
  csv.text(o.config_mode ? "time_ns,key,cost,allowed,remaining,retry_after_ns,descriptors\n"
                         : "time_ns,key,cost,allowed,remaining,retry_after_ns\n");
  Progress progress(!o.quiet && ::isatty(STDERR_FILENO) != 0, files->input);
  Tally tally;
  if (o.bar) tally.series = replay::TimeSeries(*o.bar);
  std::vector<SweepRun> sweep;
  for (const Quota& quota : o.sweep) {
    replay::Policy policy = o.policy;
    policy.quota = quota;
    Result<replay::Replayer> made = replay::Replayer::create(std::move(policy));
    if (!made) return fail("flag --sweep: " + made.error().message());
    sweep.push_back(SweepRun{.quota = quota,
                             .replayer = std::move(*made),
                             .denied = 0,
                             .denied_keys = replay::DistinctKeys(),
                             .denials = replay::TopDenials()});
  }
  Decide* elsewhere = redis ? &redis : service_decide ? &service_decide : nullptr;
  const int status = decide_all(o, reader, *replayer, elsewhere,
                                files->output != nullptr ? &csv : nullptr, progress, tally, sweep);
  progress.clear();
  tally.filtered = reader.filtered();
  if (!csv.flush()) {
    std::fprintf(stderr, "floodgate replay: writing decisions to \"%s\" failed: %s\n",
                 o.out_name.c_str(), std::strerror(errno));
    return kExitUsage;
  }
  if (redis_summary) redis_line = redis_summary();
  print_summary(o, *replayer, tally, redis_line);
  if (!report_sweep(o, tally, sweep)) return kExitUsage;
#ifdef FLOODGATE_CLI_HAS_SERVER
  if (service && !report_rules(o, *service, tally.requests)) return kExitUsage;
#endif
  if (!write_keys(o, tally)) return kExitUsage;
  if (!write_plot(o, *replayer, tally.series)) return kExitUsage;
  std::vector<replay::Report::Rule> report_rules;
#ifdef FLOODGATE_CLI_HAS_SERVER
  if (service && o.report) report_rules = report_rules_of(o, *service);
#endif
  if (!write_report(o, *replayer, tally, sweep, std::move(report_rules))) return kExitUsage;
  return status;
}

}  // namespace floodgate::app
