// `RedisServer`: a redis-server process of the test's own, on a free loopback port and a Unix
// socket in a fresh folder, without persistence. Killed (SIGKILL) and its folder removed when the
// object goes, and killed by the kernel if the test process dies first. Not thread-safe: one
// test thread drives it; the limiter under test may be used from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
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
  // `cluster_node`: cluster mode, on a port whose cluster bus port (+10000) is free too.
  explicit RedisServer(std::vector<std::string> extra_args = {}, bool cluster_node = false);
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
  bool cluster_node_ = false;
  std::string folder_;
  std::string socket_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A Redis Cluster of the test's own: `masters` masters with `replicas` replicas each, every node
// a `RedisServer` with a node timeout of 1 s and full coverage not required (the masters that
// are up serve their slots while another fails over), made into a cluster with `redis-cli
// --cluster create`. Not thread-safe, as `RedisServer`.
class RedisCluster {
 public:
  // Starts the nodes, creates the cluster and waits (at most 30 s) until it is ready: every node
  // reports cluster_state:ok and every master has its replicas in sync. Aborts the test binary
  // with what went wrong if it is not.
  explicit RedisCluster(int masters = 3, int replicas = 1);

  // Returns redis+cluster://127.0.0.1:<port>,... naming every node.
  std::string url() const;
  std::size_t size() const noexcept { return nodes_.size(); }
  RedisServer& node(std::size_t i) { return *nodes_[i]; }
  const RedisServer& node(std::size_t i) const { return *nodes_[i]; }
  // Returns the node's cluster id (CLUSTER MYID).
  std::string id(std::size_t i) const;
  // Returns the index of the node that serves `slot` as master, as a live node's CLUSTER SLOTS
  // reports it, or size() if none does.
  std::size_t master_of(std::uint16_t slot) const;
  // Waits (at most `timeout`) until every live node reports cluster_state:ok, and, when
  // `replicas_in_sync`, every live master has a replica online. Returns whether it happened.
  bool wait_until_ready(std::chrono::milliseconds timeout, bool replicas_in_sync) const;

 private:
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// A program of the test's own, run in the background with its output in a file. Killed when
// the object goes, and by the kernel if the test process dies first.
class Program {
 public:
  explicit Program(std::vector<std::string> args);
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  // Waits at most `timeout` for the program to exit (killing it if it has not), and returns
  // whether it exited with status 0.
  bool finish(std::chrono::milliseconds timeout);
  // Returns what the program wrote to stdout and stderr so far.
  std::string output() const;

 private:
  std::string log_;
  pid_t pid_ = -1;
};

// A TCP proxy of the test's own on a free loopback port, in front of a server's port, that can
// misbehave on demand: delay what the server sends, drop every connection, or accept
// connections and never answer. Runs one thread of its own, stopped and joined when the object
// goes. Thread-safe.
class FaultProxy {
 public:
  enum class Mode : std::uint8_t {
    Pass,       // Forward both ways.
    Delay,      // Forward, holding the server's bytes back for `delay` first.
    Drop,       // Close every connection, and each new one as soon as it is accepted.
    BlackHole,  // Accept, read and discard; never answer.
  };

  // Starts forwarding 127.0.0.1:<port()> to 127.0.0.1:`upstream_port`, in `Mode::Pass`.
  explicit FaultProxy(int upstream_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const noexcept { return port_; }
  // Returns redis://127.0.0.1:<port()>.
  std::string url() const;

  // Changes how the proxy behaves from now on; `delay` is for `Mode::Delay`.
  void set(Mode mode, std::chrono::milliseconds delay = std::chrono::milliseconds(0));

  // Returns the connections accepted so far.
  int accepted() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// Returns a limiter for `options`, or null after reporting the error as a test failure. A test
// that gives replies longer than the default 5 ms (`command_timeout`) and leaves
// `connect_timeout` at its default gets as long to connect too: such a test is about decisions,
// not timeouts, and a loaded machine can take more than 5 ms to connect.
std::unique_ptr<RedisLimiter> make_limiter(RedisLimiterOptions options);

// A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it, and a
// second CA that signed neither (other.crt, other.key), made with the openssl command in a fresh
// folder, removed when the object goes. `ok()` is false (with openssl's log) if they could not
// be made.
class Certificates {
 public:
  Certificates();
  ~Certificates();
  Certificates(const Certificates&) = delete;
  Certificates& operator=(const Certificates&) = delete;
  bool ok() const noexcept { return ok_; }
  // Returns the path of `name`: ca.crt, server.crt, server.key, client.crt, client.key, ...
  std::string operator[](const char* name) const;

 private:
  std::string folder_;
  bool ok_ = false;
};

// Starts a TLS-only redis-server (no plain port) on `port` with `certs`' server certificate,
// asking clients for a certificate of their CA, with one ACL user, alice, password s3cret (the
// default user off). It may not answer yet when this returns.
std::unique_ptr<Program> start_tls_redis(const Certificates& certs, int port);

// Sends one command to 127.0.0.1:`port` on a fresh connection and returns the reply, as
// `RedisServer::command` does (a Sentinel's, a server the test did not start as a `RedisServer`).
internal::Reply command_at(int port, std::initializer_list<std::string_view> args);

// Returns the value of `field` in the text of an `INFO` or `CLUSTER INFO` reply ("" if absent).
std::string info_field(const std::string& info, std::string_view field);

// Returns a socket listening on a free port of 127.0.0.1 with `backlog`, and sets `port`; or -1
// (and a test failure). For the tests' fake servers: a kernel completes up to `backlog`
// connections that nobody accepts.
int listen_on_loopback(int backlog, int& port);

// Returns a free TCP port on 127.0.0.1 (bound and released; another process could take it
// before the caller binds it, which `RedisServer` retries).
int free_port();

}  // namespace floodgate::testing
