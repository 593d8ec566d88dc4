#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "amoauth/core/result.hpp"
#include "amoauth/net/http_message.hpp"

namespace amoauth::http_client {

struct ClientOptions {
  /// "HOST:PORT" that every connection is made to instead of resolving the URL's host, which is
  /// still used for SNI, Host and the certificate check (curl's --connect-to). Empty: resolve.
  std::string connect_to;
  /// Extra trusted CA certificates (PEM file), on top of the system store. Empty: system only.
  std::string ca_file;
  /// Whole request budget: resolve + connect + TLS handshake + write + read.
  std::chrono::milliseconds timeout{15000};
  /// Largest response body accepted.
  std::size_t body_limit = 16 * 1024 * 1024;
  std::string user_agent = "amoauth/0.1";
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;  ///< absolute: https://host[:port]/path?query or http://…
  net::HttpHeaders headers;
  std::string body;
};

/// Category of the error Send returns when the server's certificate fails verification: the
/// value is OpenSSL's X509_V_ERR_* (X509_V_ERR_HOSTNAME_MISMATCH,
/// ..._UNABLE_TO_GET_ISSUER_CERT_LOCALLY...), the message names it. Other TLS failures keep Asio's
/// ssl error codes.
[[nodiscard]] const boost::system::error_category& TlsVerifyCategory() noexcept;

/// HTTP/1.1 client on Boost.Beast. https:// always verifies the peer certificate and host name
/// and sends SNI. Idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE) reuse kept-alive
/// connections per scheme, host and port, and are retried once on a new connection if a reused
/// one turns out closed; every other request (a token POST above all: it must never be sent
/// twice) gets a fresh connection with `Connection: close`. Thread-safe.
class HttpClient {
 public:
  /// Errors: Errc::kConfigInvalid if `ca_file` cannot be loaded or `connect_to` is malformed.
  [[nodiscard]] static Result<std::unique_ptr<HttpClient>> Create(
      boost::asio::any_io_executor executor, ClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Any HTTP status is a successful Result. Errors are transport failures: the Asio/Beast/SSL
  /// error_code (timeouts are boost::beast::error::timeout), or Errc::kInvalidArgument for a URL
  /// that is not absolute http(s).
  [[nodiscard]] boost::asio::awaitable<Result<net::HttpResponse>> Send(ClientRequest request);

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace amoauth::http_client
