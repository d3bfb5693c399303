// `floodgate replay --config` against floodgate serve: a random trace is replayed by the real
// floodgate binary, and the same requests are sent over gRPC to the service `floodgate serve`
// runs (serve.h's Runner, on loopback, its clock set to each line's instant); every decision,
// every descriptor's status and the remaining count must agree, line for line.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "floodgate/server/serve.h"

namespace floodgate::server {
namespace {

namespace rls = envoy::service::ratelimit::v3;

// Every feature the service decides with: a wildcard and nested rules, an exact value that is
// unlimited, shadow mode, a rule replaced by another, the algorithm extensions, several units.
constexpr const char* kConfig = R"(domain: edge
descriptors:
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 4}
  - key: remote_address
    value: 10.0.0.1
    rate_limit: {unlimited: true}
  - key: path
    value: "/api/*"
    descriptors:
      - key: remote_address
        rate_limit: {unit: minute, requests_per_unit: 30, algorithm: gcra, burst: 6, name: api}
  - key: path
    value: /login
    descriptors:
      - key: remote_address
        rate_limit:
          {unit: minute, requests_per_unit: 5, algorithm: token-bucket, burst: 3,
           replaces: [{name: api}]}
  - key: generic_key
    value: global
    shadow_mode: true
    rate_limit: {unit: second, requests_per_unit: 20}
  - key: method
    value: POST
    rate_limit: {unit: minute, requests_per_unit: 40}
)";

// One line of the trace: its instant and fields; an empty path is absent from the line.
struct Line {
  std::int64_t ns;
  std::string client, path, method;
};

std::vector<Line> random_trace(std::uint32_t seed, int lines) {
  std::mt19937 rng(seed);  // 32-bit results.
  const std::vector<std::string> paths = {"/api/a", "/api/b", "/login", "/", "/static/x", ""};
  std::int64_t t = 1'795'784'400'000'000'000;  // 2026-11-27T13:00:00Z.
  std::vector<Line> trace;
  for (int i = 0; i < lines; ++i) {
    // Bursts of equal and nearby instants, and gaps that cross windows.
    const auto gap = rng() % 10;
    t += gap < 4   ? 0
         : gap < 8 ? static_cast<std::int64_t>(rng() % 50'000'000)
                   : static_cast<std::int64_t>(rng() % 3'000'000'000);
    trace.push_back({t, "10.0.0." + std::to_string(1 + rng() % 6), paths[rng() % paths.size()],
                     rng() % 3 == 0 ? "POST" : "GET"});
  }
  return trace;
}

// The RFC 3339 form of `ns`, to the nanosecond.
std::string rfc3339(std::int64_t ns) {
  const std::time_t s = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%09lldZ", static_cast<long long>(ns % 1'000'000'000));
  return buf;
}

// Runs `args` and returns its exit status; its output goes to `log`.
int run(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::FILE* out = std::freopen(log.c_str(), "w", stderr);
    if (out == nullptr) ::_exit(126);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(ReplayConfigTest, DecidesEveryLineAsTheServiceAnsweringOverGrpc) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("floodgate-replay-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "edge.yaml") << kConfig;
  const std::vector<Line> trace = random_trace(7, 4000);
  {
    // JSON lines: a line without a path has no such member.
    std::ofstream out(dir / "trace.jsonl");
    for (const Line& l : trace) {
      out << R"({"time":")" << rfc3339(l.ns) << R"(","client":")" << l.client << '"'
          << (l.path.empty() ? "" : R"(,"path":")" + l.path + '"') << R"(,"method":")" << l.method
          << "\"}\n";
    }
  }
  const std::string decisions = (dir / "decisions.csv").string();
  ASSERT_EQ(
      run({FLOODGATE_BIN, "replay", "--config", (dir / "edge.yaml").string(), "--domain", "edge",
           "--descriptor", "remote_address=$client", "--descriptor",
           "path=$path,remote_address=$client", "--descriptor", "generic_key=global",
           "--descriptor", "method=$method", "--out", decisions, (dir / "trace.jsonl").string()},
          (dir / "replay.err").string()),
      0)
      << std::ifstream(dir / "replay.err").rdbuf();

  // The service as floodgate serve runs it, deciding at the instant the test sets.
  std::atomic<std::int64_t> now{0};
  ServeOptions options;
  options.config_path = (dir / "edge.yaml").string();
  options.grpc_address = "127.0.0.1:0";
  options.http = false;
  options.reload_every = std::chrono::hours(1);
  options.answer.clock = [&now] { return Instant{Nanos{now.load()}}; };
  Result<std::unique_ptr<Runner>> runner = Runner::start(options);
  ASSERT_TRUE(runner) << runner.error().message();
  const auto stub = rls::RateLimitService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*runner)->grpc_port()), grpc::InsecureChannelCredentials()));

  std::ifstream csv(decisions);
  std::string row;
  ASSERT_TRUE(std::getline(csv, row));
  EXPECT_EQ(row, "time_ns,key,cost,allowed,remaining,retry_after_ns,descriptors");
  std::size_t denied = 0, shadowed = 0, unsent = 0;
  for (std::size_t i = 0; i < trace.size(); ++i) {
    const Line& l = trace[i];
    ASSERT_TRUE(std::getline(csv, row)) << "the replay wrote " << i << " decisions";
    rls::RateLimitRequest request;
    request.set_domain("edge");
    const auto add = [&](std::initializer_list<std::pair<const char*, std::string>> entries) {
      auto* d = request.add_descriptors();
      for (const auto& [k, v] : entries) {
        auto* e = d->add_entries();
        e->set_key(k);
        e->set_value(v);
      }
    };
    add({{"remote_address", l.client}});
    if (!l.path.empty()) add({{"path", l.path}, {"remote_address", l.client}});
    add({{"generic_key", "global"}});
    add({{"method", l.method}});
    now.store(l.ns);
    rls::RateLimitResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const grpc::Status status = stub->ShouldRateLimit(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    // What the service said, in the replay's words: the descriptors it was sent, in order, with
    // "-" for the one not sent; a shadowed one is OK over gRPC.
    std::string codes;
    std::uint64_t remaining = UINT32_MAX;
    for (int d = 0, sent = 0; d < 4; ++d) {
      if (d > 0) codes += ';';
      if (d == 1 && l.path.empty()) {
        codes += '-';
        continue;
      }
      const auto& s = response.statuses(sent++);
      codes += s.code() == rls::RateLimitResponse::OVER_LIMIT ? "over" : "ok";
      if (s.has_current_limit())
        remaining = std::min<std::uint64_t>(remaining, s.limit_remaining());
    }
    const bool allowed = response.overall_code() == rls::RateLimitResponse::OK;
    // The replay's row: time_ns,key,cost,allowed,remaining,retry_after_ns,descriptors.
    std::vector<std::string> fields;
    std::stringstream split(row);
    for (std::string f; std::getline(split, f, ',');) fields.push_back(f);
    ASSERT_EQ(fields.size(), 7u) << row;
    std::string replay_codes = fields[6];
    shadowed += replay_codes.find("shadow") != std::string::npos ? 1u : 0u;
    for (std::size_t at; (at = replay_codes.find("shadow")) != std::string::npos;) {
      replay_codes.replace(at, 6, "ok");
    }
    ASSERT_EQ(fields[0], std::to_string(l.ns)) << "line " << i + 1;
    ASSERT_EQ(fields[1], l.client) << "line " << i + 1;
    ASSERT_EQ(fields[3], allowed ? "true" : "false") << "line " << i + 1 << ": " << row;
    ASSERT_EQ(replay_codes, codes) << "line " << i + 1 << ": " << row;
    ASSERT_EQ(fields[4], std::to_string(remaining)) << "line " << i + 1 << ": " << row;
    denied += allowed ? 0u : 1u;
    unsent += l.path.empty() ? 1u : 0u;
  }
  EXPECT_FALSE(std::getline(csv, row)) << "more decisions than lines: " << row;
  // The trace exercises what it is meant to: denials, shadowed hits, descriptors not sent.
  EXPECT_GT(denied, 100u);
  EXPECT_GT(shadowed, 10u);
  EXPECT_GT(unsent, 100u);
  (*runner)->stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace floodgate::server
