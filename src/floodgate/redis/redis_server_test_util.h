// `RedisServer`: a redis-server process of the test's own, on a free loopback port and a Unix
// socket in a fresh folder, without persistence. Killed (SIGKILL) and its folder removed when the
// object goes, and killed by the kernel if the test process dies first. Not thread-safe: one
// test thread drives it; the limiter under test may be used from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/redis/internal/resp.h"
#include "floodgate/redis/redis_limiter.h"

namespace floodgate::testing {

class RedisServer {
 public:
  // Starts a server with `extra_args` added to its command line, and waits (at most 10 s) until
  // it answers PING. Aborts the test binary with the server's log if it does not.
  explicit RedisServer(std::vector<std::string> extra_args = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Returns redis://127.0.0.1:<port>.
  std::string url() const;
  // Returns unix://<socket path>.
  std::string unix_url() const;
  int port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  const std::string& folder() const noexcept { return folder_; }

  // Sends one command on a fresh connection and returns the reply (an error reply as a reply);
  // a failed connection or a reply later than 5 s is an `Error` reply whose text says so.
  internal::Reply command(std::initializer_list<std::string_view> args) const;

  // SIGKILLs the server and waits for it to exit.
  void kill();
  // Starts the server again on the same port and socket (state lost: no persistence) and waits
  // until it answers.
  void restart();
  // SIGSTOP / SIGCONT: a server that hangs with its connections open.
  void pause_process();
  void resume_process();

 private:
  void start();

  std::vector<std::string> extra_args_;
  std::string folder_;
  std::string socket_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Returns a limiter for `options`, or null after reporting the error as a test failure.
std::unique_ptr<RedisLimiter> make_limiter(RedisLimiterOptions options);

// Returns a free TCP port on 127.0.0.1 (bound and released; another process could take it
// before the caller binds it, which `RedisServer` retries).
int free_port();

}  // namespace floodgate::testing
