// One limit for a fleet: 4 processes x 2 threads on one key for 2 s against one redis-server,
// and against a 3-master Redis Cluster, on the server's clock. Each process records the server
// instants of its admissions; the test process checks, after every process has exited, that the
// fleet admitted no more than burst + rate x (last admission - first admission), and at least 99%
// of it (the callers saturate the key, so an exact limiter admits all it may). Saturation is
// checked rather than assumed: each process also marks every millisecond of server time in which
// Redis ran one of its calls, and where no process had a call run for longer than the bucket
// takes to fill (a machine too loaded to schedule any caller), the permits that time let go
// unused are taken off the lower bound and reported. The processes connect first and start
// calling together: a process that started alone, calling slower than the rate, would keep the
// bucket full and let permits go (seen under ThreadSanitizer: 1,024 of 1,037).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <thread>
#include <vector>

#include "floodgate/redis/redis_limiter.h"
#include "floodgate/testing/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;

// Milliseconds of server time after the test's start that a report can mark.
constexpr std::int64_t kSpanMs = 16'384;

// What one process reports through its pipe (one write of less than PIPE_BUF bytes).
struct Report {
  std::uint64_t admitted = 0;
  std::uint64_t calls = 0;
  std::uint64_t not_redis = 0;  // Decided by anything but Redis or the deny cache.
  bool started = false;         // Released by the test within its deadline.
  std::int64_t first = std::numeric_limits<std::int64_t>::max();
  std::int64_t last = std::numeric_limits<std::int64_t>::min();
  // Bit i: Redis ran one of this process's calls in millisecond `start_ms + i` of server time.
  std::array<std::uint64_t, kSpanMs / 64> ran{};

  void mark(std::int64_t at_ns, std::int64_t start_ms) {
    const std::int64_t i = at_ns / 1'000'000 - start_ms;
    if (i >= 0 && i < kSpanMs)
      ran[static_cast<std::size_t>(i / 64)] |= std::uint64_t{1} << (i % 64);
  }
  bool marked(std::int64_t i) const {
    return i >= 0 && i < kSpanMs && (ran[static_cast<std::size_t>(i / 64)] >> (i % 64) & 1) != 0;
  }
  void merge(const Report& r) {
    admitted += r.admitted;
    calls += r.calls;
    not_redis += r.not_redis;
    first = std::min(first, r.first);
    last = std::max(last, r.last);
    for (std::size_t w = 0; w < ran.size(); ++w) ran[w] |= r.ran[w];
  }
};
static_assert(sizeof(Report) < 4096);

// How long the test waits for its processes to connect.
constexpr auto kStartWithin = 30s;

// The body of one fleet process: connects, writes a byte to `ready`, waits for `go` to close,
// then calls from two threads for `run_for` and writes its report to `out`. Never returns.
[[noreturn]] void fleet_member(const std::string& url, const Quota& quota, int ready, int go,
                               int out, std::chrono::steady_clock::duration run_for,
                               std::size_t deny_cache_keys, std::int64_t start_ms) {
  Report report;
  auto limiter = RedisLimiter::create({.url = url,
                                       .prefix = "fleet:",
                                       .default_quota = quota,
                                       .on_failure = OnRedisFailure::FailClosed,
                                       .connect_timeout = 100ms,
                                       .command_timeout = 100ms,
                                       .deny_cache_keys = deny_cache_keys});
  if (limiter) {
    (void)(*limiter)->connect(5s);  // A failure shows as calls the policy answered.
    char byte = 0;
    pollfd released{.fd = go, .events = POLLIN, .revents = 0};
    report.started = ::write(ready, &byte, 1) == 1 &&
                     ::poll(&released, 1,
                            static_cast<int>(std::chrono::milliseconds(kStartWithin).count())) == 1;
  }
  if (limiter && report.started) {
    std::vector<Report> per_thread(2);
    const auto stop = std::chrono::steady_clock::now() + run_for;
    std::vector<std::thread> threads;
    for (std::size_t w = 0; w < 2; ++w) {
      threads.emplace_back([&, w] {
        Report& r = per_thread[w];
        while (std::chrono::steady_clock::now() < stop) {
          const RedisDecision d = (*limiter)->try_acquire("one-key");
          ++r.calls;
          if (d.source == DecisionSource::Redis) {
            r.mark(d.at.time_since_epoch().count(), start_ms);
          } else if (d.source != DecisionSource::DenyCache) {
            ++r.not_redis;
          }
          if (!d.allowed()) continue;
          ++r.admitted;
          const std::int64_t t = d.at.time_since_epoch().count();
          r.first = std::min(r.first, t);
          r.last = std::max(r.last, t);
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const Report& r : per_thread) report.merge(r);
  } else {
    report.not_redis = 1;
  }
  const ssize_t written = ::write(out, &report, sizeof report);
  ::_exit(written == sizeof report ? 0 : 1);
}

// Runs the fleet against `url` with the deny cache on (most denials answered locally) or off
// (every call a round trip), and checks the bound.
void expect_fleet_bound(const std::string& url, std::size_t deny_cache_keys) {
  const Quota quota = *Quota::parse("500/s burst 50");
  constexpr int kProcesses = 4;
  // Redis's TIME is this machine's clock.
  const std::int64_t start_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
  std::vector<pid_t> children;
  std::vector<int> pipes;
  int ready[2];
  int go[2];  // Closed by the test to release every process at once.
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  for (int p = 0; p < kProcesses; ++p) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      ::close(ready[0]);
      ::close(go[1]);
      fleet_member(url, quota, ready[1], go[0], fds[1], 2s, deny_cache_keys, start_ms);
    }
    ::close(fds[1]);
    children.push_back(pid);
    pipes.push_back(fds[0]);
  }
  ::close(ready[1]);
  ::close(go[0]);
  int connected = 0;
  const auto start_by = std::chrono::steady_clock::now() + kStartWithin;
  while (connected < kProcesses && std::chrono::steady_clock::now() < start_by) {
    pollfd one{.fd = ready[0], .events = POLLIN, .revents = 0};
    char byte = 0;
    if (::poll(&one, 1, 100) == 1 && ::read(ready[0], &byte, 1) == 1) ++connected;
  }
  ::close(go[1]);
  ::close(ready[0]);
  EXPECT_EQ(connected, kProcesses) << "processes connected within " << kStartWithin.count() << " s";
  Report fleet;
  for (int p = 0; p < kProcesses; ++p) {
    Report r;
    // The child writes once and exits; a child that dies writes nothing and reads as empty.
    const ssize_t got = ::read(pipes[static_cast<std::size_t>(p)], &r, sizeof r);
    ::close(pipes[static_cast<std::size_t>(p)]);
    int status = 0;
    ::waitpid(children[static_cast<std::size_t>(p)], &status, 0);
    ASSERT_EQ(got, static_cast<ssize_t>(sizeof r)) << "process " << p << " reported nothing";
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_TRUE(r.started) << "process " << p << " was not released in time";
    EXPECT_EQ(r.not_redis, 0u) << "process " << p;
    fleet.merge(r);
  }
  ASSERT_GT(fleet.admitted, 0u);
  const double elapsed_s = static_cast<double>(fleet.last - fleet.first) / 1e9;
  const double per_ms = 1e6 / static_cast<double>(quota.interval().count());
  const double bound = static_cast<double>(quota.burst()) + elapsed_s * 1e3 * per_ms;
  // Permits nobody was there to take: a stretch of server time between two calls that Redis ran
  // refills the bucket, and what it refills past the burst is lost to any limiter.
  const double fill_ms = static_cast<double>(quota.burst()) / per_ms;
  double unused = 0;
  std::int64_t longest_gap_ms = 0;
  const std::int64_t from = fleet.first / 1'000'000 - start_ms;
  const std::int64_t to = fleet.last / 1'000'000 - start_ms;
  ASSERT_TRUE(fleet.marked(from) && fleet.marked(to)) << "admissions outside the marked span";
  for (std::int64_t i = from, previous = from; i <= to; ++i) {
    if (!fleet.marked(i)) continue;
    longest_gap_ms = std::max(longest_gap_ms, i - previous);
    unused += std::max(0.0, static_cast<double>(i - previous - 1) - fill_ms) * per_ms;
    previous = i;
  }
  std::cout << "fleet on " << url.substr(0, url.find(':')) << ", deny cache "
            << (deny_cache_keys != 0 ? "on" : "off") << ": " << fleet.calls << " calls, "
            << fleet.admitted << " admitted over " << elapsed_s
            << " s of server time; bound burst + rate x elapsed = " << bound << " ("
            << 100.0 * static_cast<double>(fleet.admitted) / bound
            << "%); longest stretch without a call at Redis " << longest_gap_ms
            << " ms, permits no caller was there to take " << unused << "\n";
  EXPECT_LE(static_cast<double>(fleet.admitted), bound);
  EXPECT_GE(static_cast<double>(fleet.admitted), 0.99 * (bound - unused));
}

TEST(RedisFleetTest, FourProcessesShareOneLimitExactly) {
  testing::RedisServer redis;
  expect_fleet_bound(redis.url(), 65'536);
}

TEST(RedisFleetTest, FourProcessesShareOneLimitExactlyWithEveryCallARoundTrip) {
  testing::RedisServer redis;
  expect_fleet_bound(redis.url(), 0);
}

TEST(RedisFleetTest, FourProcessesShareOneLimitExactlyOnACluster) {
  testing::RedisCluster cluster(3, 1);
  expect_fleet_bound(cluster.url(), 65'536);
}

TEST(RedisFleetTest, FourProcessesShareOneLimitExactlyOnAClusterWithEveryCallARoundTrip) {
  testing::RedisCluster cluster(3, 1);
  expect_fleet_bound(cluster.url(), 0);
}

}  // namespace
}  // namespace floodgate
