// KeyedLimiter scenarios, each beside the pattern users write: a
// `std::unordered_map<std::string, state>` under one `std::mutex`, deciding with the same GCRA
// rule. 1,000,000 keys `user:000000` .. `user:999999` (11 bytes), all created before measuring,
// quota 10/s burst 10:
//   KUa  uniform keys, admit-heavy (caller time advances 1 ms a call: every bucket full again)
//   KUd  uniform keys, deny-heavy (every bucket emptied before measuring, time stands still)
//   KZa, KZd  the same with Zipf(1.0) keys (the hottest key takes about 7% of the calls)
//   KTZa  KZa with a token bucket per key (`TokenBucketRule`)
// each on 1 thread and on 2 threads sharing the limiter. The `bytes_per_key` counter is the
// resident memory the structure added while its keys were created, divided by the keys.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "floodgate/floodgate.h"
#include "floodgate/testkit/memory.h"

namespace floodgate::bench {
namespace {

constexpr int kKeys = 1'000'000;
const Quota kQuota = Quota::per_second(10);
const Instant kStart{std::chrono::seconds(1000)};

const std::vector<std::string>& keys() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> out;
    out.reserve(kKeys);
    char buf[16];
    for (int i = 0; i < kKeys; ++i) {
      std::snprintf(buf, sizeof buf, "user:%06d", i);
      out.emplace_back(buf);
    }
    return out;
  }();
  return all;
}

// 2^22 keys drawn uniformly or by Zipf(1.0), the same for every contender, laid out in call
// order: the caller's key is in cache, as a request's key is, and only the limiter's own lookup
// pays for memory.
const std::vector<std::string>& calls(bool zipf) {
  static const auto make = [](bool skewed) {
    std::mt19937_64 rng(skewed ? 2 : 1);
    std::vector<std::string> out(std::size_t{1} << 22);
    std::vector<double> cdf;
    double sum = 0;
    if (skewed) {
      cdf.resize(kKeys);
      for (int i = 0; i < kKeys; ++i) cdf[static_cast<std::size_t>(i)] = sum += 1.0 / (i + 1);
    }
    std::uniform_real_distribution<double> u(0, sum);
    for (auto& key : out) {
      const auto pick = skewed ? static_cast<std::size_t>(
                                     std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin())
                               : static_cast<std::size_t>(rng() % kKeys);
      key = keys()[pick];
    }
    return out;
  };
  static const std::vector<std::string> uniform = make(false);
  static const std::vector<std::string> skewed = make(true);
  return zipf ? skewed : uniform;
}

// The baseline: one mutex, one unordered_map of std::string keys (11 bytes fit the string's
// inline buffer, so no lookup allocates).
class MutexMap {
 public:
  bool try_acquire_at(const std::string& key, Instant now, std::uint64_t cost) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(key);
    if (it == states_.end()) it = states_.emplace(key, internal::Gcra::kFull).first;
    const internal::Gcra::Step step = internal::Gcra::acquire(it->second, now, cost, params_);
    it->second = step.state;
    return step.decision.allowed();
  }

 private:
  const internal::Gcra::Params params_ = internal::Gcra::params(kQuota);
  std::mutex mu_;
  std::unordered_map<std::string, std::int64_t> states_;
};

template <typename Rule>
class Keyed {
 public:
  bool try_acquire_at(const std::string& key, Instant now, std::uint64_t cost) {
    return limiter_.try_acquire_at(key, now, cost).allowed();
  }

 private:
  KeyedLimiter<std::string, Rule> limiter_{{.default_quota = kQuota, .max_keys = kKeys}};
};

// A limiter with every key created: emptied (deny-heavy) or used once (admit-heavy). Built once
// per process and kind, and shared by the threads of a run.
template <typename L>
struct Loaded {
  std::unique_ptr<L> limiter;
  double bytes_per_key = 0;
  // The latest caller instant any admit-heavy run has used on this limiter (uniform and Zipf
  // runs share it): the next run starts a second later, so that no call comes stale and finds
  // buckets a previous run emptied in its future.
  std::atomic<std::int64_t> high_water{
      (kStart + std::chrono::seconds(10)).time_since_epoch().count()};
};

template <typename L>
Loaded<L>& loaded(bool emptied) {
  static Loaded<L> cache[2];
  Loaded<L>& slot = cache[emptied ? 1 : 0];
  if (!slot.limiter) {
    (void)keys();  // Built before measuring.
    const std::size_t before = testkit::resident_bytes();
    slot.limiter = std::make_unique<L>();
    for (const std::string& key : keys()) {
      benchmark::DoNotOptimize(slot.limiter->try_acquire_at(key, kStart, emptied ? 10 : 1));
    }
    slot.bytes_per_key = static_cast<double>(testkit::resident_bytes() - before) / kKeys;
  }
  return slot;
}

template <typename L, bool kZipf, bool kDeny>
void keyed(benchmark::State& state) {
  static std::mutex setup;
  Loaded<L>* l = nullptr;
  {
    std::lock_guard<std::mutex> lock(setup);
    l = &loaded<L>(kDeny);
    (void)calls(kZipf);
  }
  const std::vector<std::string>& order = calls(kZipf);
  const std::size_t mask = order.size() - 1;
  // Threads walk the same picks from opposite halves, so they rarely meet on one key.
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * (order.size() / 2);
  // Admit-heavy runs move time on 1 ms a call from where the last run on this limiter ended;
  // deny-heavy runs stay at the instant the buckets emptied.
  std::atomic<std::int64_t>& high_water = l->high_water;
  Instant now = kDeny ? kStart : Instant{Nanos{high_water.load()}} + std::chrono::seconds(1);
  std::int64_t admitted = 0;
  for (auto _ : state) {
    const bool ok = l->limiter->try_acquire_at(order[i++ & mask], now, 1);
    benchmark::DoNotOptimize(ok);
    admitted += ok ? 1 : 0;
    if (!kDeny) now += std::chrono::milliseconds(1);
  }
  if (!kDeny) {
    std::int64_t seen = high_water.load();
    const std::int64_t end = now.time_since_epoch().count();
    while (seen < end && !high_water.compare_exchange_weak(seen, end)) {
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["admitted"] =
      benchmark::Counter(static_cast<double>(admitted) / static_cast<double>(state.iterations()),
                         benchmark::Counter::kAvgThreads);
  state.counters["bytes_per_key"] =
      benchmark::Counter(l->bytes_per_key, benchmark::Counter::kAvgThreads);
}

#define FLOODGATE_KEYED(name, rule, zipf, deny)                                                  \
  BENCHMARK(keyed<Keyed<rule>, zipf, deny>)->Name(name "/floodgate")->UseRealTime();             \
  BENCHMARK(keyed<MutexMap, zipf, deny>)->Name(name "/baseline")->UseRealTime();                 \
  BENCHMARK(keyed<Keyed<rule>, zipf, deny>)->Name(name "/floodgate")->Threads(2)->UseRealTime(); \
  BENCHMARK(keyed<MutexMap, zipf, deny>)->Name(name "/baseline")->Threads(2)->UseRealTime()

FLOODGATE_KEYED("KUa", GcraRule, false, false);
FLOODGATE_KEYED("KUd", GcraRule, false, true);
FLOODGATE_KEYED("KZa", GcraRule, true, false);
FLOODGATE_KEYED("KZd", GcraRule, true, true);
// The token bucket per key (the baseline stays the GCRA map users write).
FLOODGATE_KEYED("KTZa", TokenBucketRule, true, false);

}  // namespace
}  // namespace floodgate::bench
