// RedisLimiter::acquire_all against a real redis-server of the test's own: a global limit and a
// per-client limit charged both or neither, decided as the in-process acquire_all_at decides
// them, exact under concurrent callers from several "hosts" (limiters with connections of their
// own), the misuses it refuses, and the failure policies deciding all or none.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "floodgate/keyed/acquire_all.h"
#include "floodgate/keyed/keyed_limiter.h"
#include "floodgate/limiters/gcra.h"
#include "floodgate/redis/redis_limiter.h"
#include "floodgate/testing/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using testing::make_limiter;
using testing::RedisServer;

RedisServer& server() {
  static RedisServer* s = new RedisServer();  // Killed by the kernel when the binary exits.
  return *s;
}

// A fleet's two limits on one Redis: `global` (one key) and `per_client` on its connections.
struct TwoLimits {
  std::unique_ptr<RedisLimiter> global;
  std::unique_ptr<RedisLimiter> per_client;
};

TwoLimits two_limits(const std::string& url, const std::string& prefix, Quota global,
                     Quota per_client, OnRedisFailure on_failure = OnRedisFailure::FailClosed) {
  TwoLimits limits;
  RedisLimiterOptions options{.url = url,
                              .prefix = prefix + ":global:",
                              .default_quota = global,
                              .on_failure = on_failure,
                              .connect_timeout = 2s,
                              .command_timeout = 2s,
                              .ttl_slack = 1h};
  limits.global = make_limiter(options);
  if (limits.global == nullptr) return limits;
  options.prefix = prefix + ":client:";
  options.default_quota = per_client;
  auto shared = RedisLimiter::create(options, *limits.global);
  if (!shared) {
    ADD_FAILURE() << shared.error().message();
    return limits;
  }
  limits.per_client = std::move(*shared);
  return limits;
}

// Calls for one request: the global limit, then the client's. The calls hold a view of `client`:
// it must outlive them.
std::vector<RedisCall> request(const TwoLimits& limits, std::string_view client,
                               std::uint64_t cost = 1) {
  return {{.limiter = limits.global.get(), .key = "{fleet}", .cost = cost},
          {.limiter = limits.per_client.get(), .key = client, .cost = cost}};
}

std::string describe(const Decision& d) {
  return std::string(to_string(d.verdict())) + " remaining " + std::to_string(d.remaining()) +
         " retry " + std::to_string(d.retry_after().count()) + "ns reset " +
         std::to_string(d.reset_after().count()) + "ns";
}

const Instant kStart{Nanos{1'760'000'000'000'000'000}};  // October 2025.

TEST(RedisAcquireAllTest, ChargesBothLimitsOrNeither) {
  const TwoLimits limits =
      two_limits(server().url(), "both", Quota::per_hour(5), Quota::per_hour(2));
  ASSERT_NE(limits.per_client, nullptr);
  const std::string a = "{fleet}:a";
  const std::string b = "{fleet}:b";
  // Client a: two admitted, the third refused by its own limit, which leaves the global limit
  // as it was.
  for (int i = 0; i < 2; ++i) {
    std::vector<RedisCall> calls = request(limits, a);
    const Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(calls, kStart);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(calls[0].decision.source, DecisionSource::Redis) << limits.global->last_error();
    EXPECT_TRUE(r->allowed()) << i;
    EXPECT_EQ(calls[0].decision.decision.remaining(), 4u - static_cast<unsigned>(i));
    EXPECT_EQ(calls[1].decision.decision.remaining(), 1u - static_cast<unsigned>(i));
  }
  std::vector<RedisCall> third = request(limits, a);
  Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(third, kStart);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->allowed());
  EXPECT_TRUE(r->refused_by(1));
  EXPECT_EQ(third[1].decision.decision.verdict(), Verdict::Denied);
  EXPECT_EQ(third[1].decision.decision.retry_after(), 30min) << "2/h: one permit a half hour";
  // The global limit's answer: what it has left, the refused request's permit not taken.
  EXPECT_TRUE(third[0].decision.allowed());
  EXPECT_EQ(third[0].decision.decision.remaining(), 3u);
  EXPECT_EQ(limits.global->peek_at("{fleet}", kStart, 0).decision.remaining(), 3u);

  // Client b drains the global limit, then is refused by it, which leaves b's own as it was.
  for (int i = 0; i < 2; ++i) {
    std::vector<RedisCall> calls = request(limits, b);
    EXPECT_TRUE(RedisLimiter::acquire_all_at(calls, kStart)->allowed());
  }
  std::vector<RedisCall> c_calls = request(limits, "{fleet}:c");
  EXPECT_TRUE(RedisLimiter::acquire_all_at(c_calls, kStart)->allowed());
  std::vector<RedisCall> refused = request(limits, "{fleet}:d");
  r = RedisLimiter::acquire_all_at(refused, kStart);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->refused_by(0));
  EXPECT_EQ(refused[0].decision.decision.verdict(), Verdict::Denied);
  EXPECT_EQ(refused[0].decision.decision.retry_after(), 12min) << "5/h: one permit every 12 min";
  EXPECT_EQ(refused[1].decision.decision.remaining(), 2u) << "d's own limit is untouched";
  EXPECT_EQ(server().command({"EXISTS", "both:client:{fleet}:d"}).integer, 0);
  EXPECT_EQ(limits.per_client->peek_at("{fleet}:d", kStart, 0).decision.remaining(), 2u);

  // Twelve minutes later the global limit has one permit again.
  std::vector<RedisCall> later = request(limits, "{fleet}:d");
  EXPECT_TRUE(RedisLimiter::acquire_all_at(later, kStart + 12min)->allowed());
  EXPECT_EQ(later[0].decision.decision.remaining(), 0u);
}

// The in-process acquire_all_at is the model: for random clients, costs (0, within the burst and
// above it) and instants, every outcome, refusing index and answer must be the same.
TEST(RedisAcquireAllTest, DecidesAsTheInProcessAcquireAll) {
  const Quota global_quota = *Quota::parse("1/s burst 8");
  const Quota client_quota = *Quota::parse("3/10s burst 4");
  const TwoLimits limits = two_limits(server().url(), "model", global_quota, client_quota);
  ASSERT_NE(limits.per_client, nullptr);
  GcraLimiter<> global{global_quota};
  KeyedLimiter<> per_client{{.default_quota = client_quota}};
  std::mt19937_64 rng(20261208);
  Instant now = kStart;
  int refused_by_global = 0;
  int refused_by_client = 0;
  int exceeds_burst = 0;
  int admitted = 0;
  for (int i = 0; i < 1500; ++i) {
    now += Nanos{static_cast<std::int64_t>(rng() % 900'000'000)};
    const std::string client = "{fleet}:" + std::to_string(rng() % 2 == 0 ? 0 : rng() % 6);
    const std::uint64_t cost = rng() % 16 == 0 ? rng() % 10 : 1 + rng() % 2;
    const auto expected = acquire_all_at(now, cost, global, for_key(per_client, client));
    std::vector<RedisCall> calls = request(limits, client, cost);
    const Result<RedisAllOrNone> got = RedisLimiter::acquire_all_at(calls, now);
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_EQ(calls[0].decision.source, DecisionSource::Redis) << limits.global->last_error();
    ASSERT_EQ(got->refused, expected.refused) << "request " << i << ", cost " << cost;
    for (std::size_t k = 0; k < 2; ++k) {
      ASSERT_EQ(calls[k].decision.decision, expected.decisions[k])
          << "request " << i << ", limit " << k << ", cost " << cost << ": Redis "
          << describe(calls[k].decision.decision) << ", in process "
          << describe(expected.decisions[k]);
      EXPECT_EQ(calls[k].decision.at, now);
    }
    admitted += expected.allowed() ? 1 : 0;
    refused_by_global += expected.refused_by(0) ? 1 : 0;
    refused_by_client += expected.refused_by(1) ? 1 : 0;
    exceeds_burst += expected.decision().verdict() == Verdict::ExceedsBurst ? 1 : 0;
  }
  // The trace reached every branch.
  EXPECT_GT(admitted, 300);
  EXPECT_GT(refused_by_global, 50);
  EXPECT_GT(refused_by_client, 50);
  EXPECT_GT(exceeds_burst, 5);
}

// Several hosts (limiters with connections of their own), several threads each, all at one
// instant: the global limit admits exactly its burst, no client more than its own, and after the
// run each key holds exactly what was admitted against it: no request refused by one limit took
// a permit from the other.
TEST(RedisAcquireAllTest, ConcurrentHostsChargeExactlyWhatWasAdmitted) {
  constexpr int kHosts = 3;
  constexpr int kThreadsPerHost = 4;
  constexpr int kClients = 8;
  constexpr int kRequestsPerThread = 24;
  const Quota global_quota = Quota::per_hour(30);
  const Quota client_quota = Quota::per_hour(5);
  std::vector<TwoLimits> hosts;
  for (int h = 0; h < kHosts; ++h) {
    hosts.push_back(two_limits(server().url(), "fleet", global_quota, client_quota));
    ASSERT_NE(hosts.back().per_client, nullptr);
  }
  // Workers record; the test's thread checks after joining them.
  struct Record {
    int client;
    bool allowed;
    std::size_t refused;
    bool from_redis;
    bool consistent;  // The refusing call's own answer is a refusal, the others' are not.
  };
  std::vector<std::vector<Record>> records(kHosts * kThreadsPerHost);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kHosts * kThreadsPerHost; ++w) {
    threads.emplace_back([&, w] {
      const TwoLimits& host = hosts[static_cast<std::size_t>(w / kThreadsPerHost)];
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kRequestsPerThread; ++i) {
        const int client = (w + i) % kClients;
        const std::string key = "{fleet}:" + std::to_string(client);
        std::vector<RedisCall> calls = request(host, key);
        const Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(calls, kStart);
        Record record{client, r && r->allowed(), r ? r->refused : 99, true, true};
        for (std::size_t k = 0; k < calls.size(); ++k) {
          record.from_redis =
              record.from_redis && calls[k].decision.source == DecisionSource::Redis;
          record.consistent =
              record.consistent && calls[k].decision.allowed() == (r && !r->refused_by(k));
        }
        records[static_cast<std::size_t>(w)].push_back(record);
      }
    });
  }
  while (ready.load() < kHosts * kThreadsPerHost) std::this_thread::yield();
  go.store(true);
  for (std::thread& t : threads) t.join();

  std::map<int, std::uint64_t> admitted_by_client;
  std::uint64_t admitted = 0;
  for (const auto& worker : records) {
    for (const Record& r : worker) {
      ASSERT_TRUE(r.from_redis) << hosts[0].global->last_error();
      EXPECT_TRUE(r.consistent);
      if (r.allowed) {
        ++admitted;
        ++admitted_by_client[r.client];
      } else {
        EXPECT_TRUE(r.refused == 0 || r.refused == 1) << r.refused;
      }
    }
  }
  // 8 clients x 5 exceeds the global 30, and every client asked for more than 5: exactly 30.
  EXPECT_EQ(admitted, 30u);
  const TwoLimits& host = hosts[0];
  EXPECT_EQ(host.global->peek_at("{fleet}", kStart, 0).decision.remaining(), 0u);
  for (int c = 0; c < kClients; ++c) {
    EXPECT_LE(admitted_by_client[c], 5u) << "client " << c;
    EXPECT_EQ(
        host.per_client->peek_at("{fleet}:" + std::to_string(c), kStart, 0).decision.remaining(),
        5u - admitted_by_client[c])
        << "client " << c << ": its key holds exactly its admitted requests";
  }
}

TEST(RedisAcquireAllTest, RefusesWhatItCannotDecideAllOrNone) {
  const TwoLimits limits =
      two_limits(server().url(), "misuse", Quota::per_hour(5), Quota::per_hour(2));
  ASSERT_NE(limits.per_client, nullptr);
  const auto error = [](std::vector<RedisCall> calls) {
    const Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(calls, kStart);
    return r ? std::string("no error") : r.error().message();
  };
  EXPECT_EQ(error({}), "acquire_all takes 1 to 16 calls (got 0)");
  EXPECT_EQ(error(std::vector<RedisCall>(17, {.limiter = limits.global.get(), .key = "k"})),
            "acquire_all takes 1 to 16 calls (got 17)");
  EXPECT_EQ(error({{.limiter = limits.global.get(), .key = "k"}, {.key = "x"}}),
            "acquire_all: call 1 (key \"x\") has no limiter");
  EXPECT_EQ(error({{.limiter = limits.global.get(), .key = "k", .peek = true}}),
            "acquire_all: call 0 (key \"k\") is a peek: all or none takes permits");
  auto bucket = make_limiter({.url = server().url(),
                              .prefix = "misuse:bucket:",
                              .algorithm = Algorithm::TokenBucket,
                              .command_timeout = 2s});
  ASSERT_NE(bucket, nullptr);
  EXPECT_EQ(
      error({{.limiter = limits.global.get(), .key = "k"}, {.limiter = bucket.get(), .key = "b"}}),
      "acquire_all: call 1 (key \"b\"): its limiter runs token-bucket; all or none runs on "
      "gcra");
  // Connections of its own, though to the same server.
  auto apart =
      make_limiter({.url = server().url(), .prefix = "misuse:apart:", .command_timeout = 2s});
  ASSERT_NE(apart, nullptr);
  EXPECT_EQ(
      error({{.limiter = limits.global.get(), .key = "k"}, {.limiter = apart.get(), .key = "c"}}),
      "acquire_all: call 1 (key \"c\"): its limiter does not share call 0's connections "
      "(make it with RedisLimiter::create(options, share_with))");
  // Nothing was sent for any of them.
  EXPECT_EQ(limits.global->stats().decisions, 0u);
  EXPECT_EQ(server().command({"EXISTS", "misuse:global:k"}).integer, 0);
}

// A state the script cannot read is an error reply: the policy decides, all or none, and the
// message names the key.
TEST(RedisAcquireAllTest, AKeyThatHoldsNoStateIsDecidedByThePolicy) {
  const TwoLimits limits =
      two_limits(server().url(), "foreign", Quota::per_hour(5), Quota::per_hour(2));
  ASSERT_NE(limits.per_client, nullptr);
  server().command({"SET", "foreign:client:{fleet}:a", "not a number"});
  std::vector<RedisCall> calls = request(limits, "{fleet}:a");
  const Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(calls, kStart);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->refused_by(0)) << "FailClosed refuses the first call";
  EXPECT_EQ(calls[0].decision.source, DecisionSource::FailClosed);
  EXPECT_EQ(calls[0].decision.failure, RedisFailure::ErrorReply);
  EXPECT_NE(limits.global->last_error().find("foreign:client:{fleet}:a does not hold a GCRA state"),
            std::string::npos)
      << limits.global->last_error();
  EXPECT_EQ(server().command({"EXISTS", "foreign:global:{fleet}"}).integer, 0)
      << "the global limit was not charged";
}

// Redis away: each limiter's policy decides, all or none. With the fallback, a request its
// client's local share refuses takes nothing from the global limit's local share.
TEST(RedisAcquireAllTest, WithoutRedisThePoliciesDecideAllOrNone) {
  RedisServer down;
  const std::string url = down.url();
  down.kill();
  const TwoLimits fallback =
      two_limits(url, "down", Quota::per_hour(3), Quota::per_hour(1), OnRedisFailure::Fallback);
  ASSERT_NE(fallback.per_client, nullptr);
  std::vector<RedisCall> first = request(fallback, "{fleet}:a");
  Result<RedisAllOrNone> r = RedisLimiter::acquire_all_at(first, kStart);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->allowed());
  EXPECT_EQ(first[0].decision.source, DecisionSource::Fallback);
  EXPECT_EQ(first[0].decision.failure, RedisFailure::Unreachable);
  EXPECT_EQ(first[0].decision.decision.remaining(), 2u);
  std::vector<RedisCall> second = request(fallback, "{fleet}:a");
  r = RedisLimiter::acquire_all_at(second, kStart);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->refused_by(1));
  EXPECT_EQ(second[0].decision.decision.remaining(), 2u) << "the global share was not charged";
  std::vector<RedisCall> other = request(fallback, "{fleet}:b");
  r = RedisLimiter::acquire_all_at(other, kStart);
  EXPECT_TRUE(r && r->allowed());
  EXPECT_EQ(other[0].decision.decision.remaining(), 1u);
  EXPECT_EQ(fallback.global->stats().policy_decisions, 3u);
  EXPECT_EQ(fallback.global->stats().errors, 3u);

  const TwoLimits open = two_limits(url, "down-open", Quota::per_hour(3), Quota::per_hour(1),
                                    OnRedisFailure::FailOpen);
  ASSERT_NE(open.per_client, nullptr);
  for (int i = 0; i < 3; ++i) {
    std::vector<RedisCall> calls = request(open, "{fleet}:a");
    r = RedisLimiter::acquire_all_at(calls, kStart);
    EXPECT_TRUE(r && r->allowed());
    EXPECT_EQ(calls[1].decision.source, DecisionSource::FailOpen);
  }

  // A deadline already passed: no round trip, the policy decides, and says why.
  const TwoLimits closed =
      two_limits(server().url(), "late", Quota::per_hour(3), Quota::per_hour(1));
  ASSERT_NE(closed.per_client, nullptr);
  std::vector<RedisCall> late = request(closed, "{fleet}:a");
  r = RedisLimiter::acquire_all(late, std::chrono::steady_clock::now());
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->refused_by(0));
  EXPECT_EQ(late[0].decision.failure, RedisFailure::OutOfTime);
  EXPECT_EQ(closed.global->stats().round_trips, 0u);
  EXPECT_EQ(closed.global->stats().deadline_refusals, 1u);
}

// Without an instant, the server's clock decides, one instant for every call.
TEST(RedisAcquireAllTest, ServerTimeIsOneInstantForEveryCall) {
  const TwoLimits limits =
      two_limits(server().url(), "servertime", Quota::per_hour(5), Quota::per_hour(2));
  ASSERT_NE(limits.per_client, nullptr);
  const auto before = std::chrono::system_clock::now().time_since_epoch();
  std::vector<RedisCall> calls = request(limits, "{fleet}:a");
  const Result<RedisAllOrNone> r = RedisLimiter::acquire_all(calls);
  const auto after = std::chrono::system_clock::now().time_since_epoch();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->allowed()) << limits.global->last_error();
  EXPECT_EQ(calls[0].decision.at, calls[1].decision.at);
  EXPECT_GE(calls[0].decision.at.time_since_epoch(), before - 1ms);
  EXPECT_LE(calls[0].decision.at.time_since_epoch(), after + 1ms);
  // The keys live until their buckets are full again: a permit of 5/h is 12 minutes.
  const std::int64_t pttl = server().command({"PTTL", "servertime:global:{fleet}"}).integer;
  EXPECT_GT(pttl, 11 * 60'000);
  EXPECT_LE(pttl, 12 * 60'000 + 3'600'000) << "12 min and the hour of slack";
}

}  // namespace
}  // namespace floodgate
