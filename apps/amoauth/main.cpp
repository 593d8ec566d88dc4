// amoauth: the one binary. Commands parse flags here and run in commands.cpp / serve.cpp.
#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace {

void AddCommonFlags(CLI::App& cmd, amoauth::app::CommonOptions& o) {
  cmd.add_option("--env-file", o.env_file, "File of KEY=VALUE settings read first")
      ->capture_default_str();
  cmd.add_flag("--sandbox",
               o.sandbox,
               "Use the built-in amoCRM sandbox (serve runs it; other commands use the one a "
               "running `serve --sandbox` started)");
  cmd.add_option("--listen", o.listen, "HOST:PORT to listen on (AMOAUTH_LISTEN)");
  cmd.add_option("--database-url", o.database_url, "sqlite://PATH (AMOAUTH_DATABASE_URL)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"amoauth — keeps amoCRM/Kommo OAuth tokens safe and fresh for your backend"};
  app.require_subcommand(1);

  amoauth::app::ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "Run the service (pages, callback, internal API)");
  AddCommonFlags(*serve_cmd, serve.common);
  serve_cmd->add_option("--ready-file", serve.ready_file, "Write {\"url\": …} here once listening");

  amoauth::app::SandboxOptions sandbox;
  auto* sandbox_cmd = app.add_subcommand("sandbox", "Run the simulated amoCRM on its own");
  sandbox_cmd->add_option("--http-listen", sandbox.http_listen, "Consent page and control API")
      ->capture_default_str();
  sandbox_cmd->add_option("--tls-listen", sandbox.tls_listen, "amoCRM hosts over TLS")
      ->capture_default_str();
  sandbox_cmd->add_option("--state-dir", sandbox.state_dir, "Where the CA certificate is written")
      ->capture_default_str();
  sandbox_cmd->add_option(
      "--redirect-uri", sandbox.redirect_uri, "Register an integration with this Redirect URI");
  sandbox_cmd->add_option("--client-id", sandbox.client_id, "Its client id (default: generated)");
  sandbox_cmd->add_option(
      "--client-secret", sandbox.client_secret, "Its secret (default: generated)");
  sandbox_cmd->add_option(
      "--ready-file", sandbox.ready_file, "Write the sandbox's addresses here once listening");

  amoauth::app::CommonOptions exchange_common;
  std::string code;
  std::string referer;
  auto* exchange_cmd = app.add_subcommand(
      "exchange-code",
      "Exchange a code copied from the integration's window (private integrations)");
  AddCommonFlags(*exchange_cmd, exchange_common);
  exchange_cmd->add_option("--code", code, "The authorization code")->required();
  exchange_cmd->add_option("--referer", referer, "The account host, e.g. example.amocrm.ru")
      ->required();

  amoauth::app::CommonOptions accounts_common;
  auto* accounts_cmd = app.add_subcommand("accounts", "List connected accounts");
  AddCommonFlags(*accounts_cmd, accounts_common);

  amoauth::app::CommonOptions token_common;
  std::int64_t account_id = 0;
  auto* token_cmd =
      app.add_subcommand("token", "Print a valid access token for an account (for scripts)");
  AddCommonFlags(*token_cmd, token_common);
  token_cmd->add_option("ACCOUNT_ID", account_id, "amoCRM account id")->required();

  CLI11_PARSE(app, argc, argv);

  if (*serve_cmd) {
    return amoauth::app::RunServe(serve);
  }
  if (*sandbox_cmd) {
    return amoauth::app::RunSandbox(sandbox);
  }
  if (*exchange_cmd) {
    return amoauth::app::RunExchangeCode(exchange_common, code, referer);
  }
  if (*accounts_cmd) {
    return amoauth::app::RunAccounts(accounts_common);
  }
  if (*token_cmd) {
    return amoauth::app::RunToken(token_common, account_id);
  }
  return 2;
}
