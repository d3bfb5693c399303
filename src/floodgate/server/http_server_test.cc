#include "floodgate/server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/testing/http_client.h"

namespace floodgate::server {
namespace {

using namespace std::chrono_literals;

using testing::Client;
using testing::get;
using testing::post;

// A server with /echo (slow lane: answers the body), /health (fast lane) and /a, /b.
struct Fixture {
  explicit Fixture(HttpServerOptions options = {}) : server(options) {
    server.route("POST", "/echo", HttpLane::Slow, [](const HttpRequest& r) {
      return HttpResponse{200, "text/plain",
                          "echo " + std::to_string(r.body.size()) + ":" + r.body.substr(0, 16)};
    });
    server.route("GET", "/health", HttpLane::Fast, [](const HttpRequest&) {
      return HttpResponse{200, "text/plain", "OK\n"};
    });
    for (const char* p : {"/a", "/b"}) {
      server.route("GET", p, HttpLane::Slow, [p](const HttpRequest&) {
        return HttpResponse{200, "text/plain", p};
      });
    }
    Result<int> bound = server.listen("127.0.0.1", 0);
    EXPECT_TRUE(bound) << bound.error().message();
    port = bound ? *bound : 0;
  }
  HttpServer server;
  int port = 0;
};

// The backlog of the IPv4 socket listening on loopback port `port`, as the kernel reports it
// (`ss -lt`'s Send-Q), or -1 if none is found.
int listen_backlog(int port) {
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -1;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } ask{};
  ask.header.nlmsg_len = sizeof ask;
  ask.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  ask.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  ask.request.sdiag_family = AF_INET;
  ask.request.sdiag_protocol = IPPROTO_TCP;
  ask.request.idiag_states = 1u << TCP_LISTEN;
  int found = -1;
  if (::send(fd, &ask, sizeof ask, 0) == static_cast<ssize_t>(sizeof ask)) {
    alignas(nlmsghdr) char buffer[16384];
    for (bool done = false; !done;) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      // Each message: its header (16 bytes, 4-aligned), then its payload, padded to 4 bytes.
      std::size_t at = 0;
      while (at + sizeof(nlmsghdr) <= static_cast<std::size_t>(n)) {
        nlmsghdr h;
        std::memcpy(&h, buffer + at, sizeof h);
        if (h.nlmsg_len < sizeof h || at + h.nlmsg_len > static_cast<std::size_t>(n) ||
            h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
          done = true;
          break;
        }
        inet_diag_msg m;
        std::memcpy(&m, buffer + at + sizeof h, sizeof m);
        if (ntohs(m.id.idiag_sport) == port) found = static_cast<int>(m.idiag_wqueue);
        at += (h.nlmsg_len + 3u) & ~3u;
      }
    }
  }
  ::close(fd);
  return found;
}

// The kernel queues as many connections not yet accepted as gRPC's listener does (4096, within
// net.core.somaxconn), not the 5 of cpp-httplib's default.
TEST(HttpServerTest, ListensWithABacklogLikeGrpcs) {
  Fixture f;
  int somaxconn = 4096;
  if (FILE* file = std::fopen("/proc/sys/net/core/somaxconn", "r")) {
    if (std::fscanf(file, "%d", &somaxconn) != 1) somaxconn = 4096;
    std::fclose(file);
  }
  EXPECT_EQ(listen_backlog(f.port), std::min(4096, somaxconn));
}

// Pipelined requests are each answered, in order (the second and third used to be dropped).
TEST(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  Fixture f;
  Client c(f.port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/b") + get("/a") + post("/echo", "hello") + get("/health")));
  const std::string out = c.read_responses(4);
  const std::size_t b = out.find("\r\n\r\n/b");
  const std::size_t a = out.find("\r\n\r\n/a");
  const std::size_t echo = out.find("echo 5:hello");
  const std::size_t ok = out.find("OK\n");
  ASSERT_NE(b, std::string::npos) << out;
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(echo, std::string::npos) << out;
  ASSERT_NE(ok, std::string::npos) << out;
  EXPECT_LT(b, a);
  EXPECT_LT(a, echo);
  EXPECT_LT(echo, ok);
}

// A Content-Length no body may have, or one past the bound, is refused at once with a status
// that says why (it used to wait for the read timeout, 5 s, holding a thread, and answered -1
// with 413); any content type is read up to the bound (form bodies used to stop at 8 KiB with an
// empty 413).
TEST(HttpServerTest, RefusesBadOrHugeLengthsAtOnceAndReadsAnyContentType) {
  Fixture f;
  const struct {
    std::string request;
    std::string status;
    std::string says;
  } cases[] = {
      {"POST /echo HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", "HTTP/1.1 413 ",
       "a body of 99999999999 bytes is larger than the 4194304 bytes read"},
      {"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 ",
       "Content-Length -1 is not a number of bytes"},
      {"POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", "HTTP/1.1 413 ",
       "is not a number of bytes up to 4194304"},
      {"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "HTTP/1.1 400 ",
       "two different Content-Length headers"},
      {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       "HTTP/1.1 411 ", "Transfer-Encoding is not accepted"},
      {"NONSENSE\r\n\r\n", "HTTP/1.1 400 ", "the request line is not METHOD TARGET HTTP/1.x"},
      {"GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 400 ", "HTTP/1.0 and HTTP/1.1 only"},
      {"GET /a HTTP/1.1\r\nno colon here\r\n\r\n", "HTTP/1.1 400 ", "not Name: value"},
      {get("/nowhere"), "HTTP/1.1 404 ", "no endpoint at /nowhere"},
      {get("/echo"), "HTTP/1.1 405 ", "GET is not served at /echo"},
  };
  for (const auto& c : cases) {
    Client client(f.port);
    ASSERT_TRUE(client.send(c.request));
    const auto start = std::chrono::steady_clock::now();
    const std::string out = client.read_responses(1);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << c.request;
    EXPECT_TRUE(out.starts_with(c.status)) << c.request << " -> " << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << c.request << " -> " << out;
  }
  Client allow(f.port);
  ASSERT_TRUE(allow.send(get("/echo")));
  EXPECT_NE(allow.read_responses(1).find("Allow: POST\r\n"), std::string::npos);

  const std::string form(10'000, 'f');
  Client c(f.port);
  ASSERT_TRUE(c.send(post("/echo", form, "application/x-www-form-urlencoded")));
  EXPECT_NE(c.read_responses(1).find("echo 10000:ffff"), std::string::npos) << c.received();
  // A body past the bound: 413, with the reason in the body, read by the client (the rest of
  // what it sends is drained, not answered with a reset).
  Client big(f.port);
  const std::string huge(5 << 20, 'x');
  std::thread sender([&] { (void)big.send(post("/echo", huge)); });
  const std::string out = big.read_responses(1);
  sender.join();
  EXPECT_TRUE(out.starts_with("HTTP/1.1 413 ")) << out.substr(0, 200);
  EXPECT_NE(out.find("a body of 5242880 bytes is larger than the 4194304 bytes read"),
            std::string::npos);
  // Expect: 100-continue gets its go-ahead, then the answer.
  Client expect(f.port);
  ASSERT_TRUE(
      expect.send("POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_TRUE(expect.read_until("\r\n\r\n", 2s).starts_with("HTTP/1.1 100 Continue\r\n\r\n"));
  ASSERT_TRUE(expect.send("hi"));
  EXPECT_NE(expect.read_responses(1).find("echo 2:hi"), std::string::npos) << expect.received();
}

// Clients that trickle their bytes cost the server a socket each, never a thread: the health
// check is answered at once while 64 of them trickle (8 used to block every endpoint), and each
// is answered 408 and closed once its head is late, however steadily it trickles.
TEST(HttpServerTest, TricklingClientsHoldUpNothingAndAreCutOffAtTheirDeadline) {
  Fixture f({.head_timeout = 1'500ms});
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 64; ++i) {
    slow.push_back(std::make_unique<Client>(f.port));
    ASSERT_TRUE(slow.back()->connected());
  }
  const std::string head = "GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ";
  std::vector<std::chrono::steady_clock::duration> probes;
  for (std::size_t byte = 0; byte < 10; ++byte) {
    for (auto& c : slow) (void)c->send(std::string(1, byte < head.size() ? head[byte] : 'x'));
    Client probe(f.port);
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(probe.send(get("/health")));
    const std::string out = probe.read_responses(1, 5s);
    probes.push_back(std::chrono::steady_clock::now() - start);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200 ")) << out;
    std::this_thread::sleep_for(100ms);
  }
  for (const auto& took : probes) EXPECT_LT(took, 1s);
  // Still trickling, past the head's deadline: 408 and closed.
  for (int i = 0; i < 10; ++i) {
    for (auto& c : slow) (void)c->send("x");
    std::this_thread::sleep_for(100ms);
  }
  for (auto& c : slow) {
    EXPECT_TRUE(c->closed_within(5s));
    EXPECT_TRUE(c->received().starts_with("HTTP/1.1 408 ")) << c->received();
    EXPECT_NE(c->received().find("the request's head did not arrive within 1500 ms"),
              std::string::npos);
  }
  EXPECT_GE(f.server.stats().timeouts, 64u);
}

// A server whose /held handlers (slow lane) wait until `release()`, 10 s at most, and whose
// /health (fast lane) answers at once.
struct HeldServer {
  explicit HeldServer(HttpServerOptions options) : server(options) {
    server.route("GET", "/held", HttpLane::Slow, [this](const HttpRequest&) {
      held.fetch_add(1);
      std::unique_lock lock(mu);
      cv.wait_for(lock, 10s, [&] { return released; });
      return HttpResponse{200, "text/plain", "released"};
    });
    server.route("GET", "/health", HttpLane::Fast, [](const HttpRequest&) {
      return HttpResponse{200, "text/plain", "OK\n"};
    });
    Result<int> bound = server.listen("127.0.0.1", 0);
    EXPECT_TRUE(bound) << bound.error().message();
    port = bound ? *bound : 0;
  }

  // Waits (10 s at most) until `n` handlers are held; reports whether they are.
  bool wait_held(int n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (held.load() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    return held.load() == n;
  }

  void release() {
    {
      const std::lock_guard lock(mu);
      released = true;
    }
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  bool released = false;  // Guarded by mu.
  std::atomic<int> held{0};
  HttpServer server;
  int port = 0;
};

// Past the cap, a new connection takes the place of the one that has waited longest for a whole
// request (idle, or trickling); only when every connection is being answered is it refused, 503
// with the reason. So idle or trickling clients cannot keep the health check out.
TEST(HttpServerTest, PastTheCapIdleAndSlowConnectionsMakeRoomAndBusyOnesRefuse) {
  HeldServer h({.max_connections = 3, .slow_threads = 3});
  // Three idle connections and one trickling: the health check still gets in, each time.
  Client idle1(h.port);
  Client idle2(h.port);
  Client slow(h.port);
  ASSERT_TRUE(slow.send("GET /health HTTP/1.1\r\nX-Slow: "));
  for (int i = 0; i < 3; ++i) {
    Client health(h.port);
    ASSERT_TRUE(health.send(get("/health")));
    EXPECT_TRUE(health.read_responses(1, 5s).starts_with("HTTP/1.1 200 ")) << i;
  }
  EXPECT_GE(h.server.stats().connections_evicted, 1u);
  EXPECT_TRUE(idle1.closed_within(2s)) << "the longest waiting made room first";
  // Every place being answered: a newcomer is refused with the reason.
  std::vector<std::unique_ptr<Client>> busy;
  for (int i = 1; i <= 3; ++i) {
    busy.push_back(std::make_unique<Client>(h.port));
    ASSERT_TRUE(busy.back()->send(get("/held")));
    ASSERT_TRUE(h.wait_held(i));
  }
  Client refused(h.port);
  EXPECT_TRUE(refused.closed_within(5s));
  EXPECT_TRUE(refused.received().starts_with("HTTP/1.1 503 ")) << refused.received();
  EXPECT_NE(refused.received().find("more than 3 connections"), std::string::npos);
  EXPECT_EQ(h.server.stats().connections_refused, 1u);
  h.release();
  for (auto& c : busy) EXPECT_NE(c->read_responses(1).find("released"), std::string::npos);
}

// The fast lane never queues behind the slow one: with every slow thread held, the health check
// is answered; and a stop lets the held handler answer before it returns.
TEST(HttpServerTest, TheFastLaneIsAnsweredWhileTheSlowLaneIsHeldAndStopWaitsForHandlers) {
  HeldServer h({.slow_threads = 1});
  Client first(h.port);
  ASSERT_TRUE(first.send(get("/held")));
  ASSERT_TRUE(h.wait_held(1)) << "the first request never reached its handler";
  Client second(h.port);
  ASSERT_TRUE(second.send(get("/held")));
  Client health(h.port);
  ASSERT_TRUE(health.send(get("/health")));
  EXPECT_TRUE(health.read_responses(1, 5s).starts_with("HTTP/1.1 200 "));
  EXPECT_EQ(h.held.load(), 1) << "one slow thread: the second waits its turn";
  std::thread stopper([&] { h.server.stop(); });
  std::this_thread::sleep_for(50ms);
  h.release();
  stopper.join();
  EXPECT_NE(first.read_responses(1, 2s).find("released"), std::string::npos);
}

}  // namespace
}  // namespace floodgate::server
