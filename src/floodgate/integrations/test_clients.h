// Concurrent HTTP clients for the integrations' tests (not installed): cpp-httplib's client, one
// we did not write, against the server under test. Workers only record what they saw; the test's
// thread decides once every worker is joined. Every request has a 5 s deadline.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

namespace floodgate::http {

// What a client saw: one answer.
struct Seen {
  std::string client;
  int status = 0;  // 0: no answer.
  std::string retry_after, rate_limit, policy, body;
};

// Sends `per_thread` requests from each of `threads` threads, thread t as client "c<t % clients>"
// (header X-Client), and returns every answer. Workers only record.
inline std::vector<Seen> hammer(int port, int threads, int per_thread, int clients) {
  std::vector<std::vector<Seen>> seen(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      httplib::Client client("127.0.0.1", port);
      client.set_connection_timeout(5);
      client.set_read_timeout(5);
      const std::string name = "c" + std::to_string(t % clients);
      for (int i = 0; i < per_thread; ++i) {
        Seen s{.client = name,
               .status = 0,
               .retry_after = {},
               .rate_limit = {},
               .policy = {},
               .body = {}};
        if (const httplib::Result r = client.Get("/hello", {{"X-Client", name}})) {
          s.status = r->status;
          s.retry_after = r->get_header_value("Retry-After");
          s.rate_limit = r->get_header_value("RateLimit");
          s.policy = r->get_header_value("RateLimit-Policy");
          s.body = r->body;
        }
        seen[static_cast<std::size_t>(t)].push_back(std::move(s));
      }
    });
  }
  for (std::thread& w : workers) w.join();
  std::vector<Seen> all;
  for (auto& v : seen) all.insert(all.end(), v.begin(), v.end());
  return all;
}

// Checks what `hammer` saw from `clients` clients against a limit of burst `burst` per client
// ("client", 2/s) that time never refills: each admitted exactly `burst` times, with the body
// and no Retry-After; every other answer 429 with Retry-After 1, nothing left, and the 429 body.
inline void expect_each_client_got_its_burst(const std::vector<Seen>& seen, int clients,
                                             int burst) {
  std::map<std::string, int> admitted;
  for (const Seen& s : seen) {
    ASSERT_NE(s.status, 0) << "a request got no answer";
    EXPECT_EQ(s.policy, R"("client";q=2;w=1)");
    if (s.status == 200) {
      ++admitted[s.client];
      EXPECT_EQ(s.body, "hello\n");
      EXPECT_TRUE(s.retry_after.empty());
    } else {
      EXPECT_EQ(s.status, 429);
      EXPECT_EQ(s.retry_after, "1");
      EXPECT_EQ(s.rate_limit, R"("client";r=0;t=3)");
      EXPECT_EQ(s.body, "too many requests\n");
    }
  }
  ASSERT_EQ(admitted.size(), static_cast<std::size_t>(clients));
  for (const auto& [client, n] : admitted) EXPECT_EQ(n, burst) << client;
}

}  // namespace floodgate::http
