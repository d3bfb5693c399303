#include "bench/scenarios.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string_view>
#include <unordered_map>

#include "bench/mutex_token_bucket.h"
#include "floodgate/floodgate.h"
#include "floodgate/limiters/scalable_gcra.h"

namespace floodgate::bench {
namespace {

const Instant kStart{std::chrono::seconds(1000)};

// A scenario on one limiter of each kind, built fresh for each contender.
template <typename Ours, typename Base>
Row limiter_row(std::string name, int threads, double seconds, const Quota& quota, Nanos step) {
  Row row{std::move(name), threads, {}, {}};
  {
    auto limiter = std::make_unique<Ours>(quota);
    SharedTime time(kStart.time_since_epoch().count());
    row.floodgate = measure(threads, seconds,
                            [&](int) { return caller_time_caller(*limiter, time, kStart, step); });
  }
  {
    auto limiter = std::make_unique<Base>(quota);
    SharedTime time(kStart.time_since_epoch().count());
    row.baseline = measure(threads, seconds,
                           [&](int) { return caller_time_caller(*limiter, time, kStart, step); });
  }
  return row;
}

// Keys `user:000000` .. `user:999999` (or fewer), and 2^20 calls drawn uniformly or by Zipf(1.0),
// laid out in call order (16 bytes each) so that the caller's key is in cache, as a request's is.
constexpr std::size_t kCalls = std::size_t{1} << 20;
using KeyText = std::array<char, 16>;

std::string_view view(const KeyText& k) { return {k.data(), 11}; }

KeyText key_text(int i) {
  char text[32];
  std::snprintf(text, sizeof text, "user:%06d", i);
  KeyText k{};
  std::copy_n(text, 11, k.begin());
  return k;
}

std::vector<KeyText> call_order(bool zipf, int keys) {
  std::mt19937_64 rng(zipf ? 2 : 1);
  std::vector<double> cdf;
  double sum = 0;
  if (zipf) {
    cdf.resize(static_cast<std::size_t>(keys));
    for (int i = 0; i < keys; ++i) cdf[static_cast<std::size_t>(i)] = sum += 1.0 / (i + 1);
  }
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<KeyText> out(kCalls);
  for (KeyText& k : out) {
    const int pick =
        zipf ? static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin())
             : static_cast<int>(rng() % static_cast<std::uint64_t>(keys));
    k = key_text(std::min(pick, keys - 1));
  }
  return out;
}

// The baseline users write: one mutex, one unordered_map, the same GCRA rule. Callers hold keys
// as views here, so the map looks them up by view (a transparent hash): copying each key into a
// std::string to call find() would slow the baseline for a reason that is not its own.
class MutexMap {
 public:
  MutexMap(const Quota& quota, int /*keys*/) : params_(internal::Gcra::params(quota)) {}
  bool try_acquire_at(std::string_view key, Instant now) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(key);
    if (it == states_.end()) it = states_.emplace(std::string(key), internal::Gcra::kFull).first;
    const internal::Gcra::Step step = internal::Gcra::acquire(it->second, now, 1, params_);
    it->second = step.state;
    return step.decision.allowed();
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  const internal::Gcra::Params params_;
  std::mutex mu_;
  std::unordered_map<std::string, std::int64_t, Hash, std::equal_to<>> states_;
};

class Keyed {
 public:
  Keyed(const Quota& quota, int keys)
      : limiter_({.default_quota = quota, .max_keys = static_cast<std::size_t>(keys)}) {}
  bool try_acquire_at(std::string_view key, Instant now) {
    return limiter_.try_acquire_at(key, now).allowed();
  }

 private:
  KeyedLimiter<> limiter_;
};

// A keyed scenario: every key created first, then calls in `order` with time moving 1 ms a call
// (admit-heavy: a key's bucket is mostly full again when it comes back).
template <typename L>
Outcome keyed_outcome(const std::vector<KeyText>& order, int keys, int threads, double seconds) {
  const Quota quota = Quota::per_second(10);
  auto limiter = std::make_unique<L>(quota, keys);
  for (int i = 0; i < keys; ++i) (void)limiter->try_acquire_at(view(key_text(i)), kStart);
  SharedTime time((kStart + std::chrono::seconds(10)).time_since_epoch().count());
  return measure(threads, seconds, [&](int w) {
    // Threads walk the same calls from different offsets, so they rarely meet on one key.
    return [&, i = static_cast<std::size_t>(w) * (kCalls / 2 + 7919),
            now = Instant{Nanos{time.catch_up(0)}}, n = 0]() mutable {
      const bool ok = limiter->try_acquire_at(view(order[i++ & (kCalls - 1)]), now);
      now += std::chrono::milliseconds(1);
      if (++n % 256 == 0) now = Instant{Nanos{time.catch_up(now.time_since_epoch().count())}};
      return ok;
    };
  });
}

}  // namespace

std::vector<Row> run_standard_scenarios(double seconds, int threads, int keys,
                                        void (*on_row)(const Row&)) {
  std::vector<Row> rows;
  const auto done = [&](Row row) {
    if (on_row != nullptr) on_row(row);
    rows.push_back(std::move(row));
  };
  const Quota wide = Quota::per_second(1'000'000'000);  // Every call admitted.
  const Quota narrow = Quota::per_second(1);            // Nearly every call denied.
  done(limiter_row<GcraLimiter<>, MutexTokenBucket>("admit, caller time", 1, seconds, wide,
                                                    Nanos{1000}));
  done(limiter_row<GcraLimiter<>, MutexTokenBucket>("deny, caller time", 1, seconds, narrow,
                                                    Nanos{1}));
  done(limiter_row<ScalableGcraLimiter<>, MutexTokenBucket>("admit, caller time, scalable", 1,
                                                            seconds, wide, Nanos{1000}));
  {
    // Each call reads the steady clock: floodgate's own clock read against the baseline reading
    // std::chrono::steady_clock itself.
    Row row{"admit, reading the clock", 1, {}, {}};
    GcraLimiter<> ours(wide);
    row.floodgate = measure(
        1, seconds, [&](int) { return [&] { return static_cast<bool>(ours.try_acquire()); }; });
    MutexTokenBucket base(wide);
    row.baseline = measure(1, seconds, [&](int) {
      return [&] {
        return base.try_acquire_at(Instant{std::chrono::duration_cast<Nanos>(
            std::chrono::steady_clock::now().time_since_epoch())});
      };
    });
    done(row);
  }
  if (threads > 1) {
    done(limiter_row<GcraLimiter<>, MutexTokenBucket>("admit, all threads, one limiter", threads,
                                                      seconds, wide, Nanos{1000}));
    done(limiter_row<GcraLimiter<>, MutexTokenBucket>("deny, all threads, one limiter", threads,
                                                      seconds, narrow, Nanos{1}));
    done(limiter_row<ScalableGcraLimiter<>, MutexTokenBucket>(
        "admit, all threads, one scalable limiter", threads, seconds, wide, Nanos{1000}));
    done(limiter_row<ScalableGcraLimiter<>, MutexTokenBucket>(
        "deny, all threads, one scalable limiter", threads, seconds, narrow, Nanos{1}));
  }
  for (const bool zipf : {false, true}) {
    const std::vector<KeyText> order = call_order(zipf, keys);
    const std::string name =
        "keyed, " + std::to_string(keys) + " keys, " + (zipf ? "Zipf(1.0)" : "uniform");
    for (const int t : {1, threads}) {
      if (t == 1 && threads == 1 && !rows.empty() && rows.back().scenario == name) continue;
      Row row{name, t, {}, {}};
      row.floodgate = keyed_outcome<Keyed>(order, keys, t, seconds);
      row.baseline = keyed_outcome<MutexMap>(order, keys, t, seconds);
      done(row);
    }
  }
  return rows;
}

}  // namespace floodgate::bench
