// The one-shot commands: exchange-code, exchange-api-key, accounts, token, button. They run the
// same use cases as the server, on a private io_context, against the same database.
#include "commands.hpp"

#include <fstream>
#include <iostream>
#include <string>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "amoauth/core/iso_time.hpp"
#include "local_setup.hpp"
#include "run_to_completion.hpp"
#include "runtime.hpp"

namespace amoauth::app {
namespace {

/// Loads the config and builds the runtime, or prints why not. Exit code in `exit_code`.
std::unique_ptr<Runtime> Prepare(const CommonOptions& options,
                                 boost::asio::io_context& ioc,
                                 int& exit_code) {
  auto loaded = LoadLayeredConfig(options);
  if (!loaded) {
    fmt::print(stderr, "amoauth: configuration error: {}\n", loaded.error());
    exit_code = 2;
    return nullptr;
  }
  SetUpLogging(loaded->log_level == "info" ? "warn" : loaded->log_level, loaded->log_format);
  if (options.sandbox) {
    if (auto ok = EnsureSandboxSecrets(*loaded); !ok) {
      fmt::print(stderr, "amoauth: {}\n", ok.error());
      exit_code = 2;
      return nullptr;
    }
  }
  auto runtime = Runtime::Build(std::move(*loaded), ioc.get_executor());
  if (!runtime) {
    fmt::print(stderr, "amoauth: {}\n", runtime.error());
    exit_code = 1;
    return nullptr;
  }
  return std::move(*runtime);
}

int ReportFailure(const boost::system::error_code& ec) {
  fmt::print(stderr, "amoauth: {}\n", ec.message());
  return 1;
}

/// The first line of `in`, without trailing CR, LF, spaces or tabs.
std::string FirstLine(std::istream& in) {
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.pop_back();
  }
  return line;
}

}  // namespace

int RunExchangeCode(const CommonOptions& options,
                    std::string code,
                    const std::string& code_file,
                    const std::string& referer) {
  if (!code.empty()) {
    fmt::print(stderr,
               "amoauth: warning: --code puts the code where `ps` and the shell history see it; "
               "prefer --code-file - (standard input) or --code-file FILE\n");
  } else if (code_file == "-") {
    code = FirstLine(std::cin);
  } else if (!code_file.empty()) {
    std::ifstream in(code_file);
    if (!in) {
      fmt::print(stderr, "amoauth: cannot read the code file {}\n", code_file);
      return 2;
    }
    code = FirstLine(in);
  }
  if (code.empty()) {
    fmt::print(stderr,
               "amoauth: no code: pass --code-file - and give it on standard input, or "
               "--code-file FILE\n");
    return 2;
  }
  boost::asio::io_context ioc;
  int exit_code = 0;
  auto runtime = Prepare(options, ioc, exit_code);
  if (!runtime) {
    return exit_code;
  }
  auto connected =
      RunToCompletion(ioc, runtime->Flow().ExchangePastedCode(Secret(std::move(code)), referer));
  if (!connected) {
    return ReportFailure(connected.error());
  }
  fmt::print("Connected account {} ({}); access token valid until {}.\n",
             connected->account_id,
             connected->base_domain,
             core::FormatIsoTime(connected->expires_at));
  return 0;
}

int RunExchangeApiKey(const CommonOptions& options,
                      const std::string& login,
                      std::string api_key,
                      const std::string& domain) {
  if (api_key.empty()) {
    std::getline(std::cin, api_key);
    while (!api_key.empty() && (api_key.back() == '\r' || api_key.back() == ' ')) {
      api_key.pop_back();
    }
    if (api_key.empty()) {
      fmt::print(stderr,
                 "amoauth: no API key: pass --api-key or give it on standard input "
                 "(echo \"$KEY\" | amoauth exchange-api-key …)\n");
      return 2;
    }
  }
  boost::asio::io_context ioc;
  int exit_code = 0;
  auto runtime = Prepare(options, ioc, exit_code);
  if (!runtime) {
    return exit_code;
  }
  auto outcome =
      RunToCompletion(ioc, runtime->ApiKeys().Request(login, Secret(std::move(api_key)), domain));
  if (!outcome) {
    return ReportFailure(outcome.error());
  }
  if (!outcome->requested) {
    fmt::print(stderr,
               "amoauth: too soon: amoCRM allows one API-key exchange per 5 minutes for each user "
               "and integration; the next is allowed at {}.\n",
               core::FormatIsoTime(outcome->next_allowed_at));
    return 1;
  }
  fmt::print(
      "amoCRM accepted the exchange (202). It sends the code to the Redirect URI "
      "(from_exchange=1); a running `amoauth serve` stores and exchanges it. Next exchange for "
      "this user allowed at {}.\n",
      core::FormatIsoTime(outcome->next_allowed_at));
  return 0;
}

int RunAccounts(const CommonOptions& options) {
  boost::asio::io_context ioc;
  int exit_code = 0;
  auto runtime = Prepare(options, ioc, exit_code);
  if (!runtime) {
    return exit_code;
  }
  auto all = RunToCompletion(ioc, runtime->Accounts().List());
  if (!all) {
    return ReportFailure(all.error());
  }
  auto time_or_dash = [](core::TimePoint t) {
    return t == core::TimePoint{} ? std::string("-") : core::FormatIsoTime(t);
  };
  fmt::print("{:<12} {:<28} {:<11} {:<16} {:<21} {:<21} {:<21} {}\n",
             "ACCOUNT",
             "DOMAIN",
             "KIND",
             "STATUS",
             "TOKEN EXPIRES",
             "LAST REFRESH",
             "NEXT REFRESH",
             "LAST ERROR");
  for (const auto& c : *all) {
    fmt::print("{:<12} {:<28} {:<11} {:<16} {:<21} {:<21} {:<21} {}\n",
               c.account_id,
               c.base_domain,
               core::ToString(core::KindOf(c)),
               core::ToString(c.status),
               core::FormatIsoTime(c.expires_at),
               time_or_dash(c.last_refresh_at),
               time_or_dash(c.next_refresh_at),
               c.last_error.empty() ? std::string("-") : c.last_error);
  }
  if (all->empty()) {
    fmt::print("(no accounts connected yet)\n");
  }
  return 0;
}

int RunAddLongLivedToken(const CommonOptions& options,
                         std::string token,
                         const std::string& domain) {
  if (token == "-") {
    std::getline(std::cin, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) {
      token.pop_back();
    }
  }
  if (token.empty()) {
    fmt::print(stderr,
               "amoauth: no token: pass --token T, or --token - and give it on standard input\n");
    return 2;
  }
  boost::asio::io_context ioc;
  int exit_code = 0;
  auto runtime = Prepare(options, ioc, exit_code);
  if (!runtime) {
    return exit_code;
  }
  auto added = RunToCompletion(ioc, runtime->LongLived().Add(Secret(std::move(token)), domain));
  if (!added) {
    return ReportFailure(added.error());
  }
  fmt::print(
      "Added a long-lived token for account {} ({}), integration {}; it expires at {} and is "
      "never refreshed: amoauth warns 30, 7 and 1 days ahead (event token.expiring).\n",
      added->account_id,
      added->base_domain,
      added->client_id,
      core::FormatIsoTime(added->expires_at));
  return 0;
}

int RunToken(const CommonOptions& options, std::int64_t account_id) {
  boost::asio::io_context ioc;
  int exit_code = 0;
  auto runtime = Prepare(options, ioc, exit_code);
  if (!runtime) {
    return exit_code;
  }
  auto fresh = RunToCompletion(ioc, runtime->Accounts().FreshToken(account_id));
  if (!fresh) {
    return ReportFailure(fresh.error());
  }
  fmt::print("{}\n", fresh->access_token.Reveal());
  return 0;
}

int RunButton(const CommonOptions& options, const core::ButtonOptionPairs& button_options) {
  boost::asio::io_context ioc;
  int exit_code = 0;
  auto runtime = Prepare(options, ioc, exit_code);
  if (!runtime) {
    return exit_code;
  }
  const Config& c = runtime->GetConfig();
  const core::ButtonContext context{
      .platform = c.platform,
      .script_url = c.button_script_url,
      .client_id = c.client_id,
      .redirect_uri = c.redirect_uri,
      .secrets_path = c.secrets_path,
  };
  core::SiteButton button;
  if (auto refused = core::MakeSiteButton(context, button_options, button)) {
    fmt::print(stderr, "amoauth: {}\n", refused->message);
    return 2;
  }
  auto start =
      RunToCompletion(ioc, runtime->Flow().Start(button.mode, service::PurposeOf(button.variant)));
  if (!start) {
    return ReportFailure(start.error());
  }
  button.state = start->state;
  fmt::print("{}\n", core::RenderSiteButton(button));
  fmt::print(stderr,
             "amoauth: the button's state works once, until {}.\n",
             core::FormatIsoTime(start->expires_at));
  return 0;
}

}  // namespace amoauth::app
