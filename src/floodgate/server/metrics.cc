#include "floodgate/server/metrics.h"

#include <cstdio>

namespace floodgate::server {
void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::uint64_t value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(std::to_string(value)).append("\n");
}

void append_family(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void MetricsRegistry::add(Collector collector) {
  const std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::write() const {
  const std::lock_guard lock(mu_);
  std::string out;
  for (const Collector& c : collectors_) c(out);
  return out;
}

std::string label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

RuleCounters& DetailedCounters::of(std::string_view value) {
  const std::lock_guard lock(mu_);
  if (const auto found = values_.find(value); found != values_.end()) return *found->second;
  const std::string_view name = values_.size() < kMaxValues ? value : "_other_";
  auto& slot = values_[std::string(name)];
  if (!slot) slot = std::make_unique<RuleCounters>();
  return *slot;
}

void ServiceMetrics::observe(Endpoint endpoint, std::chrono::nanoseconds latency, bool failed) {
  EndpointCounters& e = endpoint == Endpoint::Grpc ? grpc_ : http_;
  e.requests.fetch_add(1, std::memory_order_relaxed);
  if (failed) e.malformed.fetch_add(1, std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(latency).count();
  std::size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  e.buckets[i].fetch_add(1, std::memory_order_relaxed);
  e.nanos.fetch_add(static_cast<std::uint64_t>(latency.count()), std::memory_order_relaxed);
}

void ServiceMetrics::config_load(bool succeeded) {
  (succeeded ? config_loads_ : config_load_errors_).fetch_add(1, std::memory_order_relaxed);
}

void ServiceMetrics::write(std::string& out) const {
  const auto load = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  append_family(out, "floodgate_requests_total", "Rate limit requests answered.", "counter");
  append_sample(out, "floodgate_requests_total", "endpoint=\"grpc\"", load(grpc_.requests));
  append_sample(out, "floodgate_requests_total", "endpoint=\"http\"", load(http_.requests));
  append_family(out, "floodgate_malformed_requests_total", "Requests refused as malformed.",
                "counter");
  append_sample(out, "floodgate_malformed_requests_total", "endpoint=\"grpc\"",
                load(grpc_.malformed));
  append_sample(out, "floodgate_malformed_requests_total", "endpoint=\"http\"",
                load(http_.malformed));
  append_family(out, "floodgate_request_duration_seconds", "Time to answer a request.",
                "histogram");
  for (const auto& [name, e] : {std::pair{"grpc", &grpc_}, std::pair{"http", &http_}}) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= kBuckets.size(); ++i) {
      cumulative += load(e->buckets[i]);
      char le[32];
      if (i < kBuckets.size()) {
        std::snprintf(le, sizeof le, "%g", kBuckets[i]);
      } else {
        std::snprintf(le, sizeof le, "+Inf");
      }
      append_sample(out, "floodgate_request_duration_seconds_bucket",
                    "endpoint=\"" + std::string(name) + "\",le=\"" + le + "\"", cumulative);
    }
    char sum[48];
    std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(load(e->nanos)) / 1e9);
    out.append("floodgate_request_duration_seconds_sum{endpoint=\"")
        .append(name)
        .append("\"} ")
        .append(sum)
        .append("\n");
    append_sample(out, "floodgate_request_duration_seconds_count",
                  "endpoint=\"" + std::string(name) + "\"", cumulative);
  }
  append_family(out, "floodgate_config_loads_total", "Configuration loads, by outcome.", "counter");
  append_sample(out, "floodgate_config_loads_total", "outcome=\"success\"", load(config_loads_));
  append_sample(out, "floodgate_config_loads_total", "outcome=\"error\"",
                load(config_load_errors_));
}

}  // namespace floodgate::server
