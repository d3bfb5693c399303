// Real faults against a real redis-server: killed (SIGKILL) and restarted without persistence,
// hung (SIGSTOP), paused (CLIENT PAUSE), nothing listening, and a proxy in between that delays
// replies, drops connections, or accepts and never answers; and a fake server that answers every
// command with one endless reply. Every call must answer within
// its command timeout by the failure policy, say so, and count it; Redis decides again once it
// is back. The bound asserted on each call's duration is a "never hangs" check with a wide
// margin, not a performance figure.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/redis/redis_limiter.h"
#include "floodgate/testing/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using testing::make_limiter;
using testing::RedisServer;

// The tests' command timeout: ten times the default 5 ms, so that the calls before and after
// each fault are Redis's even on a loaded machine; the faults that hang are answered at it.
constexpr auto kTimeout = 50ms;
constexpr auto kNeverHangs = 1s;  // Far above the command timeout.

struct Timed {
  RedisDecision decision;
  std::chrono::steady_clock::duration took;
};

Timed timed_acquire(RedisLimiter& limiter, std::string_view key) {
  const auto start = std::chrono::steady_clock::now();
  RedisDecision d = limiter.try_acquire(key);
  return {d, std::chrono::steady_clock::now() - start};
}

// Calls until Redis decides again, for at most `limit`; returns whether it did. Also used before
// a test's fault: on a loaded machine the first call (connect, script load) can miss the 5 ms
// timeout, which is not what these tests are about.
bool until_redis_decides(RedisLimiter& limiter, std::string_view key,
                         std::chrono::seconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (limiter.peek(key).source == DecisionSource::Redis) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(RedisFaultsTest, KilledAndRestartedServerFailsClosedThenResumesWithItsStateLost) {
  RedisServer redis;
  auto limiter = make_limiter({.url = redis.url(),
                               .prefix = "kill:",
                               .default_quota = *Quota::parse("3/h"),
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = kTimeout,
                               .breaker_open_for = 50ms,
                               .reconnect_backoff_min = 5ms,
                               .reconnect_backoff_max = 50ms,
                               .deny_cache_keys = 0});  // Every call goes to Redis.
  ASSERT_TRUE(limiter);
  ASSERT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();  // Before the fault.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(limiter->try_acquire("k").allowed()) << limiter->last_error();
  ASSERT_FALSE(limiter->try_acquire("k").allowed());

  redis.kill();
  for (int i = 0; i < 20; ++i) {
    const Timed t = timed_acquire(*limiter, "k");
    EXPECT_EQ(t.decision.source, DecisionSource::FailClosed);
    EXPECT_FALSE(t.decision.allowed());
    EXPECT_GT(t.decision.decision.retry_after(), Nanos::zero());
    EXPECT_LT(t.took, kNeverHangs);
  }
  EXPECT_GE(limiter->stats().policy_decisions, 20u);
  EXPECT_GE(limiter->stats().errors, 1u);
  EXPECT_GE(limiter->stats().breaker_opens, 1u);
  EXPECT_FALSE(limiter->last_error().empty());

  redis.restart();
  ASSERT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();
  // No persistence: the key's state went with the process, so the bucket is full again. This is
  // the over-admission a restart costs: one burst per key that was limited.
  int admitted = 0;
  for (int i = 0; i < 5; ++i) admitted += limiter->try_acquire("k").allowed() ? 1 : 0;
  EXPECT_EQ(admitted, 3);
  std::cout << "after kill -9 and restart without persistence: " << admitted
            << " more admitted for a key that was exhausted (its whole burst)\n";
}

TEST(RedisFaultsTest, AHungServerIsAnsweredByThePolicyWithinTheTimeout) {
  RedisServer redis;
  auto limiter = make_limiter({.url = redis.url(),
                               .prefix = "stop:",
                               .default_quota = *Quota::parse("3/h"),
                               .on_failure = OnRedisFailure::FailOpen,
                               .command_timeout = kTimeout,
                               .breaker_failures = 3,
                               .breaker_open_for = 50ms});
  ASSERT_TRUE(limiter);
  ASSERT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();  // Before the fault.
  ASSERT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis) << limiter->last_error();

  redis.pause_process();
  std::chrono::steady_clock::duration slowest{};
  for (int i = 0; i < 30; ++i) {
    const Timed t = timed_acquire(*limiter, "k");
    EXPECT_EQ(t.decision.source, DecisionSource::FailOpen);
    EXPECT_TRUE(t.decision.allowed());
    slowest = std::max(slowest, t.took);
  }
  EXPECT_LT(slowest, kNeverHangs);
  const RedisLimiterStats s = limiter->stats();
  EXPECT_GE(s.breaker_opens, 1u);
  EXPECT_GT(s.breaker_refusals, 0u);  // Once open, calls did not wait for the timeout.
  std::cout << "SIGSTOP: 30 calls answered fail-open, slowest "
            << std::chrono::duration<double, std::milli>(slowest).count() << " ms, "
            << s.breaker_refusals << " not sent (breaker open)\n";

  redis.resume_process();
  EXPECT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();
  // The key's state survived the hang, and so did the calls that timed out while they were
  // written but not answered: the server ran them when it resumed. A timed-out call may have
  // been counted; the key never admits more than its quota because of it.
  int admitted = 0;
  for (int i = 0; i < 3; ++i) admitted += limiter->try_acquire("k").allowed() ? 1 : 0;
  EXPECT_LE(admitted, 2);
  std::cout << "after SIGCONT: " << 2 - admitted
            << " of the 2 permits left were taken by calls that had timed out\n";
}

TEST(RedisFaultsTest, ClientPauseIsAnsweredByThePolicyAndThenByRedis) {
  RedisServer redis;
  auto limiter = make_limiter({.url = redis.url(),
                               .prefix = "pause:",
                               .default_quota = *Quota::parse("100/h"),
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = kTimeout,
                               .breaker_open_for = 20ms});
  ASSERT_TRUE(limiter);
  ASSERT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();  // Before the fault.
  ASSERT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis) << limiter->last_error();
  const internal::Reply paused = redis.command({"CLIENT", "PAUSE", "300", "ALL"});
  ASSERT_EQ(paused.text, "OK") << internal::describe(paused);
  const Timed t = timed_acquire(*limiter, "k");
  EXPECT_EQ(t.decision.source, DecisionSource::FailClosed);
  EXPECT_LT(t.took, kNeverHangs);
  EXPECT_NE(limiter->last_error().find("timed out"), std::string::npos) << limiter->last_error();
  EXPECT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();
}

TEST(RedisFaultsTest, NothingListeningFallsBackToAShareOfTheQuota) {
  const int port = testing::free_port();
  auto limiter = make_limiter({.url = "redis://127.0.0.1:" + std::to_string(port),
                               .prefix = "none:",
                               .default_quota = *Quota::parse("10/h"),
                               .on_failure = OnRedisFailure::Fallback,
                               .fallback_share = 0.5,
                               .command_timeout = kTimeout});
  ASSERT_TRUE(limiter);
  const Instant t0{Nanos{1'800'000'000'000'000'000}};
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    const RedisDecision d = limiter->try_acquire_at("k", t0);
    EXPECT_EQ(d.source, DecisionSource::Fallback);
    EXPECT_EQ(d.at, t0);
    admitted += d.allowed() ? 1 : 0;
  }
  EXPECT_EQ(admitted, 5);  // Half of the burst of 10, in this process.
  EXPECT_NE(limiter->last_error().find("Connection refused"), std::string::npos)
      << limiter->last_error();
  EXPECT_EQ(limiter->stats().policy_decisions, 10u);
}

TEST(RedisFaultsTest, TheFallbackOfEnvoysWindowIsEnvoysWindow) {
  const int port = testing::free_port();
  auto limiter = make_limiter({.url = "redis://127.0.0.1:" + std::to_string(port),
                               .prefix = "none:",
                               .algorithm = Algorithm::EnvoyFixedWindow,
                               .default_quota = *Quota::parse("10/h"),
                               .on_failure = OnRedisFailure::Fallback,
                               .fallback_share = 0.5,
                               .command_timeout = kTimeout});
  ASSERT_TRUE(limiter);
  // 30 minutes into an hour: the window ends in 30 minutes, whatever is admitted or denied.
  const Instant t0{std::chrono::hours(500'000) + std::chrono::minutes(30)};
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    const RedisDecision d = limiter->try_acquire_at("k", t0 + std::chrono::seconds(i));
    EXPECT_EQ(d.source, DecisionSource::Fallback);
    EXPECT_EQ(d.decision.reset_after(), std::chrono::minutes(30) - std::chrono::seconds(i))
        << "call " << i << ": the window's end, not a bucket's refill";
    admitted += d.allowed() ? 1 : 0;
  }
  EXPECT_EQ(admitted, 5);  // Half of the 10 per window, in this process.
  // Denied hits count, as in Envoy's window: a check sees 10 hits against 5.
  EXPECT_FALSE(limiter->peek_at("k", t0 + std::chrono::minutes(1), 0).allowed());
  EXPECT_TRUE(limiter->try_acquire_at("k", t0 + std::chrono::minutes(30)).allowed())
      << "the next window starts afresh";
}

TEST(RedisFaultsTest, ARedisThatIsDownAtStartIsNotAnErrorOfCreate) {
  RedisServer redis;
  redis.kill();
  auto limiter = make_limiter({.url = redis.url(),
                               .prefix = "late:",
                               .default_quota = *Quota::parse("2/h"),
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = kTimeout,
                               .breaker_open_for = 20ms,
                               .reconnect_backoff_min = 5ms,
                               .reconnect_backoff_max = 20ms});
  ASSERT_TRUE(limiter);
  EXPECT_EQ(limiter->try_acquire("k").source, DecisionSource::FailClosed);
  // `connect` says so, naming the server, and counts no call.
  const Result<void> down = limiter->connect(50ms);
  ASSERT_FALSE(down);
  EXPECT_NE(down.error().message().find("127.0.0.1:" + std::to_string(redis.port())),
            std::string::npos)
      << down.error().message();
  EXPECT_EQ(limiter->last_error(), down.error().message());
  EXPECT_EQ(limiter->stats().decisions, 1u);

  // It tries again until its timeout: a server that comes up meanwhile is connected to.
  // (The server restarts on this thread: a server forked by a thread dies with it.)
  std::optional<Result<void>> up;
  std::thread connecting([&] { up.emplace(limiter->connect(20s)); });
  std::this_thread::sleep_for(100ms);  // Connecting, and failing, meanwhile.
  redis.restart();
  connecting.join();
  ASSERT_TRUE(up.has_value() && *up) << limiter->last_error();
  EXPECT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis) << limiter->last_error();
  EXPECT_TRUE(limiter->try_acquire("k").allowed());
}

TEST(RedisFaultsTest, ConnectToAHungServerReturnsItsErrorByTheTimeout) {
  RedisServer redis;
  auto limiter = make_limiter({.url = redis.url(), .prefix = "hung:"});
  ASSERT_TRUE(limiter);
  redis.pause_process();
  const auto start = std::chrono::steady_clock::now();
  const Result<void> connected = limiter->connect(100ms);
  const auto took = std::chrono::steady_clock::now() - start;
  redis.resume_process();
  ASSERT_FALSE(connected);
  EXPECT_NE(connected.error().message().find("timed out"), std::string::npos)
      << connected.error().message();
  EXPECT_LT(took, kNeverHangs);
  EXPECT_TRUE(limiter->connect(20s)) << limiter->last_error();
}

using Mode = testing::FaultProxy::Mode;

// Makes `calls` calls through a misbehaving proxy; each must be answered by the policy, and
// none may hang.
void expect_policy_answers(RedisLimiter& limiter, int calls, DecisionSource policy,
                           const char* fault) {
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 0; i < calls; ++i) {
    const Timed t = timed_acquire(limiter, "k");
    EXPECT_EQ(t.decision.source, policy) << fault << ", call " << i;
    slowest = std::max(slowest, t.took);
  }
  EXPECT_LT(slowest, kNeverHangs) << fault;
  std::cout << fault << ": " << calls << " calls answered " << to_string(policy) << ", slowest "
            << std::chrono::duration<double, std::milli>(slowest).count()
            << " ms; last error: " << limiter.last_error() << "\n";
}

TEST(RedisFaultsTest, AProxyThatDelaysRepliesPastTheTimeoutIsAnsweredByThePolicy) {
  RedisServer redis;
  testing::FaultProxy proxy(redis.port());
  auto limiter = make_limiter({.url = proxy.url(),
                               .prefix = "delay:",
                               .default_quota = *Quota::parse("100/h"),
                               .on_failure = OnRedisFailure::FailOpen,
                               .command_timeout = kTimeout,
                               .breaker_open_for = 20ms});
  ASSERT_TRUE(limiter);
  ASSERT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();  // Before the fault.
  ASSERT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis) << limiter->last_error();

  // Slower than the timeout: every call is answered by the policy, by its deadline.
  proxy.set(Mode::Delay, 200ms);
  expect_policy_answers(*limiter, 20, DecisionSource::FailOpen, "replies delayed 200 ms");
  EXPECT_NE(limiter->last_error().find("timed out"), std::string::npos) << limiter->last_error();

  // Slower than usual but inside the timeout: Redis decides.
  proxy.set(Mode::Delay, 2ms);
  EXPECT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();
  const Timed t = timed_acquire(*limiter, "k");
  EXPECT_EQ(t.decision.source, DecisionSource::Redis) << limiter->last_error();
  EXPECT_GE(t.took, 2ms);
}

TEST(RedisFaultsTest, AProxyThatDropsConnectionsIsAnsweredByThePolicyUntilItForwardsAgain) {
  RedisServer redis;
  testing::FaultProxy proxy(redis.port());
  auto limiter = make_limiter({.url = proxy.url(),
                               .prefix = "drop:",
                               .default_quota = *Quota::parse("100/h"),
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = kTimeout,
                               .breaker_open_for = 20ms,
                               .reconnect_backoff_min = 5ms,
                               .reconnect_backoff_max = 20ms});
  ASSERT_TRUE(limiter);
  ASSERT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();  // Before the fault.
  ASSERT_EQ(limiter->try_acquire("k").source, DecisionSource::Redis) << limiter->last_error();
  const int before = proxy.accepted();

  proxy.set(Mode::Drop);
  std::this_thread::sleep_for(20ms);  // The proxy closes the open connections.
  expect_policy_answers(*limiter, 20, DecisionSource::FailClosed, "connections dropped");

  proxy.set(Mode::Pass);
  EXPECT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();
  EXPECT_GT(proxy.accepted(), before) << "the limiter reconnected";
  EXPECT_GT(limiter->stats().connects, 1u);
}

TEST(RedisFaultsTest, AProxyThatAcceptsAndNeverAnswersIsAnsweredByThePolicy) {
  RedisServer redis;
  testing::FaultProxy proxy(redis.port());
  proxy.set(Mode::BlackHole);
  auto limiter = make_limiter({.url = proxy.url(),
                               .prefix = "hole:",
                               .default_quota = *Quota::parse("10/h"),
                               .on_failure = OnRedisFailure::Fallback,
                               .fallback_share = 0.5,
                               .command_timeout = kTimeout,
                               .breaker_failures = 3,
                               .breaker_open_for = 20ms});
  ASSERT_TRUE(limiter);
  // The connect succeeds; no reply ever comes. The fallback admits its share: 5 of 10.
  int admitted = 0;
  auto slowest = std::chrono::steady_clock::duration::zero();
  for (int i = 0; i < 10; ++i) {
    const Timed t = timed_acquire(*limiter, "k");
    EXPECT_EQ(t.decision.source, DecisionSource::Fallback);
    admitted += t.decision.allowed() ? 1 : 0;
    slowest = std::max(slowest, t.took);
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_LT(slowest, kNeverHangs);
  EXPECT_GE(limiter->stats().breaker_opens, 1u);
  EXPECT_NE(limiter->last_error().find("timed out"), std::string::npos) << limiter->last_error();
  std::cout << "accepted, never answered: 10 calls answered by the fallback (5 admitted), slowest "
            << std::chrono::duration<double, std::milli>(slowest).count() << " ms\n";

  proxy.set(Mode::Pass);
  EXPECT_TRUE(until_redis_decides(*limiter, "k")) << limiter->last_error();
}

TEST(RedisFaultsTest, ACallersDeadlineBoundsTheWaitAndAPassedOneMakesNoRoundTrip) {
  RedisServer redis;
  testing::FaultProxy proxy(redis.port());
  auto limiter = make_limiter({.url = proxy.url(),
                               .prefix = "deadline:",
                               .default_quota = *Quota::parse("2/h"),
                               .on_failure = OnRedisFailure::FailClosed,
                               .command_timeout = 5s,  // The deadline, not this, must end the wait.
                               .breaker_failures = 1'000});
  ASSERT_TRUE(limiter);
  const auto in = [](auto d) { return std::chrono::steady_clock::now() + d; };
  // Before the deadline, Redis decides as `try_acquire` does; the deny cache remembers the denial.
  ASSERT_EQ(limiter->try_acquire_before("k", in(1s)).source, DecisionSource::Redis)
      << limiter->last_error();
  ASSERT_EQ(limiter->peek_before("k", in(1s)).source, DecisionSource::Redis);
  ASSERT_TRUE(limiter->try_acquire_before("k", in(1s)).allowed());
  ASSERT_FALSE(limiter->try_acquire_before("k", in(1s)).allowed());

  // A passed deadline: the policy answers at once, with no command sent and no error counted;
  // a key the deny cache knows is still answered by it.
  const RedisLimiterStats before = limiter->stats();
  const RedisDecision late = limiter->try_acquire_before("other", in(-1ns));
  EXPECT_EQ(late.source, DecisionSource::FailClosed);
  EXPECT_FALSE(late.allowed());
  EXPECT_EQ(limiter->peek_before("other", in(-1ns)).source, DecisionSource::FailClosed);
  EXPECT_EQ(limiter->try_acquire_before("k", in(-1ns)).source, DecisionSource::DenyCache);
  const RedisLimiterStats after = limiter->stats();
  EXPECT_EQ(after.deadline_refusals, before.deadline_refusals + 2);
  EXPECT_EQ(after.commands, before.commands);
  EXPECT_EQ(after.errors, before.errors);
  EXPECT_EQ(after.policy_decisions, before.policy_decisions + 2);

  // A server that never answers: the call ends at its deadline, long before the 5 s timeout.
  proxy.set(Mode::BlackHole);
  std::this_thread::sleep_for(20ms);
  const auto start = std::chrono::steady_clock::now();
  const RedisDecision hung = limiter->try_acquire_before("third", start + 50ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(hung.source, DecisionSource::FailClosed);
  EXPECT_LT(took, kNeverHangs);
  std::cout << "a call with 50 ms left and a 5 s timeout, on a server that never answers, "
               "answered by the policy after "
            << std::chrono::duration<double, std::milli>(took).count() << " ms\n";
}

// A fake "Redis" on a free loopback port that answers whatever it is sent with `header`, then
// `chunk` over and over for as long as the client reads (10 s at most): one endless reply, as a
// buggy proxy or a streaming service behind a mistaken URL would send. One thread of its own,
// stopped and joined when the object goes.
class EndlessReplyServer {
 public:
  EndlessReplyServer(std::string header, std::string chunk)
      : header_(std::move(header)), chunk_(std::move(chunk)) {
    listen_ = testing::listen_on_loopback(16, port_);
    if (listen_ >= 0) thread_ = std::thread([this] { run(); });
  }
  ~EndlessReplyServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_ >= 0) ::close(listen_);
  }
  EndlessReplyServer(const EndlessReplyServer&) = delete;
  EndlessReplyServer& operator=(const EndlessReplyServer&) = delete;

  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  std::uint64_t sent() const { return sent_.load(); }

 private:
  void run() {
    struct Client {
      int fd;
      bool asked = false;  // A command came: the reply has started.
      bool header_sent = false;
    };
    const auto end = std::chrono::steady_clock::now() + 10s;
    std::vector<Client> clients;
    while (!stop_ && std::chrono::steady_clock::now() < end) {
      std::vector<pollfd> fds{{listen_, POLLIN, 0}};
      for (const Client& c : clients) fds.push_back({c.fd, POLLIN | POLLOUT, 0});
      if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
      for (std::size_t i = 0; i < clients.size(); ++i) {
        Client& c = clients[i];
        const short events = fds[i + 1].revents;
        if ((events & POLLIN) != 0) {
          char discard[4096];
          const ssize_t n = ::recv(c.fd, discard, sizeof discard, 0);
          if (n == 0) {
            ::close(c.fd);
            c.fd = -1;
            continue;
          }
          if (n > 0) c.asked = true;
        }
        if (c.asked && (events & POLLOUT) != 0) {
          std::string out = c.header_sent ? "" : header_;
          while (out.size() < 65536) out += chunk_;
          const ssize_t n = ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
          if (n > 0) {
            c.header_sent = true;
            sent_ += static_cast<std::uint64_t>(n);
          } else if (n < 0 && errno != EAGAIN) {
            ::close(c.fd);
            c.fd = -1;
          }
        }
      }
      std::erase_if(clients, [](const Client& c) { return c.fd < 0; });
      if ((fds[0].revents & POLLIN) != 0) {
        const int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) clients.push_back({fd});
      }
    }
    for (const Client& c : clients) ::close(c.fd);
  }

  const std::string header_;
  const std::string chunk_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sent_{0};
  std::thread thread_;
};

// Returns this process's resident memory in kB.
long resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return 0;
}

// One endless reply, a bulk string or an array whose header claims more than any script's
// verdict: refused as soon as its header arrives, the connection closed, the call answered by
// the policy within its timeout and counted as an error; memory stays flat. It used to be read
// until the deadline never checked while bytes kept coming (1.6 GB in seconds).
TEST(RedisFaultsTest, AnEndlessReplyIsRefusedAtItsHeaderAndAnsweredByThePolicy) {
  const struct {
    const char* name;
    std::string header;
    std::string chunk;
    std::string error;
  } cases[] = {
      {"bulk", "$536870911\r\n", std::string(4096, 'x'),
       "protocol error: a bulk string of 536870911 bytes (more than the 1048576-byte reply "
       "limit)"},
      {"array", "*2147483647\r\n", ":1\r\n",
       "protocol error: an array of 2147483647 elements (more than 131072 values in one reply)"},
      {"nested", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n", "*1\r\n",
       "protocol error: arrays nested more than 8 deep"},
  };
  for (const auto& c : cases) {
    EndlessReplyServer server(c.header, c.chunk);
    auto limiter = make_limiter({.url = server.url(),
                                 .prefix = "endless:",
                                 .default_quota = *Quota::parse("10/h"),
                                 .on_failure = OnRedisFailure::FailClosed,
                                 .command_timeout = kTimeout,
                                 .breaker_failures = 1000});
    ASSERT_TRUE(limiter);
    const long before = resident_kb();
    auto slowest = std::chrono::steady_clock::duration::zero();
    // A call on a loaded machine can time out before the server has sent the header; the
    // header must still be refused, by name, in the calls that read it.
    int refused = 0;
    std::string errors;
    for (int i = 0; i < 20; ++i) {
      const Timed t = timed_acquire(*limiter, "k");
      EXPECT_EQ(t.decision.source, DecisionSource::FailClosed) << c.name;
      slowest = std::max(slowest, t.took);
      const std::string error = limiter->last_error();
      if (error.find(c.error) != std::string::npos) {
        ++refused;
      } else {
        errors += "\n  " + error;
      }
    }
    const long grown = resident_kb() - before;
    EXPECT_LT(slowest, kNeverHangs) << c.name;
    EXPECT_GE(limiter->stats().errors, 20u) << c.name;
    EXPECT_GE(refused, 10) << c.name << ": the other calls' errors:" << errors;
    EXPECT_LT(grown, 64 * 1024) << c.name << ": resident memory grew by " << grown << " kB";
    std::cout << "endless " << c.name << " reply: 20 calls answered fail-closed, slowest "
              << std::chrono::duration<double, std::milli>(slowest).count() << " ms, "
              << server.sent() << " bytes sent by the server, resident memory "
              << (grown >= 0 ? "+" : "") << grown << " kB\n";
  }
}

}  // namespace
}  // namespace floodgate
