#include "bench/redis_bench.h"

#include <hiredis.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "floodgate/limiters/internal/gcra_rule.h"
#include "floodgate/redis/internal/client.h"
#include "floodgate/redis/internal/scripts.h"
#include "floodgate/redis/internal/url.h"
#include "floodgate/redis/redis_limiter.h"

namespace floodgate::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Every key admits everything: the table measures round trips, not denials.
const Quota kQuota = Quota::per_second(1'000'000'000);
constexpr std::string_view kPrefix = "floodgate-bench:";

struct Measured {
  double per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::uint64_t calls = 0;
  std::uint64_t failed = 0;  // Not decided by Redis.
};

// Runs `call(thread, rng)` on `callers` threads for `seconds` and measures each call.
template <class Call>
Measured measure(int callers, double seconds, Call call) {
  std::vector<std::vector<std::int64_t>> latencies(static_cast<std::size_t>(callers));
  std::vector<std::uint64_t> failed(static_cast<std::size_t>(callers), 0);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < callers; ++w) {
    threads.emplace_back([&, w] {
      const auto i = static_cast<std::size_t>(w);
      std::mt19937_64 rng(static_cast<std::uint64_t>(w) + 1);
      latencies[i].reserve(1 << 16);
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      while (!stop.load(std::memory_order_relaxed)) {
        const auto start = Clock::now();
        const bool ok = call(i, rng);
        latencies[i].push_back((Clock::now() - start).count());
        failed[i] += ok ? 0 : 1;
      }
    });
  }
  while (ready.load() < callers) std::this_thread::yield();
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<std::int64_t> all;
  Measured m;
  for (std::size_t i = 0; i < latencies.size(); ++i) {
    all.insert(all.end(), latencies[i].begin(), latencies[i].end());
    m.failed += failed[i];
  }
  m.calls = all.size();
  m.per_second = static_cast<double>(m.calls - m.failed) / elapsed;
  if (!all.empty()) {
    const auto at = [&](double q) {
      const auto k = static_cast<std::size_t>(q * static_cast<double>(all.size() - 1));
      std::nth_element(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end());
      return static_cast<double>(all[k]) / 1e3;
    };
    m.p50_us = at(0.50);
    m.p99_us = at(0.99);
  }
  return m;
}

// Returns the round with the median throughput (the upper one of an even count), with the
// failures of every round.
Measured median(std::vector<Measured> rounds) {
  std::uint64_t failed = 0;
  for (const Measured& r : rounds) failed += r.failed;
  std::sort(rounds.begin(), rounds.end(),
            [](const Measured& a, const Measured& b) { return a.per_second < b.per_second; });
  Measured m = rounds[rounds.size() / 2];
  m.failed = failed;
  return m;
}

std::string key_of(std::uint64_t n) { return std::string(kPrefix) + "k" + std::to_string(n); }

// The script's arguments exactly as `RedisLimiter` sends them for a server-time call of cost 1.
std::vector<std::string> gcra_args() {
  const auto p = internal::Gcra::params(kQuota);
  const auto charge = internal::Gcra::charge(1, p);
  constexpr std::int64_t kSecond = 1'000'000'000;
  return {"",
          "",
          std::to_string(p.window / kSecond),
          std::to_string(p.window % kSecond),
          std::to_string(charge / kSecond),
          std::to_string(charge % kSecond),
          "1",
          "0"};
}

// A hiredis connection to the URL's server, authenticated and on its database.
struct HiredisDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Hiredis = std::unique_ptr<redisContext, HiredisDeleter>;

Result<Hiredis> connect(const internal::RedisUrl& url) {
  const internal::Endpoint& e = url.endpoints.front();
  const timeval timeout{2, 0};
  Hiredis c(e.path.empty() ? redisConnectWithTimeout(e.host.c_str(), e.port, timeout)
                           : redisConnectUnixWithTimeout(e.path.c_str(), timeout));
  if (!c || c->err != 0) {
    return Error("redis " + e.to_string() + ": " + (c ? c->errstr : std::string("out of memory")));
  }
  for (const auto& command : internal::connect_commands(url)) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : command) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lengths.data()));
    const bool ok = reply != nullptr && reply->type != REDIS_REPLY_ERROR;
    if (reply != nullptr) freeReplyObject(reply);
    if (!ok) return Error("redis " + e.to_string() + ": " + command[0] + " failed");
  }
  return c;
}

// One naive call: EVALSHA on the caller's own connection, waiting for the reply.
bool naive_call(redisContext* c, const std::string& key, const std::vector<std::string>& args) {
  const internal::Script& script = internal::gcra_script();
  std::array<const char*, 12> argv{"EVALSHA", script.sha1.c_str(), "1", key.c_str()};
  std::array<std::size_t, 12> lengths{7, script.sha1.size(), 1, key.size()};
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[4 + i] = args[i].c_str();
    lengths[4 + i] = args[i].size();
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(4 + args.size()), argv.data(), lengths.data()));
  const bool ok = reply != nullptr && reply->type == REDIS_REPLY_STRING;
  if (reply != nullptr) freeReplyObject(reply);
  return ok;
}

struct Ceiling {
  bool ran = false;
  std::string command;
  std::string error;
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// Returns `word` as a shell reads it back: bare when it is plain, else in single quotes.
std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("_:/.,@=+-").find(c) != std::string_view::npos;
  });
  if (plain) return word;
  std::string out = "'";
  for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs redis-benchmark with 50 clients and 16 commands per pipeline, sending the same EVALSHA
// with the same arguments on `keys` random keys, and reads its CSV summary.
Ceiling run_redis_benchmark(const internal::RedisUrl& url, std::uint64_t requests,
                            std::uint64_t keys) {
  Ceiling ceiling;
  const internal::Endpoint& e = url.endpoints.front();
  std::vector<std::string> argv = {"redis-benchmark"};
  if (e.path.empty()) {
    argv.insert(argv.end(), {"-h", e.host, "-p", std::to_string(e.port)});
  } else {
    argv.insert(argv.end(), {"-s", e.path});
  }
  if (!url.password.empty()) argv.insert(argv.end(), {"-a", url.password});
  if (!url.username.empty()) argv.insert(argv.end(), {"--user", url.username});
  if (url.db != 0) argv.insert(argv.end(), {"--dbnum", std::to_string(url.db)});
  argv.insert(argv.end(), {"-c", "50", "-P", "16", "-n", std::to_string(requests), "-r",
                           std::to_string(keys), "--csv", "EVALSHA", internal::gcra_script().sha1,
                           "1", std::string(kPrefix) + "k__rand_int__"});
  const std::vector<std::string> args = gcra_args();
  argv.insert(argv.end(), args.begin(), args.end());
  ceiling.command = "redis-benchmark";
  for (std::size_t i = 1; i < argv.size(); ++i) ceiling.command += " " + shell_word(argv[i]);
  char pattern[] = "/tmp/floodgate-bench-XXXXXX";
  const int fd = ::mkstemp(pattern);
  if (fd < 0) {
    ceiling.error = "could not make a temporary file";
    return ceiling;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string out = read_all(pattern);
  ::unlink(pattern);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ceiling.error = WIFEXITED(status) && WEXITSTATUS(status) == 127
                        ? "redis-benchmark not found (Debian package redis-tools)"
                        : "redis-benchmark failed: " + out.substr(0, 300);
    return ceiling;
  }
  // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
  // "p99_latency_ms","max_latency_ms", then one row.
  const auto row = out.find("\n\"EVALSHA");
  if (row == std::string::npos) {
    ceiling.error = "unexpected redis-benchmark output: " + out.substr(0, 300);
    return ceiling;
  }
  std::vector<std::string> fields;
  std::string line = out.substr(row + 1, out.find('\n', row + 1) - row - 1);
  // The first field (the command) is quoted and has no '"' inside; split the rest at commas.
  const auto after_test = line.find("\",\"");
  std::stringstream rest(line.substr(after_test + 2));
  for (std::string f; std::getline(rest, f, ',');) {
    if (f.size() >= 2 && f.front() == '"') f = f.substr(1, f.size() - 2);
    fields.push_back(f);
  }
  if (fields.size() < 6) {
    ceiling.error = "unexpected redis-benchmark output: " + line;
    return ceiling;
  }
  ceiling.ran = true;
  ceiling.per_second = std::strtod(fields[0].c_str(), nullptr);
  ceiling.p50_ms = std::strtod(fields[3].c_str(), nullptr);
  ceiling.p99_ms = std::strtod(fields[5].c_str(), nullptr);
  return ceiling;
}

struct Row {
  int callers = 0;
  Measured floodgate;
  Measured naive;
};

}  // namespace

Result<void> run_redis_bench(const RedisBenchOptions& options) {
  Result<internal::RedisUrl> url = internal::parse_redis_url(options.url);
  if (!url) return url.error();
  if (url->cluster) {
    return Error("redis URL " + internal::quoted_url(options.url) +
                 ": the throughput table needs one standalone server (a cluster's is the sum of "
                 "its masters')");
  }
  const int most_callers = *std::max_element(options.callers.begin(), options.callers.end());
  auto limiter = RedisLimiter::create({.url = options.url,
                                       .prefix = std::string(kPrefix),
                                       .default_quota = kQuota,
                                       .on_failure = OnRedisFailure::FailClosed,
                                       .connect_timeout = std::chrono::seconds(1),
                                       .command_timeout = std::chrono::seconds(1)});
  if (!limiter) return limiter.error();
  if (Result<void> connected = (*limiter)->connect(std::chrono::seconds(1)); !connected) {
    return Error("redis URL " + internal::quoted_url(options.url) + ": " +
                 connected.error().message());
  }
  std::vector<Hiredis> naive;
  for (int i = 0; i < most_callers; ++i) {
    Result<Hiredis> c = connect(*url);
    if (!c) return c.error();
    naive.push_back(std::move(*c));
  }
  {
    // The naive client loads the script once up front, as redis_rate does.
    const std::string text(internal::gcra_script().text);
    auto* reply = static_cast<redisReply*>(
        redisCommand(naive[0].get(), "SCRIPT LOAD %b", text.data(), text.size()));
    if (reply != nullptr) freeReplyObject(reply);
  }
  const std::vector<std::string> args = gcra_args();

  if (!options.json) {
    std::printf(
        "floodgate bench --redis %s: GCRA script, server time, %llu keys; per row, %d rounds of "
        "%.2f s per contender, alternating, the median round shown\n",
        internal::quoted_url(options.url).c_str(), static_cast<unsigned long long>(options.keys),
        options.rounds, options.seconds);
    std::printf("%-8s %14s %9s %9s %14s %9s %9s %9s\n", "callers", "floodgate op/s", "p50 us",
                "p99 us", "naive op/s", "p50 us", "p99 us", "vs naive");
  }
  std::vector<Row> rows;
  double best = 0;
  for (const int callers : options.callers) {
    Row row;
    row.callers = callers;
    RedisLimiter& l = **limiter;
    // Rounds alternate the two contenders, so that both see the same moments of a noisy machine;
    // each reports its median round.
    std::vector<Measured> ours;
    std::vector<Measured> theirs;
    for (int round = 0; round < options.rounds; ++round) {
      ours.push_back(measure(callers, options.seconds, [&](std::size_t, std::mt19937_64& rng) {
        const std::string key = "k" + std::to_string(rng() % options.keys);
        return l.try_acquire(key).source == DecisionSource::Redis;
      }));
      theirs.push_back(measure(callers, options.seconds, [&](std::size_t i, std::mt19937_64& rng) {
        return naive_call(naive[i].get(), key_of(rng() % options.keys), args);
      }));
    }
    row.floodgate = median(ours);
    row.naive = median(theirs);
    best = std::max(best, row.floodgate.per_second);
    rows.push_back(row);
    if (!options.json) {
      std::printf("%-8d %14.0f %9.1f %9.1f %14.0f %9.1f %9.1f %8.2fx\n", callers,
                  row.floodgate.per_second, row.floodgate.p50_us, row.floodgate.p99_us,
                  row.naive.per_second, row.naive.p50_us, row.naive.p99_us,
                  row.floodgate.per_second / std::max(row.naive.per_second, 1.0));
      std::fflush(stdout);
    }
  }
  const auto requests =
      static_cast<std::uint64_t>(std::max(100'000.0, best * std::max(options.seconds, 0.5) * 2));
  std::vector<Ceiling> ceilings;
  for (int round = 0; round < options.rounds; ++round) {
    ceilings.push_back(run_redis_benchmark(*url, requests, options.keys));
    if (!ceilings.back().ran) break;
  }
  std::sort(ceilings.begin(), ceilings.end(),
            [](const Ceiling& a, const Ceiling& b) { return a.per_second < b.per_second; });
  const Ceiling& ceiling = ceilings[ceilings.size() / 2];
  std::uint64_t failed = 0;
  for (const Row& r : rows) failed += r.floodgate.failed + r.naive.failed;
  if (options.json) {
    std::printf("{\"url\": %s, \"seconds\": %g, \"keys\": %llu, \"rows\": [",
                internal::quoted_url(options.url).c_str(), options.seconds,
                static_cast<unsigned long long>(options.keys));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::printf(
          "%s\n  {\"callers\": %d, \"floodgate_per_second\": %.0f, \"floodgate_p50_us\": "
          "%.1f, \"floodgate_p99_us\": %.1f, \"naive_per_second\": %.0f, "
          "\"naive_p50_us\": %.1f, \"naive_p99_us\": %.1f}",
          i == 0 ? "" : ",", r.callers, r.floodgate.per_second, r.floodgate.p50_us,
          r.floodgate.p99_us, r.naive.per_second, r.naive.p50_us, r.naive.p99_us);
    }
    std::printf("\n], \"ceiling_per_second\": %.0f, \"failed_calls\": %llu}\n",
                ceiling.ran ? ceiling.per_second : 0.0, static_cast<unsigned long long>(failed));
  } else {
    std::printf("\n");
    if (ceiling.ran) {
      std::printf(
          "ceiling: %.0f op/s (p50 %.2f ms, p99 %.2f ms; the median of %zu runs), from\n  %s\n",
          ceiling.per_second, ceiling.p50_ms, ceiling.p99_ms, ceilings.size(),
          ceiling.command.c_str());
      std::printf("floodgate's share of the ceiling:");
      for (const Row& r : rows) {
        std::printf(" %d callers %.0f%%%s", r.callers,
                    100.0 * r.floodgate.per_second / std::max(ceiling.per_second, 1.0),
                    &r == &rows.back() ? "\n" : ",");
      }
    } else {
      std::printf("ceiling: not measured: %s\n", ceiling.error.c_str());
    }
    std::printf(
        "naive = one blocking EVALSHA round trip per call, each caller on its own "
        "hiredis connection.\nfloodgate = RedisLimiter::try_acquire with its defaults "
        "(2 pipelined connections), command timeout 1 s.\n");
    if (failed != 0) {
      std::printf("%llu calls were not decided by Redis (timeouts or errors): not counted.\n",
                  static_cast<unsigned long long>(failed));
    }
  }
  return {};
}

}  // namespace floodgate::bench
