// TLS for floodgate's Redis connections (rediss://): a `TlsContext` holds what every connection
// of a client shares (the CA to verify the server with, the client certificate and key);
// `TlsSession` runs one connection's handshake, reads and writes over a non-blocking socket
// within deadlines. Built over OpenSSL where it is installed; elsewhere `TlsContext::create`
// returns an error saying what is missing. Not part of the public API.
//
// Thread safety: any thread may use a `TlsContext` (it does not change once made). A
// `TlsSession` is its connection's: one thread at a time calls it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "floodgate/core/result.h"
#include "floodgate/redis/internal/connection.h"

namespace floodgate::internal {

struct TlsOptions {
  std::string ca_file;          // PEM: the CAs to verify the server with; empty: the system's.
  std::string cert_file;        // PEM: a client certificate, when the server asks for one.
  std::string key_file;         // PEM: its private key.
  bool verify_hostname = true;  // The server's certificate must name the host connected to.
};

class TlsContext {
 public:
  // Reads the files `options` names; an error names the file and what is wrong with it.
  static Result<std::shared_ptr<const TlsContext>> create(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool verify_hostname() const noexcept { return verify_hostname_; }
  void* native() const noexcept { return ctx_; }  // SSL_CTX*.

 private:
  TlsContext(void* ctx, bool verify_hostname) : ctx_(ctx), verify_hostname_(verify_hostname) {}
  void* ctx_;
  bool verify_hostname_;
};

// One connection's TLS, over the connected non-blocking socket `fd` (not owned).
class TlsSession {
 public:
  // Runs the handshake with the server `host` (checked against its certificate unless the
  // context says not to) by `deadline`.
  static Result<std::unique_ptr<TlsSession>> connect(const TlsContext& context, int fd,
                                                     const std::string& host, Deadline deadline);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Writes all of `bytes` by `deadline`.
  Result<void> write(std::string_view bytes, Deadline deadline);
  // Reads what has come, at most `size` bytes, waiting by `deadline` for some; 0: the server
  // closed the connection.
  Result<std::size_t> read(char* buffer, std::size_t size, Deadline deadline);

 private:
  TlsSession(void* ssl, int fd) : ssl_(ssl), fd_(fd) {}
  void* ssl_;  // SSL*.
  int fd_;
};

}  // namespace floodgate::internal
