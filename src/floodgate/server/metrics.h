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

class Config;

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

// A latency histogram in Prometheus's form: counts per bucket, their sum and count. Thread-safe;
// `observe` is a few relaxed atomic adds.
class Histogram {
 public:
  // Upper bounds of the buckets, in seconds: from 5 us, so that a service answering in tens of
  // microseconds is resolved, to 1 s.
  static constexpr std::array<double, 16> kBuckets = {
      0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
      0.0025,   0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1.0};

  void observe(std::chrono::nanoseconds latency);

  // Appends `name`_bucket (cumulative, with `le`), `name`_sum and `name`_count, each with
  // `labels` (may be empty) first; the family's HELP and TYPE lines are the caller's.
  void write(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets_{};  // The last: +Inf.
  std::atomic<std::uint64_t> nanos_{0};
};

// Where a request came in.
enum class Endpoint : std::uint8_t { Grpc, Http };

// The service's own counters.
class ServiceMetrics {
 public:
  // Records one request answered in `latency` by `endpoint`, `failed` if it was refused as
  // malformed.
  void observe(Endpoint endpoint, std::chrono::nanoseconds latency, bool failed);
  // Records a configuration loaded and installed: counted, and its time (now), hash, rules and
  // domains kept for `floodgate_config_*`.
  void config_loaded(const Config& config);
  // Records a configuration that did not load, or was not installed.
  void config_load_failed();

  // Appends the service's metrics in Prometheus text format.
  void write(std::string& out) const;

 private:
  struct EndpointCounters {
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint64_t> malformed{0};
    Histogram latency;
  };
  EndpointCounters grpc_;
  EndpointCounters http_;
  std::atomic<std::uint64_t> config_loads_{0};
  std::atomic<std::uint64_t> config_load_errors_{0};
  std::atomic<bool> config_last_ok_{false};
  std::atomic<std::int64_t> config_loaded_at_{0};  // Nanoseconds since the Unix epoch.
  std::atomic<std::uint64_t> config_hash_{0};
  std::atomic<std::uint64_t> config_rules_{0};
  std::atomic<std::uint64_t> config_domains_{0};
};

// Returns a collector of the process's own metrics, as Prometheus's client libraries name them:
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds and process_threads (read from
// /proc/self).
std::function<void(std::string&)> process_metrics();

// Returns `value` escaped for a Prometheus label value (backslash, double quote, newline).
std::string label_value(std::string_view value);

// Appends the `# HELP` and `# TYPE` lines of the family `name` (`type`: counter, gauge,
// histogram).
void append_family(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type);

// Appends the sample `name{labels} value` (no braces when `labels` is empty).
void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value);
// The same, for a value that is not a whole number (written in the fewest digits that read back
// as it).
void append_real(std::string& out, std::string_view name, std::string_view labels, double value);

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
