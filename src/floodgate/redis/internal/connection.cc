#include "floodgate/redis/internal/connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "floodgate/redis/internal/tls.h"

namespace floodgate::internal {
namespace {

// Returns the milliseconds poll may wait until `deadline`, rounded up (a deadline 0.2 ms away
// waits 1 ms, not 0), or 0 once it has passed.
int poll_ms(Deadline deadline) {
  const auto left = deadline - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<std::int64_t>(ms, 60'000));
}

}  // namespace

int wait_for_socket(int fd, short events, Deadline deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, poll_ms(deadline));
    if (n > 0) return 1;
    if (n == 0) {
      if (std::chrono::steady_clock::now() >= deadline) return 0;
      continue;  // poll rounds down on some kernels; wait out the remainder.
    }
    if (errno != EINTR) return -1;
  }
}

std::string Endpoint::to_string() const {
  if (!path.empty()) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Connection::Connection() = default;

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  reader_.reset();
}

Error Connection::fail(std::string_view what, int error_number) {
  close();
  std::string message = "redis " + endpoint_.to_string() + ": " + std::string(what);
  if (error_number != 0) message += ": " + std::string(std::strerror(error_number));
  return Error(std::move(message));
}

Result<void> Connection::open(const Endpoint& endpoint, Deadline deadline, const TlsContext* tls) {
  close();
  endpoint_ = endpoint;
  sockaddr_storage address{};
  socklen_t address_size = 0;
  int family = AF_UNIX;
  if (!endpoint.path.empty()) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (endpoint.path.size() >= sizeof un.sun_path) {
      return fail(
          "the socket path is longer than " + std::to_string(sizeof un.sun_path - 1) + " bytes", 0);
    }
    std::memcpy(un.sun_path, endpoint.path.data(), endpoint.path.size());
    std::memcpy(&address, &un, sizeof un);
    address_size = sizeof un;
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(endpoint.port);
    const int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
      return fail(std::string("cannot resolve the host: ") + ::gai_strerror(rc), 0);
    }
    std::memcpy(&address, found->ai_addr, found->ai_addrlen);
    address_size = found->ai_addrlen;
    family = found->ai_family;
    ::freeaddrinfo(found);
  }
  fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return fail("socket", errno);
  if (family != AF_UNIX) {
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), address_size) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return fail("connect", errno);
    const int ready = wait_for_socket(fd_, POLLOUT, deadline);
    if (ready == 0) return fail("connect timed out", 0);
    if (ready < 0) return fail("connect", errno);
    int error = 0;
    socklen_t size = sizeof error;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) return fail("connect", error);
  }
  if (tls != nullptr) {
    Result<std::unique_ptr<TlsSession>> session =
        TlsSession::connect(*tls, fd_, endpoint.host, deadline);
    if (!session) return fail(session.error().message(), 0);
    tls_ = std::move(*session);
  }
  return {};
}

Result<void> Connection::write(std::string_view bytes, Deadline deadline) {
  if (fd_ < 0) return Error("redis " + endpoint_.to_string() + ": not connected");
  if (tls_) {
    if (Result<void> written = tls_->write(bytes, deadline); !written) {
      return fail(written.error().message(), 0);
    }
    return {};
  }
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int ready = wait_for_socket(fd_, POLLOUT, deadline);
      if (ready == 0) return fail("timed out writing a command", 0);
      if (ready < 0) return fail("write", errno);
      continue;
    }
    return fail("write", errno);
  }
  return {};
}

Result<Reply> Connection::read(Deadline deadline) {
  if (fd_ < 0) return Error("redis " + endpoint_.to_string() + ": not connected");
  bool fed = false;
  while (true) {
    Result<std::optional<Reply>> reply = reader_.next();
    if (!reply) return fail("protocol error: " + reply.error().message(), 0);
    if (*reply) return std::move(**reply);
    // A server that keeps sending (one endless reply) must not hold the caller past its
    // deadline: it is checked between reads, not only while waiting for bytes.
    if (fed && std::chrono::steady_clock::now() >= deadline) {
      return fail("timed out reading a reply", 0);
    }
    fed = true;
    char buffer[16384];
    if (tls_) {
      Result<std::size_t> got = tls_->read(buffer, sizeof buffer, deadline);
      if (!got) return fail(got.error().message(), 0);
      if (*got == 0) return fail("the server closed the connection", 0);
      reader_.feed(std::string_view(buffer, *got));
      continue;
    }
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) {
      reader_.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
      continue;
    }
    if (n == 0) return fail("the server closed the connection", 0);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail("read", errno);
    const int ready = wait_for_socket(fd_, POLLIN, deadline);
    if (ready == 0) return fail("timed out waiting for a reply", 0);
    if (ready < 0) return fail("read", errno);
  }
}

}  // namespace floodgate::internal
