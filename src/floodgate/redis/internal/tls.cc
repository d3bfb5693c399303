#include "floodgate/redis/internal/tls.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "floodgate/redis/internal/connection.h"

#if FLOODGATE_HAS_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

namespace floodgate::internal {

#if FLOODGATE_HAS_OPENSSL
namespace {

// OpenSSL's queued errors, oldest first, as one line; the queue is emptied.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    out += (out.empty() ? "" : "; ") + std::string(text);
  }
  return out.empty() ? "unknown error" : out;
}

// A BIO over the socket that writes with MSG_NOSIGNAL: a server that goes away must not raise
// SIGPIPE in the caller's process (OpenSSL's own socket BIO writes with write()).
int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::send(*static_cast<int*>(BIO_get_data(bio)), data,
                           static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

int bio_read(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n =
      ::recv(*static_cast<int*>(BIO_get_data(bio)), data, static_cast<std::size_t>(size), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(bio);
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO* /*bio*/, int command, long /*number*/, void* /*pointer*/) {
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_destroy(BIO* bio) {
  delete static_cast<int*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

const BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "floodgate socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
  }();
  return method;
}

// Waits for what `SSL_get_error` asked for; returns an error on a timeout or a failure.
Result<void> wait(int fd, int ssl_error, Deadline deadline, std::string_view doing) {
  const short events = ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
  const int ready = wait_for_socket(fd, events, deadline);
  if (ready == 0) return Error("TLS: timed out " + std::string(doing));
  if (ready < 0) return Error("TLS: " + std::string(doing) + ": " + std::strerror(errno));
  return {};
}

}  // namespace

Result<std::shared_ptr<const TlsContext>> TlsContext::create(const TlsOptions& options) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Error("TLS: " + openssl_errors());
  std::shared_ptr<const TlsContext> made(new TlsContext(ctx, options.verify_hostname));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  const bool cas = options.ca_file.empty()
                       ? SSL_CTX_set_default_verify_paths(ctx) == 1
                       : SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) == 1;
  if (!cas) {
    return Error("TLS CA file \"" + options.ca_file + "\": " + openssl_errors());
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return Error("TLS: a client certificate needs its key, and a key its certificate");
  }
  if (!options.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
      return Error("TLS certificate file \"" + options.cert_file + "\": " + openssl_errors());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return Error("TLS key file \"" + options.key_file + "\": " + openssl_errors());
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return Error("TLS key file \"" + options.key_file + "\": not the certificate's key");
    }
  }
  return made;
}

TlsContext::~TlsContext() { SSL_CTX_free(static_cast<SSL_CTX*>(ctx_)); }

Result<std::unique_ptr<TlsSession>> TlsSession::connect(const TlsContext& context, int fd,
                                                        const std::string& host,
                                                        Deadline deadline) {
  SSL* ssl = SSL_new(static_cast<SSL_CTX*>(context.native()));
  if (ssl == nullptr) return Error("TLS: " + openssl_errors());
  std::unique_ptr<TlsSession> session(new TlsSession(ssl, fd));
  BIO* bio = BIO_new(socket_method());
  if (bio == nullptr) return Error("TLS: " + openssl_errors());
  BIO_set_data(bio, new int(fd));
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);
  if (!host.empty()) {
    // An IP address is checked against the certificate's addresses; a name against its names,
    // and sent as SNI.
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const bool address =
        context.verify_hostname() && X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
    if (!address) {
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(host.c_str()));
      if (context.verify_hostname()) SSL_set1_host(ssl, host.c_str());
    }
  }
  for (;;) {
    ERR_clear_error();
    const int rc = SSL_connect(ssl);
    if (rc == 1) return session;
    const int error = SSL_get_error(ssl, rc);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
      const long verified = SSL_get_verify_result(ssl);
      if (verified != X509_V_OK) {
        return Error(std::string("TLS handshake: the server's certificate: ") +
                     X509_verify_cert_error_string(verified));
      }
      return Error("TLS handshake: " + openssl_errors());
    }
    if (Result<void> ok = wait(fd, error, deadline, "in the handshake"); !ok) return ok.error();
  }
}

TlsSession::~TlsSession() { SSL_free(static_cast<SSL*>(ssl_)); }

Result<void> TlsSession::write(std::string_view bytes, Deadline deadline) {
  SSL* ssl = static_cast<SSL*>(ssl_);
  while (!bytes.empty()) {
    ERR_clear_error();
    std::size_t written = 0;
    if (SSL_write_ex(ssl, bytes.data(), bytes.size(), &written) == 1) {
      bytes.remove_prefix(written);
      continue;
    }
    const int error = SSL_get_error(ssl, 0);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
      return Error("TLS write: " + openssl_errors());
    }
    if (Result<void> ok = wait(fd_, error, deadline, "writing a command"); !ok) return ok;
  }
  return {};
}

Result<std::size_t> TlsSession::read(char* buffer, std::size_t size, Deadline deadline) {
  SSL* ssl = static_cast<SSL*>(ssl_);
  for (;;) {
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_read_ex(ssl, buffer, size, &n) == 1) return n;
    const int error = SSL_get_error(ssl, 0);
    if (error == SSL_ERROR_ZERO_RETURN) return std::size_t{0};
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
      if (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return std::size_t{0};
      return Error("TLS read: " + openssl_errors());
    }
    if (Result<void> ok = wait(fd_, error, deadline, "waiting for a reply"); !ok) {
      return ok.error();
    }
  }
}

#else  // Without OpenSSL.

Result<std::shared_ptr<const TlsContext>> TlsContext::create(const TlsOptions&) {
  return Error("TLS (rediss://) needs floodgate built with OpenSSL (Debian's libssl-dev)");
}
TlsContext::~TlsContext() = default;
Result<std::unique_ptr<TlsSession>> TlsSession::connect(const TlsContext&, int, const std::string&,
                                                        Deadline) {
  return Error("TLS is not built in");
}
TlsSession::~TlsSession() = default;
Result<void> TlsSession::write(std::string_view, Deadline) { return Error("TLS is not built in"); }
Result<std::size_t> TlsSession::read(char*, std::size_t, Deadline) {
  return Error("TLS is not built in");
}

#endif

}  // namespace floodgate::internal
