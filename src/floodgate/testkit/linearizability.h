// Linearizability against a sequential model: is there an order of the recorded operations that
// respects real time (an operation that returned before another was invoked comes first) and in
// which the model, stepped one operation at a time, produces every recorded result?
//
// The search is Wing & Gong's with Lowe's memoization of (linearized set, model state), split by
// the model's partition key when it has one (Horn & Kroening), and with symmetry reduction:
// pending operations with equal records are interchangeable, so only the one that returns first
// is tried. That last step is what makes rate-limiter histories cheap: a burst of n overlapping
// calls with one admission too many makes a plain search try about C(n, k) orders (Porcupine
// gives up on n = 40 after 60 s), but with symmetry the choices at each step are one per kind
// of record. A time budget turns a search that would run too long into `Unknown`, never a hang.
//
// Cheaper checks come first (floodgate/testkit/limiter_checks.h): counts, the rate bound and the
// witness order answer in one pass when they apply. Use this when the object gives no witness.
// Pure functions; thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "floodgate/testkit/runner.h"

namespace floodgate::testkit {

// A sequential model over records of type R (each record holds an operation's input and output).
template <typename M, typename R>
concept SequentialModel = requires(const M& model, const typename M::State& state,
                                   const R& record) {
  typename M::State;                                           // A value type.
  { model.init() } -> std::convertible_to<typename M::State>;  // The initial state.
  { model.step(state, record) } -> std::same_as<std::optional<typename M::State>>;  // Next
  // state if `record`'s output is what the model gives in `state`, else nothing.
  { model.hash(state) } -> std::convertible_to<std::size_t>;  // For the memo table.
  { state == state } -> std::convertible_to<bool>;            // For the memo table.
};

// A model may also split histories into independent parts: `model.partition(record)` returns a
// key (say, the limiter key); operations with different keys are checked separately.
template <typename M, typename R>
concept PartitionedModel = SequentialModel<M, R> && requires(const M& model, const R& record) {
  { model.partition(record) } -> std::convertible_to<std::uint64_t>;
};

// A model may also say what it would have done, for failure reports: `model.expected(state,
// record)` describes the output the model gives for `record`'s input in `state`.
template <typename M, typename R>
concept ExplainingModel = SequentialModel<M, R> &&
    requires(const M& model, const typename M::State& state, const R& record) {
  { model.expected(state, record) } -> std::convertible_to<std::string>;
};

// What the search found: an order exists (`Yes`), none does (`No`), or the budget ran out first.
enum class Linearizability : std::uint8_t { Yes, No, Unknown };

// Returns "linearizable", "not linearizable" or "unknown (time budget spent)".
inline std::string_view to_string(Linearizability verdict) noexcept {
  switch (verdict) {
    case Linearizability::Yes:
      return "linearizable";
    case Linearizability::No:
      return "not linearizable";
    case Linearizability::Unknown:
      return "unknown (time budget spent)";
  }
  return "?";
}

// The verdict, with what a report needs when it is `No`.
struct LinearizabilityResult {
  // Whether an order was found.
  Linearizability verdict = Linearizability::Yes;
  // For `No`: the longest order found that explains a prefix (indexes into the history), and the
  // operation that no order could explain next (the pending one that returned first).
  std::vector<std::size_t> longest_prefix;
  std::optional<std::size_t> stuck;
  std::uint64_t nodes = 0;  // Search nodes visited, over all partitions.
};

// How long the search may run, and how.
struct LinearizabilityOptions {
  // The search's time; past it the verdict is `Unknown`.
  std::chrono::milliseconds budget{10'000};
  // Tries one of each set of interchangeable pending operations (equal records), not each. Off
  // only to compare against the plain search.
  bool symmetry_reduction = true;
};

namespace internal {

// Returns `ops`, indexes into `history`, sorted by invoke stamp.
template <typename R>
std::vector<std::size_t> sort_by_invoke(const std::vector<Operation<R>>& history,
                                        std::vector<std::size_t> ops) {
  std::sort(ops.begin(), ops.end(),
            [&](std::size_t a, std::size_t b) { return history[a].invoked < history[b].invoked; });
  return ops;
}

// Searches one partition: `ops` are indexes into `history`, sorted by invoke stamp.
template <typename R, typename M>
requires SequentialModel<M, R> Linearizability
search_partition(const std::vector<Operation<R>>& history, const std::vector<std::size_t>& ops,
                 const M& model, const LinearizabilityOptions& options,
                 std::chrono::steady_clock::time_point deadline, LinearizabilityResult& result) {
  using State = typename M::State;
  const std::size_t n = ops.size();
  if (n == 0) return Linearizability::Yes;

  // Symmetry classes: operations with equal records.
  std::vector<std::size_t> kind(n);
  {
    std::vector<std::size_t> representatives;
    for (std::size_t i = 0; i < n; ++i) {
      const R& record = *history[ops[i]].result;
      std::size_t k = 0;
      if (options.symmetry_reduction) {
        while (k < representatives.size() &&
               !(*history[ops[representatives[k]]].result == record)) {
          ++k;
        }
      } else {
        k = representatives.size();
      }
      if (k == representatives.size()) representatives.push_back(i);
      kind[i] = k;
    }
  }
  // `ops` is sorted by invoke stamp; the same indexes by return stamp.
  std::vector<std::size_t> by_return(n);
  for (std::size_t i = 0; i < n; ++i) by_return[i] = i;
  std::sort(by_return.begin(), by_return.end(), [&](std::size_t a, std::size_t b) {
    return history[ops[a]].returned < history[ops[b]].returned;
  });

  const std::size_t words = (n + 63) / 64;
  std::vector<std::uint64_t> done(words, 0);
  auto is_done = [&](std::size_t i) { return (done[i / 64] >> (i % 64)) & 1u; };
  auto flip = [&](std::size_t i) { done[i / 64] ^= std::uint64_t{1} << (i % 64); };

  struct Key {
    std::vector<std::uint64_t> done;
    State state;
    bool operator==(const Key& o) const { return done == o.done && state == o.state; }
  };
  struct KeyHash {
    const M* model;
    std::size_t operator()(const Key& k) const {
      std::size_t h = model->hash(k.state);
      for (std::uint64_t w : k.done) h = h * 0x9E3779B97F4A7C15ull ^ (w + (h >> 7));
      return h;
    }
  };
  std::unordered_set<Key, KeyHash> seen(64, KeyHash{&model});

  // Returns the candidates at this node: operations not yet linearized that were invoked before
  // the first pending return; with symmetry, only the earliest-returning one of each kind.
  auto candidates = [&]() {
    std::vector<std::size_t> out;
    std::uint64_t first_return = ~std::uint64_t{0};
    for (std::size_t r : by_return) {
      if (!is_done(r)) {
        first_return = history[ops[r]].returned;
        break;
      }
    }
    for (std::size_t i = 0; i < n && history[ops[i]].invoked < first_return; ++i) {
      if (is_done(i)) continue;
      bool dominated = false;
      for (std::size_t& c : out) {
        if (kind[c] != kind[i]) continue;
        dominated = true;  // Keep the one that returns first.
        if (history[ops[i]].returned < history[ops[c]].returned) c = i;
        break;
      }
      if (!dominated) out.push_back(i);
    }
    return out;
  };

  struct Frame {
    State state;  // The model's state before this node's choice.
    std::vector<std::size_t> choices;
    std::size_t next = 0;
    std::size_t chosen = 0;
  };
  std::vector<Frame> stack;
  stack.push_back(Frame{model.init(), candidates(), 0, 0});
  std::size_t depth_best = 0;
  std::vector<std::size_t> path;  // The linearized operations, in order.
  while (!stack.empty()) {
    if ((++result.nodes & 1023u) == 0 && std::chrono::steady_clock::now() > deadline) {
      return Linearizability::Unknown;
    }
    Frame& frame = stack.back();
    if (frame.next == frame.choices.size()) {
      // Every choice here failed: backtrack.
      stack.pop_back();
      if (stack.empty()) break;
      flip(stack.back().chosen);
      path.pop_back();
      continue;
    }
    const std::size_t i = frame.choices[frame.next++];
    std::optional<State> next = model.step(frame.state, *history[ops[i]].result);
    if (!next) continue;
    flip(i);
    if (!seen.insert(Key{done, *next}).second) {
      flip(i);  // Reached before, and it failed (or we would have finished).
      continue;
    }
    frame.chosen = i;
    path.push_back(i);
    if (path.size() == n) return Linearizability::Yes;
    if (path.size() > depth_best) {
      depth_best = path.size();
      result.longest_prefix.clear();
      for (std::size_t p : path) result.longest_prefix.push_back(ops[p]);
      result.stuck.reset();
    }
    stack.push_back(Frame{*next, candidates(), 0, 0});
  }
  // Not linearizable. After the longest prefix, the operation that had to come next (the
  // pending one that returned first) could not.
  if (!result.stuck) {
    std::fill(done.begin(), done.end(), 0);
    for (std::size_t p : result.longest_prefix) {
      const auto it = std::find(ops.begin(), ops.end(), p);
      flip(static_cast<std::size_t>(it - ops.begin()));
    }
    for (std::size_t r : by_return) {
      if (!is_done(r)) {
        result.stuck = ops[r];
        break;
      }
    }
  }
  return Linearizability::No;
}

}  // namespace internal

// Checks whether `history` is linearizable with respect to `model`. Operations that threw are
// left out. Returns `Unknown` if `options.budget` runs out first.
template <typename R, typename M>
requires SequentialModel<M, R> LinearizabilityResult
check_linearizable(const std::vector<Operation<R>>& history, const M& model,
                   const LinearizabilityOptions& options = {}) {
  LinearizabilityResult result;
  const auto deadline = std::chrono::steady_clock::now() + options.budget;
  std::vector<std::vector<std::size_t>> partitions;
  std::vector<std::uint64_t> keys;
  for (std::size_t i = 0; i < history.size(); ++i) {
    if (!history[i].result) continue;
    std::uint64_t key = 0;
    if constexpr (PartitionedModel<M, R>) key = model.partition(*history[i].result);
    const auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      partitions.emplace_back();
      partitions.back().push_back(i);
    } else {
      partitions[static_cast<std::size_t>(it - keys.begin())].push_back(i);
    }
  }
  for (const auto& part : partitions) {
    LinearizabilityResult part_result;
    const Linearizability verdict = internal::search_partition(
        history, internal::sort_by_invoke(history, part), model, options, deadline, part_result);
    result.nodes += part_result.nodes;
    if (verdict != Linearizability::Yes) {
      result.verdict = verdict;
      result.longest_prefix = std::move(part_result.longest_prefix);
      result.stuck = part_result.stuck;
      if (verdict == Linearizability::No) break;
    }
  }
  return result;
}

// Returns a report for a CI log: the verdict, then, for `No`, an ASCII lane chart of the operations
// around the one no order could explain (one line per operation: worker, index, a bar from invoke
// to return in stamp order, the record), the model's state after the longest explained prefix and,
// if the model can say, what it would have given the stuck operation, and the seed to replay.
// `*` marks operations in that prefix; `<==` the one that broke it.
template <typename R, typename M>
requires SequentialModel<M, R> std::string describe_linearizability(
    const std::vector<Operation<R>>& history, const M& model, const LinearizabilityResult& result,
    std::uint64_t seed, std::size_t context = 8) {
  std::string out = "linearizability: " + std::string(to_string(result.verdict)) + " (" +
                    std::to_string(history.size()) + " operations, " +
                    std::to_string(result.nodes) + " search nodes)\n";
  if (result.verdict != Linearizability::No || !result.stuck) return out;
  const Operation<R>& stuck = history[*result.stuck];
  // The window: `context` operations invoked before the stuck one, and those that overlap it.
  std::vector<std::size_t> shown;
  const std::size_t first = *result.stuck > context ? *result.stuck - context : 0;
  for (std::size_t i = first; i < history.size(); ++i) {
    if (i > *result.stuck && history[i].invoked > stuck.returned) break;
    if (history[i].result) shown.push_back(i);
  }
  // Columns: the distinct stamps in the window, in order.
  std::vector<std::uint64_t> stamps;
  for (std::size_t i : shown) {
    stamps.push_back(history[i].invoked);
    stamps.push_back(history[i].returned);
  }
  std::sort(stamps.begin(), stamps.end());
  stamps.erase(std::unique(stamps.begin(), stamps.end()), stamps.end());
  auto column = [&](std::uint64_t stamp) {
    return static_cast<std::size_t>(std::lower_bound(stamps.begin(), stamps.end(), stamp) -
                                    stamps.begin());
  };
  const std::size_t width = std::min<std::size_t>(stamps.size(), 60);
  auto scaled = [&](std::size_t c) {
    return stamps.size() <= 60 ? c : c * 59 / (stamps.size() - 1);
  };
  const std::vector<std::size_t>& prefix = result.longest_prefix;
  for (std::size_t i : shown) {
    const Operation<R>& op = history[i];
    std::string lane(width, ' ');
    const std::size_t from = scaled(column(op.invoked));
    const std::size_t to = scaled(column(op.returned));
    for (std::size_t c = from; c <= to && c < width; ++c) lane[c] = '-';
    lane[from] = '[';
    if (to < width) lane[to] = ']';
    const bool explained = std::find(prefix.begin(), prefix.end(), i) != prefix.end();
    out += (explained ? " * " : "   ") + std::string("w") + std::to_string(op.worker) + " op " +
           std::to_string(op.index) + " |" + lane + "| " + op.description + " -> " +
           describe_value(*op.result) +
           (i == *result.stuck ? "   <== no order explains this" : "") + "\n";
  }
  typename M::State state = model.init();
  for (std::size_t i : prefix) {
    if (auto next = model.step(state, *history[i].result)) state = *next;
  }
  out += "  model state after the " + std::to_string(prefix.size()) +
         " operations it could explain: " + describe_value(state) + "\n";
  if constexpr (ExplainingModel<M, R>) {
    out += "  there, the model would have answered w" + std::to_string(stuck.worker) + " op " +
           std::to_string(stuck.index) + " with " + model.expected(state, *stuck.result) + "\n";
  }
  out += "  replay: rerun with RunOptions::seed = " + std::to_string(seed) + "\n";
  return out;
}

}  // namespace floodgate::testkit
