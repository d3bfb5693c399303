#include "floodgate/testing/redis_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <string_view>
#include <thread>

#include "floodgate/redis/internal/connection.h"

namespace floodgate::testing {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Reports whether 127.0.0.1:`port` can be bound now.
bool bindable(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// Returns a port below the ephemeral range whose cluster bus port (+10000) is free too.
int free_cluster_port() {
  static std::mt19937 random(static_cast<std::uint32_t>(::getpid()) ^
                             static_cast<std::uint32_t>(std::random_device{}()));
  std::uniform_int_distribution<int> pick(20'000, 29'999);
  for (;;) {
    const int port = pick(random);
    if (bindable(port) && bindable(port + 10'000)) return port;
  }
}

// Starts `args` with stdout and stderr in `log`; the child dies with the test process.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

std::string info_field(const std::string& info, std::string_view field) {
  const auto at = info.find(std::string(field) + ":");
  if (at == std::string::npos) return "";
  const auto start = at + field.size() + 1;
  return info.substr(start, info.find_first_of("\r\n", start) - start);
}

std::unique_ptr<RedisLimiter> make_limiter(RedisLimiterOptions options) {
  const RedisLimiterOptions defaults;
  if (options.connect_timeout == defaults.connect_timeout &&
      options.command_timeout > defaults.command_timeout) {
    options.connect_timeout = options.command_timeout;
  }
  auto limiter = RedisLimiter::create(std::move(options));
  if (!limiter) {
    ADD_FAILURE() << limiter.error().message();
    return nullptr;
  }
  return std::move(*limiter);
}

int listen_on_loopback(int backlog, int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
      ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    ADD_FAILURE() << "cannot listen on loopback";
    if (fd >= 0) ::close(fd);
    return -1;
  }
  port = ntohs(address.sin_port);
  return fd;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

RedisServer::RedisServer(std::vector<std::string> extra_args, bool cluster_node)
    : extra_args_(std::move(extra_args)), cluster_node_(cluster_node) {
  char pattern[] = "/tmp/floodgate-redis-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  if (made == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  folder_ = made;
  socket_ = folder_ + "/redis.sock";
  if (cluster_node_) {
    // Healthy masters keep serving while another fails over (full coverage off), and a new
    // replica syncs at once.
    for (const char* arg : {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", "1000", "--cluster-require-full-coverage",
                            "no", "--repl-diskless-sync-delay", "0"}) {
      extra_args_.emplace_back(arg);
    }
  }
  for (int attempt = 0; attempt < 10; ++attempt) {
    port_ = cluster_node_ ? free_cluster_port() : free_port();
    start();
    if (pid_ > 0) return;
  }
  std::cerr << "RedisServer: could not start redis-server; its log:\n"
            << read_file(folder_ + "/redis.log") << "\n";
  std::abort();
}

RedisServer::~RedisServer() {
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(folder_, ignored);
}

void RedisServer::start() {
  std::vector<std::string> args = {FLOODGATE_REDIS_SERVER,
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--unixsocket",
                                   socket_,
                                   "--unixsocketperm",
                                   "700",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   folder_,
                                   "--logfile",
                                   folder_ + "/redis.log",
                                   "--daemonize",
                                   "no"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The server dies with the test process, even when the test crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // Exited: the port was taken, say.
      pid_ = -1;
      return;
    }
    const internal::Reply pong = command({"PING"});
    if (pong.type == internal::Reply::Type::Status && pong.text == "PONG") {
      // The answer may be another test's server that took the port first (two tests can pick
      // the same free port); this one then fails to bind and exits. Only our own process will do.
      if (info_field(command({"INFO", "server"}).text, "process_id") == std::to_string(pid_)) {
        return;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill();
}

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

std::string RedisServer::unix_url() const { return "unix://" + socket_; }

internal::Reply RedisServer::command(std::initializer_list<std::string_view> args) const {
  return command_at(port_, args);
}

Certificates::Certificates() {
  char pattern[] = "/tmp/floodgate-tls-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  if (made == nullptr) return;
  folder_ = made;
  const std::string script =
      "cd '" + folder_ +
      "' && "
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=floodgate-test-ca "
      "-keyout ca.key -out ca.crt && "
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca "
      "-keyout other.key -out other.crt && "
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=redis -keyout server.key -out server.csr && "
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile san.ext -out server.crt && "
      "openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client.key -out client.csr && "
      "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
      "-out client.crt";
  ok_ = std::system(("(" + script + ") > '" + folder_ + "/openssl.log' 2>&1").c_str()) == 0;
  if (!ok_) std::cerr << "Certificates: openssl failed:\n" << read_file(folder_ + "/openssl.log");
}

Certificates::~Certificates() {
  if (folder_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(folder_, ignored);
}

std::string Certificates::operator[](const char* name) const { return folder_ + "/" + name; }

std::unique_ptr<Program> start_tls_redis(const Certificates& certs, int port) {
  return std::make_unique<Program>(std::vector<std::string>{FLOODGATE_REDIS_SERVER,
                                                            "--port",
                                                            "0",
                                                            "--tls-port",
                                                            std::to_string(port),
                                                            "--bind",
                                                            "127.0.0.1",
                                                            "--tls-cert-file",
                                                            certs["server.crt"],
                                                            "--tls-key-file",
                                                            certs["server.key"],
                                                            "--tls-ca-cert-file",
                                                            certs["ca.crt"],
                                                            "--tls-auth-clients",
                                                            "yes",
                                                            "--save",
                                                            "",
                                                            "--appendonly",
                                                            "no",
                                                            "--user",
                                                            "default",
                                                            "off",
                                                            "--user",
                                                            "alice",
                                                            "on",
                                                            ">s3cret",
                                                            "~*",
                                                            "+@all"});
}

internal::Reply command_at(int port, std::initializer_list<std::string_view> args) {
  internal::Connection c;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  internal::Reply failed;
  failed.type = internal::Reply::Type::Error;
  if (Result<void> opened = c.open({"127.0.0.1", port, ""}, deadline); !opened) {
    failed.text = opened.error().message();
    return failed;
  }
  std::string out;
  internal::append_command(out, args);
  if (Result<void> written = c.write(out, deadline); !written) {
    failed.text = written.error().message();
    return failed;
  }
  Result<internal::Reply> reply = c.read(deadline);
  if (!reply) {
    failed.text = reply.error().message();
    return failed;
  }
  return std::move(*reply);
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void RedisServer::restart() {
  kill();
  for (int attempt = 0; attempt < 50 && pid_ <= 0; ++attempt) {
    start();
    if (pid_ <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (pid_ <= 0) {
    std::cerr << "RedisServer: could not restart redis-server on port " << port_ << "; log:\n"
              << read_file(folder_ + "/redis.log") << "\n";
    std::abort();
  }
}

void RedisServer::pause_process() { ::kill(pid_, SIGSTOP); }

void RedisServer::resume_process() { ::kill(pid_, SIGCONT); }

}  // namespace floodgate::testing

namespace floodgate::testing {

RedisCluster::RedisCluster(int masters, int replicas) {
  const int n = masters * (1 + replicas);
  std::vector<std::string> create = {FLOODGATE_REDIS_CLI, "--cluster", "create"};
  for (int i = 0; i < n; ++i) {
    nodes_.push_back(std::make_unique<RedisServer>(std::vector<std::string>{}, true));
    create.push_back("127.0.0.1:" + std::to_string(nodes_.back()->port()));
  }
  for (const char* arg : {"--cluster-replicas", "", "--cluster-yes"}) create.emplace_back(arg);
  create[create.size() - 2] = std::to_string(replicas);
  Program cli(create);
  // The nodes meet by gossip, which a machine with every test on one busy core can slow to
  // more than 30 s (seen once with taskset -c 0, 8 tests and 3 `yes` loops).
  if (!cli.finish(std::chrono::seconds(90))) {
    std::cerr << "RedisCluster: redis-cli --cluster create failed:\n" << cli.output() << "\n";
    std::abort();
  }
  if (!wait_until_ready(std::chrono::seconds(30), replicas > 0)) {
    std::cerr << "RedisCluster: the cluster did not become ready in 30 s:\n";
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      std::cerr << "node " << i << " (" << nodes_[i]->port()
                << "): " << nodes_[i]->command({"CLUSTER", "INFO"}).text << "\n";
    }
    std::abort();
  }
}

std::string RedisCluster::url() const {
  std::string url = "redis+cluster://";
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    url += (i == 0 ? "" : ",") + std::string("127.0.0.1:") + std::to_string(nodes_[i]->port());
  }
  return url;
}

std::string RedisCluster::id(std::size_t i) const {
  return nodes_[i]->command({"CLUSTER", "MYID"}).text;
}

std::size_t RedisCluster::master_of(std::uint16_t slot) const {
  for (const auto& node : nodes_) {
    if (node->pid() <= 0) continue;
    const internal::Reply slots = node->command({"CLUSTER", "SLOTS"});
    for (const internal::Reply& range : slots.elements) {
      if (range.elements.size() < 3 || slot < range.elements[0].integer ||
          slot > range.elements[1].integer || range.elements[2].elements.size() < 2) {
        continue;
      }
      const std::int64_t port = range.elements[2].elements[1].integer;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->port() == port) return i;
      }
    }
    return nodes_.size();
  }
  return nodes_.size();
}

bool RedisCluster::wait_until_ready(std::chrono::milliseconds timeout,
                                    bool replicas_in_sync) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bool ready = true;
    for (const auto& node : nodes_) {
      if (node->pid() <= 0) continue;
      const std::string cluster = node->command({"CLUSTER", "INFO"}).text;
      if (info_field(cluster, "cluster_state") != "ok") ready = false;
      const std::string replication = node->command({"INFO", "replication"}).text;
      if (replicas_in_sync && info_field(replication, "role") == "master" &&
          replication.find("state=online") == std::string::npos) {
        ready = false;
      }
      if (!ready) break;
    }
    if (ready) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

Program::Program(std::vector<std::string> args) {
  char pattern[] = "/tmp/floodgate-program-XXXXXX";
  const int fd = ::mkstemp(pattern);
  if (fd >= 0) ::close(fd);
  log_ = pattern;
  pid_ = spawn(args, log_);
}

Program::~Program() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  std::error_code ignored;
  std::filesystem::remove(log_, ignored);
}

bool Program::finish(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string Program::output() const { return read_file(log_); }

}  // namespace floodgate::testing

namespace floodgate::testing {

// One poll loop: the listening socket, each accepted connection and its upstream, and the
// bytes held back in `Mode::Delay`.
struct FaultProxy::Impl {
  struct Held {
    std::chrono::steady_clock::time_point release;
    std::string bytes;
  };
  struct Pair {
    int client = -1;
    int server = -1;
    std::deque<Held> to_client;
  };

  int upstream_port = 0;
  int listener = -1;
  std::atomic<bool> stop{false};
  mutable std::mutex mu;
  Mode mode = Mode::Pass;              // Guarded by mu.
  std::chrono::milliseconds delay{0};  // Guarded by mu.
  int accepted = 0;                    // Guarded by mu.
  bool drop_now = false;               // Guarded by mu: close the open pairs.
  std::vector<Pair> pairs;             // The loop's own.
  std::thread loop;

  static void close_pair(Pair& p) {
    if (p.client >= 0) ::close(p.client);
    if (p.server >= 0) ::close(p.server);
    p.client = p.server = -1;
  }

  // Writes all of `bytes` to `fd` (loopback, small: blocking is fine); false if it failed.
  static bool write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  void run() {
    while (!stop.load()) {
      Mode m;
      std::chrono::milliseconds d;
      bool drop;
      {
        const std::lock_guard lock(mu);
        m = mode;
        d = delay;
        drop = std::exchange(drop_now, false);
      }
      if (drop) {
        for (Pair& p : pairs) close_pair(p);
      }
      std::erase_if(pairs, [](const Pair& p) { return p.client < 0; });
      std::vector<pollfd> fds{{listener, POLLIN, 0}};
      for (const Pair& p : pairs) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), 2);
      const auto now = std::chrono::steady_clock::now();
      const std::size_t polled = pairs.size();  // Pairs accepted below wait for the next poll.
      if ((fds[0].revents & POLLIN) != 0) {
        const int client = ::accept(listener, nullptr, nullptr);
        if (client >= 0) {
          {
            const std::lock_guard lock(mu);
            ++accepted;
          }
          if (m == Mode::Drop) {
            ::close(client);
          } else {
            Pair p;
            p.client = client;
            p.server = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in address{};
            address.sin_family = AF_INET;
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            address.sin_port = htons(static_cast<std::uint16_t>(upstream_port));
            if (::connect(p.server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
              close_pair(p);
            } else {
              pairs.push_back(std::move(p));
            }
          }
        }
      }
      char buffer[65536];
      for (std::size_t i = 0; i < polled; ++i) {
        Pair& p = pairs[i];
        const short from_client = fds[1 + 2 * i].revents;
        const short from_server = fds[2 + 2 * i].revents;
        if (p.client >= 0 && from_client != 0) {
          const ssize_t n = ::recv(p.client, buffer, sizeof buffer, MSG_DONTWAIT);
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            // Nothing after all.
          } else if (n <= 0) {
            close_pair(p);
          } else if (m != Mode::BlackHole &&
                     !write_all(p.server, std::string_view(buffer, static_cast<std::size_t>(n)))) {
            close_pair(p);
          }
        }
        if (p.server >= 0 && from_server != 0) {
          const ssize_t n = ::recv(p.server, buffer, sizeof buffer, MSG_DONTWAIT);
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            // Nothing after all.
          } else if (n <= 0) {
            close_pair(p);
          } else if (m != Mode::BlackHole) {
            p.to_client.push_back({now + (m == Mode::Delay ? d : std::chrono::milliseconds(0)),
                                   std::string(buffer, static_cast<std::size_t>(n))});
          }
        }
        while (p.client >= 0 && !p.to_client.empty() && p.to_client.front().release <= now) {
          if (!write_all(p.client, p.to_client.front().bytes)) close_pair(p);
          if (!p.to_client.empty()) p.to_client.pop_front();
        }
      }
    }
    for (Pair& p : pairs) close_pair(p);
  }
};

FaultProxy::FaultProxy(int upstream_port) : impl_(std::make_unique<Impl>()) {
  impl_->upstream_port = upstream_port;
  impl_->listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int yes = 1;
  ::setsockopt(impl_->listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (::bind(impl_->listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(impl_->listener, 64) != 0) {
    std::perror("FaultProxy: bind/listen");
    std::abort();
  }
  socklen_t size = sizeof address;
  ::getsockname(impl_->listener, reinterpret_cast<sockaddr*>(&address), &size);
  port_ = ntohs(address.sin_port);
  impl_->loop = std::thread([impl = impl_.get()] { impl->run(); });
}

FaultProxy::~FaultProxy() {
  impl_->stop = true;
  impl_->loop.join();
  ::close(impl_->listener);
}

std::string FaultProxy::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

void FaultProxy::set(Mode mode, std::chrono::milliseconds delay) {
  const std::lock_guard lock(impl_->mu);
  impl_->mode = mode;
  impl_->delay = delay;
  if (mode == Mode::Drop) impl_->drop_now = true;
}

int FaultProxy::accepted() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->accepted;
}

}  // namespace floodgate::testing
