// The rate-bound invariant: the order-free check that a history of admissions respects a quota.
//
// For every window [t1, t2] of the callers' instants, the admitted cost must be at most
// `burst + count x (t2 - t1) / period`. The check needs no order between calls, so it is the
// right assertion for concurrent tests: workers record what was admitted and at which instant,
// and the test thread checks the whole history after joining them. It runs in O(n log n), in
// exact integer arithmetic against the quota's true rate (not its rounded interval).
// Pure functions; thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/core/quota.h"
#include "floodgate/core/time.h"

namespace floodgate::testkit {

// One admitted request: its instant and its cost.
struct Admission {
  Instant at;          // When it was admitted.
  std::uint64_t cost;  // Permits admitted.
};

// A window that admitted more than the quota allows.
struct RateBoundViolation {
  Instant from;            // The window's first instant.
  Instant to;              // The window's last instant.
  std::uint64_t admitted;  // Total cost admitted at instants in [from, to].
  std::uint64_t allowed;   // burst + floor(count x (to - from) / period).

  // Returns the violation as one sentence with its numbers.
  std::string describe() const {
    return "admitted " + std::to_string(admitted) + " in [" +
           std::to_string(from.time_since_epoch().count()) + "ns, " +
           std::to_string(to.time_since_epoch().count()) + "ns], but the quota allows at most " +
           std::to_string(allowed);
  }
};

// Returns the window that breaks the bound most, or nothing if `admissions` respect `quota`
// (with `slack` permits more allowed in every window, for limiters that count in floating point).
inline std::optional<RateBoundViolation> find_rate_bound_violation(
    std::vector<Admission> admissions, const Quota& quota, double slack = 0.0) {
  std::sort(admissions.begin(), admissions.end(),
            [](const Admission& a, const Admission& b) { return a.at < b.at; });
  // For a window from admission i to admission j (sorted), with P the prefix sums of cost:
  //   P[j+1] - P[i] <= burst + count (t_j - t_i) / period
  //   <=> (P[j+1] period - count t_j) - (P[i] period - count t_i) <= burst period.
  // A running minimum of the second term over i <= j checks every window in one pass.
  __extension__ using Wide = __int128;  // GCC and Clang; exact products of 64-bit values.
  const Wide period = quota.period().count();
  const Wide count = quota.count();
  const Wide limit =
      Wide{quota.burst()} * period + static_cast<Wide>(slack * static_cast<double>(period));
  Wide prefix = 0;
  Wide best_start = 0;
  std::size_t best_start_index = 0;
  Wide worst_excess = 0;
  std::optional<RateBoundViolation> worst;
  for (std::size_t j = 0; j < admissions.size(); ++j) {
    const Wide t = admissions[j].at.time_since_epoch().count();
    const Wide start = prefix * period - count * t;
    // Strictly less: among admissions at one instant the first has the smallest prefix, so the
    // window starts before all of them.
    if (j == 0 || start < best_start) {
      best_start = start;
      best_start_index = j;
    }
    prefix += admissions[j].cost;
    const Wide excess = (prefix * period - count * t) - best_start - limit;
    if (excess > worst_excess) {
      worst_excess = excess;
      const Admission& first = admissions[best_start_index];
      std::uint64_t admitted = 0;
      for (std::size_t k = best_start_index; k <= j; ++k) admitted += admissions[k].cost;
      const Wide span = t - Wide{first.at.time_since_epoch().count()};
      worst = RateBoundViolation{
          first.at, admissions[j].at, admitted,
          static_cast<std::uint64_t>(Wide{quota.burst()} + count * span / period)};
    }
  }
  return worst;
}

}  // namespace floodgate::testkit
