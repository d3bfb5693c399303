// Test-only: the sequential reference model of each rate limiter, written the obvious way (slow,
// plainly correct, for time that never goes backwards), shared by the differential tests (one
// thread, decision by decision) and the contract's linearizability test (many threads, against
// the same model). `ReplayModel` adapts any of them to floodgate::testkit::check_linearizable.
// Not installed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "floodgate/core/decision.h"
#include "floodgate/limiters/internal/gcra_rule.h"
#include "floodgate/testkit/limiter_checks.h"

namespace floodgate::reference {

// An ideal token bucket in exact integer arithmetic: the level is kept in nanoseconds of refill
// (tokens x interval), as large as the window. The model of GCRA (and of a token bucket whose
// interval is a whole number of nanoseconds).
class Bucket {
 public:
  explicit Bucket(const internal::Gcra::Params& p) : p_(p), level_(p.window) {}

  Decision acquire(std::int64_t t, std::uint64_t cost) {
    if (started_) level_ = std::min<std::int64_t>(p_.window, level_ + (t - last_));
    started_ = true;
    last_ = t;
    const auto charge = static_cast<std::int64_t>(cost) * p_.interval;
    if (cost > p_.burst) {
      return Decision(Verdict::ExceedsBurst, p_.burst, level_, p_.interval, kNever,
                      Nanos{p_.window - level_});
    }
    if (level_ < charge) {
      return Decision(Verdict::Denied, p_.burst, level_, p_.interval, Nanos{charge - level_},
                      Nanos{p_.window - level_});
    }
    level_ -= charge;
    return Decision(Verdict::Allowed, p_.burst, level_, p_.interval, Nanos::zero(),
                    Nanos{p_.window - level_});
  }

  std::size_t hash() const {
    return std::hash<std::int64_t>{}(level_) ^ (std::hash<std::int64_t>{}(last_) << 1);
  }
  friend bool operator==(const Bucket& a, const Bucket& b) {
    return a.level_ == b.level_ && a.last_ == b.last_ && a.started_ == b.started_;
  }

 private:
  internal::Gcra::Params p_;
  std::int64_t level_;
  std::int64_t last_ = 0;
  bool started_ = false;
};

// The fixed window: a count per aligned window of length `period`.
class Window {
 public:
  Window(std::int64_t period, std::uint64_t limit) : period_(period), limit_(limit) {}

  Decision acquire(std::int64_t t, std::uint64_t cost) {
    const std::int64_t w = t >= 0 ? t / period_ : -((-t + period_ - 1) / period_);
    if (w != window_) {
      window_ = w;
      count_ = 0;
    }
    const Nanos next{(w + 1) * period_ - t};
    const Nanos reset = count_ == 0 ? Nanos::zero() : next;
    const auto left = static_cast<std::int64_t>(limit_ - count_);
    if (cost > limit_) return Decision(Verdict::ExceedsBurst, limit_, left, 1, kNever, reset);
    if (count_ + cost > limit_) return Decision(Verdict::Denied, limit_, left, 1, next, reset);
    if (cost == 0) return Decision(Verdict::Allowed, limit_, left, 1, Nanos::zero(), reset);
    count_ += cost;
    return Decision(Verdict::Allowed, limit_, left - static_cast<std::int64_t>(cost), 1,
                    Nanos::zero(), next);
  }

  std::size_t hash() const {
    return std::hash<std::int64_t>{}(window_) ^ (std::hash<std::uint64_t>{}(count_) << 1);
  }
  friend bool operator==(const Window& a, const Window& b) {
    return a.window_ == b.window_ && a.count_ == b.count_;
  }

 private:
  std::int64_t period_;
  std::uint64_t limit_;
  std::int64_t window_ = std::numeric_limits<std::int64_t>::min();
  std::uint64_t count_ = 0;
};

// The exact sliding window, kept naively: every admission.
class Log {
 public:
  Log(std::int64_t period, std::uint64_t limit) : period_(period), limit_(limit) {}

  Decision acquire(std::int64_t t, std::uint64_t cost) {
    std::uint64_t used = 0;
    std::int64_t last = 0;  // The latest admission in the window.
    for (const auto& [at, c] : log_) {
      if (at > t - period_) {
        used += c;
        last = at;
      }
    }
    const Nanos reset = used == 0 ? Nanos::zero() : Nanos{last + period_ - t};
    const auto left = static_cast<std::int64_t>(limit_ - used);
    if (cost > limit_) return Decision(Verdict::ExceedsBurst, limit_, left, 1, kNever, reset);
    if (used + cost > limit_) {
      std::uint64_t freed = 0;
      for (const auto& [at, c] : log_) {
        if (at <= t - period_) continue;
        freed += c;
        if (freed >= used + cost - limit_) {
          return Decision(Verdict::Denied, limit_, left, 1, Nanos{at + period_ - t}, reset);
        }
      }
    }
    if (cost == 0) return Decision(Verdict::Allowed, limit_, left, 1, Nanos::zero(), reset);
    log_.emplace_back(t, cost);
    return Decision(Verdict::Allowed, limit_, left - static_cast<std::int64_t>(cost), 1,
                    Nanos::zero(), Nanos{period_});
  }

  std::size_t hash() const {
    std::size_t h = log_.size();
    for (const auto& [at, c] : log_) h = h * 1'000'003 ^ std::hash<std::int64_t>{}(at) ^ c;
    return h;
  }
  friend bool operator==(const Log& a, const Log& b) { return a.log_ == b.log_; }

 private:
  std::int64_t period_;
  std::uint64_t limit_;
  std::vector<std::pair<std::int64_t, std::uint64_t>> log_;
};

// The two-counter estimate of the sliding window: verdicts and remaining permits (its waits are
// checked by hand in sliding_window_test.cc), so `acquire` returns a decision whose waits are
// zero and which agrees with the limiter on `verdict` and `remaining` only.
class Counter {
 public:
  Counter(std::int64_t period, std::uint64_t limit) : period_(period), limit_(limit) {}

  std::pair<Verdict, std::uint64_t> acquire(std::int64_t t, std::uint64_t cost) {
    const std::int64_t w = t / period_;  // t >= 0 here.
    if (w != window_) {
      previous_ = w == window_ + 1 ? current_ : 0;
      current_ = 0;
      window_ = w;
    }
    // previous x (1 - elapsed fraction), rounded up, in exact integers.
    const std::uint64_t num = previous_ * static_cast<std::uint64_t>(period_ - (t - w * period_));
    const std::uint64_t weighted =
        (num + static_cast<std::uint64_t>(period_) - 1) / static_cast<std::uint64_t>(period_);
    const std::uint64_t estimate = weighted + current_;
    const std::uint64_t left = limit_ > estimate ? limit_ - estimate : 0;
    if (cost > limit_) return {Verdict::ExceedsBurst, left};
    if (estimate + cost > limit_) return {Verdict::Denied, left};
    current_ += cost;
    return {Verdict::Allowed, left - cost};
  }

  std::size_t hash() const {
    return std::hash<std::int64_t>{}(window_) ^ (current_ << 1) ^ (previous_ << 17);
  }
  friend bool operator==(const Counter& a, const Counter& b) {
    return a.window_ == b.window_ && a.current_ == b.current_ && a.previous_ == b.previous_;
  }

 private:
  std::int64_t period_;
  std::uint64_t limit_;
  std::int64_t window_ = -2;
  std::uint64_t current_ = 0;
  std::uint64_t previous_ = 0;
};

// A model whose decisions are compared on verdict and remaining permits only: for a limiter
// that follows `Model`'s rule but reports its waits in its own arithmetic (TokenBucketLimiter
// computes in floating point; `Bucket` in integers).
template <typename Model>
class Verdicts {
 public:
  explicit Verdicts(Model model) : model_(std::move(model)) {}

  std::pair<Verdict, std::uint64_t> acquire(std::int64_t t, std::uint64_t cost) {
    const Decision d = model_.acquire(t, cost);
    return {d.verdict(), d.remaining()};
  }
  std::size_t hash() const { return model_.hash(); }
  friend bool operator==(const Verdicts& a, const Verdicts& b) { return a.model_ == b.model_; }

 private:
  Model model_;
};

// Reports whether the limiter's `got` is what the model answered: the whole decision where the
// model gives one, verdict and remaining permits where it gives only those.
inline bool agrees(const Decision& want, const Decision& got) { return want == got; }
inline bool agrees(const std::pair<Verdict, std::uint64_t>& want, const Decision& got) {
  return want.first == got.verdict() && want.second == got.remaining();
}
inline std::string describe(const Decision& want) { return to_string(want); }
inline std::string describe(const std::pair<Verdict, std::uint64_t>& want) {
  return std::string(want.first == Verdict::Allowed  ? "Allowed"
                     : want.first == Verdict::Denied ? "Denied"
                                                     : "ExceedsBurst") +
         "(remaining=" + std::to_string(want.second) + ")";
}

// Any model above as a floodgate::testkit sequential model over `LimiterCall` records: the state
// is the model itself, and a call is explained when the model, fed the call's instant and cost,
// answers what the limiter answered.
template <typename Model>
struct ReplayModel {
  using State = Model;
  Model initial;

  State init() const { return initial; }
  std::optional<State> step(State state, const testkit::LimiterCall& call) const {
    const auto want = state.acquire(call.at.time_since_epoch().count(), call.cost);
    if (!agrees(want, call.decision)) return std::nullopt;
    return state;
  }
  std::size_t hash(const State& state) const { return state.hash(); }
  std::string expected(State state, const testkit::LimiterCall& call) const {
    return describe(state.acquire(call.at.time_since_epoch().count(), call.cost));
  }
};

}  // namespace floodgate::reference
