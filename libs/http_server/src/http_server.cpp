#include "amoauth/http_server/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "amoauth/net/log_context.hpp"

namespace amoauth::http_server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SslStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
/// How much one read between requests asks for.
constexpr std::size_t kReadChunk = 4096;
/// After an error response we read and discard at most this much, for at most kLingerTime, so
/// the peer sees our answer instead of a reset caused by its unread request body.
constexpr std::size_t kLingerBytes = 1024 * 1024;
constexpr std::chrono::seconds kLingerTime{2};
/// At most one warning about refused connections this often.
constexpr std::chrono::minutes kRefusalWarningEvery{1};
/// Pause after a failed accept (EMFILE...) so the loop does not spin.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

std::shared_ptr<spdlog::logger> GetLogger(const std::string& name) {
  if (auto logger = spdlog::get(name)) {
    return logger;
  }
  return spdlog::default_logger()->clone(name);
}

std::string RandomHexPrefix() {
  std::array<unsigned char, 3> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    std::random_device rd;
    for (unsigned char& b : bytes) {
      b = static_cast<unsigned char>(rd());
    }
  }
  return fmt::format("{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2]);
}

/// Handlers are ours, but a header value built from input must not split the response.
bool IsSafeField(std::string_view name, std::string_view value) {
  return net::IsHttpToken(name) && net::IsSafeFieldValue(value);
}

/// Fields the server owns: framing and connection management.
bool IsServerOwnedField(std::string_view name) {
  return beast::iequals(name, "Content-Length") || beast::iequals(name, "Transfer-Encoding") ||
         beast::iequals(name, "Connection") || beast::iequals(name, "Server") ||
         beast::iequals(name, "X-Request-Id");
}

/// "::ffff:10.0.0.1" (a dual-stack listener) → "10.0.0.1".
std::string AddressText(asio::ip::address address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

/// A strand for one connection, logging with `log_slot`'s id (net::LogContextExecutor). Over the
/// io_context's own executor when that is what the server was given: every completion of the
/// connection then passes through one type-erased executor (any_io_executor) instead of two (a
/// strand over an any_io_executor, itself in one).
asio::any_io_executor MakeConnectionStrand(const asio::any_io_executor& executor,
                                           std::shared_ptr<net::LogSlot> log_slot) {
  if (const auto* io = executor.target<asio::io_context::executor_type>()) {
    return net::WithLogSlot(asio::make_strand(*io), std::move(log_slot));
  }
  return net::WithLogSlot(asio::make_strand(executor), std::move(log_slot));
}

/// An error of Beast's HTTP parser that means "the peer sent garbage" rather than "the
/// connection went away".
bool IsMalformedRequest(const error_code& ec) {
  return ec.category() == beast::http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::short_read;
}

/// One accepted connection. Lives on its own strand; Close() must run there.
class Connection final {
 public:
  /// `min_wait`: the shortest time from arming a deadline to the deadline.
  Connection(tcp::socket socket,
             ssl::context* tls,
             std::string remote_address,
             std::shared_ptr<net::LogSlot> log_slot,
             std::chrono::steady_clock::duration min_wait)
      : executor_(socket.get_executor()),
        remote_address_(std::move(remote_address)),
        log_slot_(std::move(log_slot)),
        read_timer_(executor_),
        min_wait_(min_wait) {
    if (tls != nullptr) {
      tls_.emplace(std::move(socket), *tls);
    } else {
      plain_.emplace(std::move(socket));
    }
  }

  [[nodiscard]] const asio::any_io_executor& Executor() const { return executor_; }
  [[nodiscard]] const std::string& RemoteAddress() const { return remote_address_; }
  /// The id every line logged for this connection carries: the request's being handled.
  [[nodiscard]] net::LogSlot& LogSlot() { return *log_slot_; }
  [[nodiscard]] SslStream* Tls() { return tls_ ? &*tls_ : nullptr; }
  [[nodiscard]] beast::tcp_stream* Plain() { return plain_ ? &*plain_ : nullptr; }
  [[nodiscard]] beast::tcp_stream& Tcp() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

  /// Aborts pending I/O: the session sees operation_aborted and ends.
  void Close() {
    read_timer_.cancel();
    Tcp().close();
  }

  /// From now until DisarmDeadline(), I/O on this connection (a read, or the answer's write) is
  /// cancelled at `deadline` (it fails with operation_aborted, and DisarmDeadline() then says
  /// so). Beast's own tcp_stream timeout is not used for reads: it closes the socket, leaving no
  /// way to answer 408; nor for the answer's write: it starts and cancels a timer per write.
  ///
  /// Arming and disarming only set fields: the timer is started when none waits, for the armed
  /// deadline or `min_wait` from now if that is sooner, and when it fires before the deadline
  /// armed then, it waits again for the rest. Every deadline is `min_wait` or more from the moment
  /// it is armed, so a waiting timer is never late for it. (Starting and cancelling the timer for
  /// every read cost two waits and two cancelled handlers through the strand per request.)
  void ArmDeadline(std::chrono::steady_clock::time_point deadline) {
    read_deadline_ = deadline;
    read_armed_ = true;
    read_timed_out_ = false;
    Tcp().expires_never();
    if (!timer_waiting_ || timer_expiry_ > deadline) {
      StartTimer(std::min(deadline, std::chrono::steady_clock::now() + min_wait_));
    }
  }
  /// Ends the deadline armed last; true if it had passed (and cancelled the read).
  bool DisarmDeadline() {
    read_armed_ = false;
    return read_timed_out_;
  }

  /// Between reading a request and writing its answer. Touched only on the connection's strand.
  bool busy = false;
  /// This connection, for the read deadline's timer (which must not keep it alive).
  std::weak_ptr<Connection> self;

 private:
  asio::any_io_executor executor_;
  std::string remote_address_;
  std::shared_ptr<net::LogSlot> log_slot_;
  void StartTimer(std::chrono::steady_clock::time_point at) {
    ++timer_generation_;
    timer_waiting_ = true;
    timer_expiry_ = at;
    read_timer_.expires_at(at);  // a wait it cancels sees a newer generation and does nothing
    auto on_timer = [weak = self, generation = timer_generation_](error_code ec) {
      auto connection = weak.lock();
      if (!connection || connection->timer_generation_ != generation) {
        return;
      }
      connection->timer_waiting_ = false;
      if (!ec) {
        connection->OnTimer();
      }
    };
    read_timer_.async_wait(std::move(on_timer));
  }
  void OnTimer() {
    if (!read_armed_) {
      return;  // between reads: the next ArmDeadline starts the timer again
    }
    if (std::chrono::steady_clock::now() < read_deadline_) {
      StartTimer(read_deadline_);
      return;
    }
    read_timed_out_ = true;
    error_code ignored;
    Tcp().socket().cancel(ignored);
  }

  asio::steady_timer read_timer_;                 ///< the read deadline; on the connection's strand
  std::chrono::steady_clock::duration min_wait_;  ///< the shortest deadline ever armed
  std::chrono::steady_clock::time_point read_deadline_{};
  bool read_armed_ = false;
  bool read_timed_out_ = false;
  bool timer_waiting_ = false;
  std::chrono::steady_clock::time_point timer_expiry_{};  ///< of the wait, while timer_waiting_
  std::uint64_t timer_generation_ = 0;
  std::optional<beast::tcp_stream> plain_;  ///< exactly one of plain_ and tls_ is set
  std::optional<SslStream> tls_;
};

/// Marks a connection busy and counts its request in flight for as long as it lives. Created and
/// destroyed on the connection's strand.
class InFlightMark final {
 public:
  InFlightMark(Connection& connection, std::atomic<std::size_t>& count)
      : connection_(connection), count_(count) {
    connection_.busy = true;
    count_.fetch_add(1, std::memory_order_acq_rel);
  }
  InFlightMark(const InFlightMark&) = delete;
  InFlightMark& operator=(const InFlightMark&) = delete;
  ~InFlightMark() {
    connection_.busy = false;
    count_.fetch_sub(1, std::memory_order_acq_rel);
  }

 private:
  Connection& connection_;
  std::atomic<std::size_t>& count_;
};

/// An answer as it goes on the wire.
struct Answer {
  std::string head;    ///< status line, fields, blank line
  std::string body;    ///< empty for HEAD (the head keeps a GET's Content-Length)
  bool close = false;  ///< the connection ends after it
};

/// `response` as the server sends it, with the fields the server owns: Server, X-Request-Id,
/// X-Content-Type-Options unless the handler set it, Connection where the version needs it, and
/// Content-Length. Handler fields the server owns are dropped; unsafe ones too, with an error
/// logged. The bytes are those Beast's serializer writes for the message Beast builds from the
/// same parts (insert each field, set the server's, keep_alive, prepare_payload), which the
/// server sent before — except that a 204 or 304 has no Content-Length (RFC 9110 §8.6; Beast
/// 1.81 writes "Content-Length: 0"). The head is written here, not by Beast's serializer: that
/// was a fifth of a /token's instructions (ADR 0007). Test: AnswerHeadsAreTheBytesOfBeastsMessage.
Answer MakeAnswer(net::HttpResponse response,
                  std::string_view request_id,
                  unsigned version,
                  bool keep_alive,
                  bool head_only,
                  spdlog::logger& log) {
  // Informational statuses are the server's business, not a handler's.
  if (response.status < 200 || response.status > 999) {
    log.error("handler returned HTTP status {}; sending 500", response.status);
    response = net::HttpResponse::JsonError(
        500, "internal_error", fmt::format("internal error (request {})", request_id));
  }
  const bool bodiless = response.status == 204 || response.status == 304;
  if (bodiless) {
    response.body.clear();
  }
  const auto status = static_cast<unsigned>(response.status);
  Answer answer;
  std::string& head = answer.head;
  head.reserve(256);
  head += "HTTP/";
  head += static_cast<char>('0' + version / 10 % 10);
  head += '.';
  head += static_cast<char>('0' + version % 10);
  head += ' ';
  head += static_cast<char>('0' + status / 100 % 10);
  head += static_cast<char>('0' + status / 10 % 10);
  head += static_cast<char>('0' + status % 10);
  head += ' ';
  const std::string_view reason = http::obsolete_reason(http::int_to_status(status));
  head.append(reason.data(), reason.size());
  head += "\r\n";
  const auto field = [&head](std::string_view name, std::string_view value) {
    head.append(name.data(), name.size());
    head += ": ";
    head.append(value.data(), value.size());
    head += "\r\n";
  };
  bool nosniff_set = false;
  for (const auto& f : response.headers.All()) {
    if (IsServerOwnedField(f.name)) {
      continue;
    }
    if (!IsSafeField(f.name, f.value)) {
      log.error("dropped an invalid response header field");
      continue;
    }
    nosniff_set = nosniff_set || beast::iequals(f.name, "X-Content-Type-Options");
    field(f.name, f.value);
  }
  field("Server", "amoauth");
  // No answer of ours is meant to be sniffed into another type (JSON read as HTML...).
  if (!nosniff_set) {
    field("X-Content-Type-Options", "nosniff");
  }
  field("X-Request-Id", request_id);
  // HTTP/1.1 keeps a connection open unless told; HTTP/1.0 closes it unless told.
  if (version >= 11 && !keep_alive) {
    field("Connection", "close");
  } else if (version < 11 && keep_alive) {
    field("Connection", "keep-alive");
  }
  if (!bodiless) {
    field("Content-Length", std::to_string(response.body.size()));
  }
  head += "\r\n";
  if (!head_only) {
    answer.body = std::move(response.body);
  }
  answer.close = !keep_alive;
  return answer;
}

/// A test server's slow body (net::HttpResponse::trickle_bytes): the head at once, then the body
/// `piece` bytes at a time, `interval` apart, each write within `io_timeout`.
template <class Stream>
asio::awaitable<error_code> WriteTrickled(Stream& stream,
                                          beast::tcp_stream& socket,
                                          const Answer& answer,
                                          std::size_t piece,
                                          std::chrono::milliseconds interval,
                                          std::chrono::milliseconds io_timeout) {
  socket.expires_after(io_timeout);
  auto [head_ec, head_bytes] =
      co_await asio::async_write(stream, asio::buffer(answer.head), kUseTuple);
  if (head_ec) {
    co_return head_ec;
  }
  const std::string& body = answer.body;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (std::size_t at = 0; at < body.size(); at += piece) {
    if (at > 0) {
      timer.expires_after(interval);
      auto [wait_ec] = co_await timer.async_wait(kUseTuple);
      if (wait_ec) {
        co_return wait_ec;
      }
    }
    const auto part = asio::buffer(body.data() + at, std::min(piece, body.size() - at));
    socket.expires_after(io_timeout);
    auto [write_ec, written] = co_await asio::async_write(stream, part, kUseTuple);
    if (write_ec) {
      co_return write_ec;
    }
  }
  co_return error_code{};
}

net::HttpRequest FromBeast(http::request<http::string_body>&& req,
                           std::string remote_address,
                           std::string request_id) {
  net::HttpRequest out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  out.headers.Reserve(static_cast<std::size_t>(std::distance(req.begin(), req.end())));
  for (const auto& field : req) {
    out.headers.Add(field.name_string(), field.value());
  }
  out.body = std::move(req.body());
  out.remote_address = std::move(remote_address);
  out.request_id = std::move(request_id);
  return out;
}

}  // namespace

struct HttpServer::Impl {
  Impl(asio::any_io_executor executor_in,
       std::vector<asio::io_context*> contexts_in,
       ServerOptions options_in,
       Handler handler_in)
      : executor(std::move(executor_in)),
        acceptor_executor(asio::make_strand(executor)),
        connection_contexts(std::move(contexts_in)),
        options(std::move(options_in)),
        handler(std::move(handler_in)),
        log(GetLogger(options.log_name)),
        acceptor(acceptor_executor),
        id_prefix(RandomHexPrefix()) {}

  // Immutable after Listen().
  asio::any_io_executor executor;
  asio::any_io_executor acceptor_executor;  ///< a strand: the acceptor lives here
  /// Single-threaded io_contexts the connections are spread over; empty: strands of `executor`.
  std::vector<asio::io_context*> connection_contexts;
  std::size_t next_context = 0;  ///< acceptor strand only
  ServerOptions options;
  Handler handler;
  std::shared_ptr<spdlog::logger> log;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor;  ///< used on acceptor_executor only, once started
  std::string id_prefix;
  std::atomic<std::uint64_t> next_id{0};
  /// Set by Stop() at once, before the posted StopNow() runs: no handler call starts after it,
  /// so the handler's captures (a Router...) may go away once Stop() has returned.
  std::atomic<bool> stopping{false};
  /// Set by Drain(): connections between requests close, a request being handled is answered
  /// with `Connection: close`.
  std::atomic<bool> draining{false};
  /// Requests read and not yet answered (Connection::busy).
  std::atomic<std::size_t> in_flight{0};

  /// Connections turned away at a cap.
  std::atomic<std::uint64_t> refused{0};
  /// When the accept loop last logged a warning about refusals (acceptor strand only).
  std::chrono::steady_clock::time_point refusals_told{};

  std::mutex mutex;
  bool stopped = false;                                             // guarded by mutex
  std::unordered_map<Connection*, std::weak_ptr<Connection>> live;  // guarded by mutex
  /// Open connections per peer address, kept only with max_connections_per_address.
  std::unordered_map<std::string, std::size_t> per_address;  // guarded by mutex

  Result<void> SetUpTls();
  /// Where the next connection runs, logging with `log_slot`'s id. Acceptor strand only.
  asio::any_io_executor ConnectionExecutor(std::shared_ptr<net::LogSlot> log_slot);
  std::string NextRequestId();
  void StopNow();
  void DrainNow();
  void Forget(Connection* connection);

  static asio::awaitable<void> AcceptLoop(std::shared_ptr<Impl> self);
  static asio::awaitable<void> RunConnection(std::shared_ptr<Impl> self,
                                             std::shared_ptr<Connection> connection);
  enum class Admission { kAdmitted, kStopping, kConnectionCap, kAddressCap };
  /// Registers an accepted connection, unless the server is stopping or a cap is reached.
  Admission Admit(const std::shared_ptr<Connection>& connection);
  /// Answers 503 on a connection beyond a cap and closes it, without waiting for anything.
  void Refuse(tcp::socket& socket);
  template <class Stream>
  asio::awaitable<void> Serve(Stream& stream, Connection& connection);
  template <class Stream>
  asio::awaitable<void> Reject(Stream& stream,
                               Connection& connection,
                               const std::string& request_id,
                               net::HttpResponse response);
  asio::awaitable<net::HttpResponse> Handle(net::HttpRequest request);
  asio::awaitable<void> Linger(beast::tcp_stream& tcp);
  asio::awaitable<void> CloseGracefully(beast::tcp_stream& stream);
  asio::awaitable<void> CloseGracefully(SslStream& stream);

  auto LogExceptions(std::string what) {
    return [log = log, what = std::move(what)](const std::exception_ptr& error) {
      if (!error) {
        return;
      }
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        log->error("{} failed: {}", what, e.what());
      } catch (...) {
        log->error("{} failed with a non-standard exception", what);
      }
    };
  }
};

Result<void> HttpServer::Impl::SetUpTls() {
  const bool has_chain = !options.tls_certificate_chain_pem.empty();
  const bool has_key = !options.tls_private_key_pem.empty();
  if (!has_chain && !has_key) {
    return {};
  }
  if (has_chain != has_key) {
    log->error("TLS needs both a certificate chain and a private key");
    return Fail(Errc::kConfigInvalid);
  }
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  error_code ec;
  ctx.use_certificate_chain(asio::buffer(options.tls_certificate_chain_pem), ec);
  if (ec) {
    log->error("TLS certificate chain rejected: {}", ec.message());
    return Fail(Errc::kConfigInvalid);
  }
  ctx.use_private_key(asio::buffer(options.tls_private_key_pem), ssl::context::pem, ec);
  if (ec) {
    log->error("TLS private key rejected: {}", ec.message());
    return Fail(Errc::kConfigInvalid);
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    log->error("TLS private key does not match the certificate");
    return Fail(Errc::kConfigInvalid);
  }
  tls.emplace(std::move(ctx));
  return {};
}

std::string HttpServer::Impl::NextRequestId() {
  // The prefix and at least six hex digits of the count, as fmt's "{}{:06x}" writes them, digit
  // by digit: every request makes one, and fmt::format took 800 instructions.
  std::uint64_t n = next_id.fetch_add(1, std::memory_order_relaxed) + 1;
  std::array<char, 16> digits{};
  std::size_t count = 0;
  while (n != 0 || count < 6) {
    digits[digits.size() - ++count] = "0123456789abcdef"[n & 0xfU];
    n >>= 4U;
  }
  std::string id;
  id.reserve(id_prefix.size() + count);
  id += id_prefix;
  id.append(digits.data() + digits.size() - count, count);
  return id;
}

void HttpServer::Impl::StopNow() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    const std::lock_guard lock(mutex);
    if (stopped) {
      return;
    }
    stopped = true;
    for (auto& [raw, weak] : live) {
      if (auto connection = weak.lock()) {
        open.push_back(std::move(connection));
      }
    }
  }
  error_code ignored;
  acceptor.close(ignored);
  for (auto& connection : open) {
    auto close = [connection] { connection->Close(); };
    asio::post(connection->Executor(), std::move(close));
  }
  if (!open.empty()) {
    log->debug("stopping: closing {} open connection(s)", open.size());
  }
}

void HttpServer::Impl::DrainNow() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    const std::lock_guard lock(mutex);
    if (stopped) {
      return;
    }
    for (auto& [raw, weak] : live) {
      if (auto connection = weak.lock()) {
        open.push_back(std::move(connection));
      }
    }
  }
  error_code ignored;
  acceptor.close(ignored);
  for (auto& connection : open) {
    // On the connection's strand `busy` is exact: an idle connection is waiting for a request
    // (or a TLS handshake) and closes; a busy one closes after its answer (Serve).
    auto close_if_idle = [connection] {
      if (!connection->busy) {
        connection->Close();
      }
    };
    asio::post(connection->Executor(), std::move(close_if_idle));
  }
}

void HttpServer::Impl::Forget(Connection* connection) {
  const std::lock_guard lock(mutex);
  live.erase(connection);
  if (options.max_connections_per_address != 0) {
    auto it = per_address.find(connection->RemoteAddress());
    if (it != per_address.end() && --it->second == 0) {
      per_address.erase(it);
    }
  }
}

HttpServer::Impl::Admission HttpServer::Impl::Admit(const std::shared_ptr<Connection>& connection) {
  const std::lock_guard lock(mutex);
  if (stopped || draining.load(std::memory_order_acquire)) {
    return Admission::kStopping;
  }
  if (options.max_connections != 0 && live.size() >= options.max_connections) {
    return Admission::kConnectionCap;
  }
  if (options.max_connections_per_address != 0) {
    std::size_t& from_address = per_address[connection->RemoteAddress()];
    if (from_address >= options.max_connections_per_address) {
      return Admission::kAddressCap;
    }
    ++from_address;
  }
  live.emplace(connection.get(), connection);
  return Admission::kAdmitted;
}

void HttpServer::Impl::Refuse(tcp::socket& socket) {
  refused.fetch_add(1, std::memory_order_relaxed);
  error_code ignored;
  if (!tls) {
    // A fresh socket's send buffer is empty: one non-blocking write takes the whole answer.
    static constexpr std::string_view kAnswer =
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Server: amoauth\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n"
        "Content-Length: 68\r\n"
        "\r\n"
        R"({"error":"unavailable","message":"too many open connections; retry"})";
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(kAnswer), ignored);
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    // Whatever of the request has arrived is read away, so that closing sends a FIN after our
    // answer rather than a reset that could destroy it.
    std::array<char, 4096> scratch{};
    while (socket.read_some(asio::buffer(scratch), ignored) > 0) {
    }
  }
  socket.close(ignored);
}

asio::any_io_executor HttpServer::Impl::ConnectionExecutor(std::shared_ptr<net::LogSlot> log_slot) {
  if (connection_contexts.empty()) {
    return MakeConnectionStrand(executor, std::move(log_slot));
  }
  // One thread runs the context: it is the connection's strand already. Without a strand
  // around it the executor, slot included, also fits any_io_executor's in-place storage, so
  // Asio's copies of it per operation allocate nothing.
  asio::io_context& context = *connection_contexts[next_context];
  next_context = (next_context + 1) % connection_contexts.size();
  return net::WithLogSlot(context.get_executor(), std::move(log_slot));
}

asio::awaitable<void> HttpServer::Impl::AcceptLoop(std::shared_ptr<Impl> self) {
  for (;;) {
    auto log_slot = std::make_shared<net::LogSlot>();
    const asio::any_io_executor strand = self->ConnectionExecutor(log_slot);
    auto [ec, socket] = co_await self->acceptor.async_accept(strand, kUseTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) {
        co_return;
      }
      self->log->warn("accept failed: {}", ec.message());
      asio::steady_timer pause(self->acceptor_executor, kAcceptRetryDelay);
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    error_code endpoint_ec;
    const tcp::endpoint remote = socket.remote_endpoint(endpoint_ec);
    std::string remote_address = endpoint_ec ? std::string() : AddressText(remote.address());
    const auto min_wait = std::min({self->options.header_timeout,
                                    self->options.body_timeout,
                                    self->options.idle_timeout,
                                    self->options.io_timeout});
    auto connection = std::make_shared<Connection>(std::move(socket),
                                                   self->tls ? &*self->tls : nullptr,
                                                   std::move(remote_address),
                                                   std::move(log_slot),
                                                   min_wait);
    const Admission admission = self->Admit(connection);
    if (admission == Admission::kStopping) {
      co_return;  // `connection` closes the socket
    }
    if (admission != Admission::kAdmitted) {
      const std::string_view cap = admission == Admission::kConnectionCap
                                       ? "max_connections"
                                       : "max_connections_per_address";
      self->log->debug(
          "refused a connection from {}: {} reached", connection->RemoteAddress(), cap);
      self->Refuse(connection->Tcp().socket());
      // An operator should hear of it, but a flood must not flood the log too.
      const auto now = std::chrono::steady_clock::now();
      if (self->refusals_told == std::chrono::steady_clock::time_point{} ||
          now - self->refusals_told >= kRefusalWarningEvery) {
        self->refusals_told = now;
        self->log->warn("{} reached: new connections are answered 503 ({} refused so far)",
                        cap,
                        self->refused.load(std::memory_order_relaxed));
      }
      continue;
    }
    connection->self = connection;
    asio::co_spawn(connection->Executor(),
                   RunConnection(self, connection),
                   self->LogExceptions("connection from " + connection->RemoteAddress()));
  }
}

asio::awaitable<void> HttpServer::Impl::RunConnection(std::shared_ptr<Impl> self,
                                                      std::shared_ptr<Connection> connection) {
  class Unregister final {
   public:
    Unregister(Impl& impl, Connection* connection) : impl_(impl), connection_(connection) {}
    Unregister(const Unregister&) = delete;
    Unregister& operator=(const Unregister&) = delete;
    ~Unregister() { impl_.Forget(connection_); }

   private:
    Impl& impl_;
    Connection* connection_;
  };
  const Unregister unregister(*self, connection.get());

  if (SslStream* tls = connection->Tls()) {
    // The handshake is the first thing the client sends: it gets the headers' deadline.
    connection->Tcp().expires_after(self->options.header_timeout);
    auto [ec] = co_await tls->async_handshake(ssl::stream_base::server, kUseTuple);
    if (ec) {
      self->log->debug(
          "TLS handshake with {} failed: {}", connection->RemoteAddress(), ec.message());
      co_return;
    }
    co_await self->Serve(*tls, *connection);
  } else if (beast::tcp_stream* plain = connection->Plain()) {
    co_await self->Serve(*plain, *connection);
  }
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::Serve(Stream& stream, Connection& connection) {
  using Clock = std::chrono::steady_clock;
  beast::tcp_stream& tcp = connection.Tcp();
  beast::flat_buffer buffer;
  for (bool first = true;; first = false) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options.body_limit);
    parser.header_limit(options.header_limit);

    error_code ec;
    bool timed_out = false;
    if (!first && buffer.size() == 0) {
      // Keep-alive: wait for the next request's first byte, at most idle_timeout.
      connection.ArmDeadline(Clock::now() + options.idle_timeout);
      auto [idle_ec, idle_bytes] =
          co_await stream.async_read_some(buffer.prepare(kReadChunk), kUseTuple);
      buffer.commit(idle_bytes);
      ec = idle_ec;
      timed_out = connection.DisarmDeadline();
      if (ec) {
        if (timed_out) {
          log->debug("closing an idle connection from {}", connection.RemoteAddress());
        } else if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
                   ec != ssl::error::stream_truncated) {
          log->debug("connection from {} ended: {}", connection.RemoteAddress(), ec.message());
        }
        co_return;
      }
    }
    // The request line and headers, within header_timeout of their first byte (or of the
    // connection's start).
    connection.ArmDeadline(Clock::now() + options.header_timeout);
    auto [header_ec, header_bytes] =
        co_await http::async_read_header(stream, buffer, parser, kUseTuple);
    ec = header_ec;
    timed_out = connection.DisarmDeadline();
    if (!ec && draining.load(std::memory_order_acquire) && !tcp.socket().is_open()) {
      co_return;  // Drain() closed this connection as idle just as the request arrived
    }
    if (timed_out && !parser.got_some() && buffer.size() == 0) {
      log->debug("closing a connection from {} that sent nothing", connection.RemoteAddress());
      co_return;
    }
    // From here until the answer is written the request is in flight: Drain() leaves the
    // connection open and waits for it.
    const InFlightMark mark(connection, in_flight);
    std::string_view timed_out_part = "headers";
    if (!ec) {
      const auto fields =
          static_cast<std::size_t>(std::distance(parser.get().begin(), parser.get().end()));
      if (fields > options.max_header_fields) {
        co_await Reject(stream,
                        connection,
                        NextRequestId(),
                        net::HttpResponse::JsonError(
                            431,
                            "request_header_fields_too_large",
                            fmt::format("request has {} header fields; at most {} are accepted",
                                        fields,
                                        options.max_header_fields)));
        co_return;
      }
    }
    if (!ec && !parser.is_done()) {
      // Clients such as curl wait for "100 Continue" before sending a large body.
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
        tcp.expires_after(options.io_timeout);
        auto [continue_ec, continue_bytes] = co_await http::async_write(stream, go_on, kUseTuple);
        ec = continue_ec;
      }
      if (!ec) {
        timed_out_part = "body";
        connection.ArmDeadline(Clock::now() + options.body_timeout);
        auto [body_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, kUseTuple);
        ec = body_ec;
        timed_out = connection.DisarmDeadline();
      }
    }
    if (ec) {
      if (timed_out) {
        const auto limit = timed_out_part == "body" ? options.body_timeout : options.header_timeout;
        co_await Reject(
            stream,
            connection,
            NextRequestId(),
            net::HttpResponse::JsonError(408,
                                         "request_timeout",
                                         fmt::format("the request's {} did not arrive within {} ms",
                                                     timed_out_part,
                                                     limit.count())));
      } else if (ec == http::error::body_limit) {
        co_await Reject(stream,
                        connection,
                        NextRequestId(),
                        net::HttpResponse::JsonError(
                            413,
                            "payload_too_large",
                            fmt::format("request body exceeds {} bytes", options.body_limit)));
      } else if (ec == http::error::header_limit) {
        co_await Reject(stream,
                        connection,
                        NextRequestId(),
                        net::HttpResponse::JsonError(
                            431,
                            "request_header_fields_too_large",
                            fmt::format("request headers exceed {} bytes", options.header_limit)));
      } else if (IsMalformedRequest(ec)) {
        co_await Reject(stream,
                        connection,
                        NextRequestId(),
                        net::HttpResponse::JsonError(
                            400, "bad_request", "malformed HTTP request: " + ec.message()));
      } else if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
        log->debug("connection from {} ended: {}", connection.RemoteAddress(), ec.message());
      }
      co_return;
    }

    if (stopping.load(std::memory_order_acquire)) {
      co_await Reject(stream,
                      connection,
                      NextRequestId(),
                      net::HttpResponse::JsonError(503, "unavailable", "server is shutting down"));
      co_return;
    }

    http::request<http::string_body> req = parser.release();
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    // The caller's X-Request-Id when it is one we can log as is; else ours.
    const auto incoming_id = req.find("X-Request-Id");
    std::string request_id =
        incoming_id != req.end() && net::IsAcceptableRequestId(incoming_id->value())
            ? std::string(incoming_id->value())
            : NextRequestId();
    // Every line logged until the next request, here or in the layers below, carries the id.
    net::SetLogId(connection.LogSlot(), request_id);
    const auto started = std::chrono::steady_clock::now();
    net::HttpRequest request = FromBeast(std::move(req), connection.RemoteAddress(), request_id);
    const std::string method = request.method;
    const std::string path(request.Path());

    net::HttpResponse response = co_await Handle(std::move(request));
    const int status = response.status;
    if (response.drop_connection) {
      // A test server's scripted fault (the sandbox): hang up without answering.
      log->info("[req={}] {} {} {} -> connection dropped unanswered",
                request_id,
                connection.RemoteAddress(),
                method,
                path);
      connection.Close();
      co_return;
    }
    const std::size_t trickle_bytes = response.trickle_bytes;
    const std::chrono::milliseconds trickle_interval = response.trickle_interval;
    // Draining: this answer is the connection's last.
    const bool draining_now = draining.load(std::memory_order_acquire);
    const Answer answer = MakeAnswer(std::move(response),
                                     request_id,
                                     version,
                                     keep_alive && !draining_now,
                                     method == "HEAD",
                                     *log);
    error_code write_ec;
    if (trickle_bytes > 0) {
      write_ec = co_await WriteTrickled(
          stream, tcp, answer, trickle_bytes, trickle_interval, options.io_timeout);
    } else {
      // Head and body in one gathering write, under the connection's own deadline timer (Beast's
      // tcp_stream would start and cancel a timer for each write).
      const std::array<asio::const_buffer, 2> parts{asio::buffer(answer.head),
                                                    asio::buffer(answer.body)};
      connection.ArmDeadline(Clock::now() + options.io_timeout);
      auto [ec_written, written] = co_await asio::async_write(stream, parts, kUseTuple);
      write_ec = connection.DisarmDeadline() ? make_error_code(beast::error::timeout) : ec_written;
    }
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    // The path only: query strings carry codes and tokens.
    log->info("{} {} {} -> {} ({} ms){}",
              connection.RemoteAddress(),
              method,
              path,
              status,
              elapsed.count(),
              write_ec ? " write failed: " + write_ec.message() : std::string());
    net::SetLogId(connection.LogSlot(), {});
    if (write_ec) {
      co_return;
    }
    if (answer.close) {
      co_await CloseGracefully(stream);
      co_return;
    }
  }
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::Reject(Stream& stream,
                                               Connection& connection,
                                               const std::string& request_id,
                                               net::HttpResponse response) {
  net::SetLogId(connection.LogSlot(), request_id);
  log->info("{} rejected: {} {}", connection.RemoteAddress(), response.status, response.body);
  const Answer answer = MakeAnswer(std::move(response), request_id, 11, false, false, *log);
  beast::tcp_stream& tcp = connection.Tcp();
  tcp.expires_after(options.io_timeout);
  const std::array<asio::const_buffer, 2> parts{asio::buffer(answer.head),
                                                asio::buffer(answer.body)};
  auto [ec, written] = co_await asio::async_write(stream, parts, kUseTuple);
  if (!ec) {
    co_await Linger(tcp);
  }
}

asio::awaitable<void> HttpServer::Impl::Linger(beast::tcp_stream& tcp) {
  error_code ignored;
  tcp.socket().shutdown(tcp::socket::shutdown_send, ignored);
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::min<std::chrono::steady_clock::duration>(options.io_timeout, kLingerTime);
  std::array<char, 4096> scratch{};
  std::size_t discarded = 0;
  while (discarded < kLingerBytes) {
    tcp.expires_at(deadline);
    auto [ec, n] = co_await tcp.async_read_some(asio::buffer(scratch), kUseTuple);
    if (ec) {
      break;
    }
    discarded += n;
  }
  tcp.close();
}

asio::awaitable<void> HttpServer::Impl::CloseGracefully(beast::tcp_stream& stream) {
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  co_return;
}

asio::awaitable<void> HttpServer::Impl::CloseGracefully(SslStream& stream) {
  beast::get_lowest_layer(stream).expires_after(
      std::min<std::chrono::steady_clock::duration>(options.io_timeout, kLingerTime));
  auto [ec] = co_await stream.async_shutdown(kUseTuple);
  static_cast<void>(ec);  // the peer often just closes; nothing to do about it
}

asio::awaitable<net::HttpResponse> HttpServer::Impl::Handle(net::HttpRequest request) {
  const std::string request_id = request.request_id;
  std::string failure;
  try {
    co_return co_await handler(std::move(request));
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "non-standard exception";
  }
  log->error("handler threw: {}", failure);
  co_return net::HttpResponse::JsonError(
      500, "internal_error", fmt::format("internal error (request {})", request_id));
}

HttpServer::HttpServer(boost::asio::any_io_executor executor,
                       ServerOptions options,
                       Handler handler)
    : impl_(std::make_shared<Impl>(std::move(executor),
                                   std::vector<asio::io_context*>{},
                                   std::move(options),
                                   std::move(handler))) {}

HttpServer::HttpServer(boost::asio::any_io_executor executor,
                       std::vector<boost::asio::io_context*> connection_contexts,
                       ServerOptions options,
                       Handler handler)
    : impl_(std::make_shared<Impl>(std::move(executor),
                                   std::move(connection_contexts),
                                   std::move(options),
                                   std::move(handler))) {}

HttpServer::~HttpServer() {
  Stop();
}

Result<std::uint16_t> HttpServer::Listen(std::string_view host, std::uint16_t port) {
  if (auto tls = impl_->SetUpTls(); !tls) {
    return tls.error();
  }
  error_code ec;
  const asio::ip::address address =
      asio::ip::make_address(host == "localhost" ? std::string_view("127.0.0.1") : host, ec);
  if (ec) {
    impl_->log->error("cannot listen on '{}': not an IP address", host);
    return Fail(Errc::kConfigInvalid);
  }
  const tcp::endpoint endpoint(address, port);
  tcp::acceptor& acceptor = impl_->acceptor;
  if (acceptor.open(endpoint.protocol(), ec); ec) {
    return ec;
  }
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return ec;
  }
  if (acceptor.bind(endpoint, ec); ec) {
    impl_->log->error("cannot bind {}:{}: {}", host, port, ec.message());
    error_code ignored;
    acceptor.close(ignored);
    return ec;
  }
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return ec;
  }
  const tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) {
    return ec;
  }
  impl_->log->info("listening on {}:{}{}", host, bound.port(), impl_->tls ? " (TLS)" : "");
  return bound.port();
}

void HttpServer::Start() {
  asio::co_spawn(
      impl_->acceptor_executor, Impl::AcceptLoop(impl_), impl_->LogExceptions("accept loop"));
}

void HttpServer::Drain() {
  impl_->draining.store(true, std::memory_order_release);
  std::shared_ptr<Impl> impl = impl_;
  auto drain = [impl] { impl->DrainNow(); };
  asio::post(impl->acceptor_executor, std::move(drain));
}

std::size_t HttpServer::InFlight() const {
  return impl_->in_flight.load(std::memory_order_acquire);
}

std::size_t HttpServer::OpenConnections() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->live.size();
}

std::uint64_t HttpServer::RefusedConnections() const {
  return impl_->refused.load(std::memory_order_relaxed);
}

void HttpServer::Stop() {
  impl_->stopping.store(true, std::memory_order_release);
  std::shared_ptr<Impl> impl = impl_;
  auto stop = [impl] { impl->StopNow(); };
  asio::post(impl->acceptor_executor, std::move(stop));
}

}  // namespace amoauth::http_server
