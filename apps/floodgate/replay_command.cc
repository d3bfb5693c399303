// floodgate replay: decides every request of a trace under a policy and reports what happened.
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "flags.h"
#include "floodgate/replay/key_quotas.h"
#include "floodgate/replay/replayer.h"
#include "floodgate/replay/summary.h"
#include "floodgate/replay/trace.h"

namespace floodgate::app {
namespace {

constexpr std::string_view kHelp = R"(usage: floodgate replay [flags] TRACE

Decides every request of TRACE as a rate limiter with one limit per key would, writes the
decisions as CSV, and prints a summary on stderr. TRACE is a file, or - for standard input.

Trace formats (told apart by the first line, or by --format):
  CSV with a header naming its columns in any order: time_ns (integer nanoseconds) or time
  (seconds, up to nine decimals), key, and optionally cost (default 1); other columns are ignored.
      time_ns,key,cost
      1700000000000000000,alice,1
  Common or Combined Log Format (nginx, Apache): the key is the client address or the field
  named by --key-field; the time is the bracketed timestamp; every request costs 1.

Policy:
  --quota TEXT          the default quota per key, e.g. "100/s burst 20", "1000/min" (default 10/s)
  --algorithm NAME      gcra (default), token-bucket, fixed-window, sliding-log, sliding-counter;
                        the window algorithms need a burst equal to the count
  --quotas FILE         per-key quotas, one "pattern quota" rule a line; the first glob that
                        matches the key wins (e.g. "premium:* 100/s burst 50"; # starts a comment)
  --max-keys N          keys with state at once, for gcra and token-bucket (default 1000000);
                        keys whose bucket is full again are dropped first, losing nothing

Input:
  --format auto|csv|log   the trace's format (default auto)
  --key-field NAME        for logs: client (default), ident, user, request, path, status,
                          referer, agent
  --on-error stop|skip    at a malformed line: stop with exit status 2 (default), or report it and
                          go on; either way everything decided before it is written

Output:
  --out FILE            the decisions, as CSV time_ns,key,cost,allowed,remaining,retry_after_ns
                        (default: standard output; "none" writes none)
  --plot FILE           an SVG of admitted and denied requests over time, with the quota as a line
  --plot-key KEY        plot one key's requests and quota instead of the whole trace
  --top N               keys to list in the summary's top denials (default 10)
  --quiet               no progress bar (it is drawn only when stderr is a terminal)

The decisions are a pure function of the trace and the policy: the same input gives
byte-identical output. Exit status: 0 done, 1 bad flags or files, 2 a malformed trace line.
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

std::string with_commas(std::uint64_t n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Returns `key` fit for one line of a terminal: at most 60 bytes, control bytes as \xNN.
std::string printable(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < key.size() && i < 60; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (key.size() > 60) out += "...";
  return out;
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%",
                whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

std::string utc(Instant t) {
  const std::int64_t ns = t.time_since_epoch().count();
  if (ns < 978'307'200'000'000'000LL) {  // Before 2001: not a date, a plain count.
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9f s", static_cast<double>(ns) / 1e9);
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

}  // namespace

int run_replay(const std::vector<std::string>& args) {
  if (print_help_if_asked(args, kHelp)) return kExitOk;
  const auto fail = [](const std::string& message) { return usage_error("replay", message); };
  Result<Flags> parsed = Flags::parse("replay", args,
                                      {"quota", "algorithm", "quotas", "max-keys", "format",
                                       "key-field", "on-error", "out", "plot", "plot-key", "top"},
                                      {"quiet"});
  if (!parsed) return fail(parsed.error().message());
  const Flags& flags = *parsed;
  if (flags.positional().size() != 1) {
    return fail(flags.positional().empty()
                    ? "no trace given (a file, or - for standard input; see --help)"
                    : "one trace at a time (got " + std::to_string(flags.positional().size()) +
                          " arguments)");
  }
  const std::string trace_path = flags.positional()[0];
  const std::string trace_name = trace_path == "-" ? "stdin" : trace_path;

  replay::Policy policy;
  Result<Quota> quota = Quota::parse(flags.get_or("quota", "10/s"));
  if (!quota) return fail("flag --quota: " + quota.error().message());
  policy.quota = *quota;
  Result<replay::Algorithm> algorithm = replay::parse_algorithm(flags.get_or("algorithm", "gcra"));
  if (!algorithm) return fail("flag --algorithm: " + algorithm.error().message());
  policy.algorithm = *algorithm;
  if (const auto path = flags.get("quotas")) {
    Result<replay::KeyQuotas> rules = replay::KeyQuotas::load(*path);
    if (!rules) return fail(rules.error().message());
    policy.key_quotas = *rules;
  }
  Result<std::uint64_t> max_keys = flags.get_uint("max-keys", 1'000'000, 1, std::uint64_t{1} << 32);
  if (!max_keys) return fail(max_keys.error().message());
  policy.max_keys = *max_keys;
  Result<replay::TraceFormat> format = replay::parse_trace_format(flags.get_or("format", "auto"));
  if (!format) return fail("flag --format: " + format.error().message());
  Result<replay::LogField> field = replay::parse_log_field(flags.get_or("key-field", "client"));
  if (!field) return fail("flag --key-field: " + field.error().message());
  const std::string on_error = flags.get_or("on-error", "stop");
  if (on_error != "stop" && on_error != "skip") {
    return fail("flag --on-error: \"" + on_error + "\" must be stop or skip");
  }
  Result<std::uint64_t> top_n = flags.get_uint("top", 10, 0, 1000);
  if (!top_n) return fail(top_n.error().message());
  const std::optional<std::string> plot_path = flags.get("plot");
  const std::optional<std::string> plot_key = flags.get("plot-key");
  if (plot_key && !plot_path) return fail("flag --plot-key: needs --plot FILE as well");

  Result<replay::Replayer> created = replay::Replayer::create(policy);
  if (!created) return fail(created.error().message());
  replay::Replayer& replayer = *created;

  std::FILE* input = stdin;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> input_owner(nullptr, &std::fclose);
  if (trace_path != "-") {
    input = std::fopen(trace_path.c_str(), "rb");
    if (input == nullptr) {
      return fail("trace \"" + trace_path + "\": cannot open: " + std::strerror(errno));
    }
    input_owner.reset(input);
  }
  const std::string out_name = flags.get_or("out", "-");
  std::FILE* output = out_name == "none" ? nullptr : stdout;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> output_owner(nullptr, &std::fclose);
  if (out_name != "-" && out_name != "none") {
    output = std::fopen(out_name.c_str(), "wb");
    if (output == nullptr) {
      return fail("flag --out: \"" + out_name + "\": cannot create: " + std::strerror(errno));
    }
    output_owner.reset(output);
  }

  replay::TraceReader reader(input, trace_name, *format, *field);
  CsvWriter csv(output);
  csv.text("time_ns,key,cost,allowed,remaining,retry_after_ns\n");
  replay::TopDenials denials;
  replay::TimeSeries series;
  Progress progress(!flags.has("quiet") && ::isatty(STDERR_FILENO) != 0, input);
  std::uint64_t requests = 0, admitted = 0, never = 0, skipped = 0;
  std::optional<Instant> first, last;
  int status = kExitOk;
  while (true) {
    Result<std::optional<replay::Request>> next = reader.next();
    if (!next) {
      progress.clear();
      if (on_error == "stop") {
        std::fprintf(stderr, "floodgate replay: %s\n", next.error().message().c_str());
        std::fprintf(stderr,
                     "floodgate replay: stopped; the %s decisions before it are written "
                     "(--on-error=skip goes on past bad lines)\n",
                     with_commas(requests).c_str());
        status = kExitBadInput;
        break;
      }
      if (++skipped <= 10) {
        std::fprintf(stderr, "floodgate replay: skipped %s\n", next.error().message().c_str());
      }
      continue;
    }
    if (!next->has_value()) break;
    const replay::Request& request = **next;
    const Decision decision = replayer.decide(request);
    ++requests;
    const bool allowed = decision.allowed();
    admitted += allowed ? 1u : 0u;
    never += decision.verdict() == Verdict::ExceedsBurst ? 1u : 0u;
    if (!allowed) denials.add(request.key);
    if (!first || request.time < *first) first = request.time;
    if (!last || request.time > *last) last = request.time;
    if (plot_path && (!plot_key || request.key == *plot_key)) series.add(request.time, allowed);
    if (output != nullptr) {
      csv.number(request.time.time_since_epoch().count());
      csv.text(",");
      csv.key(request.key);
      csv.text(",");
      csv.number(request.cost);
      csv.text(allowed ? ",true," : ",false,");
      csv.number(decision.remaining());
      csv.text(",");
      csv.number(decision.retry_after().count());
      csv.end_line();
    }
    if ((requests & 0xffff) == 0) progress.update(reader.line_number(), reader.bytes_read());
  }
  progress.clear();
  if (!csv.flush()) {
    std::fprintf(stderr, "floodgate replay: writing decisions to \"%s\" failed: %s\n",
                 out_name.c_str(), std::strerror(errno));
    return kExitUsage;
  }

  // The summary.
  const replay::ReplayStats stats = replayer.stats();
  const std::uint64_t still_limited = replayer.sweep();
  std::string rules;
  if (!policy.key_quotas.rules().empty()) {
    rules = ", " + std::to_string(policy.key_quotas.rules().size()) + " per-key rule(s)";
  }
  std::fprintf(stderr, "floodgate replay %s: %s, %s per key%s\n", trace_name.c_str(),
               std::string(replay::to_string(policy.algorithm)).c_str(),
               policy.quota.to_string().c_str(), rules.c_str());
  std::fprintf(stderr, "  requests  %14s", with_commas(requests).c_str());
  if (first) std::fprintf(stderr, "   from %s to %s", utc(*first).c_str(), utc(*last).c_str());
  std::fprintf(stderr, "\n  admitted  %14s   %s\n", with_commas(admitted).c_str(),
               percent(admitted, requests).c_str());
  std::fprintf(stderr, "  denied    %14s   %s", with_commas(requests - admitted).c_str(),
               percent(requests - admitted, requests).c_str());
  if (never > 0) {
    std::fprintf(stderr, " (%s can never pass: cost above the burst)", with_commas(never).c_str());
  }
  std::fprintf(stderr, "\n");
  if (skipped > 0)
    std::fprintf(stderr, "  skipped   %14s   malformed lines\n", with_commas(skipped).c_str());
  std::fprintf(stderr, "  keys still limited at the end: %s", with_commas(still_limited).c_str());
  if (stats.overflow_decisions > 0) {
    std::fprintf(stderr, "; %s requests found the limiter full (raise --max-keys)",
                 with_commas(stats.overflow_decisions).c_str());
  }
  std::fprintf(stderr, "\n");
  const auto top = denials.top(*top_n);
  if (!top.empty()) {
    std::fprintf(stderr, "  most denied keys%s:\n",
                 denials.error_bound() == 0 ? ""
                                            : (" (approximate: each count may be high by up to " +
                                               std::to_string(denials.error_bound()) + ")")
                                                  .c_str());
    for (const auto& [key, count] : top) {
      std::fprintf(stderr, "    %12s  %-40s %s\n", with_commas(count).c_str(),
                   printable(key).c_str(), replayer.quota_of(key).to_string().c_str());
    }
  }
  if (plot_path) {
    replay::PlotLabels labels;
    labels.title = "floodgate replay: " + std::string(replay::to_string(policy.algorithm)) + ", " +
                   (plot_key ? "key " + *plot_key : "all keys");
    labels.quota = plot_key ? replayer.quota_of(*plot_key) : policy.quota;
    labels.quota_label = "quota " + labels.quota->to_string() + (plot_key ? "" : " (one key)");
    const std::string svg = replay::render_svg(series, labels);
    std::FILE* plot = std::fopen(plot_path->c_str(), "wb");
    bool written = plot != nullptr && std::fwrite(svg.data(), 1, svg.size(), plot) == svg.size();
    if (plot != nullptr) written = std::fclose(plot) == 0 && written;
    if (!written) {
      std::fprintf(stderr, "floodgate replay: writing the plot \"%s\" failed: %s\n",
                   plot_path->c_str(), std::strerror(errno));
      return kExitUsage;
    }
    std::fprintf(stderr, "  plot: %s%s\n", plot_path->c_str(),
                 series.empty() ? " (no requests to draw)" : "");
  }
  return status;
}

}  // namespace floodgate::app
