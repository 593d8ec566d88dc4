#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "amoauth/core/result.hpp"
#include "amoauth/net/http_message.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace amoauth::http_server {

/// A request handler, on its connection's strand or context; must not block (net::RunBlocking).
/// An exception escaping it becomes a 500 with the request id, and is logged.
using Handler = std::function<boost::asio::awaitable<net::HttpResponse>(net::HttpRequest)>;

struct ServerOptions {
  /// PEM certificate chain and private key. Both empty: plain HTTP.
  std::string tls_certificate_chain_pem;
  std::string tls_private_key_pem;
  /// Largest request body accepted; larger gets 413. REQUIRES: > 0.
  std::size_t body_limit = 1024 * 1024;
  /// Request line plus header fields, in bytes; larger gets 431. REQUIRES: > 0.
  std::uint32_t header_limit = 16 * 1024;
  /// Most header fields in one request; more gets 431. REQUIRES: > 0.
  std::size_t max_header_fields = 100;
  /// The request line and headers must have arrived this long after the connection opened (its
  /// first request) or after the request's first byte (later ones); else 408 and the connection
  /// closes (a slowloris dribbling one byte a second is cut here). A connection that has sent
  /// nothing by then is closed without an answer.
  std::chrono::milliseconds header_timeout{20'000};
  /// The body must have arrived this long after the headers; else 408 and close.
  std::chrono::milliseconds body_timeout{30'000};
  /// A keep-alive connection waits this long for the first byte of its next request, then it
  /// is closed (without an answer: there is no request to answer).
  std::chrono::milliseconds idle_timeout{30'000};
  /// Each write, and a TLS handshake, must finish within this.
  std::chrono::milliseconds io_timeout{30'000};
  /// Open connections at most; one more is answered 503 at once and closed. 0: no cap.
  std::size_t max_connections = 1024;
  /// Open connections from one peer address at most (behind a reverse proxy that is the proxy's
  /// address: leave it 0 there); beyond it 503 and close. 0: no cap.
  std::size_t max_connections_per_address = 0;
  /// Name for log lines ("http", "sandbox").
  std::string log_name = "http";
};

/// HTTP/1.1 server on Boost.Beast: a coroutine per connection, on its own strand or on one of the
/// given single-threaded io_contexts; keep-alive, optional TLS. Stop() is thread-safe.
class HttpServer {
 public:
  HttpServer(boost::asio::any_io_executor executor, ServerOptions options, Handler handler);
  /// Connections are spread over `connection_contexts` in turn, one io_context per connection,
  /// and run there without a strand; the acceptor stays on `executor`.
  /// REQUIRES: each of `connection_contexts` is run by exactly one thread, and outlives the
  /// server's connections.
  HttpServer(boost::asio::any_io_executor executor,
             std::vector<boost::asio::io_context*> connection_contexts,
             ServerOptions options,
             Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and listens. Port 0 picks a free port; returns the bound port.
  /// Errors: the bind/listen error_code, or Errc::kConfigInvalid for a bad TLS key pair or host.
  [[nodiscard]] Result<std::uint16_t> Listen(std::string_view host, std::uint16_t port);
  /// Starts accepting (requires a successful Listen).
  void Start();
  /// Stops accepting and closes open connections. Idempotent. Once it returns, no new handler
  /// call starts (a request read meanwhile gets 503); calls already running finish.
  void Stop();
  /// The gentle stop, for a graceful shutdown: closes the acceptor (new connections are refused)
  /// and every connection that is between requests; a request already read is handled and
  /// answered with `Connection: close`, then its connection closes. Idempotent; Stop() may
  /// follow at any time (it cuts what is left). Thread-safe.
  void Drain();
  /// Requests read and not yet answered (their handler running or their answer being written).
  [[nodiscard]] std::size_t InFlight() const;
  /// Connections open now.
  [[nodiscard]] std::size_t OpenConnections() const;
  /// Connections refused so far because a connection cap was reached (max_connections,
  /// max_connections_per_address).
  [[nodiscard]] std::uint64_t RefusedConnections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace amoauth::http_server
