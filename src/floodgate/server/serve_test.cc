// The service as a library (serve.h), in this process: a Runner answers its HTTP endpoint under
// the configuration it read, reloads when asked, stops in order and more than once; its start
// errors name the input and the value; host:port is read strictly.
#include "floodgate/server/serve.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "floodgate/server/http_server.h"
#include "floodgate/testing/http_client.h"

namespace floodgate::server {
namespace {

using namespace std::chrono_literals;

// A configuration file in a folder of the test's own, removed at the end.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& text)
      : folder_(std::filesystem::temp_directory_path() /
                ("floodgate-serve-lib-" + std::to_string(::getpid()) + "-" +
                 std::to_string(counter_++))) {
    std::filesystem::create_directories(folder_);
    write(text);
  }
  ~ConfigFile() {
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }
  void write(const std::string& text) const { std::ofstream(path()) << text; }
  std::string path() const { return (folder_ / "config.yaml").string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path folder_;
};

// Lines a Runner logged, kept for the test's thread.
struct Said {
  std::mutex mu;
  std::vector<std::string> lines;
  // Each line as "level message".
  Log sink() {
    return [this](LogLevel level, const std::string& line) {
      const std::lock_guard lock(mu);
      lines.push_back(std::string(to_string(level)) + " " + line);
    };
  }
  bool has(std::string_view text) {
    const std::lock_guard lock(mu);
    for (const std::string& l : lines) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

ServeOptions options_for(const ConfigFile& config, Said& said) {
  ServeOptions o;
  o.config_path = config.path();
  o.grpc_address = "127.0.0.1:0";
  o.http_port = 0;
  o.reload_every = std::chrono::hours(1);  // Only when asked.
  o.log = said.sink();
  return o;
}

std::string status_of(int port, const std::string& request) {
  testing::Client c(port);
  const std::string got = c.read_responses(c.send(request) ? 1 : 0);
  return got.substr(0, got.find("\r\n"));
}

const std::string kJson = R"({"domain":"d","descriptors":[{"entries":[{"key":"k","value":"v"}]}]})";

TEST(ServeRunnerTest, AnswersOverHttpReloadsWhenAskedAndStopsTwice) {
  ConfigFile config(
      "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 1}\n");
  Said said;
  Result<std::unique_ptr<Runner>> runner = Runner::start(options_for(config, said));
  ASSERT_TRUE(runner) << runner.error().message();
  Runner& r = **runner;
  ASSERT_GT(r.grpc_port(), 0);
  ASSERT_GT(r.http_port(), 0);
  EXPECT_TRUE(said.has("gRPC on 127.0.0.1:" + std::to_string(r.grpc_port())));
  EXPECT_TRUE(said.has("HTTP on 127.0.0.1:" + std::to_string(r.http_port())));
  EXPECT_EQ(status_of(r.http_port(), testing::post("/json", kJson)), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_of(r.http_port(), testing::post("/json", kJson)),
            "HTTP/1.1 429 Too Many Requests");
  EXPECT_EQ(status_of(r.http_port(), testing::get("/healthcheck")), "HTTP/1.1 200 OK");
  const auto rlconfig = [&r] {
    testing::Client c(r.http_port());
    const std::string got = c.read_responses(c.send(testing::get("/rlconfig")) ? 1 : 0);
    return got.substr(got.find("\r\n\r\n") + 4);
  };
  EXPECT_EQ(rlconfig(),
            "d.k: unit=HOUR requests_per_unit=1, shadow_mode: false, quota_mode: false\n");
  testing::Client metrics(r.http_port());
  ASSERT_TRUE(metrics.send(testing::get("/metrics")));
  EXPECT_NE(metrics.read_until("floodgate_http_timeouts_total")
                .find("floodgate_rule_over_limit_total{domain=\"d\",rule=\"d.k\"} 1"),
            std::string::npos)
      << metrics.received();

  // A new rule, read when asked: the value is limited by it, with state of its own.
  config.write(
      "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 3}\n");
  r.reload_now("test");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!said.has("configuration reloaded from " + config.path() + " (test)") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(said.has("(test)"));
  EXPECT_EQ(status_of(r.http_port(), testing::post("/json", kJson)), "HTTP/1.1 200 OK");
  EXPECT_EQ(rlconfig(),
            "d.k: unit=HOUR requests_per_unit=3, shadow_mode: false, quota_mode: false\n");

  r.stop();
  r.stop();
  EXPECT_FALSE(testing::Client(r.http_port()).connected()) << "nothing listens once stopped";
}

TEST(ServeRunnerTest, StartErrorsNameTheInputAndTheValue) {
  Said said;
  {
    ConfigFile config("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight}\n");
    const Result<std::unique_ptr<Runner>> r = Runner::start(options_for(config, said));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find(config.path() + ":4: unit must be"), std::string::npos)
        << r.error().message();
  }
  ConfigFile config("domain: d\ndescriptors:\n  - key: k\n");
  ServeOptions o = options_for(config, said);
  o.grpc_address = "no-such-host.invalid:1";
  Result<std::unique_ptr<Runner>> r = Runner::start(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("gRPC address: cannot listen on \"no-such-host.invalid:1\": "),
            std::string::npos)
      << r.error().message();
  o = options_for(config, said);
  o.http_host = "no-such-host.invalid";
  r = Runner::start(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("HTTP address: cannot listen on"), std::string::npos)
      << r.error().message();
  o = options_for(config, said);
  o.redis = RedisBackendOptions{.url = "redis://:secret@127.0.0.1:1?db=2"};
  r = Runner::start(o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("redis URL \"redis://:***@127.0.0.1:1?db=2\""),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(r.error().message().find("secret"), std::string::npos) << r.error().message();
}

TEST(ServeRunnerTest, ASecondInstanceOnTheSamePortsIsRefusedUnlessBothShareThem) {
  ConfigFile config("domain: d\ndescriptors:\n  - key: k\n");
  Said said;
  Result<std::unique_ptr<Runner>> first = Runner::start(options_for(config, said));
  ASSERT_TRUE(first) << first.error().message();
  const std::string grpc = "127.0.0.1:" + std::to_string((*first)->grpc_port());
  const std::string http = "127.0.0.1:" + std::to_string((*first)->http_port());
  ServeOptions o = options_for(config, said);
  o.grpc_address = grpc;
  Result<std::unique_ptr<Runner>> second = Runner::start(o);
  ASSERT_FALSE(second) << "a second instance started on gRPC " << grpc;
  EXPECT_EQ(second.error().message(),
            "gRPC address: cannot listen on \"" + grpc +
                "\": address already in use (another process listens on it); --reuse-port "
                "shares it with other instances that ask to");
  o = options_for(config, said);
  o.http_port = (*first)->http_port();
  second = Runner::start(o);
  ASSERT_FALSE(second) << "a second instance started on HTTP " << http;
  EXPECT_EQ(second.error().message(),
            "HTTP address: cannot listen on \"" + http +
                "\": address already in use (another process listens on it); --reuse-port "
                "shares it with other instances that ask to");
  // Asking for it is not enough: the instance already there has to have asked too.
  o.grpc_address = grpc;
  o.reuse_port = true;
  EXPECT_FALSE(Runner::start(o));
  first->reset();

  // Both asked: both listen on both ports.
  o = options_for(config, said);
  o.reuse_port = true;
  first = Runner::start(o);
  ASSERT_TRUE(first) << first.error().message();
  o.grpc_address = "127.0.0.1:" + std::to_string((*first)->grpc_port());
  o.http_port = (*first)->http_port();
  second = Runner::start(o);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ((*second)->grpc_port(), (*first)->grpc_port());
  EXPECT_EQ((*second)->http_port(), (*first)->http_port());
  EXPECT_EQ(status_of((*first)->http_port(), testing::get("/healthcheck")), "HTTP/1.1 200 OK");
}

TEST(ParseHostPortTest, ReadsHostAndPortAndNamesWhatIsWrong) {
  const auto ok = parse_host_port("0.0.0.0:8080");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->first, "0.0.0.0");
  EXPECT_EQ(ok->second, 8080);
  EXPECT_EQ(parse_host_port("[::1]:0")->first, "[::1]");
  for (const char* bad : {"8080", ":80", "h:", "h:65536", "h:-1", "h:8o", "h:1 "}) {
    const auto r = parse_host_port(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message(),
              "\"" + std::string(bad) + "\" is not host:port (port 0 to 65535)");
  }
}

}  // namespace
}  // namespace floodgate::server
