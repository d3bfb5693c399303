// Test-only helpers shared by the waiting and reconfiguration tests of GcraLimiter and
// TokenBucketLimiter: each limiter's pure rule as a sequential model (`RuleOf`), a probe that
// compares two limiters' states, and the bounded wait for a ManualClock's sleepers. Not
// installed.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "floodgate/limiters/gcra.h"
#include "floodgate/limiters/token_bucket.h"
#include "floodgate/testkit/runner.h"

namespace floodgate::waiting_test {

using Limiters = ::testing::Types<GcraLimiter<ManualClock>, TokenBucketLimiter<ManualClock>>;

// Reports whether two states are the same bits: exact for integers and doubles alike (a model's
// memo table must not merge -0.0 with 0.0, nor fail to match a NaN with itself).
template <typename State>
bool same_bits(State a, State b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// A rule's pure functions in the shape the sequential models use.
template <class Impl>
struct RuleAdapter {
  using Rule = Impl;
  using State = typename Impl::State;
  using Params = typename Impl::Params;
  using Charge = typename Impl::Charge;
  static constexpr State kFull = Impl::kFull;

  static Params params(const Quota& quota) { return Impl::params(quota); }
  static std::pair<Decision, State> acquire(State s, Instant at, std::uint64_t cost,
                                            const Params& p) {
    const auto step = Impl::acquire(s, at, cost, p);
    return {step.decision, step.state};
  }
  static State change(State s, Instant at, const Params& from, const Params& to,
                      OnQuotaChange policy) {
    return Impl::change_quota(s, at, from, to, policy);
  }
  // The reservation's verdict, ready instant and state after it.
  static std::tuple<Verdict, Instant, State> reserve(State s, Instant at, std::uint64_t cost,
                                                     const Params& p) {
    const auto step = Impl::reserve(s, at, cost, kNever, p);
    return {step.verdict, Instant{Nanos{step.at}}, step.state};
  }
  static Charge charge(std::uint64_t cost, const Params& p) { return Impl::charge(cost, p); }
  // The state and latest call's instant after cancelling a reservation, and the refund as
  // `Reservation::cancel_at` reports it.
  static std::tuple<State, std::int64_t, Nanos> cancel(State s, std::int64_t last_event,
                                                       const typename Impl::Cancelled& r,
                                                       Instant at, const Params& p) {
    const auto step = Impl::cancel(s, last_event, r, at, p);
    return {step.state, step.last_event, step.given};
  }
  static std::size_t hash(State s) {
    return std::hash<std::uint64_t>{}(std::bit_cast<std::uint64_t>(s));
  }
};

// Each limiter's rule, for the sequential models.
template <typename L>
struct RuleOf;
template <>
struct RuleOf<GcraLimiter<ManualClock>> : RuleAdapter<internal::Gcra> {};
template <>
struct RuleOf<TokenBucketLimiter<ManualClock>> : RuleAdapter<internal::TokenBucket> {};

// Lets `limiter`'s state be compared: what it would decide for every cost at many instants.
template <typename L>
std::vector<Decision> probe(const L& limiter, Instant from) {
  std::vector<Decision> out;
  for (int k = 0; k < 40; ++k) {
    for (std::uint64_t cost : {0u, 1u, 2u, 5u}) {
      out.push_back(limiter.peek_at(from + std::chrono::milliseconds(37) * k, cost));
    }
  }
  return out;
}

// A record of one call in a waiting test.
struct WaitCall {
  WaitResult result;
  friend bool operator==(const WaitCall& a, const WaitCall& b) {
    return a.result.status == b.result.status && a.result.at == b.result.at;
  }
};

// Waits (bounded) until `clock` has exactly `n` sleepers; returns whether it did.
inline bool await_sleepers(const ManualClock& clock, int n, testkit::Worker<WaitCall>& w) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (clock.sleepers() != n) {
    if (!w.keep_going() || std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace floodgate::waiting_test
