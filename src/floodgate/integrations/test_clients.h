// Concurrent HTTP clients for the integrations' tests (not installed): cpp-httplib's client, one
// we did not write, against the server under test. Workers only record what they saw; the test's
// thread decides once every worker is joined. Every request has a 5 s deadline.
#pragma once

#include <httplib.h>

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

}  // namespace floodgate::http
