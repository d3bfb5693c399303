// The cpp-httplib integration against a real cpp-httplib server on loopback, with concurrent
// clients: exact admitted counts, 429 with Retry-After and the RateLimit fields, and the fields
// on admitted answers. Time stands still (ManualClock): no permit comes back during a test.
#include "floodgate/integrations/httplib_limit.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/floodgate.h"
#include "floodgate/integrations/test_clients.h"

namespace floodgate::http {
namespace {

// A server on a free loopback port, serving GET /hello behind `handler`; stopped and joined at
// the end of the test, even on failure.
class Server {
 public:
  explicit Server(httplib::Server::HandlerWithResponse handler) {
    server_.set_pre_routing_handler(std::move(handler));
    server_.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("hello\n", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~Server() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  bool running() const { return server_.is_running(); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

using PerClient = KeyedLimiter<std::string, GcraRule, ManualClock>;

TEST(HttplibLimitTest, ConcurrentClientsGetExactlyTheirBurstAndThen429) {
  PerClient per_client{{.default_quota = Quota::per_second(2).with_burst(5)}};
  HttplibOptions options;
  options.name = "client";
  options.key = [](const httplib::Request& req) { return req.get_header_value("X-Client"); };
  Server server(limit_requests(per_key(per_client), options));
  ASSERT_TRUE(server.running());
  const std::vector<Seen> seen = hammer(server.port(), 8, 25, 4);  // 50 requests a client.
  expect_each_client_got_its_burst(seen, 4, 5);
}

TEST(HttplibLimitTest, OneLimitForEveryClientAdmitsItsBurstInAll) {
  GcraLimiter<ManualClock> global{Quota::per_second(10)};
  Server server(limit_requests(one_limit(global), {.name = "global",
                                                   .key = nullptr,
                                                   .cost = 2,
                                                   .window = PolicyWindow::Burst,
                                                   .body = "slow down\n"}));
  ASSERT_TRUE(server.running());
  const std::vector<Seen> seen = hammer(server.port(), 4, 10, 4);
  int admitted = 0;
  for (const Seen& s : seen) {
    ASSERT_NE(s.status, 0) << "a request got no answer";
    EXPECT_EQ(s.policy, R"("global";q=10;w=1)");
    admitted += s.status == 200 ? 1 : 0;
    if (s.status != 200) {
      EXPECT_EQ(s.body, "slow down\n");
    }
  }
  EXPECT_EQ(admitted, 5);  // A burst of 10 at 2 permits a request.
}

TEST(HttplibLimitTest, AnAdmittedAnswerSaysWhatIsLeft) {
  PerClient per_client{{.default_quota = Quota::per_second(5).with_burst(10)}};
  Server server(limit_requests(
      per_key(per_client),
      {.name = "ip", .key = nullptr, .cost = 1, .window = PolicyWindow::Burst, .body = "no\n"}));
  ASSERT_TRUE(server.running());
  httplib::Client client("127.0.0.1", server.port());
  client.set_read_timeout(5);
  const httplib::Result r = client.Get("/hello");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("RateLimit-Policy"), R"("ip";q=10;w=2)");
  EXPECT_EQ(r->get_header_value("RateLimit"), R"("ip";r=9;t=1)");
}

}  // namespace
}  // namespace floodgate::http
