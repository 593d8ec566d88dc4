// Start and wiring: certificates, signing key, state, and the two listeners.

#include "amoauth/sandbox/sandbox.hpp"

#include <array>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "amoauth/http_server/http_server.hpp"
#include "amoauth/net/certificate_authority.hpp"
#include "code_hooks.hpp"
#include "disconnect_hook.hpp"
#include "endpoints.hpp"
#include "external_integration.hpp"
#include "responses.hpp"
#include "sandbox_context.hpp"

namespace amoauth::sandbox {
namespace {

namespace asio = boost::asio;

constexpr std::string_view kCaFileName = "sandbox-ca.pem";

/// "/sandbox/accounts/{id}{action}": the id, else empty.
std::string_view AccountActionId(std::string_view path, std::string_view action) {
  constexpr std::string_view kPrefix = "/sandbox/accounts/";
  if (!path.starts_with(kPrefix) || !path.ends_with(action) ||
      path.size() <= kPrefix.size() + action.size()) {
    return {};
  }
  const std::string_view id =
      path.substr(kPrefix.size(), path.size() - kPrefix.size() - action.size());
  return id.find('/') == std::string_view::npos ? id : std::string_view{};
}

using AccountAction = asio::awaitable<net::HttpResponse> (*)(SandboxContext&,
                                                             HookSender&,
                                                             net::HttpRequest);

/// The control routes that call an integration and answer with what it said: they suspend, so
/// they are not among the plain request-to-response handlers of dispatch.cpp.
constexpr std::array<std::pair<std::string_view, AccountAction>, 2> kAccountActions{{
    {"/disconnect", ServeDisconnect},
    {"/install-widget", ServeInstallWidget},
}};

// Named coroutines taking parameters by value (no capturing coroutine lambdas, style §2.5).
asio::awaitable<net::HttpResponse> ServeBrowserCo(std::shared_ptr<SandboxContext> ctx,
                                                  std::shared_ptr<HookSender> hooks,
                                                  net::HttpRequest req) {
  for (const auto& [action, serve] : kAccountActions) {
    if (const std::string_view id = AccountActionId(req.Path(), action); !id.empty()) {
      if (req.method != "POST") {
        co_return MethodNotAllowedResponse("POST");
      }
      req.path_params = {{"id", std::string(id)}};
      co_return co_await serve(*ctx, *hooks, std::move(req));
    }
  }
  // The metadata variant's decision may wait for the integration's secrets webhook.
  if (req.Path() == "/oauth/decision" && req.method == "POST") {
    const auto form = net::ParseQuery(req.body);
    if (form && IsExternalRequest(*form)) {
      const std::string host = HostOf(req);
      const std::string path(req.Path());
      net::HttpResponse response = co_await ServeExternalDecision(*ctx, *hooks, std::move(req));
      ctx->state.Record(JournalEntry{host, "POST", path, response.status});
      co_return response;
    }
  }
  co_return ServeBrowserSide(*ctx, req);
}

asio::awaitable<net::HttpResponse> ServeAmoCo(std::shared_ptr<SandboxContext> ctx,
                                              net::HttpRequest req) {
  // A slow amoCRM (token_delay_ms): a timer, so every other request is answered meanwhile.
  if (req.Path() == "/oauth2/access_token") {
    const std::chrono::milliseconds delay = ctx->state.Config().token_delay;
    if (delay.count() > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor, delay);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  // A stalled fault (POST /sandbox/faults) holds the request, then drops it unanswered.
  std::chrono::milliseconds stall{0};
  net::HttpResponse response = ServeAmoSide(*ctx, req, &stall);
  if (stall.count() > 0) {
    asio::steady_timer timer(co_await asio::this_coro::executor, stall);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return response;
}

/// A URL host for `listen_host`: wildcard binds are reached over loopback.
std::string UrlHost(const std::string& listen_host) {
  if (listen_host.empty() || listen_host == "0.0.0.0") {
    return "127.0.0.1";
  }
  if (listen_host == "::") {
    return "[::1]";
  }
  if (listen_host.find(':') != std::string::npos) {
    return "[" + listen_host + "]";
  }
  return listen_host;
}

bool WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  return static_cast<bool>(out);
}

}  // namespace

std::shared_ptr<spdlog::logger> SandboxLogger() {
  // Like the other libraries: the application may register "sandbox" to configure it; otherwise
  // a clone of the default logger (not registered: a library leaves the registry alone).
  if (auto logger = spdlog::get("sandbox")) {
    return logger;
  }
  return spdlog::default_logger()->clone("sandbox");
}

struct Sandbox::Impl {
  std::shared_ptr<SandboxContext> ctx;
  /// Calls integrations (hooks, secrets); shared with the handlers, which may outlive a Stop().
  std::shared_ptr<HookSender> hooks;
  std::unique_ptr<http_server::HttpServer> browser_server;
  std::unique_ptr<http_server::HttpServer> amo_server;
  std::string url_host;
  std::uint16_t http_port = 0;
  std::uint16_t tls_port = 0;
  std::string ca_file;
  std::once_flag stopped;
};

Result<std::unique_ptr<Sandbox>> Sandbox::Start(asio::any_io_executor executor, Options options) {
  std::error_code fs_error;
  if (options.state_dir.empty() || !std::filesystem::is_directory(options.state_dir, fs_error)) {
    SandboxLogger()->error("sandbox state_dir '{}' is not a directory", options.state_dir);
    return Fail(Errc::kConfigInvalid);
  }
  const StateConfig config = ConfigFromOptions(options);
  if (const auto invalid = ValidateConfig(config)) {
    SandboxLogger()->error("sandbox options: {}", *invalid);
    return Fail(Errc::kConfigInvalid);
  }
  auto impl = std::make_shared<Impl>();
  impl->url_host = UrlHost(options.host);

  // TLS for every host the simulated amoCRM answers on, signed by a throwaway CA.
  auto issued = net::IssueCertificate(
      {"*.amocrm.ru", "amocrm.ru", "*.amocrm.com", "*.kommo.com", "kommo.com", "localhost"},
      {"127.0.0.1"});
  if (!issued) {
    return issued.error();
  }
  impl->ca_file = (std::filesystem::path(options.state_dir) / kCaFileName).string();
  if (!WriteFile(impl->ca_file, issued->ca_certificate_pem)) {
    SandboxLogger()->error("cannot write {}", impl->ca_file);
    return Fail(Errc::kConfigInvalid);
  }

  auto signer = JwtSigner::Generate();
  if (!signer) {
    return signer.error();
  }
  impl->ctx = std::make_shared<SandboxContext>(
      config,
      options.accounts.empty() ? DefaultAccounts() : std::move(options.accounts),
      std::move(*signer));
  for (Integration& integration : options.integrations) {
    impl->ctx->state.PutIntegration(std::move(integration));
  }

  // Like amoCRM's hooks: a short deadline, no retry (protocol §2.6, §10.2).
  auto hooks = HookSender::Create(executor);
  if (!hooks) {
    return hooks.error();
  }
  impl->hooks = std::move(*hooks);
  impl->ctx->send_later = [hooks = impl->hooks,
                           weak = std::weak_ptr<SandboxContext>(impl->ctx)](OutgoingHook hook) {
    const std::int64_t account_id = hook.account_id;
    SendLater(hooks, std::move(hook), [weak, account_id](const HookDelivery& delivery) {
      if (const auto ctx = weak.lock()) {
        ctx->state.CountHook(account_id, delivery.delivered);
      }
    });
  };

  http_server::ServerOptions browser_options;
  browser_options.log_name = "sandbox";
  impl->browser_server = std::make_unique<http_server::HttpServer>(
      executor,
      options.connection_contexts,
      browser_options,
      [ctx = impl->ctx, hooks = impl->hooks](net::HttpRequest req) {
        return ServeBrowserCo(ctx, hooks, std::move(req));
      });
  const auto http_port = impl->browser_server->Listen(options.host, options.http_port);
  if (!http_port) {
    return http_port.error();
  }
  impl->http_port = *http_port;

  http_server::ServerOptions amo_options;
  amo_options.log_name = "sandbox";
  amo_options.tls_certificate_chain_pem = issued->certificate_chain_pem;
  amo_options.tls_private_key_pem = issued->private_key_pem;
  impl->amo_server = std::make_unique<http_server::HttpServer>(
      executor, options.connection_contexts, amo_options, [ctx = impl->ctx](net::HttpRequest req) {
        return ServeAmoCo(ctx, std::move(req));
      });
  const auto tls_port = impl->amo_server->Listen(options.host, options.tls_port);
  if (!tls_port) {
    impl->browser_server->Stop();
    return tls_port.error();
  }
  impl->tls_port = *tls_port;

  impl->browser_server->Start();
  impl->amo_server->Start();
  SandboxLogger()->info("sandbox up: browser http://{}:{}, amoCRM hosts (TLS) {}:{}, CA {}",
                        impl->url_host,
                        impl->http_port,
                        impl->url_host,
                        impl->tls_port,
                        impl->ca_file);
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(impl)));
}

Sandbox::Sandbox(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Sandbox::~Sandbox() {
  Stop();
}

Integration Sandbox::AddIntegration(Integration integration) {
  return impl_->ctx->state.PutIntegration(std::move(integration));
}

std::uint16_t Sandbox::HttpPort() const {
  return impl_->http_port;
}

std::uint16_t Sandbox::TlsPort() const {
  return impl_->tls_port;
}

std::string Sandbox::BrowserBaseUrl() const {
  return "http://" + impl_->url_host + ":" + std::to_string(impl_->http_port);
}

std::string Sandbox::ConnectTo() const {
  return impl_->url_host + ":" + std::to_string(impl_->tls_port);
}

std::string Sandbox::CaFile() const {
  return impl_->ca_file;
}

void Sandbox::Stop() {
  std::call_once(impl_->stopped, [this] {
    impl_->browser_server->Stop();
    impl_->amo_server->Stop();
    SandboxLogger()->info("sandbox stopped");
  });
}

}  // namespace amoauth::sandbox
