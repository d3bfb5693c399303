// TokenBucketLimiter against a transcription of golang.org/x/time/rate: the same decisions for
// AllowN, ReserveN, WaitN (its reservation with the deadline), Reservation.CancelAt (before, at
// and after the ready instant, in any order) and TokensAt, over random operations with
// non-decreasing instants.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "floodgate/core/clock.h"
#include "floodgate/core/quota.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testing/x_time_rate_reference.h"

namespace floodgate {
namespace {

struct Held {
  Reservation ours;
  x_time_rate::Reservation theirs;
};

// Runs `ops` random operations on one limiter and its transcription, and adds how many of each
// kind were compared to `counts` (allow, reserve, wait, cancel before / at / after ready,
// acquire).
template <Threads T>
void compare(std::uint64_t seed, int ops, std::vector<std::uint64_t>& counts) {
  std::mt19937_64 rng(seed);
  const auto below = [&](std::uint64_t n) { return n == 0 ? 0 : rng() % n; };
  // A token every 2^k ns (1 us to 16 ms), `count` tokens a period, burst 1 to 12.
  const std::int64_t ns_per_token = std::int64_t{1} << (10 + below(15));
  const std::uint64_t count = 1 + below(4);
  const std::uint64_t burst = 1 + below(12);
  const Quota quota =
      Quota::per(Nanos{ns_per_token * static_cast<std::int64_t>(count)}, count).with_burst(burst);
  ManualClock clock{Instant{Nanos{1'000'000'000}}};
  TokenBucketLimiter<ManualClock, T> ours{quota, clock};
  x_time_rate::Limiter theirs{ns_per_token, static_cast<std::int64_t>(burst)};
  std::vector<Held> held;
  std::int64_t now = clock.now().time_since_epoch().count();
  const auto where = [&](int op, const char* what) {
    return "seed " + std::to_string(seed) + " op " + std::to_string(op) + " (" + what + ") at " +
           std::to_string(now) + "ns, a token per " + std::to_string(ns_per_token) + "ns, burst " +
           std::to_string(burst);
  };
  for (int op = 0; op < ops; ++op) {
    // Time moves on: not at all, by a fraction of a token, to a held reservation's ready instant
    // (to cancel exactly there), or by a whole window.
    switch (below(10)) {
      case 0:
      case 1:
      case 2:
        break;
      case 3:
      case 4:
      case 5:
        now += static_cast<std::int64_t>(below(static_cast<std::uint64_t>(2 * ns_per_token)));
        break;
      case 6:
      case 7:
        if (!held.empty()) {
          const std::int64_t ready = held[below(held.size())].theirs.time_to_act;
          now = std::max(now, ready);
        }
        break;
      default:
        now += static_cast<std::int64_t>(below(burst + 1)) * ns_per_token;
        break;
    }
    clock.set(Instant{Nanos{now}});
    const Instant at{Nanos{now}};
    const std::uint64_t cost = below(burst + 2);  // 0 to burst + 1 (never possible).
    const auto n = static_cast<std::int64_t>(cost);
    switch (below(8)) {
      case 0:
      case 1: {  // AllowN
        ++counts[0];
        const bool want = theirs.allow(now, n);
        ASSERT_EQ(ours.try_acquire_at(at, cost).allowed(), want) << where(op, "allow");
        break;
      }
      case 2:
      case 3: {  // ReserveN, or WaitN's reservation with a deadline.
        const bool with_deadline = below(2) == 0;
        ++counts[with_deadline ? 2 : 1];
        const auto max_delay =
            with_deadline
                ? static_cast<std::int64_t>(below(static_cast<std::uint64_t>(3 * ns_per_token)))
                : INT64_MAX;
        const x_time_rate::Reservation want = theirs.reserve(now, n, max_delay);
        Reservation got = ours.reserve_at(at, cost, Nanos{max_delay});
        ASSERT_EQ(got.allowed(), want.ok) << where(op, "reserve");
        if (!want.ok) break;
        ASSERT_EQ(got.ready_at().time_since_epoch().count(), want.time_to_act)
            << where(op, "reserve");
        held.push_back({std::move(got), want});
        break;
      }
      case 4:
      case 5:
      case 6: {  // CancelAt, of any held reservation.
        if (held.empty()) break;
        const std::size_t k = below(held.size());
        Held h = std::move(held[k]);
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
        const std::int64_t ready = h.theirs.time_to_act;
        ++counts[now < ready ? 3 : now == ready ? 4 : 5];
        theirs.cancel(h.theirs, now);
        const Nanos given = h.ours.cancel_at(at);
        if (now > ready) {
          ASSERT_EQ(given, Nanos::zero()) << where(op, "cancel after ready");
        }
        break;
      }
      default: {  // The blocking acquire (WaitN), when it would not block.
        const auto max_delay =
            static_cast<std::int64_t>(below(static_cast<std::uint64_t>(2 * ns_per_token)));
        x_time_rate::Limiter probe = theirs;
        const x_time_rate::Reservation want = probe.reserve(now, n, max_delay);
        if (want.ok && want.time_to_act > now) break;  // It would sleep on the manual clock.
        ++counts[6];
        theirs = probe;
        const WaitResult got = ours.acquire(cost, at + Nanos{max_delay});
        ASSERT_EQ(got.allowed(), want.ok) << where(op, "acquire");
        break;
      }
    }
    // The state, as x/time/rate shows it: the tokens now and a window ahead.
    ASSERT_EQ(ours.tokens_at(at), theirs.tokens_at(now)) << where(op, "tokens_at");
    const std::int64_t ahead = now + static_cast<std::int64_t>(below(burst + 1)) * ns_per_token;
    ASSERT_EQ(ours.tokens_at(Instant{Nanos{ahead}}), theirs.tokens_at(ahead))
        << where(op, "tokens_at ahead");
  }
  counts[7] += theirs.capped_restores();
}

template <Threads T>
void compare_many(const char* name) {
  std::vector<std::uint64_t> total(8, 0);
  for (std::uint64_t seed = 0; seed < 300; ++seed) {
    compare<T>(seed, 500, total);
    if (testing::Test::HasFatalFailure()) return;
  }
  std::uint64_t all = 0;
  for (std::size_t i = 0; i < 7; ++i) all += total[i];
  // 150,000 operations (with the time steps and tokens_at checks between them); every kind of
  // call, and cancels on both sides of the ready instant and exactly at it, were exercised.
  EXPECT_GE(all, 100'000u) << name;
  for (std::size_t i = 0; i < 7; ++i) EXPECT_GT(total[i], 1000u) << name << " kind " << i;
  std::printf(
      "%s: allow %llu, reserve %llu, wait %llu, cancel before %llu / at %llu / after "
      "%llu ready, acquire %llu; restores capped at the reservation's tokens %llu\n",
      name, static_cast<unsigned long long>(total[0]), static_cast<unsigned long long>(total[1]),
      static_cast<unsigned long long>(total[2]), static_cast<unsigned long long>(total[3]),
      static_cast<unsigned long long>(total[4]), static_cast<unsigned long long>(total[5]),
      static_cast<unsigned long long>(total[6]), static_cast<unsigned long long>(total[7]));
}

TEST(XTimeRateDifferentialTest, SameDecisionsAsTheTranscriptionOneThread) {
  compare_many<Threads::One>("Threads::One");
}

TEST(XTimeRateDifferentialTest, SameDecisionsAsTheTranscriptionManyThreads) {
  compare_many<Threads::Many>("Threads::Many");
}

}  // namespace
}  // namespace floodgate
