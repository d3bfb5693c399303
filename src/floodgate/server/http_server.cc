#include "floodgate/server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "floodgate/server/workers.h"

namespace floodgate::server {

Result<std::pair<std::string, int>> parse_host_port(const std::string& text) {
  const auto colon = text.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    const char* digits = text.data() + colon + 1;
    const auto [end, ec] = std::from_chars(digits, text.data() + text.size(), port);
    if (ec != std::errc() || end != text.data() + text.size()) port = -1;
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    return Error("\"" + text + "\" is not host:port (port 0 to 65535)");
  }
  return std::pair{text.substr(0, colon), port};
}
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kListenerId = 0;
constexpr std::uint64_t kWakeId = 1;
// After an error answer, what the client still sends is read and dropped for this long (so that
// it reads the answer instead of a reset), at most `kDrainBytes` of it.
constexpr auto kDrainFor = std::chrono::seconds(1);
constexpr std::size_t kDrainBytes = 8 << 20;
// How often deadlines are checked.
constexpr auto kTick = std::chrono::milliseconds(50);

std::string_view reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string serialize(const HttpResponse& r, bool keep_alive, std::string_view allow = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(reason(r.status)) +
                    "\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!allow.empty()) out.append("Allow: ").append(allow).append("\r\n");
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Returns a socket listening on `host`:`port`, or an error naming the address and why.
Result<int> open_listener(const std::string& host, int port, bool reuse_port, int backlog) {
  const std::string where = "\"" + host + ":" + std::to_string(port) + "\"";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0 || found == nullptr) {
    return Error("cannot listen on " + where + ": " + ::gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(found, ::freeaddrinfo);
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return Error("cannot listen on " + where + ": " +
                 (error == EADDRINUSE ? std::string("address already in use (another process "
                                                    "listens on it)")
                                      : std::string(std::strerror(error))));
  }
  return fd;
}

}  // namespace

struct HttpServer::Impl {
  struct Route {
    std::string method;
    std::string path;
    HttpLane lane;
    HttpHandler handler;
  };

  enum class State : std::uint8_t { Head, Body, Handling, Closing };

  struct Conn {
    int fd = -1;
    State state = State::Head;
    std::string in;
    std::string out;
    bool started = false;        // A byte of the current request has arrived.
    Clock::time_point deadline;  // Of the current state (idle, head, body, drain).
    Clock::time_point since;     // When its wait for a whole request began.
    std::size_t head_size = 0;   // The head's bytes, blank line included.
    std::size_t body_size = 0;
    bool keep_alive = true;
    bool continue_sent = false;  // "100 Continue" written for this request.
    bool expects_continue = false;
    bool close_after_write = false;
    std::uint32_t events = 0;  // What epoll watches for it.
    bool unwatched = false;    // Removed from epoll (the client closed while handled).
    bool shut = false;         // Its sending side is shut: nothing more will be written.
    std::size_t drained = 0;
    HttpRequest request;
  };

  struct Done {
    std::uint64_t id;
    std::string bytes;
  };

  explicit Impl(HttpServerOptions o)
      : options(o),
        slow(std::max<std::size_t>(o.slow_threads, 1)),
        fast(std::max<std::size_t>(o.fast_threads, 1)) {}

  ~Impl() {
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    if (listen_fd >= 0) ::close(listen_fd);
  }

  void wake() const {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }

  void watch(std::uint64_t id, int fd, std::uint32_t events, int op) const {
    epoll_event e{};
    e.events = events;
    e.data.u64 = id;
    ::epoll_ctl(epoll_fd, op, fd, &e);
  }

  void close_conn(std::uint64_t id) {
    const auto it = conns.find(id);
    if (it == conns.end()) return;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, it->second.fd, nullptr);
    ::close(it->second.fd);
    conns.erase(it);
  }

  // Watches `c` for input unless it holds all one request may hold (the rest waits in the
  // kernel: a level-triggered poll would otherwise spin on it), and for output while it has some.
  void update_events(std::uint64_t id, Conn& c) {
    if (c.unwatched) return;
    std::uint32_t events = EPOLLRDHUP;
    if (c.in.size() <= options.max_head_bytes + options.max_body_bytes) events |= EPOLLIN;
    if (!c.out.empty()) events |= EPOLLOUT;
    if (events != c.events) {
      c.events = events;
      watch(id, c.fd, events, EPOLL_CTL_MOD);
    }
  }

  // Writes what `c` has to write; asks for EPOLLOUT while some is left. Returns false if the
  // connection was closed.
  bool flush(std::uint64_t id, Conn& c) {
    while (!c.out.empty()) {
      const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close_conn(id);
      return false;
    }
    update_events(id, c);
    if (c.out.empty() && c.close_after_write && !c.shut) {
      // Answered: stop sending, and read what the client still sends for a while, so that it
      // reads the answer rather than a reset.
      ::shutdown(c.fd, SHUT_WR);
      c.shut = true;
      c.state = State::Closing;
      c.deadline = Clock::now() + kDrainFor;
    }
    return true;
  }

  // Answers `c` with `status` and `why` before any handler, then closes it.
  void refuse(std::uint64_t id, Conn& c, int status, const std::string& why,
              std::string_view allow = {}) {
    refused_requests.fetch_add(1, std::memory_order_relaxed);
    c.out += serialize({status, "text/plain", why + "\n"}, false, allow);
    c.close_after_write = true;
    // Nothing more is read as a request; a client that does not read the answer is closed.
    c.state = State::Closing;
    c.deadline = Clock::now() + options.body_timeout;
    flush(id, c);
  }

  // Reads the head of `c`'s request from `c.in`: false if it refused it (and answered).
  bool parse_head(std::uint64_t id, Conn& c, std::string_view head) {
    const std::size_t line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) {
      refuse(id, c, 400, "the request line is not METHOD TARGET HTTP/1.x");
      return false;
    }
    const std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
      refuse(id, c, 400, "HTTP/1.0 and HTTP/1.1 only");
      return false;
    }
    c.request = HttpRequest{};
    c.request.method = std::string(line.substr(0, sp1));
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    target = target.substr(0, target.find('?'));
    c.request.path = std::string(target);
    c.keep_alive = version == "HTTP/1.1";
    c.expects_continue = false;
    c.continue_sent = false;
    bool has_length = false;
    std::size_t length = 0;
    std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
    while (!rest.empty()) {
      const std::size_t end = rest.find("\r\n");
      const std::string_view field = rest.substr(0, end);
      rest = end == std::string_view::npos ? "" : rest.substr(end + 2);
      if (field.empty()) continue;
      const std::size_t colon = field.find(':');
      if (colon == std::string_view::npos || colon == 0 || field[0] == ' ' || field[0] == '\t') {
        refuse(id, c, 400, "a header line that is not Name: value");
        return false;
      }
      const std::string_view name = field.substr(0, colon);
      const std::string_view value = trim(field.substr(colon + 1));
      if (iequals(name, "Content-Length")) {
        std::uint64_t n = 0;
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (value.empty() || ec != std::errc() || p != value.data() + value.size()) {
          refuse(id, c, ec == std::errc::result_out_of_range ? 413 : 400,
                 "Content-Length " + std::string(value.substr(0, 40)) +
                     " is not a number of bytes up to " + std::to_string(options.max_body_bytes));
          return false;
        }
        if (has_length && n != length) {
          refuse(id, c, 400, "two different Content-Length headers");
          return false;
        }
        if (n > options.max_body_bytes) {
          refuse(id, c, 413,
                 "a body of " + std::to_string(n) + " bytes is larger than the " +
                     std::to_string(options.max_body_bytes) + " bytes read");
          return false;
        }
        has_length = true;
        length = static_cast<std::size_t>(n);
      } else if (iequals(name, "Transfer-Encoding")) {
        refuse(id, c, 411,
               "a body is read with Content-Length only (Transfer-Encoding is not accepted)");
        return false;
      } else if (iequals(name, "Connection")) {
        if (iequals(value, "close")) c.keep_alive = false;
        if (iequals(value, "keep-alive")) c.keep_alive = true;
      } else if (iequals(name, "Expect") && iequals(value, "100-continue")) {
        c.expects_continue = true;
      }
    }
    c.body_size = length;
    return true;
  }

  // Moves `c` on as far as the bytes it has allow: a head, a body, a handler.
  void advance(std::uint64_t id) {
    for (;;) {
      const auto it = conns.find(id);
      if (it == conns.end() || stopping) return;
      Conn& c = it->second;
      if (c.state == State::Handling || c.state == State::Closing || c.close_after_write) return;
      const auto now = Clock::now();
      if (c.state == State::Head) {
        if (c.in.empty()) return;
        if (!c.started) {
          c.started = true;
          c.deadline = now + options.head_timeout;
        }
        const std::size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos || end + 4 > options.max_head_bytes) {
          if (c.in.size() > options.max_head_bytes) {
            refuse(id, c, 431,
                   "the request's head is longer than " + std::to_string(options.max_head_bytes) +
                       " bytes");
          }
          return;
        }
        c.head_size = end + 4;
        if (!parse_head(id, c, std::string_view(c.in).substr(0, end + 2))) return;
        c.state = State::Body;
        c.deadline = now + options.body_timeout;
      }
      if (c.in.size() < c.head_size + c.body_size) {
        if (c.expects_continue && !c.continue_sent) {
          c.continue_sent = true;
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          flush(id, c);
        }
        return;
      }
      c.request.body = c.in.substr(c.head_size, c.body_size);
      c.in.erase(0, c.head_size + c.body_size);
      update_events(id, c);
      dispatch(id, c);
    }
  }

  void dispatch(std::uint64_t id, Conn& c) {
    const Route* found = nullptr;
    std::string allow;
    for (const Route& r : routes) {
      if (r.path != c.request.path) continue;
      if (r.method == c.request.method) found = &r;
      allow += (allow.empty() ? "" : ", ") + r.method;
    }
    if (found == nullptr) {
      const bool known = !allow.empty();
      c.out += serialize({known ? 405 : 404, "text/plain",
                          known ? c.request.method + " is not served at " + c.request.path + "\n"
                                : "no endpoint at " + c.request.path + "\n"},
                         c.keep_alive, allow);
      finish(id, c);
      return;
    }
    c.state = State::Handling;
    Workers& lane = found->lane == HttpLane::Fast ? fast : slow;
    lane.submit([this, id, handler = found->handler, request = std::move(c.request),
                 keep_alive = c.keep_alive] {
      std::string bytes = serialize(handler(request), keep_alive);
      {
        const std::lock_guard lock(done_mu);
        done.push_back({id, std::move(bytes)});
      }
      wake();
    });
  }

  // After an answer is queued in `c.out`: on to the next request, or to closing.
  void finish(std::uint64_t id, Conn& c) {
    c.state = State::Head;
    c.started = false;
    c.deadline = Clock::now() + options.idle_timeout;
    c.since = Clock::now();
    if (!c.keep_alive) c.close_after_write = true;
    flush(id, c);
  }

  void take_done() {
    std::vector<Done> ready;
    {
      const std::lock_guard lock(done_mu);
      ready.swap(done);
    }
    for (Done& d : ready) {
      const auto it = conns.find(d.id);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      c.out += d.bytes;
      finish(d.id, c);
      advance(d.id);  // A pipelined request may be waiting (if `c` is still open).
    }
  }

  // With every connection taken, closes the one that has waited longest for a whole request:
  // idle since its last answer or its connect, or trickling its request. Connections being
  // answered are kept. Returns whether it closed one.
  bool make_room() {
    std::uint64_t victim = 0;
    Clock::time_point oldest = Clock::time_point::max();
    for (const auto& [id, c] : conns) {
      if ((c.state == State::Head || c.state == State::Body) && c.out.empty() && c.since < oldest) {
        oldest = c.since;
        victim = id;
      }
    }
    if (victim == 0) return false;
    evicted.fetch_add(1, std::memory_order_relaxed);
    close_conn(victim);
    return true;
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        return;  // EAGAIN, or out of descriptors: the next readiness tries again.
      }
      if (conns.size() >= options.max_connections && !make_room()) {
        connections_refused.fetch_add(1, std::memory_order_relaxed);
        const std::string busy =
            serialize({503, "text/plain",
                       "more than " + std::to_string(options.max_connections) + " connections\n"},
                      false);
        (void)!::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
        ::close(fd);
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const std::uint64_t id = next_id++;
      Conn& c = conns[id];
      c.fd = fd;
      c.deadline = Clock::now() + options.idle_timeout;
      c.since = Clock::now();
      c.events = EPOLLIN | EPOLLRDHUP;
      watch(id, fd, c.events, EPOLL_CTL_ADD);
    }
  }

  void read_from(std::uint64_t id) {
    const auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = it->second;
    char buffer[16384];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        if (c.state == State::Closing) {
          c.drained += static_cast<std::size_t>(n);
          if (c.drained > kDrainBytes) return close_conn(id);
          continue;
        }
        c.in.append(buffer, static_cast<std::size_t>(n));
        // Reading stops at what one request may hold; the rest waits in the kernel.
        if (c.in.size() > options.max_head_bytes + options.max_body_bytes) {
          update_events(id, c);
          break;
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      // Closed by the client, or failed: an answer in progress has nowhere to go.
      if (c.state == State::Handling) {
        c.close_after_write = true;
        c.unwatched = true;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
        return;  // Closed when its answer comes back.
      }
      return close_conn(id);
    }
    advance(id);
  }

  void check_deadlines() {
    const auto now = Clock::now();
    std::vector<std::uint64_t> late;
    for (auto& [id, c] : conns) {
      if (c.state != State::Handling && now >= c.deadline) late.push_back(id);
    }
    for (const std::uint64_t id : late) {
      Conn& c = conns.at(id);
      if (c.state == State::Closing || !c.started) {
        if (c.state != State::Closing) timeouts.fetch_add(1, std::memory_order_relaxed);  // Idle.
        close_conn(id);
        continue;
      }
      timeouts.fetch_add(1, std::memory_order_relaxed);
      const bool head = c.state == State::Head;
      refuse(id, c, 408,
             std::string(head ? "the request's head" : "the request's body") +
                 " did not arrive within " +
                 std::to_string((head ? options.head_timeout : options.body_timeout).count()) +
                 " ms");
    }
  }

  void run() {
    auto next_check = Clock::now() + kTick;
    bool closed_idle = false;
    Clock::time_point give_up{};
    for (;;) {
      epoll_event events[64];
      const int n = ::epoll_wait(epoll_fd, events, 64, static_cast<int>(kTick.count()));
      for (int i = 0; i < n; ++i) {
        const std::uint64_t id = events[i].data.u64;
        if (id == kListenerId) {
          if (!stopping) accept_all();
        } else if (id == kWakeId) {
          std::uint64_t count = 0;
          (void)!::read(wake_fd, &count, sizeof count);
        } else {
          if ((events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
            read_from(id);
          }
          const auto it = conns.find(id);
          if (it != conns.end() && (events[i].events & EPOLLOUT) != 0) flush(id, it->second);
        }
      }
      take_done();
      if (Clock::now() >= next_check) {
        check_deadlines();
        next_check = Clock::now() + kTick;
      }
      if (stopping) {
        if (!closed_idle) {
          closed_idle = true;
          ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
          ::close(listen_fd);
          listen_fd = -1;
          std::vector<std::uint64_t> idle;
          for (const auto& [id, c] : conns) {
            if (c.state != State::Handling && c.out.empty()) idle.push_back(id);
          }
          for (const std::uint64_t id : idle) close_conn(id);
        }
        if (handlers_done) {
          if (give_up == Clock::time_point{}) give_up = Clock::now() + std::chrono::seconds(1);
          const bool written = std::all_of(conns.begin(), conns.end(), [](const auto& kv) {
            return kv.second.out.empty() && kv.second.state != State::Handling;
          });
          if (written || Clock::now() >= give_up) break;
        }
      }
    }
    while (!conns.empty()) close_conn(conns.begin()->first);
  }

  const HttpServerOptions options;
  std::vector<Route> routes;
  Workers slow;
  Workers fast;
  int epoll_fd = -1;
  int wake_fd = -1;
  int listen_fd = -1;
  std::unordered_map<std::uint64_t, Conn> conns;  // The loop thread's only.
  std::uint64_t next_id = 2;
  std::mutex done_mu;
  std::vector<Done> done;  // Guarded by done_mu.
  std::atomic<bool> stopping{false};
  std::atomic<bool> handlers_done{false};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> evicted{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> refused_requests{0};
  std::thread loop;
  bool stopped = false;
};

HttpServer::HttpServer(HttpServerOptions options) : impl_(std::make_unique<Impl>(options)) {}

Result<void> try_listen(const std::string& host, int port) {
  Result<int> fd = open_listener(host, port, false, 1);
  if (!fd) return fd.error();
  ::close(*fd);
  return {};
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(std::string method, std::string path, HttpLane lane, HttpHandler handler) {
  impl_->routes.push_back({std::move(method), std::move(path), lane, std::move(handler)});
}

Result<int> HttpServer::listen(const std::string& host, int port) {
  Impl& s = *impl_;
  Result<int> fd = open_listener(host, port, s.options.reuse_port, s.options.backlog);
  if (!fd) return fd.error();
  s.listen_fd = *fd;
  const std::string where = "\"" + host + ":" + std::to_string(port) + "\"";
  sockaddr_storage bound{};
  socklen_t size = sizeof bound;
  ::getsockname(s.listen_fd, reinterpret_cast<sockaddr*>(&bound), &size);
  const int bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  s.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  s.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s.epoll_fd < 0 || s.wake_fd < 0) {
    return Error("cannot listen on " + where + ": " + std::strerror(errno));
  }
  s.watch(kListenerId, s.listen_fd, EPOLLIN, EPOLL_CTL_ADD);
  s.watch(kWakeId, s.wake_fd, EPOLLIN, EPOLL_CTL_ADD);
  s.loop = std::thread([&s] { s.run(); });
  return bound_port;
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  if (s.wake_fd >= 0) s.wake();
  s.slow.stop();
  s.fast.stop();
  s.handlers_done = true;
  if (s.wake_fd >= 0) s.wake();
  if (s.loop.joinable()) s.loop.join();
}

HttpServerStats HttpServer::stats() const {
  return {impl_->connections_refused.load(std::memory_order_relaxed),
          impl_->evicted.load(std::memory_order_relaxed),
          impl_->timeouts.load(std::memory_order_relaxed),
          impl_->refused_requests.load(std::memory_order_relaxed)};
}

}  // namespace floodgate::server
