// Counters for `floodgate serve`'s `/metrics` (Prometheus text format): per rule, the hits and
// how they were answered, as envoyproxy/ratelimit counts them; per service, requests, their
// latency and configuration loads; and `MetricsRegistry`, where each part of the service adds
// what it counts. Thread-safe; updating a counter is one relaxed atomic add.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace floodgate::server {

// What one rule (or one value of a rule with `detailed_metric`) has seen.
struct RuleCounters {
  std::atomic<std::uint64_t> total_hits{0};
  std::atomic<std::uint64_t> over_limit{0};    // Hits answered OVER_LIMIT.
  std::atomic<std::uint64_t> near_limit{0};    // Hits answered OK with 80% or more of it used.
  std::atomic<std::uint64_t> within_limit{0};  // Hits answered OK.
  std::atomic<std::uint64_t> shadow_mode{0};   // Hits over the limit, answered OK by shadow mode.
};

// The per-value counters of one `detailed_metric` rule, at most `kMaxValues` values (the rest
// share one "_other_" entry), so a flood of distinct values cannot grow the metrics.
class DetailedCounters {
 public:
  static constexpr std::size_t kMaxValues = 1'000;

  RuleCounters& of(std::string_view value);

  // Calls `f(value, counters)` for each value.
  template <class F>
  void for_each(F f) const {
    const std::lock_guard lock(mu_);
    for (const auto& [value, counters] : values_) f(value, *counters);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<RuleCounters>, std::less<>> values_;  // Guarded by mu_.
};

// Where a request came in.
enum class Endpoint : std::uint8_t { Grpc, Http };

// The service's own counters.
class ServiceMetrics {
 public:
  // Upper bounds of the latency histogram's buckets, in seconds.
  static constexpr std::array<double, 12> kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0};

  // Records one request answered in `latency` by `endpoint`, `failed` if it was refused as
  // malformed.
  void observe(Endpoint endpoint, std::chrono::nanoseconds latency, bool failed);
  void config_load(bool succeeded);

  // Appends the service's metrics in Prometheus text format.
  void write(std::string& out) const;

 private:
  struct EndpointCounters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> malformed{0};
    std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};  // The last: +Inf.
    std::atomic<std::uint64_t> nanos{0};
  };
  EndpointCounters grpc_;
  EndpointCounters http_;
  std::atomic<std::uint64_t> config_loads_{0};
  std::atomic<std::uint64_t> config_load_errors_{0};
};

// Returns `value` escaped for a Prometheus label value (backslash, double quote, newline).
std::string label_value(std::string_view value);

// Appends the `# HELP` and `# TYPE` lines of the family `name` (`type`: counter, gauge,
// histogram).
void append_family(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type);

// Appends the sample `name{labels} value` (no braces when `labels` is empty).
void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value);

// Every metric of a running service: each part adds a collector that appends its families, and
// `write` runs them in the order they were added. Thread-safe.
class MetricsRegistry {
 public:
  using Collector = std::function<void(std::string& out)>;

  void add(Collector collector);

  // Returns every collector's families in Prometheus text format.
  std::string write() const;

 private:
  mutable std::mutex mu_;
  std::vector<Collector> collectors_;  // Guarded by mu_.
};

}  // namespace floodgate::server
