// An HTTP service limited per client and in total: each request must pass a per-client limit
// (a KeyedLimiter keyed by the client's address) and a global one (a GcraLimiter), and is charged
// to both or to neither. Answers carry the RateLimit-Policy and RateLimit header fields of the
// client's limit, and a denial 429 with Retry-After.
//
// Run it with a port to serve (`http_service 8080`), or with --self-test to serve on a free
// port, send it a few requests and print what came back.
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "floodgate/floodgate.h"
#include "floodgate/http/rate_limit_headers.h"

int main(int argc, char** argv) {
  const floodgate::Quota per_client_quota = floodgate::Quota::per_second(2);
  const floodgate::Quota global_quota = floodgate::Quota::per_second(100);
  floodgate::KeyedLimiter<> per_client{{.default_quota = per_client_quota}};
  floodgate::GcraLimiter<> global{global_quota};

  httplib::Server server;
  server.Get("/hello", [&](const httplib::Request& req, httplib::Response& res) {
    const floodgate::Instant now = floodgate::SteadyClock{}.now();
    // Both limits or neither; the client's keyed limit goes last, as it cannot give permits back.
    const auto r =
        floodgate::acquire_all_at(now, 1, global, floodgate::for_key(per_client, req.remote_addr));
    const floodgate::http::LimitState limits[] = {{"global", global_quota, r.decisions[0]},
                                                  {"client", per_client_quota, r.decisions[1]}};
    const floodgate::http::HeaderFields fields = floodgate::http::header_fields(
        limits, r.allowed() ? std::nullopt : std::optional(r.refused));
    res.set_header("RateLimit-Policy", fields.policy);
    res.set_header("RateLimit", fields.limit);
    if (!r.allowed()) {
      if (fields.retry_after) res.set_header("Retry-After", *fields.retry_after);
      res.status = 429;
      res.set_content("too many requests\n", "text/plain");
      return;
    }
    res.set_content("hello\n", "text/plain");
  });

  if (argc > 1 && std::string(argv[1]) == "--self-test") {
    const int port = server.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { server.listen_after_bind(); });
    // `stop` does nothing to a server whose accept loop has not started yet.
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(5);
    // Two admitted, then the client's limit of 2/s refuses: anything else fails the self-test.
    const int expected[] = {200, 200, 429};
    int as_expected = 0;
    for (const int want : expected) {
      const httplib::Result res = client.Get("/hello");
      if (!res) break;
      as_expected += res->status == want ? 1 : 0;
      std::printf("%d RateLimit: %s%s%s\n", res->status, res->get_header_value("RateLimit").c_str(),
                  res->has_header("Retry-After") ? " Retry-After: " : "",
                  res->get_header_value("Retry-After").c_str());
    }
    server.stop();
    serving.join();
    return as_expected == 3 ? 0 : 1;
  }
  const int port = argc > 1 ? std::atoi(argv[1]) : 8080;
  std::printf("serving on 127.0.0.1:%d (GET /hello)\n", port);
  return server.listen("127.0.0.1", port) ? 0 : 1;
}
