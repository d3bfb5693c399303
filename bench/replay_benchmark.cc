// `floodgate replay`'s reading and deciding, lines per second, each beside the least any reader
// of the same text must do (the baseline): find each line's end and its first space-separated
// token. The same 200,000 requests (2,000 clients over an hour) in each format:
//   R1  Combined Log Format, keyed by the client
//   R2  Envoy's default access log, keyed by the first hop of X-Forwarded-For
//   R3  an nginx log_format with $time_iso8601, keyed by $remote_addr
//   R4  JSON lines, keyed by a nested member
//   R5  CSV time_ns,key
//   C1  R1's lines decided under a whole configuration (three descriptors a line, the service's
//       decision code); its baseline: the same lines decided by the plain replay (GCRA per
//       client), so the ratio is the cost of the service's path
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "floodgate/replay/replayer.h"
#include "floodgate/replay/trace.h"
#include "floodgate/server/service_replay.h"

namespace floodgate::bench {
namespace {

constexpr int kLines = 200'000;

struct Line {
  std::int64_t ms;  // Since 2026-11-27T13:00:00Z.
  std::string client;
  std::string path;
  int status;
};

const std::vector<Line>& lines() {
  static const std::vector<Line> all = [] {
    std::mt19937 rng(42);
    const char* const paths[] = {"/", "/api/v1/prices", "/api/v1/orders", "/search",
                                 "/static/app.1.js"};
    std::vector<Line> out;
    std::int64_t ms = 0;
    for (int i = 0; i < kLines; ++i) {
      ms += static_cast<std::int64_t>(rng() % 36);
      const auto client = rng() % 2000;
      out.push_back({ms,
                     "10.0." + std::to_string(client / 250) + "." + std::to_string(client % 250),
                     paths[rng() % 5], rng() % 20 == 0 ? 503 : 200});
    }
    return out;
  }();
  return all;
}

constexpr std::int64_t kStart = 1'795'784'400;  // 2026-11-27T13:00:00Z.

// The instant `ms` after the start, in the three forms the logs write.
enum class Clock { AccessLog, Iso, IsoOffset };

std::string clock_text(std::int64_t ms, Clock form) {
  const std::time_t t = static_cast<std::time_t>(kStart + ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  switch (form) {
    case Clock::AccessLog:
      std::strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S +0000", &tm);
      break;
    case Clock::Iso:
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
      break;
    case Clock::IsoOffset:
      std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
      break;
  }
  return buf;
}

enum class Format { Combined, Envoy, Nginx, Json, Csv };

const std::string& text(Format format) {
  static std::string texts[5];
  std::string& t = texts[static_cast<int>(format)];
  if (!t.empty()) return t;
  if (format == Format::Csv) t = "time_ns,key\n";
  for (const Line& l : lines()) {
    char ms[8];
    std::snprintf(ms, sizeof ms, ".%03lld", static_cast<long long>(l.ms % 1000));
    const std::string status = std::to_string(l.status);
    switch (format) {
      case Format::Combined:
        t += l.client + " - - [" + clock_text(l.ms, Clock::AccessLog) + "] \"GET " + l.path +
             " HTTP/1.1\" " + status + " 512 \"-\" \"Mozilla/5.0 (X11; Linux)\"\n";
        break;
      case Format::Envoy:
        t += "[" + clock_text(l.ms, Clock::Iso) + ms + "Z] \"GET " + l.path + " HTTP/1.1\" " +
             status + " - 0 512 3 2 \"" + l.client +
             ", 10.0.0.1\" \"Mozilla/5.0 (X11; Linux)\" \"5f1e0c2a\" \"example.com\" "
             "\"10.0.2.1:80\"\n";
        break;
      case Format::Nginx:
        t += clock_text(l.ms, Clock::IsoOffset) + " " + l.client + " \"GET " + l.path +
             " HTTP/1.1\" " + status + " 512\n";
        break;
      case Format::Json:
        t += "{\"time\":\"" + clock_text(l.ms, Clock::Iso) + ms + "Z\",\"req\":{\"client\":\"" +
             l.client + "\",\"path\":\"" + l.path + "\"},\"status\":" + status + "}\n";
        break;
      case Format::Csv:
        t += std::to_string((kStart * 1000 + l.ms) * 1'000'000) + "," + l.client + "\n";
        break;
    }
  }
  return t;
}

replay::TraceOptions options(Format format) {
  replay::TraceOptions o;
  switch (format) {
    case Format::Envoy:
      o.key_field = "xff";
      break;
    case Format::Nginx:
      o.log_format = R"($time_iso8601 $remote_addr "$request" $status $body_bytes_sent)";
      break;
    case Format::Json:
      o.key_field = "req.client";
      break;
    default:
      break;
  }
  return o;
}

// The reader, as `floodgate replay` runs it, over the text in memory.
template <Format F>
void read_floodgate(benchmark::State& state) {
  std::string& t = const_cast<std::string&>(text(F));
  for (auto _ : state) {
    std::FILE* file = fmemopen(t.data(), t.size(), "r");
    replay::TraceReader reader(file, "bench", options(F));
    std::size_t n = 0;
    while (true) {
      auto next = reader.next();
      if (!next) {
        state.SkipWithError(next.error().message().c_str());
        break;
      }
      if (!next->has_value()) break;
      benchmark::DoNotOptimize((*next)->key.data());
      ++n;
    }
    std::fclose(file);
    if (n != static_cast<std::size_t>(kLines)) state.SkipWithError("not every line was read");
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}

// The least a reader does: each line's end, and its first token.
template <Format F>
void read_baseline(benchmark::State& state) {
  const std::string& t = text(F);
  for (auto _ : state) {
    std::size_t tokens = 0;
    for (const char* p = t.data(); p < t.data() + t.size();) {
      const auto left = static_cast<std::size_t>(t.data() + t.size() - p);
      const char* end = static_cast<const char*>(std::memchr(p, '\n', left));
      if (end == nullptr) end = t.data() + t.size();
      const char* space =
          static_cast<const char*>(std::memchr(p, ' ', static_cast<std::size_t>(end - p)));
      tokens += static_cast<std::size_t>((space == nullptr ? end : space) - p);
      p = end + 1;
    }
    benchmark::DoNotOptimize(tokens);
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}

constexpr const char* kConfig = R"(domain: edge
descriptors:
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 10}
  - key: path
    value: "/api/*"
    descriptors:
      - key: remote_address
        rate_limit: {unit: minute, requests_per_unit: 120, algorithm: gcra, burst: 40}
  - key: generic_key
    value: global
    shadow_mode: true
    rate_limit: {unit: second, requests_per_unit: 40}
)";

// R1's lines through the service: three descriptors a line.
void config_floodgate(benchmark::State& state) {
  std::string& t = const_cast<std::string&>(text(Format::Combined));
  Result<server::Config> parsed = server::Config::parse(kConfig, "bench.yaml");
  const auto config = std::make_shared<const server::Config>(std::move(*parsed));
  for (auto _ : state) {
    server::ServiceReplay::Options o;
    o.config = config;
    o.domain = "edge";
    for (const char* d :
         {"remote_address=$client", "path=$path,remote_address=$client", "generic_key=global"}) {
      o.descriptors.push_back(*server::DescriptorTemplate::parse(d));
    }
    Result<server::ServiceReplay> service = server::ServiceReplay::create(std::move(o));
    replay::TraceOptions to = options(Format::Combined);
    to.fields = service->fields();
    std::FILE* file = fmemopen(t.data(), t.size(), "r");
    replay::TraceReader reader(file, "bench", to);
    std::vector<std::string_view> values;
    std::size_t admitted = 0;
    while (true) {
      auto next = reader.next();
      if (!next || !next->has_value()) break;
      values.clear();
      for (std::size_t i = 0; i < reader.field_count(); ++i) values.push_back(reader.field(i));
      admitted += service->decide((*next)->time, 1, values).overall == server::Code::Ok ? 1u : 0u;
    }
    std::fclose(file);
    benchmark::DoNotOptimize(admitted);
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}

// The same lines decided by the plain replay, one GCRA limit per client.
void config_baseline(benchmark::State& state) {
  std::string& t = const_cast<std::string&>(text(Format::Combined));
  for (auto _ : state) {
    replay::Policy policy;
    policy.quota = Quota::per_second(10);
    Result<replay::Replayer> replayer = replay::Replayer::create(policy);
    std::FILE* file = fmemopen(t.data(), t.size(), "r");
    replay::TraceReader reader(file, "bench", options(Format::Combined));
    std::size_t admitted = 0;
    while (true) {
      auto next = reader.next();
      if (!next || !next->has_value()) break;
      admitted += replayer->decide(**next).allowed() ? 1u : 0u;
    }
    std::fclose(file);
    benchmark::DoNotOptimize(admitted);
  }
  state.SetItemsProcessed(state.iterations() * kLines);
}

BENCHMARK(read_floodgate<Format::Combined>)->Name("R1/floodgate")->Unit(benchmark::kMillisecond);
BENCHMARK(read_baseline<Format::Combined>)->Name("R1/baseline")->Unit(benchmark::kMillisecond);
BENCHMARK(read_floodgate<Format::Envoy>)->Name("R2/floodgate")->Unit(benchmark::kMillisecond);
BENCHMARK(read_baseline<Format::Envoy>)->Name("R2/baseline")->Unit(benchmark::kMillisecond);
BENCHMARK(read_floodgate<Format::Nginx>)->Name("R3/floodgate")->Unit(benchmark::kMillisecond);
BENCHMARK(read_baseline<Format::Nginx>)->Name("R3/baseline")->Unit(benchmark::kMillisecond);
BENCHMARK(read_floodgate<Format::Json>)->Name("R4/floodgate")->Unit(benchmark::kMillisecond);
BENCHMARK(read_baseline<Format::Json>)->Name("R4/baseline")->Unit(benchmark::kMillisecond);
BENCHMARK(read_floodgate<Format::Csv>)->Name("R5/floodgate")->Unit(benchmark::kMillisecond);
BENCHMARK(read_baseline<Format::Csv>)->Name("R5/baseline")->Unit(benchmark::kMillisecond);
BENCHMARK(config_floodgate)->Name("C1/floodgate")->Unit(benchmark::kMillisecond);
BENCHMARK(config_baseline)->Name("C1/baseline")->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace floodgate::bench
