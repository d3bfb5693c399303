#include "floodgate/testkit/linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "floodgate/limiters/gcra.h"
#include "floodgate/testkit/gtest.h"
#include "floodgate/testkit/limiter_checks.h"

namespace floodgate::testkit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Instant t0{seconds(100)};

// GCRA as a sequential model. It compares whole decisions, or only verdicts (so that hand-made
// histories need no metadata).
template <bool kVerdictOnly>
struct GcraModelOf {
  using State = std::int64_t;
  floodgate::internal::Gcra::Params params;
  State init() const { return floodgate::internal::Gcra::kFull; }
  std::optional<State> step(State state, const LimiterCall& call) const {
    const floodgate::internal::Gcra::Step s =
        floodgate::internal::Gcra::acquire(state, call.at, call.cost, params);
    const bool same = kVerdictOnly ? s.decision.verdict() == call.decision.verdict()
                                   : s.decision == call.decision;
    if (!same) return std::nullopt;
    return s.state;
  }
  std::size_t hash(State state) const { return std::hash<State>{}(state); }
  std::string expected(State state, const LimiterCall& call) const {
    return to_string(
        floodgate::internal::Gcra::acquire(state, call.at, call.cost, params).decision);
  }
};
using GcraModel = GcraModelOf<false>;
using VerdictModel = GcraModelOf<true>;
static_assert(ExplainingModel<VerdictModel, LimiterCall>);
static_assert(SequentialModel<GcraModel, LimiterCall>);
static_assert(!PartitionedModel<GcraModel, LimiterCall>);

Decision verdict_only(Verdict v) { return Decision(v, 0, 0, 1, Nanos::zero(), Nanos::zero()); }

Operation<LimiterCall> make_op(int worker, std::uint64_t invoked, std::uint64_t returned,
                               Instant at, std::uint64_t cost, Verdict verdict) {
  return Operation<LimiterCall>{worker,
                                0,
                                "try_acquire_at",
                                invoked,
                                returned,
                                {},
                                {},
                                LimiterCall{at, cost, verdict_only(verdict)},
                                {}};
}

// Every order that respects real time, tried one by one: the obviously correct checker.
template <typename R, typename M>
bool brute_force_linearizable(const std::vector<Operation<R>>& history, const M& model) {
  std::vector<bool> used(history.size(), false);
  std::function<bool(typename M::State, std::size_t)> go = [&](typename M::State state,
                                                               std::size_t placed) {
    if (placed == history.size()) return true;
    for (std::size_t i = 0; i < history.size(); ++i) {
      if (used[i]) continue;
      bool minimal = true;  // No unplaced operation returned before this one was invoked.
      for (std::size_t j = 0; j < history.size() && minimal; ++j) {
        minimal = used[j] || j == i || !(history[j].returned < history[i].invoked);
      }
      if (!minimal) continue;
      const auto next = model.step(state, *history[i].result);
      if (!next) continue;
      used[i] = true;
      if (go(*next, placed + 1)) return true;
      used[i] = false;
    }
    return false;
  };
  return go(model.init(), 0);
}

TEST(LinearizabilityTest, AgreesWithBruteForceOnTwentyThousandSmallHistories) {
  // Burst 3 at instants one interval apart: enough room that the order of equal records against
  // a third call matters, which is what symmetry reduction must get right.
  const VerdictModel model{floodgate::internal::Gcra::params(Quota::per_second(10).with_burst(3))};
  std::mt19937_64 rng(2026);
  int yes = 0;
  int disagreements = 0;
  std::string first;
  for (int h = 0; h < 20'000; ++h) {
    const int n = 1 + static_cast<int>(rng() % 8);
    std::vector<Operation<LimiterCall>> history;
    for (int i = 0; i < n; ++i) {
      // Distinct stamps: a coarse time times 16, plus the operation's index.
      const std::uint64_t start = rng() % 10;
      const std::uint64_t end = start + 1 + rng() % 8;
      // Few distinct records, so that symmetry reduction has work to do.
      const Instant at = t0 + milliseconds(100) * static_cast<int>(rng() % 2);
      const std::uint64_t cost = 1 + rng() % 2;
      const Verdict verdict = rng() % 2 == 0 ? Verdict::Denied : Verdict::Allowed;
      history.push_back(make_op(i, start * 16 + static_cast<std::uint64_t>(i),
                                end * 16 + static_cast<std::uint64_t>(i), at, cost, verdict));
    }
    std::sort(history.begin(), history.end(),
              [](const auto& a, const auto& b) { return a.invoked < b.invoked; });
    const bool want = brute_force_linearizable(history, model);
    yes += want ? 1 : 0;
    for (const bool symmetry : {true, false}) {
      const auto got = check_linearizable(history, model, {.symmetry_reduction = symmetry});
      if ((got.verdict == Linearizability::Yes) != want && disagreements++ == 0) {
        first = "history " + std::to_string(h) + " with symmetry " + (symmetry ? "on" : "off") +
                ": brute force says " + (want ? "yes" : "no") + "\n" +
                describe_linearizability(history, model, got, 0);
      }
    }
  }
  EXPECT_EQ(disagreements, 0) << first;
  // Both answers were exercised.
  EXPECT_GT(yes, 2000);
  EXPECT_LT(yes, 18'000);
}

std::vector<Operation<LimiterCall>> overlapping_burst(int calls, int admitted) {
  std::vector<Operation<LimiterCall>> history;
  for (int i = 0; i < calls; ++i) {
    history.push_back(make_op(i, static_cast<std::uint64_t>(i),
                              static_cast<std::uint64_t>(calls + i), t0, 1,
                              i < admitted ? Verdict::Allowed : Verdict::Denied));
  }
  return history;
}

TEST(LinearizabilityTest, RejectsABurstOfSixtyFourWithOneAdmissionTooManyQuickly) {
  // Porcupine returns Unknown after 60 s on the 40-call version of this history.
  const VerdictModel model{floodgate::internal::Gcra::params(Quota::per_second(10))};
  const auto history = overlapping_burst(64, 11);
  const auto start = std::chrono::steady_clock::now();
  const auto result = check_linearizable(history, model);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.verdict, Linearizability::No);
  // Symmetry leaves one choice per kind of record at each step: a few hundred nodes, where the
  // plain search needs about C(64, 11) (over 10^11).
  EXPECT_LT(result.nodes, 5'000u);
  std::printf(
      "64 overlapping calls, 11 admitted of 10: %s after %llu nodes in %lld us\n",
      std::string(to_string(result.verdict)).c_str(), static_cast<unsigned long long>(result.nodes),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  EXPECT_EQ(check_linearizable(overlapping_burst(64, 10), model).verdict, Linearizability::Yes);
  // The order the history is given in does not matter.
  auto shuffled = overlapping_burst(64, 10);
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(5));
  EXPECT_EQ(check_linearizable(shuffled, model).verdict, Linearizability::Yes);
}

TEST(LinearizabilityTest, AnswersUnknownWhenTheBudgetRunsOut) {
  const VerdictModel model{floodgate::internal::Gcra::params(Quota::per_second(10))};
  const auto result = check_linearizable(overlapping_burst(64, 11), model,
                                         {.budget = milliseconds(50), .symmetry_reduction = false});
  EXPECT_EQ(result.verdict, Linearizability::Unknown);
}

TEST(LinearizabilityTest, ReportsALaneChartAroundTheOperationNoOrderExplains) {
  const VerdictModel model{floodgate::internal::Gcra::params(Quota::per_second(10).with_burst(2))};
  // w0 and w1 take the burst; w2 starts after both returned, at the same instant, and is
  // admitted: nothing explains it.
  const std::vector<Operation<LimiterCall>> history = {make_op(0, 0, 3, t0, 1, Verdict::Allowed),
                                                       make_op(1, 1, 2, t0, 1, Verdict::Allowed),
                                                       make_op(2, 4, 5, t0, 1, Verdict::Allowed)};
  const auto result = check_linearizable(history, model);
  ASSERT_EQ(result.verdict, Linearizability::No);
  ASSERT_TRUE(result.stuck.has_value());
  EXPECT_EQ(*result.stuck, 2u);
  const std::string text = describe_linearizability(history, model, result, 99);
  EXPECT_NE(text.find("   w2 op 0 |    []| try_acquire_at -> 1 at 100s: Allowed"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("<== no order explains this"), std::string::npos) << text;
  EXPECT_NE(text.find(" * w0 op 0 |[--]  |"), std::string::npos) << text;
  EXPECT_NE(text.find("model state after the 2 operations it could explain: 100200000000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("there, the model would have answered w2 op 0 with Denied(remaining=0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("replay: rerun with RunOptions::seed = 99"), std::string::npos) << text;
}

// A register per key: writes set it, reads must see the latest write.
struct KeyedRegister {
  struct Record {
    std::uint64_t key;
    bool write;
    int value;
    friend bool operator==(const Record&, const Record&) = default;
  };
  using State = int;
  State init() const { return 0; }
  std::optional<State> step(State state, const Record& r) const {
    if (r.write) return r.value;
    if (r.value != state) return std::nullopt;
    return state;
  }
  std::size_t hash(State state) const { return std::hash<int>{}(state); }
  std::uint64_t partition(const Record& r) const { return r.key; }
};
static_assert(PartitionedModel<KeyedRegister, KeyedRegister::Record>);

TEST(LinearizabilityTest, ChecksEachKeyOnItsOwn) {
  using Record = KeyedRegister::Record;
  auto op = [](int worker, std::uint64_t invoked, std::uint64_t returned, Record r) {
    return Operation<Record>{worker, 0, r.write ? "write" : "read", invoked, returned, {}, {},
                             r,      {}};
  };
  std::vector<Operation<Record>> history;
  // 200 keys, each written then read back, interleaved: linearizable per key.
  for (std::uint64_t k = 0; k < 200; ++k) {
    history.push_back(op(0, 4 * k, 4 * k + 2, Record{k, true, static_cast<int>(k) + 1}));
    history.push_back(op(1, 4 * k + 1, 4 * k + 3, Record{k, false, static_cast<int>(k) + 1}));
  }
  EXPECT_EQ(check_linearizable(history, KeyedRegister{}).verdict, Linearizability::Yes);
  // A stale read on key 7, after the write returned: not linearizable.
  history.push_back(op(2, 10'000, 10'001, Record{7, false, 0}));
  const auto result = check_linearizable(history, KeyedRegister{});
  EXPECT_EQ(result.verdict, Linearizability::No);
  ASSERT_TRUE(result.stuck.has_value());
  EXPECT_EQ(history[*result.stuck].worker, 2);
}

TEST(LinearizabilityTest, ACorrectLimiterRunIsLinearizable) {
  const Quota quota = Quota::per_second(1000).with_burst(5);
  GcraLimiter<ManualClock> limiter{quota};
  const auto report = run<LimiterCall>(
      {.workers = 4, .seed = 11, .name = "linearizable"}, [&](Worker<LimiterCall>& w) {
        for (int i = 0; i < 200 && w.keep_going(); ++i) {
          acquire(w, limiter, t0 + milliseconds(i / 10), 1 + w.rng()() % 2);
        }
      });
  FLOODGATE_ASSERT_RUN_OK(report);
  const GcraModel model{floodgate::internal::Gcra::params(quota)};
  const auto result = check_linearizable(report.history, model);
  EXPECT_EQ(result.verdict, Linearizability::Yes)
      << describe_linearizability(report.history, model, result, report.options.seed);
}

}  // namespace
}  // namespace floodgate::testkit
