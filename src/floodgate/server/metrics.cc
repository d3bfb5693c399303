#include "floodgate/server/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <tuple>

#include "floodgate/server/config.h"

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
  e.latency.observe(latency);
}

void Histogram::observe(std::chrono::nanoseconds latency) {
  const double seconds = std::chrono::duration<double>(latency).count();
  std::size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  nanos_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency.count())),
                   std::memory_order_relaxed);
}

void Histogram::write(std::string& out, std::string_view name, std::string_view labels) const {
  const std::string first = labels.empty() ? std::string() : std::string(labels) + ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= kBuckets.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    char le[32];
    if (i < kBuckets.size()) {
      std::snprintf(le, sizeof le, "%g", kBuckets[i]);
    } else {
      std::snprintf(le, sizeof le, "+Inf");
    }
    append_sample(out, std::string(name) + "_bucket", first + "le=\"" + le + "\"", cumulative);
  }
  append_real(out, std::string(name) + "_sum", labels,
              static_cast<double>(nanos_.load(std::memory_order_relaxed)) / 1e9);
  append_sample(out, std::string(name) + "_count", labels, cumulative);
}

void ServiceMetrics::config_loaded(const Config& config) {
  config_loads_.fetch_add(1, std::memory_order_relaxed);
  config_last_ok_.store(true, std::memory_order_relaxed);
  config_loaded_at_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count(),
                          std::memory_order_relaxed);
  config_hash_.store(config.hash(), std::memory_order_relaxed);
  config_rules_.store(config.rules(), std::memory_order_relaxed);
  config_domains_.store(config.domain_names().size(), std::memory_order_relaxed);
}

void ServiceMetrics::config_load_failed() {
  config_load_errors_.fetch_add(1, std::memory_order_relaxed);
  config_last_ok_.store(false, std::memory_order_relaxed);
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
    e->latency.write(out, "floodgate_request_duration_seconds",
                     "endpoint=\"" + std::string(name) + "\"");
  }
  append_family(out, "floodgate_config_loads_total", "Configuration loads, by outcome.", "counter");
  append_sample(out, "floodgate_config_loads_total", "outcome=\"success\"", load(config_loads_));
  append_sample(out, "floodgate_config_loads_total", "outcome=\"error\"",
                load(config_load_errors_));
  append_family(out, "floodgate_config_last_load_successful",
                "1 if the last attempt to load the configuration succeeded, else 0 (the previous "
                "configuration stays in force).",
                "gauge");
  append_sample(out, "floodgate_config_last_load_successful", "",
                config_last_ok_.load(std::memory_order_relaxed) ? 1 : 0);
  append_family(out, "floodgate_config_last_load_success_timestamp_seconds",
                "When the configuration in force was loaded (0: none is).", "gauge");
  append_real(out, "floodgate_config_last_load_success_timestamp_seconds", "",
              static_cast<double>(config_loaded_at_.load(std::memory_order_relaxed)) / 1e9);
  for (const auto& [name, help, value] :
       {std::tuple{"floodgate_config_hash",
                   "A hash of the configuration files in force (names and texts; 53 bits): a "
                   "change means other files.",
                   &config_hash_},
        std::tuple{"floodgate_config_rules",
                   "Descriptors with a rate limit in the configuration in force.", &config_rules_},
        std::tuple{"floodgate_config_domains", "Domains in the configuration in force.",
                   &config_domains_}}) {
    append_family(out, name, help, "gauge");
    append_sample(out, name, "", load(*value));
  }
}

void append_real(std::string& out, std::string_view name, std::string_view labels, double value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  char text[64];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  out.append(" ").append(text, ec == std::errc() ? end : text).append("\n");
}

namespace {

// Returns the fields of /proc/self/stat after the command's name (field 3, the state, first), or
// none.
std::vector<std::string> own_stat() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields;
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

// Returns the kernel's boot time (seconds since the epoch; /proc/stat's btime), or 0.
double boot_time() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double t = 0;
      in >> t;
      return t;
    }
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

}  // namespace

std::function<void(std::string&)> process_metrics() {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  return [ticks, page, booted = boot_time()](std::string& out) {
    const std::vector<std::string> f = own_stat();
    // Fields from 3 (the state) on: utime is 14, stime 15, num_threads 20, starttime 22, vsize
    // 23, rss 24 (proc(5)).
    const auto field = [&f](std::size_t n) {
      return n - 3 < f.size() ? std::strtod(f[n - 3].c_str(), nullptr) : 0.0;
    };
    std::size_t fds = 0;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
         it.increment(ec)) {
      ++fds;
    }
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    const struct {
      const char* name;
      const char* help;
      const char* type;
      double value;
    } rows[] = {
        {"process_cpu_seconds_total", "User and system CPU time spent, in seconds.", "counter",
         (field(14) + field(15)) / ticks},
        {"process_resident_memory_bytes", "Resident memory size, in bytes.", "gauge",
         field(24) * page},
        {"process_virtual_memory_bytes", "Virtual memory size, in bytes.", "gauge", field(23)},
        {"process_start_time_seconds", "When the process started, in seconds since the epoch.",
         "gauge", booted + field(22) / ticks},
        {"process_open_fds", "Open file descriptors.", "gauge", static_cast<double>(fds)},
        {"process_max_fds", "The most file descriptors the process may open.", "gauge",
         static_cast<double>(files.rlim_cur)},
        {"process_threads", "Threads in the process.", "gauge", field(20)},
    };
    for (const auto& r : rows) {
      append_family(out, r.name, r.help, r.type);
      append_real(out, r.name, "", r.value);
    }
  };
}

}  // namespace floodgate::server
