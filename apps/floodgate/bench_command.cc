// floodgate bench: the standard scenarios, each beside the in-tree baseline, as one table.
#include <charconv>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/scenarios.h"
#include "commands.h"
#include "flags.h"
#ifdef FLOODGATE_CLI_HAS_REDIS
#include "bench/redis_bench.h"
#endif

namespace floodgate::app {
namespace {

constexpr std::string_view kHelp = R"(usage: floodgate bench [flags]

Runs the standard scenarios and prints one table. In every row floodgate and the in-tree baseline
run in this process, one after the other, for the same time; the ratio is floodgate's throughput
over the baseline's (higher is better). The baseline is a token bucket behind a std::mutex (the
design of Go's x/time/rate), and for keyed rows a std::unordered_map<std::string, state> behind
one std::mutex deciding with the same GCRA rule.

Scenarios:
  admit, caller time               one thread, GcraLimiter, every call admitted
  deny, caller time                one thread, nearly every call denied
  admit, reading the clock         one thread, each call reads the steady clock
  admit, caller time, scalable     one thread, ScalableGcraLimiter
  admit|deny, all threads          --threads threads on one limiter
  admit|deny, all threads, one     the same on one ScalableGcraLimiter (a lease per thread)
    scalable limiter
  keyed, N keys, uniform|Zipf      KeyedLimiter, keys user:000000..user:999999, 1 and --threads
                                   threads, caller time +1 ms a call (admit-heavy)

With --redis URL, measures floodgate's Redis backend instead: decisions per second and p50/p99
latency of RedisLimiter::try_acquire (GCRA, server time) for 1, 2, 8 and 64 concurrent callers,
beside a naive client (one blocking EVALSHA round trip per call, each caller on its own
connection) and the ceiling redis-benchmark reaches with the same script and arguments (50
clients, 16 commands per pipeline). It writes keys floodgate-bench:* that expire by themselves.

Flags:
  --redis URL     redis://host:port[/db] or unix:///path/to.sock: measure the Redis backend
  --callers LIST  with --redis: the rows' concurrent callers (default 1,2,8,64)
  --rounds N      with --redis: rounds per row, alternating the contenders (default 3); the
                  median round is shown
  --threads N     threads for the multi-threaded rows (default: the hardware's, at least 2)
  --seconds S     seconds per contender per row, from 0.01 (default 0.5)
  --keys N        keys in the keyed rows (default 1000000, at most that)
  --json          print JSON instead of the table

Speed depends on the machine and what else runs on it; compare ratios, measured together.
)";

void print_row(const bench::Row& row) {
  std::printf("%-41s %7d %14.2f %14.2f %8.2fx %9.3f\n", row.scenario.c_str(), row.threads,
              row.floodgate.calls_per_second / 1e6, row.baseline.calls_per_second / 1e6,
              row.ratio(), row.floodgate.admitted_fraction);
  std::fflush(stdout);
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// floodgate bench --redis.
int bench_redis(const Flags& flags) {
#ifdef FLOODGATE_CLI_HAS_REDIS
  if (flags.get("threads"))
    return usage_error("bench", "flag --threads: use --callers with --redis");
  bench::RedisBenchOptions options;
  options.url = *flags.get("redis");
  Result<double> seconds = flags.get_seconds("seconds", 1.0, 0.01);
  if (!seconds) return usage_error("bench", seconds.error().message());
  options.seconds = *seconds;
  Result<std::uint64_t> keys = flags.get_uint("keys", 10'000, 1, 1'000'000'000);
  if (!keys) return usage_error("bench", keys.error().message());
  options.keys = *keys;
  Result<std::uint64_t> rounds = flags.get_uint("rounds", 3, 1, 100);
  if (!rounds) return usage_error("bench", rounds.error().message());
  options.rounds = static_cast<int>(*rounds);
  if (std::optional<std::string> list = flags.get("callers")) {
    options.callers.clear();
    std::string_view rest = *list;
    while (true) {
      const std::string item(rest.substr(0, rest.find(',')));
      std::uint64_t n = 0;
      const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
      if (item.empty() || ec != std::errc() || end != item.data() + item.size() || n < 1 ||
          n > 1024) {
        return usage_error("bench", "flag --callers: \"" + *list +
                                        "\" is not a list of counts from 1 to 1024 (bad item \"" +
                                        item + "\")");
      }
      options.callers.push_back(static_cast<int>(n));
      if (rest.find(',') == std::string_view::npos) break;
      rest.remove_prefix(rest.find(',') + 1);
    }
  }
  options.json = flags.has("json");
  if (Result<void> ran = bench::run_redis_bench(options); !ran) {
    return usage_error("bench", ran.error().message());
  }
  return kExitOk;
#else
  return usage_error("bench", "--redis " + *flags.get("redis") +
                                  ": this floodgate was built without the Redis backend "
                                  "(install libhiredis-dev: scripts/install-deps.sh)");
#endif
}

}  // namespace

int run_bench(const std::vector<std::string>& args) {
  if (print_help_if_asked(args, kHelp)) return kExitOk;
  Result<Flags> parsed = Flags::parse(
      "bench", args, {"threads", "seconds", "keys", "redis", "callers", "rounds"}, {"json"});
  if (!parsed) return usage_error("bench", parsed.error().message());
  const Flags& flags = *parsed;
  if (!flags.positional().empty()) {
    return usage_error("bench",
                       "unexpected argument \"" + flags.positional()[0] + "\" (see --help)");
  }
  if (flags.get("redis")) return bench_redis(flags);
  for (const char* only : {"callers", "rounds"}) {
    if (flags.get(only))
      return usage_error("bench", "flag --" + std::string(only) + ": needs --redis");
  }
  const unsigned hardware = std::max(2u, std::thread::hardware_concurrency());
  Result<std::uint64_t> threads = flags.get_uint("threads", hardware, 1, 1024);
  Result<double> seconds = flags.get_seconds("seconds", 0.5, 0.01);
  Result<std::uint64_t> keys = flags.get_uint("keys", 1'000'000, 1, 1'000'000);
  for (const Error* e : {threads ? nullptr : &threads.error(), seconds ? nullptr : &seconds.error(),
                         keys ? nullptr : &keys.error()}) {
    if (e != nullptr) return usage_error("bench", e->message());
  }
  const bool json = flags.has("json");
  if (!json) {
    std::printf("floodgate bench: %.2f s per contender per row, %u hardware threads\n", *seconds,
                std::thread::hardware_concurrency());
    std::printf("%-41s %7s %14s %14s %9s %9s\n", "scenario", "threads", "floodgate Mop/s",
                "baseline Mop/s", "ratio", "admitted");
  }
  const std::vector<bench::Row> rows = bench::run_standard_scenarios(
      *seconds, static_cast<int>(*threads), static_cast<int>(*keys), json ? nullptr : &print_row);
  if (json) {
    std::printf("{\"seconds\": %g, \"hardware_threads\": %u, \"rows\": [", *seconds,
                std::thread::hardware_concurrency());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const bench::Row& r = rows[i];
      std::printf(
          "%s\n  {\"scenario\": \"%s\", \"threads\": %d, \"floodgate_calls_per_second\": %.0f, "
          "\"baseline_calls_per_second\": %.0f, \"ratio\": %.4f, \"floodgate_admitted\": %.4f, "
          "\"baseline_admitted\": %.4f}",
          i == 0 ? "" : ",", json_escape(r.scenario).c_str(), r.threads,
          r.floodgate.calls_per_second, r.baseline.calls_per_second, r.ratio(),
          r.floodgate.admitted_fraction, r.baseline.admitted_fraction);
    }
    std::printf("\n]}\n");
  } else {
    std::printf("(ratio = floodgate throughput / baseline throughput, measured in this run)\n");
  }
  return kExitOk;
}

}  // namespace floodgate::app
