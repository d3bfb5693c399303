// Fuzz target: every limiter driven by a sequence of operations at hostile instants (both ends
// of the int64 range and of the clamp range, and anything between), hostile costs (0, the burst,
// 2^32 - 1, 2^64 - 1) and hostile quotas (1 per ns, a window of 2^61 ns), with reservations held,
// cancelled in any order and at any instant, and quota changes. Every decision keeps its
// contract, every reservation's instant is in range, and no arithmetic is undefined (the target
// runs under UBSan).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "decision_checks.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/floodgate.h"
#include "fuzz_input.h"

namespace {

using namespace floodgate;
using floodgate::fuzz::check_decision;
using floodgate::fuzz::fail;
using floodgate::fuzz::FuzzInput;

constexpr std::int64_t kLimit = internal::kTimeLimit;

const char* const kQuotas[] = {"10/s",
                               "1/ns",
                               "3/7ns",
                               "1000000000/s burst 5",
                               "5/s burst 1",
                               "1/d",
                               "1/26687d",
                               "7/3s",
                               "1/2305843009213693952ns",
                               "100/ms burst 1000",
                               "2/s burst 2305843009"};

Quota pick_quota(FuzzInput& in) { return Quota::parse(in.pick(kQuotas)).value(); }

Instant pick_instant(FuzzInput& in, std::int64_t& last) {
  static const std::int64_t kInstants[] = {std::numeric_limits<std::int64_t>::min(),
                                           std::numeric_limits<std::int64_t>::max(),
                                           -kLimit - 1,
                                           -kLimit,
                                           -kLimit + 1,
                                           kLimit - 1,
                                           kLimit,
                                           kLimit + 1,
                                           0,
                                           1,
                                           -1,
                                           std::int64_t{1} << 61,
                                           -(std::int64_t{1} << 61)};
  switch (in.byte() % 4) {
    case 0:
      last = in.pick(kInstants);
      break;
    case 1:
      last = static_cast<std::int64_t>(in.u64());
      break;
    case 2:  // A little later than the last: most real traffic.
      last = internal::saturating_add(last, static_cast<std::int64_t>(in.u64() % 4'000'000'000));
      break;
    default:  // A little earlier: a stale caller.
      last = internal::saturating_sub(last, static_cast<std::int64_t>(in.byte()) * 1'000'000);
      break;
  }
  return Instant{Nanos{last}};
}

std::uint64_t pick_cost(FuzzInput& in, std::uint64_t burst) {
  const std::uint64_t kCosts[] = {0,
                                  1,
                                  2,
                                  burst,
                                  burst + 1,
                                  4'294'967'295u,
                                  std::numeric_limits<std::uint64_t>::max(),
                                  in.u64() % 16};
  return in.pick(kCosts);
}

void check_reservation(const Reservation& r, Instant at, const char* where) {
  if (!r.allowed()) return;
  // A reservation may be ready past the clamp range (up to 2^62 ns of debt ahead of `at`), never
  // before its caller's instant.
  if (r.ready_at().time_since_epoch().count() < internal::clamped_nanos(at)) {
    fail(where, "a reservation ready before its caller's instant");
  }
  if (r.delay_from(r.ready_at()) != Nanos::zero()) fail(where, "a delay at the ready instant");
  if (r.delay_from(at) < Nanos::zero()) fail(where, "a negative delay");
}

template <class L>
void drive_bucket(FuzzInput& in, const Quota& first, const char* name) {
  L limiter{first};
  std::vector<Reservation> held;
  std::int64_t last = 0;
  for (int op = 0; op < 64 && !in.empty(); ++op) {
    const Instant at = pick_instant(in, last);
    const std::uint64_t cost = pick_cost(in, limiter.quota().burst());
    switch (in.byte() % 8) {
      case 0:
        check_decision(limiter.try_acquire_at(at, cost), name);
        break;
      case 1:
        check_decision(limiter.peek_at(at, cost), name);
        break;
      case 2: {
        const Grant g = limiter.try_acquire_up_to_at(at, cost);
        check_decision(g.decision, name);
        if (g.permits > cost) fail(name, "more permits than asked for");
        break;
      }
      case 3:
        if (std::isnan(limiter.tokens_at(at))) fail(name, "tokens_at is not a number");
        break;
      case 4: {
        const Nanos max_delay =
            in.byte() % 2 == 0 ? kNever : Nanos{static_cast<std::int64_t>(in.u64() >> 1)};
        Reservation r = limiter.reserve_at(at, cost, max_delay);
        check_reservation(r, at, name);
        if (held.size() < 8) held.push_back(std::move(r));
        break;
      }
      case 5:
      case 6:
        if (!held.empty()) {
          const std::size_t k = in.byte() % held.size();
          if (held[k].cancel_at(at) < Nanos::zero()) fail(name, "a negative refund");
          held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
        }
        break;
      default: {
        static const OnQuotaChange kPolicies[] = {
            OnQuotaChange::KeepRemaining, OnQuotaChange::KeepProportion, OnQuotaChange::StartFull};
        limiter.set_quota_at(pick_quota(in), at, in.pick(kPolicies));
        break;
      }
    }
  }
}

template <class L>
void drive_window(FuzzInput& in, Quota quota, const char* name) {
  quota = quota.with_burst(quota.count());
  if (quota.count() > 1000) return;  // The log holds up to 2 x count entries.
  L limiter{quota};
  std::int64_t last = 0;
  for (int op = 0; op < 64 && !in.empty(); ++op) {
    const Instant at = pick_instant(in, last);
    const std::uint64_t cost = pick_cost(in, quota.burst());
    check_decision(
        in.byte() % 2 == 0 ? limiter.try_acquire_at(at, cost) : limiter.peek_at(at, cost), name);
  }
}

void drive_pacer(FuzzInput& in, const Quota& quota) {
  LeakyBucketPacer<ManualClock> pacer{quota};
  std::int64_t last = 0;
  for (int op = 0; op < 64 && !in.empty(); ++op) {
    const Instant at = pick_instant(in, last);
    const Instant turn = pacer.take_at(at);
    // Turns past the range saturate (documented); none is before the caller's clamped instant.
    if (turn.time_since_epoch().count() < internal::clamped_nanos(at)) {
      fail("pacer", "a turn before its caller's instant");
    }
  }
}

template <class Rule>
void drive_keyed(FuzzInput& in, const Quota& quota, OverflowPolicy overflow, std::size_t max_keys,
                 const char* name) {
  KeyedLimiterOptions<std::string> options;
  options.default_quota = quota;
  options.max_keys = max_keys;
  options.overflow = overflow;
  options.hash_seed = 1;
  options.resolver = [](std::string_view key) -> std::optional<Quota> {
    if (key == "vip") return Quota::per_second(1000).with_burst(50);
    if (key == "slow") return Quota::per(std::chrono::hours(24), 1);
    return std::nullopt;
  };
  KeyedLimiter<std::string, Rule, ManualClock> keyed{options};
  static const char* const kKeys[] = {"a", "b", "c", "vip", "slow", "a-much-longer-key-than-16"};
  std::int64_t last = 0;
  for (int op = 0; op < 64 && !in.empty(); ++op) {
    const Instant at = pick_instant(in, last);
    const std::string_view key = in.pick(kKeys);
    const std::uint64_t cost = pick_cost(in, 1000);
    switch (in.byte() % 6) {
      case 0:
      case 1:
        check_decision(keyed.try_acquire_at(key, at, cost), name);
        break;
      case 2:
        check_decision(keyed.peek_at(key, at, cost), name);
        break;
      case 3:
        (void)keyed.set_quota_at(key, pick_quota(in), at);
        break;
      case 4:
        keyed.clear_quota_at(key, at);
        break;
      default:
        (void)keyed.sweep(at);
        break;
    }
    if (keyed.stats().keys > max_keys) fail(name, "more keys than max_keys");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzInput in(data, size);
  const Quota quota = pick_quota(in);
  switch (in.byte() % 11) {
    case 0:
      drive_bucket<GcraLimiter<ManualClock>>(in, quota, "gcra");
      break;
    case 1:
      drive_bucket<TokenBucketLimiter<ManualClock>>(in, quota, "token bucket");
      break;
    case 2:
      drive_bucket<GcraLimiter<ManualClock, Threads::One>>(in, quota, "gcra, one thread");
      break;
    case 3:
      drive_bucket<TokenBucketLimiter<ManualClock, Threads::One>>(in, quota,
                                                                  "token bucket, one thread");
      break;
    case 4:
      drive_window<FixedWindowLimiter<ManualClock>>(in, quota, "fixed window");
      break;
    case 5:
      drive_window<SlidingWindowLogLimiter<ManualClock>>(in, quota, "sliding log");
      break;
    case 6:
      drive_window<SlidingWindowCounterLimiter<ManualClock>>(in, quota, "sliding counter");
      break;
    case 7:
      drive_pacer(in, quota);
      break;
    case 8:
      drive_keyed<GcraRule>(in, quota, OverflowPolicy::EvictLeastRecentlyUsed, 3, "keyed gcra");
      break;
    case 9:
      drive_keyed<TokenBucketRule>(in, quota, OverflowPolicy::SharedOverflow, 2,
                                   "keyed token bucket");
      break;
    default:
      drive_keyed<GcraRule>(in, quota, OverflowPolicy::RejectNewKeys, 1, "keyed, reject");
      break;
  }
  return 0;
}
