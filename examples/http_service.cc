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
    const floodgate::AllOrNone r = floodgate::acquire_all_at(
        now, 1, [&] { return per_client.try_acquire_at(req.remote_addr, now); }, global);
    const floodgate::Decision client =
        r.refused_by == 0 ? per_client.peek_at(req.remote_addr, now, 0) : r.decision;
    res.set_header("RateLimit-Policy", floodgate::http::policy_item("client", per_client_quota));
    res.set_header("RateLimit", floodgate::http::limit_item("client", client));
    if (!r.allowed()) {
      if (auto after = floodgate::http::retry_after(r.decision))
        res.set_header("Retry-After", *after);
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
    int statuses = 0;
    for (int i = 0; i < 3; ++i) {
      const httplib::Result res = client.Get("/hello");
      if (!res) break;
      ++statuses;
      std::printf("%d RateLimit: %s%s%s\n", res->status, res->get_header_value("RateLimit").c_str(),
                  res->has_header("Retry-After") ? " Retry-After: " : "",
                  res->get_header_value("Retry-After").c_str());
    }
    server.stop();
    serving.join();
    return statuses == 3 ? 0 : 1;
  }
  const int port = argc > 1 ? std::atoi(argv[1]) : 8080;
  std::printf("serving on 127.0.0.1:%d (GET /hello)\n", port);
  return server.listen("127.0.0.1", port) ? 0 : 1;
}
