#include "amoauth/http_client/http_client.hpp"

#include <algorithm>
#include <charconv>
#include <compare>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "amoauth/net/log_context.hpp"
#include "amoauth/net/one_thread_context.hpp"

namespace amoauth::http_client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using SslStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
/// Status line plus header fields of a response.
constexpr std::uint32_t kHeaderLimit = 64 * 1024;

// error_category's destructor is protected and non-virtual by design (see libs/core errc.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class TlsVerifyCategoryImpl final : public boost::system::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "amoauth.tls_verify"; }
  [[nodiscard]] std::string message(int ev) const override {
    return std::string("TLS certificate verification failed: ") + X509_verify_cert_error_string(ev);
  }
};
#pragma GCC diagnostic pop

std::shared_ptr<spdlog::logger> GetLogger(const std::string& name) {
  if (auto logger = spdlog::get(name)) {
    return logger;
  }
  return spdlog::default_logger()->clone(name);
}

std::optional<std::uint16_t> ParsePort(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

/// "[::1]" → "::1"; anything else unchanged.
std::string_view StripBrackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

/// What the client needs from a URL.
struct Target {
  bool https = false;
  std::string host;         ///< for SNI and the certificate check: no brackets, decoded
  bool host_is_ip = false;  ///< IP literals get no SNI and an IP SAN check
  std::string port;         ///< explicit or the scheme's default
  std::string host_header;  ///< as written in the URL: "[::1]:8443", "example.amocrm.ru"
  std::string target;       ///< origin-form: "/path?query"
};

Result<Target> ParseTarget(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) {
    return Fail(Errc::kInvalidArgument);
  }
  const boost::urls::url_view& u = *parsed;
  Target t;
  if (u.scheme_id() == boost::urls::scheme::https) {
    t.https = true;
  } else if (u.scheme_id() != boost::urls::scheme::http) {
    return Fail(Errc::kInvalidArgument);
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    return Fail(Errc::kInvalidArgument);
  }
  switch (u.host_type()) {
    case boost::urls::host_type::name:
      t.host = u.host_address();
      break;
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6:
      t.host = u.host_address();
      t.host_is_ip = true;
      break;
    case boost::urls::host_type::none:
    case boost::urls::host_type::ipvfuture:
      return Fail(Errc::kInvalidArgument);
  }
  if (u.has_port() && !u.port().empty()) {
    if (!ParsePort(u.port())) {
      return Fail(Errc::kInvalidArgument);
    }
    t.port = std::string(u.port());
  } else {
    t.port = t.https ? "443" : "80";
  }
  t.host_header = std::string(u.encoded_host_and_port());
  if (u.has_port() && u.port().empty()) {
    t.host_header = std::string(u.encoded_host());
  }
  t.target = std::string(u.encoded_target());
  if (t.target.empty() || t.target.front() != '/') {
    t.target.insert(0, "/");
  }
  return t;
}

/// Fields the client owns: framing and connection management.
bool IsClientOwnedField(std::string_view name) {
  return beast::iequals(name, "Host") || beast::iequals(name, "Content-Length") ||
         beast::iequals(name, "Transfer-Encoding") || beast::iequals(name, "Connection");
}

/// Shared between a resolve that may outlive the request and the request that may give up on it.
struct ResolveState {
  explicit ResolveState(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool done = false;
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
};

/// Resolves with a deadline. getaddrinfo cannot be interrupted, so on timeout the request walks
/// away and the lookup finishes on its own (the state it writes to is shared, not ours).
/// Runs on a strand, or on a context one thread runs: the resolver's handler and this coroutine
/// never run at once.
asio::awaitable<Result<std::vector<tcp::endpoint>>> Resolve(std::string host,
                                                            std::string port,
                                                            Clock::time_point deadline) {
  error_code not_ip;
  const asio::ip::address address = asio::ip::make_address(host, not_ip);
  if (!not_ip) {
    co_return std::vector<tcp::endpoint>{tcp::endpoint(address, *ParsePort(port))};
  }
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<ResolveState>(executor);
  auto resolver = std::make_shared<tcp::resolver>(executor);
  state->timer.expires_at(deadline);
  auto on_resolved = [state, resolver](const error_code& ec,
                                       const tcp::resolver::results_type& results) {
    state->done = true;
    state->ec = ec;
    for (const auto& entry : results) {
      state->endpoints.push_back(entry.endpoint());
    }
    state->timer.cancel();
  };
  resolver->async_resolve(host, port, std::move(on_resolved));
  auto [wait_ec] = co_await state->timer.async_wait(kUseTuple);
  static_cast<void>(wait_ec);
  if (!state->done) {
    resolver->cancel();
    co_return make_error_code(beast::error::timeout);
  }
  if (state->ec) {
    co_return state->ec;
  }
  co_return std::move(state->endpoints);
}

}  // namespace

const boost::system::error_category& TlsVerifyCategory() noexcept {
  static const TlsVerifyCategoryImpl category;
  return category;
}

namespace {

/// One open connection, plain or TLS, with what was read past the last response.
struct Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<SslStream> tls;
  beast::flat_buffer buffer;

  beast::tcp_stream& Tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

/// What a response was, and whether its connection may carry another request.
struct Exchanged {
  net::HttpResponse response;
  bool reusable = false;
};

/// Methods that may be sent twice without harm (RFC 9110 §9.2.2). Only these go over a kept-alive
/// connection: if the server closed it meanwhile we retry on a new one, and a token request must
/// never be sent twice — it may have been acted on.
bool IsIdempotent(http::verb verb) {
  switch (verb) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
}

/// The io_context `executor` runs on, when it is one of the kinds our servers and jobs run on
/// (an io_context's executor or a strand over one, either with a log slot); else nullptr.
asio::io_context* IoContextOf(const asio::any_io_executor& executor) {
  using IoExecutor = asio::io_context::executor_type;
  using Strand = asio::strand<IoExecutor>;
  if (const auto* e = executor.target<net::LogContextExecutor<IoExecutor>>()) {
    return &e->InnerExecutor().context();
  }
  if (const auto* e = executor.target<IoExecutor>()) {
    return &e->context();
  }
  if (const auto* e = executor.target<net::LogContextExecutor<Strand>>()) {
    return &e->InnerExecutor().get_inner_executor().context();
  }
  if (const auto* e = executor.target<Strand>()) {
    return &e->get_inner_executor().context();
  }
  return nullptr;
}

/// Where a kept-alive connection may be reused: its origin, and the io_context it was opened on
/// (nullptr: the client's own executor), so that a call never continues on another thread's
/// connection.
struct PoolKey {
  std::string origin;  ///< scheme://host:port
  const void* context = nullptr;
  friend auto operator<=>(const PoolKey&, const PoolKey&) = default;
};

/// Kept-alive connections per (scheme, host, port) and io_context, newest first out. A connection
/// idles at most kIdleLimit: servers close idle ones (nginx after 75 s, ours after 30 s) and a
/// reused dead one costs a retry.
class ConnectionPool {
 public:
  static constexpr auto kIdleLimit = std::chrono::seconds(20);
  static constexpr std::size_t kPerKey = 64;

  std::unique_ptr<Connection> Take(const PoolKey& key) {
    std::lock_guard lock(mutex_);
    auto it = idle_.find(key);
    if (it == idle_.end()) {
      return nullptr;
    }
    auto& list = it->second;
    const auto now = Clock::now();
    while (!list.empty()) {
      Idle idle = std::move(list.back());
      list.pop_back();
      if (now - idle.since < kIdleLimit) {
        return std::move(idle.connection);
      }
    }
    return nullptr;
  }

  void Put(const PoolKey& key, std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex_);
    auto& list = idle_[key];
    if (list.size() >= kPerKey) {
      list.erase(list.begin());  // the oldest goes
    }
    list.push_back({std::move(connection), Clock::now()});
  }

 private:
  struct Idle {
    std::unique_ptr<Connection> connection;
    Clock::time_point since;
  };
  std::mutex mutex_;
  std::map<PoolKey, std::vector<Idle>> idle_;
};

}  // namespace

struct HttpClient::Impl {
  Impl(asio::any_io_executor executor_in, ClientOptions options_in, ssl::context tls_in)
      : executor(std::move(executor_in)),
        options(std::move(options_in)),
        tls(std::move(tls_in)),
        log(GetLogger("client")) {}

  asio::any_io_executor executor;
  ClientOptions options;
  ssl::context tls;
  std::string connect_host;  ///< from options.connect_to; empty: resolve the URL's host
  std::string connect_port;
  std::shared_ptr<spdlog::logger> log;
  ConnectionPool pool;

  /// `context`: the io_context the call runs on when it is the caller's, else nullptr.
  /// `on_caller`: the call runs in its caller's coroutine, on a context one thread runs (then
  /// `context` is that context): connections it opens live on the context itself, and one it
  /// reuses was opened the same way, on the same thread.
  asio::awaitable<Result<net::HttpResponse>> Perform(ClientRequest request,
                                                     asio::io_context* context,
                                                     bool on_caller);
  /// A new connection whose stream runs on `stream_executor`.
  asio::awaitable<Result<std::unique_ptr<Connection>>> Connect(
      const Target& target, Clock::time_point deadline, asio::any_io_executor stream_executor);
  asio::awaitable<Result<Exchanged>> Exchange(Connection& connection,
                                              http::request<http::string_body>& req,
                                              Clock::time_point deadline);
};

asio::awaitable<Result<net::HttpResponse>> HttpClient::Impl::Perform(ClientRequest request,
                                                                     asio::io_context* context,
                                                                     bool on_caller) {
  const auto started = Clock::now();
  const auto deadline = started + options.timeout;

  auto target = ParseTarget(request.url);
  if (!target || !net::IsHttpToken(request.method)) {
    co_return Fail(Errc::kInvalidArgument);
  }

  http::request<http::string_body> req;
  if (const http::verb verb = http::string_to_verb(request.method); verb != http::verb::unknown) {
    req.method(verb);
  } else {
    req.method_string(request.method);
  }
  req.target(target->target);
  req.version(11);
  req.set(http::field::host, target->host_header);
  req.set(http::field::user_agent, options.user_agent);
  for (const auto& field : request.headers.All()) {
    if (!net::IsHttpToken(field.name) || !net::IsSafeFieldValue(field.value)) {
      co_return Fail(Errc::kInvalidArgument);
    }
    if (IsClientOwnedField(field.name)) {
      continue;
    }
    if (beast::iequals(field.name, "User-Agent")) {
      req.set(http::field::user_agent, field.value);
    } else {
      req.insert(field.name, field.value);
    }
  }
  const bool reuse = IsIdempotent(req.method());
  if (!reuse) {
    req.set(http::field::connection, "close");
  }
  req.body() = std::move(request.body);
  req.prepare_payload();

  const PoolKey pool_key{
      .origin = (target->https ? "https://" : "http://") + target->host + ":" + target->port,
      .context = context};
  Result<Exchanged> exchanged = Fail(Errc::kInvalidArgument);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> connection = reuse && attempt == 0 ? pool.Take(pool_key) : nullptr;
    const bool reused = connection != nullptr;
    if (!connection) {
      // Not a conditional expression: with a co_await in one, GCC 12 built code that crashed.
      asio::any_io_executor stream_executor = co_await asio::this_coro::executor;
      if (on_caller) {
        stream_executor = context->get_executor();
      }
      auto opened = co_await Connect(*target, deadline, std::move(stream_executor));
      if (!opened) {
        exchanged = opened.error();
        break;
      }
      connection = std::move(*opened);
    }
    if (reused && !on_caller) {
      // A kept-alive connection belongs to the strand of the request that opened it: its stream's
      // executor, where Beast runs the stream's timeout handler. Every operation on it runs there
      // too, never on this request's strand, or the two could touch the stream at once.
      // It logs with this request's id, not that of the request that opened it.
      const asio::any_io_executor home =
          net::WithLogId(connection->Tcp().get_executor(), net::CurrentLogIdShared());
      auto exchange = Exchange(*connection, req, deadline);
      exchanged = co_await asio::co_spawn(home, std::move(exchange), asio::use_awaitable);
    } else {
      exchanged = co_await Exchange(*connection, req, deadline);
    }
    if (exchanged && exchanged->reusable && reuse) {
      pool.Put(pool_key, std::move(connection));
    }
    // A kept-alive connection the server has closed meanwhile fails at once: try a new one.
    if (!exchanged && reused && Clock::now() < deadline) {
      continue;
    }
    break;
  }
  Result<net::HttpResponse> result = exchanged
                                         ? Result<net::HttpResponse>(std::move(exchanged->response))
                                         : Result<net::HttpResponse>(exchanged.error());
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  // Host and status only: URLs and headers carry codes, tokens and secrets.
  if (result) {
    log->debug("{} {} -> {} ({} ms)", request.method, target->host, result->status, elapsed);
  } else {
    log->warn("{} {} failed after {} ms: {}",
              request.method,
              target->host,
              elapsed,
              result.error().message());
  }
  co_return result;
}

asio::awaitable<Result<std::unique_ptr<Connection>>> HttpClient::Impl::Connect(
    const Target& target, Clock::time_point deadline, asio::any_io_executor stream_executor) {
  const bool redirected = !connect_host.empty();
  auto endpoints = co_await Resolve(
      redirected ? connect_host : target.host, redirected ? connect_port : target.port, deadline);
  if (!endpoints) {
    co_return endpoints.error();
  }

  auto connection = std::make_unique<Connection>();
  beast::tcp_stream tcp(std::move(stream_executor));
  tcp.expires_at(deadline);
  auto [connect_ec, endpoint] = co_await tcp.async_connect(*endpoints, kUseTuple);
  if (connect_ec) {
    co_return connect_ec;
  }
  tcp.socket().set_option(tcp::no_delay(true));
  if (!target.https) {
    connection->plain.emplace(std::move(tcp));
    co_return connection;
  }

  SslStream& stream = connection->tls.emplace(std::move(tcp), tls);
  SSL* ssl_handle = stream.native_handle();
  // Asio sets SSL_MODE_RELEASE_BUFFERS: OpenSSL then frees its 16 kB record buffers whenever they
  // empty and allocates them again for the next record — several times a request on a kept-alive
  // connection. A pooled connection keeps them (about 34 kB each).
  SSL_clear_mode(ssl_handle, SSL_MODE_RELEASE_BUFFERS);
  // The peer must prove it is target.host: OpenSSL's own check gives a precise verify result
  // (X509_V_ERR_HOSTNAME_MISMATCH), host_name_verification is the Asio-level second lock.
  if (target.host_is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), target.host.c_str()) != 1) {
      co_return Fail(Errc::kInvalidArgument);
    }
  } else {
    // SSL_set_tlsext_host_name() is a macro with a C cast; this is what it expands to.
    if (SSL_ctrl(ssl_handle,
                 SSL_CTRL_SET_TLSEXT_HOSTNAME,
                 TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(target.host.c_str())) != 1 ||
        SSL_set1_host(ssl_handle, target.host.c_str()) != 1) {
      co_return Fail(Errc::kInvalidArgument);
    }
    SSL_set_hostflags(ssl_handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  stream.set_verify_callback(ssl::host_name_verification(target.host));

  beast::get_lowest_layer(stream).expires_at(deadline);
  auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::client, kUseTuple);
  if (handshake_ec) {
    const long verify = SSL_get_verify_result(ssl_handle);
    if (verify != X509_V_OK) {
      co_return error_code(static_cast<int>(verify), TlsVerifyCategory());
    }
    co_return handshake_ec;
  }
  co_return connection;
}

asio::awaitable<Result<Exchanged>> HttpClient::Impl::Exchange(Connection& connection,
                                                              http::request<http::string_body>& req,
                                                              Clock::time_point deadline) {
  beast::tcp_stream& tcp = connection.Tcp();
  tcp.expires_at(deadline);
  auto [write_ec, written] = connection.tls
                                 ? co_await http::async_write(*connection.tls, req, kUseTuple)
                                 : co_await http::async_write(*connection.plain, req, kUseTuple);
  if (write_ec) {
    co_return write_ec;
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(options.body_limit);
  parser.header_limit(kHeaderLimit);
  if (req.method() == http::verb::head) {
    parser.skip(true);
  }
  tcp.expires_at(deadline);
  auto [read_ec, read] =
      connection.tls
          ? co_await http::async_read(*connection.tls, connection.buffer, parser, kUseTuple)
          : co_await http::async_read(*connection.plain, connection.buffer, parser, kUseTuple);
  if (read_ec) {
    co_return read_ec;
  }
  http::response<http::string_body> res = parser.release();
  Exchanged out;
  out.reusable = res.keep_alive() && !res.need_eof() && connection.buffer.size() == 0;
  out.response.status = static_cast<int>(res.result_int());
  out.response.headers.Reserve(static_cast<std::size_t>(std::distance(res.begin(), res.end())));
  for (const auto& field : res) {
    out.response.headers.Add(field.name_string(), field.value());
  }
  out.response.body = std::move(res.body());
  // A connection that is not reused closes its socket when it goes. No TLS close_notify: the
  // response is complete, and nothing more is sent.
  tcp.expires_never();
  co_return out;
}

Result<std::unique_ptr<HttpClient>> HttpClient::Create(boost::asio::any_io_executor executor,
                                                       ClientOptions options) {
  auto log = GetLogger("client");
  std::string connect_host;
  std::string connect_port;
  if (!options.connect_to.empty()) {
    const std::string_view connect_to(options.connect_to);
    const std::size_t colon = connect_to.rfind(':');
    if (colon == std::string_view::npos || !ParsePort(connect_to.substr(colon + 1))) {
      log->error("connect_to must be HOST:PORT");
      return Fail(Errc::kConfigInvalid);
    }
    const std::string_view host = StripBrackets(connect_to.substr(0, colon));
    if (host.empty() || host.find_first_of("[]/ ") != std::string_view::npos) {
      log->error("connect_to must be HOST:PORT");
      return Fail(Errc::kConfigInvalid);
    }
    connect_host = std::string(host);
    connect_port = std::string(connect_to.substr(colon + 1));
  }

  ssl::context tls(ssl::context::tls_client);
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  error_code ec;
  tls.set_default_verify_paths(ec);
  if (ec) {
    log->warn("system CA store not loaded: {}", ec.message());
  }
  if (!options.ca_file.empty()) {
    tls.load_verify_file(options.ca_file, ec);
    if (ec) {
      log->error("cannot load CA file {}: {}", options.ca_file, ec.message());
      return Fail(Errc::kConfigInvalid);
    }
  }
  tls.set_verify_mode(ssl::verify_peer);

  auto impl = std::make_unique<Impl>(std::move(executor), std::move(options), std::move(tls));
  impl->connect_host = std::move(connect_host);
  impl->connect_port = std::move(connect_port);
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() = default;

asio::awaitable<Result<net::HttpResponse>> HttpClient::Send(ClientRequest request) {
  // A resolver handler and the timer racing it must never run at once, whatever executor the
  // caller is on. When one thread runs the caller's io_context (serve's, ADR 0007; marked with
  // net::MarkRunByOneThread) nothing can: the call runs in the caller's coroutine, and the
  // connections it opens, and the kept-alive ones it reuses, live on that context — no strand,
  // no coroutine of its own, no hand-over (two co_spawns and a strand's queue for every
  // completion, otherwise).
  asio::io_context* context = IoContextOf(co_await asio::this_coro::executor);
  if (context != nullptr && net::IsRunByOneThread(*context)) {
    co_return co_await impl_->Perform(std::move(request), context, /*on_caller=*/true);
  }
  // Else each request runs on a strand of its own: over the caller's io_context when the caller
  // runs on one, so that the call and the connections it reuses stay there; else over the
  // client's executor, unwrapped when it is an io_context's own (one type-erased executor per
  // completion, not two). The strand logs with the caller's log id (net::LogContextExecutor).
  asio::any_io_executor strand;
  if (context != nullptr) {
    strand = asio::make_strand(context->get_executor());
  } else if (const auto* io = impl_->executor.target<asio::io_context::executor_type>()) {
    strand = asio::make_strand(*io);
  } else {
    strand = asio::make_strand(impl_->executor);
  }
  if (auto log_id = net::CurrentLogIdShared()) {
    strand = net::WithLogId(strand, std::move(log_id));
  }
  co_return co_await asio::co_spawn(
      std::move(strand),
      impl_->Perform(std::move(request), context, /*on_caller=*/false),
      asio::use_awaitable);
}

}  // namespace amoauth::http_client
