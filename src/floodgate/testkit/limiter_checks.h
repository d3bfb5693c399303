// Checks for histories of rate-limiter calls, cheapest first: counts, the rate bound over every
// window, and the witness order of limiters whose state is an arrival time, such as GCRA (the
// order the limiter itself serialized the calls, read back from its decisions).
//
//   auto report = floodgate::testkit::run<floodgate::testkit::LimiterCall>(
//       {.workers = 8}, [&](auto& w) {
//         for (int i = 0; i < 1000 && w.keep_going(); ++i) {
//           floodgate::testkit::acquire(w, limiter, t0 + i * 1ms);
//         }
//       });
//   EXPECT_FALSE(floodgate::testkit::check_rate_bound(report.history, quota));
//   EXPECT_FALSE(floodgate::testkit::check_arrival_time_witness(report.history, initial, model));
//
// Pure functions over recorded histories; thread-safe.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/core/decision.h"
#include "floodgate/core/internal/format.h"
#include "floodgate/core/internal/time_math.h"
#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"
#include "floodgate/testkit/rate_bound.h"
#include "floodgate/testkit/runner.h"
#include "floodgate/testkit/witness.h"

namespace floodgate::testkit {

// One limiter call as a worker records it: its instant, its cost and the decision.
struct LimiterCall {
  Instant at;          // The instant passed to the limiter.
  std::uint64_t cost;  // The permits asked for.
  Decision decision;   // What the limiter answered.

  // Calls are equal when their instants, costs and decisions are.
  friend bool operator==(const LimiterCall&, const LimiterCall&) = default;
};

// Returns the call as "3 at 1000ms: Allowed(remaining=...)".
inline std::string to_string(const LimiterCall& call) {
  return std::to_string(call.cost) + " at " +
         floodgate::internal::format_duration(call.at.time_since_epoch()) + ": " +
         to_string(call.decision);
}

// Calls `limiter.try_acquire_at(at, cost)` as the worker's next operation and records it.
template <typename Limiter>
LimiterCall acquire(Worker<LimiterCall>& worker, Limiter& limiter, Instant at,
                    std::uint64_t cost = 1) {
  return worker.step("try_acquire_at(" +
                         floodgate::internal::format_duration(at.time_since_epoch()) + ", " +
                         std::to_string(cost) + ")",
                     [&] {
                       return LimiterCall{at, cost, limiter.try_acquire_at(at, cost)};
                     });
}

// Returns the total cost admitted in `history`.
inline std::uint64_t admitted_cost(const std::vector<Operation<LimiterCall>>& history) {
  std::uint64_t total = 0;
  for (const auto& op : history) {
    if (op.result && op.result->decision.allowed()) total += op.result->cost;
  }
  return total;
}

// Returns the window of caller instants in which `history` admitted more than `quota` allows
// (burst + count x length / period, plus `slack` permits for a limiter that counts in floating
// point), or nothing.
inline std::optional<RateBoundViolation> check_rate_bound(
    const std::vector<Operation<LimiterCall>>& history, const Quota& quota, double slack = 0.0) {
  std::vector<Admission> admissions;
  for (const auto& op : history) {
    if (op.result && op.result->decision.allowed() && op.result->cost > 0) {
      admissions.push_back({op.result->at, op.result->cost});
    }
  }
  return find_rate_bound_violation(std::move(admissions), quota, slack);
}

// Returns the aligned window [k x period, (k + 1) x period) of caller instants in which `history`
// admitted more than `quota.count()`, or nothing: the bound of a fixed-window limiter.
inline std::optional<RateBoundViolation> check_aligned_window_bound(
    const std::vector<Operation<LimiterCall>>& history, const Quota& quota) {
  const std::int64_t period = quota.period().count();
  std::vector<std::pair<std::int64_t, std::uint64_t>> admitted;  // (window, cost)
  for (const auto& op : history) {
    if (!op.result || !op.result->decision.allowed() || op.result->cost == 0) continue;
    const std::int64_t t = op.result->at.time_since_epoch().count();
    admitted.emplace_back(t / period - (t % period < 0 ? 1 : 0), op.result->cost);
  }
  std::sort(admitted.begin(), admitted.end());
  for (std::size_t i = 0; i < admitted.size();) {
    std::uint64_t total = 0;
    std::size_t j = i;
    for (; j < admitted.size() && admitted[j].first == admitted[i].first; ++j) {
      total += admitted[j].second;
    }
    if (total > quota.count()) {
      const Instant from{Nanos{admitted[i].first * period}};
      return RateBoundViolation{from, from + Nanos{period - 1}, total, quota.count()};
    }
    i = j;
  }
  return std::nullopt;
}

// Returns the window [s, s + period) of caller instants, for any s, in which `history` admitted
// more than `limit`, or nothing: the bound of an exact sliding window (with `limit` the quota's
// count) or of an approximate one (with its documented worst case). O(n log n).
inline std::optional<RateBoundViolation> check_sliding_window_bound(
    const std::vector<Operation<LimiterCall>>& history, std::uint64_t limit, Nanos period) {
  std::vector<std::pair<std::int64_t, std::uint64_t>> admitted;  // (instant, cost)
  for (const auto& op : history) {
    if (op.result && op.result->decision.allowed() && op.result->cost > 0) {
      admitted.emplace_back(op.result->at.time_since_epoch().count(), op.result->cost);
    }
  }
  std::sort(admitted.begin(), admitted.end());
  // The worst window starts at an admission: slide its end forward, its start behind.
  std::uint64_t sum = 0;
  for (std::size_t first = 0, end = 0; first < admitted.size(); ++first) {
    while (end < admitted.size() && admitted[end].first - admitted[first].first < period.count()) {
      sum += admitted[end++].second;
    }
    if (sum > limit) {
      return RateBoundViolation{Instant{Nanos{admitted[first].first}},
                                Instant{Nanos{admitted[first].first + period.count() - 1}}, sum,
                                limit};
    }
    sum -= admitted[first].second;
  }
  return std::nullopt;
}

// A sequential model of a limiter whose whole state is one arrival time that only grows (GCRA,
// a pacer): `rule(state, at, cost)` returns the decision and the next state.
template <typename Rule>
concept ArrivalTimeRule = requires(Rule rule, std::int64_t state, Instant at, std::uint64_t cost) {
  { rule(state, at, cost) } -> std::convertible_to<std::pair<Decision, std::int64_t>>;
};

// Checks that a history of calls to such a limiter is exactly what `rule` gives in the order the
// limiter serialized them, and that this order respects real time. No test hook is needed: an
// admission reports the state it left (`at + reset_after`), and a denial the state it read. A
// call that consumed nothing and saw a full limiter (reset_after 0) is placed as early as real
// time allows: after every state that calls finished before it began had already seen. Catches
// lost updates, double counting, decisions from stale state and wrong metadata, and names the
// first call that cannot be explained.
template <ArrivalTimeRule Rule>
std::optional<WitnessViolation> check_arrival_time_witness(
    const std::vector<Operation<LimiterCall>>& history, std::int64_t initial_state, Rule rule) {
  struct Ticket {
    std::int64_t state;  // The state after an admission, or the state a read saw.
    int kind;            // 0: admission (wrote `state`); 1: a read of `state`.
    bool operator<(const Ticket& o) const {
      return state != o.state ? state < o.state : kind < o.kind;
    }
  };
  const std::size_t n = history.size();
  std::vector<std::optional<std::int64_t>> known(n);  // The state each call wrote or read.
  for (std::size_t i = 0; i < n; ++i) {
    const auto& op = history[i];
    if (!op.result) continue;
    const std::int64_t t = floodgate::internal::clamped_nanos(op.result->at);
    const Nanos reset = op.result->decision.reset_after();
    const bool wrote = op.result->decision.allowed() && op.result->cost > 0;
    if (wrote || reset > Nanos::zero()) known[i] = t + reset.count();
  }
  // For calls that saw a full limiter: the largest state known to any call that returned before
  // this one was invoked (the state can only have grown since).
  std::vector<std::size_t> by_return(n);
  for (std::size_t i = 0; i < n; ++i) by_return[i] = i;
  std::sort(by_return.begin(), by_return.end(), [&](std::size_t a, std::size_t b) {
    return history[a].returned < history[b].returned;
  });
  std::vector<std::size_t> by_invoke(n);
  for (std::size_t i = 0; i < n; ++i) by_invoke[i] = i;
  std::sort(by_invoke.begin(), by_invoke.end(),
            [&](std::size_t a, std::size_t b) { return history[a].invoked < history[b].invoked; });
  std::vector<Ticket> tickets(n, Ticket{initial_state, 1});
  std::int64_t floor = initial_state;
  std::size_t next_return = 0;
  for (const std::size_t i : by_invoke) {
    while (next_return < n && history[by_return[next_return]].returned < history[i].invoked) {
      const auto& k = known[by_return[next_return++]];
      if (k && *k > floor) floor = *k;
    }
    const auto& op = history[i];
    if (!op.result) continue;
    const bool wrote = op.result->decision.allowed() && op.result->cost > 0;
    tickets[i] = known[i] ? Ticket{*known[i], wrote ? 0 : 1} : Ticket{floor, 1};
  }
  const Operation<LimiterCall>* base = history.data();
  std::int64_t state = initial_state;
  return check_witness_order(
      history,
      [&](const Operation<LimiterCall>& op) {
        return tickets[static_cast<std::size_t>(&op - base)];
      },
      [&](const Operation<LimiterCall>& op) -> std::optional<std::string> {
        const auto [want, next] = rule(state, op.result->at, op.result->cost);
        const Decision& got = op.result->decision;
        if (got.verdict() != want.verdict() || got.remaining() != want.remaining() ||
            got.retry_after() != want.retry_after() || got.reset_after() != want.reset_after()) {
          return "the limiter decided " + to_string(got) + ", but in its own serialization " +
                 "order (state " + std::to_string(state) + "ns) the sequential rule decides " +
                 to_string(want);
        }
        state = next;
        return std::nullopt;
      });
}

}  // namespace floodgate::testkit
