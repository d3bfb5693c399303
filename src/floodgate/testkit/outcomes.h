// Outcome tables, jcstress style, for tiny scenarios: two to four workers with one to three
// operations each. `allowed_outcomes` enumerates every outcome that some interleaving of the
// workers' programs gives on a sequential model; `OutcomeTable` counts what many real runs
// produced and grades each outcome ACCEPTABLE (some interleaving explains it) or FORBIDDEN.
//
//   const auto allowed = allowed_outcomes(initial, programs, apply);
//   OutcomeTable<Verdict> table(allowed);
//   for (int i = 0; i < 10000; ++i) table.record(run_scenario_once());
//   std::cout << table.describe();   // outcome | count | ACCEPTABLE/FORBIDDEN
//   EXPECT_EQ(table.forbidden(), 0);
//
// Not thread-safe: record from the test's thread, after each run.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/testkit/runner.h"

namespace floodgate::testkit {

// An outcome: every operation's result, worker by worker, each in program order.
template <typename Output>
using Outcome = std::vector<Output>;

// Returns the outcomes that interleavings of `programs` (one list of inputs per worker, run in
// order) give when `apply(state, input)` steps the model and returns {output, next state}.
// Enumerates every interleaving: keep scenarios tiny (12 operations make 369,600 of them for 4
// workers of 3).
template <typename State, typename Input, typename Apply>
auto allowed_outcomes(const State& initial, const std::vector<std::vector<Input>>& programs,
                      Apply apply) {
  using Output = decltype(apply(initial, programs[0][0]).first);
  std::vector<std::size_t> offset(programs.size() + 1, 0);
  for (std::size_t w = 0; w < programs.size(); ++w) offset[w + 1] = offset[w] + programs[w].size();
  std::set<Outcome<Output>> outcomes;
  std::vector<std::size_t> next(programs.size(), 0);
  std::vector<std::optional<Output>> results(offset.back());
  std::function<void(const State&, std::size_t)> go = [&](const State& state, std::size_t done) {
    if (done == offset.back()) {
      Outcome<Output> outcome;
      for (const auto& r : results) outcome.push_back(*r);
      outcomes.insert(std::move(outcome));
      return;
    }
    for (std::size_t w = 0; w < programs.size(); ++w) {
      if (next[w] == programs[w].size()) continue;
      auto [output, after] = apply(state, programs[w][next[w]]);
      results[offset[w] + next[w]] = output;
      ++next[w];
      go(after, done + 1);
      --next[w];
    }
  };
  go(initial, 0);
  return outcomes;
}

// Counts outcomes and grades them against the allowed set.
template <typename Output>
class OutcomeTable {
 public:
  // A table that grades outcomes against `allowed`, with nothing counted yet.
  explicit OutcomeTable(std::set<Outcome<Output>> allowed) : allowed_(std::move(allowed)) {}

  // Counts one run's outcome.
  void record(const Outcome<Output>& outcome) { ++counts_[outcome]; }

  // Returns how many runs produced an outcome no interleaving explains.
  std::int64_t forbidden() const {
    std::int64_t n = 0;
    for (const auto& [outcome, count] : counts_) n += allowed_.count(outcome) ? 0 : count;
    return n;
  }

  // Returns the table: one row per outcome seen or allowed, with its count and grade.
  std::string describe() const {
    std::string out = "outcome | count | grade\n";
    std::set<Outcome<Output>> rows = allowed_;
    for (const auto& [outcome, count] : counts_) rows.insert(outcome);
    for (const auto& outcome : rows) {
      std::string text;
      for (const Output& o : outcome) text += (text.empty() ? "" : ", ") + describe_value(o);
      const auto it = counts_.find(outcome);
      const std::int64_t count = it == counts_.end() ? 0 : it->second;
      out += "(" + text + ") | " + std::to_string(count) + " | " +
             (allowed_.count(outcome) ? "ACCEPTABLE" : "FORBIDDEN: no interleaving gives it") +
             "\n";
    }
    return out;
  }

 private:
  std::set<Outcome<Output>> allowed_;
  std::map<Outcome<Output>, std::int64_t> counts_;
};

}  // namespace floodgate::testkit
