// The Boost.Beast helper in a real Beast server on loopback (a thread per connection), asked by
// cpp-httplib's client from concurrent threads: exact admitted counts, 429 with Retry-After and
// the RateLimit fields, and the fields on admitted answers. Time stands still (ManualClock).
#include "floodgate/integrations/beast_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/floodgate.h"
#include "floodgate/integrations/test_clients.h"

namespace floodgate::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// A Beast server answering GET /hello behind `limit_beast`, keyed by X-Client; each connection
// on a thread of its own. Stopped and joined at the end of the test, even on failure.
template <class Limit>
class BeastServer {
 public:
  BeastServer(Limit limit, BeastOptions options)
      : limit_(std::move(limit)),
        options_(std::move(options)),
        acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accepting_ = std::thread([this] { accept(); });
  }
  ~BeastServer() {
    stopping_ = true;
    // A connection of our own wakes the blocking accept, which then sees `stopping_`.
    boost::system::error_code ignored;
    tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ignored);
    accepting_.join();
    const std::lock_guard lock(mu_);
    for (std::thread& s : sessions_) s.join();
  }
  int port() const { return port_; }

 private:
  void accept() {
    while (!stopping_) {
      boost::system::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stopping_) break;
      const std::lock_guard lock(mu_);
      sessions_.emplace_back([this, s = std::move(socket)]() mutable { serve(std::move(s)); });
    }
  }

  void serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
      boost::system::error_code ec;
      bhttp::request<bhttp::string_body> req;
      bhttp::read(socket, buffer, req, ec);
      if (ec) break;
      const BeastLimit limit = limit_beast(limit_, req["X-Client"], options_);
      if (!limit.allowed()) {
        bhttp::write(socket, limit.refusal(req), ec);
      } else {
        bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
        res.set(bhttp::field::content_type, "text/plain");
        res.keep_alive(req.keep_alive());
        res.body() = "hello\n";
        limit.apply(res);
        res.prepare_payload();
        bhttp::write(socket, res, ec);
      }
      if (ec || !req.keep_alive()) break;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  Limit limit_;
  BeastOptions options_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accepting_;
  std::mutex mu_;
  std::vector<std::thread> sessions_;  // Guarded by mu_.
};

using PerClient = KeyedLimiter<std::string, GcraRule, ManualClock>;

TEST(BeastLimitTest, ConcurrentClientsGetExactlyTheirBurstAndThen429) {
  PerClient per_client{{.default_quota = Quota::per_second(2).with_burst(5)}};
  BeastOptions options;
  options.name = "client";
  BeastServer server(per_key(per_client), options);
  const std::vector<Seen> seen = hammer(server.port(), 8, 25, 4);  // 50 requests a client.
  expect_each_client_got_its_burst(seen, 4, 5);
}

TEST(BeastLimitTest, OneLimitForEveryClientAndTheBurstWindow) {
  GcraLimiter<ManualClock> global{Quota::per_second(5).with_burst(10)};
  BeastOptions options;
  options.name = "global";
  options.window = PolicyWindow::Burst;
  BeastServer server(one_limit(global), options);
  const std::vector<Seen> seen = hammer(server.port(), 4, 5, 4);
  int admitted = 0;
  for (const Seen& s : seen) {
    ASSERT_NE(s.status, 0) << "a request got no answer";
    EXPECT_EQ(s.policy, R"("global";q=10;w=2)");
    admitted += s.status == 200 ? 1 : 0;
  }
  EXPECT_EQ(admitted, 10);
}

}  // namespace
}  // namespace floodgate::http
