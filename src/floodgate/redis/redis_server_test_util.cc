#include "floodgate/redis/redis_server_test_util.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
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

}  // namespace

std::unique_ptr<RedisLimiter> make_limiter(RedisLimiterOptions options) {
  auto limiter = RedisLimiter::create(std::move(options));
  if (!limiter) {
    ADD_FAILURE() << limiter.error().message();
    return nullptr;
  }
  return std::move(*limiter);
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

RedisServer::RedisServer(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
  char pattern[] = "/tmp/floodgate-redis-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  if (made == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  folder_ = made;
  socket_ = folder_ + "/redis.sock";
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
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
    if (pong.type == internal::Reply::Type::Status && pong.text == "PONG") return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill();
}

std::string RedisServer::url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

std::string RedisServer::unix_url() const { return "unix://" + socket_; }

internal::Reply RedisServer::command(std::initializer_list<std::string_view> args) const {
  internal::Connection c;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  internal::Reply failed;
  failed.type = internal::Reply::Type::Error;
  if (Result<void> opened = c.open({"127.0.0.1", port_, ""}, deadline); !opened) {
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
