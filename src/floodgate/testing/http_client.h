// `Client`: a raw HTTP/1.1 client to 127.0.0.1 for tests. What it sends is exactly what the test
// wrote (`get`, `post`, or any bytes), so tests can send what no library would; every read has a
// deadline. Not thread-safe: one test thread drives it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>

namespace floodgate::testing {

using namespace std::chrono_literals;

// A raw TCP client to 127.0.0.1:`port`: what it sends is exactly what the test wrote. Every read
// has a deadline.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads until `count` whole responses have arrived, the server closes, or `within` passes;
  // returns what came.
  std::string read_responses(int count, std::chrono::milliseconds within = 5s) {
    read_while([&] { return responses_in(in_) < count; }, within);
    return in_;
  }

  // Reads until what came holds `text`, or `within` passes; returns what came.
  std::string read_until(std::string_view text, std::chrono::milliseconds within = 5s) {
    read_while([&] { return in_.find(text) == std::string::npos; }, within);
    return in_;
  }

  // Reports whether the server closed the connection within `within`.
  bool closed_within(std::chrono::milliseconds within) {
    return read_while([] { return true; }, within);
  }

  const std::string& received() const { return in_; }

 private:
  // Reads while `more()` and `within` has not passed; reports whether the server closed.
  template <class More>
  bool read_while(More more, std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (more()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buffer[65536];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return true;
      in_.append(buffer, static_cast<std::size_t>(n));
    }
    return false;
  }

  // Counts whole responses in `text` (each with a Content-Length; "100 Continue" not counted).
  static int responses_in(const std::string& text) {
    int count = 0;
    std::size_t at = 0;
    for (;;) {
      const std::size_t end = text.find("\r\n\r\n", at);
      if (end == std::string::npos) return count;
      const std::string head = text.substr(at, end - at);
      if (head.starts_with("HTTP/1.1 100")) {
        at = end + 4;
        continue;
      }
      const std::size_t cl = head.find("Content-Length: ");
      const std::size_t length = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 16));
      if (text.size() < end + 4 + length) return count;
      ++count;
      at = end + 4 + length;
    }
  }

  int fd_ = -1;
  std::string in_;
};

// Returns a GET request of `path`.
inline std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

// Returns a POST request of `body` to `path`.
inline std::string post(std::string_view path, std::string_view body,
                        std::string_view type = "application/json") {
  return "POST " + std::string(path) +
         " HTTP/1.1\r\nHost: t\r\nContent-Type: " + std::string(type) +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

}  // namespace floodgate::testing
