// amoauth: the one binary. Commands parse flags here and run in commands.cpp / serve.cpp.
#include <string>
#include <utility>
#include <vector>

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
  cmd.add_option(
      "--database-url", o.database_url, "sqlite://PATH or postgresql://… (AMOAUTH_DATABASE_URL)");
}

/// The simulator's knobs (docs/sandbox.md §4): start values of what GET/POST /sandbox/config
/// read and change at run time. RunSandbox checks the ranges (exit code 2 and a sentence).
void AddSandboxKnobs(CLI::App& cmd, amoauth::app::SandboxOptions& o) {
  const std::string group = "Simulator knobs (change at run time: POST /sandbox/config)";
  cmd.add_option("--code-ttl",
                 o.code_ttl_seconds,
                 "Authorization code lifetime, seconds (1..315360000 = 10 years)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--access-token-ttl",
                 o.access_token_ttl_seconds,
                 "Access token lifetime (expires_in), seconds (1..315360000)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--refresh-token-ttl",
                 o.refresh_token_ttl_seconds,
                 "Refresh token lifetime, seconds (1..315360000); each refresh issues a new one")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--rotation",
                 o.rotation,
                 "Used refresh tokens: strict (amoCRM: dead at once) or grace_until_new_used "
                 "(Kommo: valid until the new one is first used)")
      ->capture_default_str()
      ->group(group);
  cmd.add_flag("--keep-access-on-refresh",
               o.keep_access_on_refresh,
               "A refresh does not revoke the access token issued before it (default: it does)")
      ->group(group);
  cmd.add_option("--api-rate-limit",
                 o.api_rate_limit_rps,
                 "Most API requests per account in any sliding second; more get 429 (0..10000; "
                 "0: no limit)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--api-block-after",
                 o.api_block_after_violations,
                 "This many 429s within --api-violation-window block the account: 403 "
                 "(0..1000000; 0: never block)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--api-violation-window",
                 o.api_violation_window_seconds,
                 "Window the 429s are counted in, seconds (1..86400)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--api-block-seconds",
                 o.api_block_seconds,
                 "How long a block lasts, seconds (1..315360000)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--api-retry-after",
                 o.api_retry_after_seconds,
                 "Retry-After of a 429 (and Kommo's retry_after), seconds (0..86400)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--token-delay-ms",
                 o.token_delay_ms,
                 "The token endpoint waits this long before answering, ms (0..60000): a slow "
                 "amoCRM")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--exchange-hook-delay-ms",
                 o.exchange_hook_delay_ms,
                 "The from_exchange hook goes out this long after exchange_api_key's 202, ms "
                 "(0..600000)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--secrets-delivery",
                 o.secrets_delivery,
                 "External integrations: their keys are POSTed before_redirect (must answer 200) "
                 "or after_redirect (the code first)")
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--secrets-delay-ms",
                 o.secrets_delay_ms,
                 "after_redirect only: the keys are POSTed this long after the code, ms "
                 "(0..600000)")
      ->capture_default_str()
      ->group(group);
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
  sandbox_cmd->add_option("--disconnect-hook-url",
                          sandbox.disconnect_hook_url,
                          "Its disconnect hook (POST /sandbox/accounts/{id}/disconnect calls it)");
  sandbox_cmd->add_option(
      "--ready-file", sandbox.ready_file, "Write the sandbox's addresses here once listening");
  AddSandboxKnobs(*sandbox_cmd, sandbox);

  amoauth::app::CommonOptions exchange_common;
  std::string code;
  std::string code_file;
  std::string referer;
  auto* exchange_cmd = app.add_subcommand(
      "exchange-code",
      "Exchange a code copied from the integration's window (private integrations)");
  AddCommonFlags(*exchange_cmd, exchange_common);
  auto* code_option = exchange_cmd->add_option(
      "--code",
      code,
      "The authorization code on the command line (deprecated: `ps` and the shell history see "
      "it; use --code-file)");
  exchange_cmd
      ->add_option("--code-file",
                   code_file,
                   "Read the authorization code from this file; \"-\" reads it from standard "
                   "input")
      ->excludes(code_option);
  exchange_cmd->add_option("--referer", referer, "The account host, e.g. example.amocrm.ru")
      ->required();

  amoauth::app::CommonOptions api_key_common;
  std::string api_login;
  std::string api_key;
  std::string api_domain;
  auto* api_key_cmd = app.add_subcommand(
      "exchange-api-key",
      "Ask amoCRM to turn a user's legacy API key into an OAuth code (once per 5 minutes per "
      "user); the code reaches `amoauth serve` at the Redirect URI");
  AddCommonFlags(*api_key_cmd, api_key_common);
  api_key_cmd->add_option("--login", api_login, "The user's amoCRM login (e-mail)")->required();
  api_key_cmd->add_option(
      "--api-key", api_key, "The user's API key; omit it to give it on standard input instead");
  api_key_cmd->add_option("--domain", api_domain, "The account host, e.g. example.amocrm.ru")
      ->required();

  amoauth::app::CommonOptions accounts_common;
  auto* accounts_cmd = app.add_subcommand("accounts", "List connected accounts");
  AddCommonFlags(*accounts_cmd, accounts_common);

  amoauth::app::CommonOptions long_lived_common;
  std::string long_lived_token;
  std::string long_lived_domain;
  auto* long_lived_cmd = app.add_subcommand(
      "add-long-lived-token",
      "Store a long-lived token from an integration's Keys tab (never refreshed; warned about "
      "ahead of its expiry)");
  AddCommonFlags(*long_lived_cmd, long_lived_common);
  long_lived_cmd
      ->add_option("--token",
                   long_lived_token,
                   "The token; \"-\" reads it from standard input (keeps it out of the shell "
                   "history)")
      ->required();
  long_lived_cmd->add_option("--domain",
                             long_lived_domain,
                             "The account host, e.g. example.amocrm.ru (the token names only the "
                             "platform); not needed for an account amoauth knows");

  amoauth::app::CommonOptions token_common;
  std::int64_t account_id = 0;
  auto* token_cmd =
      app.add_subcommand("token", "Print a valid access token for an account (for scripts)");
  AddCommonFlags(*token_cmd, token_common);
  token_cmd->add_option("ACCOUNT_ID", account_id, "amoCRM account id")->required();

  amoauth::app::CommonOptions button_common;
  auto* button_cmd = app.add_subcommand(
      "button", "Print the site button's HTML (seed 002) carrying a fresh single-use state");
  AddCommonFlags(*button_cmd, button_common);
  // Flag → option name (core::ApplyButtonOptions); only the flags given are passed on.
  const std::vector<std::pair<std::string, std::string>> button_flags = {
      {"--variant", "existing (default) or metadata (creates an external integration)"},
      {"--title", "Button text"},
      {"--compact", "true: the logo only"},
      {"--class-name", "CSS class(es) of the button"},
      {"--color", "amoCRM: default, blue, violet, green, orange or red"},
      {"--theme", "Kommo: light or dark"},
      {"--locale", "Kommo: en, es, pt or id"},
      {"--error-callback", "Name of a global JS function called when access is denied"},
      {"--mode", "popup (default) or post_message"},
      {"--name", "metadata: the new integration's name"},
      {"--description", "metadata: its description"},
      {"--redirect-uri", "metadata: https Redirect URI (default: amoauth's)"},
      {"--secrets-uri", "metadata: https secrets webhook (default: amoauth's)"},
      {"--logo", "metadata: https logo URL (400x272)"},
      {"--scopes", "metadata: crm,notifications (default both)"},
  };
  std::vector<std::string> button_values(button_flags.size());
  std::vector<CLI::Option*> button_options;
  for (std::size_t i = 0; i < button_flags.size(); ++i) {
    button_options.push_back(
        button_cmd->add_option(button_flags[i].first, button_values[i], button_flags[i].second));
  }

  amoauth::app::CommonOptions migrate_common;
  auto* migrate_cmd = app.add_subcommand(
      "migrate", "Bring the database's schema to this build's version and print it");
  AddCommonFlags(*migrate_cmd, migrate_common);

  amoauth::app::CommonOptions doctor_common;
  auto* doctor_cmd = app.add_subcommand(
      "doctor",
      "Check the configuration, database, master key, API key and amoCRM's hosts; say what is "
      "wrong");
  AddCommonFlags(*doctor_cmd, doctor_common);

  amoauth::app::CommonOptions export_common;
  amoauth::app::ExportOptions export_options;
  auto* export_cmd = app.add_subcommand(
      "export",
      "Write every connection and external integration to one file sealed under the master key "
      "(stop amoauth first)");
  AddCommonFlags(*export_cmd, export_common);
  export_cmd->add_option("--out", export_options.out, "The file to write (mode 0600)")->required();
  export_cmd->add_flag("--allow-pending",
                       export_options.allow_pending,
                       "Export although webhook events or codes are still queued (they are left "
                       "behind)");

  amoauth::app::CommonOptions import_common;
  amoauth::app::ImportOptions import_options;
  auto* import_cmd =
      app.add_subcommand("import", "Write an `amoauth export` file into the configured database");
  AddCommonFlags(*import_cmd, import_common);
  import_cmd->add_option("--in", import_options.in, "The export file")->required();
  import_cmd->add_flag("--replace",
                       import_options.replace,
                       "Overwrite connections the database holds already (default: refuse)");

  amoauth::app::CommonOptions rotate_common;
  amoauth::app::RotateKeyOptions rotate_options;
  auto* rotate_cmd = app.add_subcommand(
      "rotate-key",
      "Re-seal everything AMOAUTH_MASTER_KEY_PREVIOUS sealed under AMOAUTH_MASTER_KEY, while "
      "amoauth runs (docs/operations.md, \"Rotating the master key\")");
  AddCommonFlags(*rotate_cmd, rotate_common);
  rotate_cmd->add_option("--batch-size", rotate_options.batch_size, "Rows of each table per batch")
      ->capture_default_str();
  rotate_cmd->add_option("--max-batches",
                         rotate_options.max_batches,
                         "Stop after this many batches (0: until done); run again to go on");

  CLI11_PARSE(app, argc, argv);

  if (*migrate_cmd) {
    return amoauth::app::RunMigrate(migrate_common);
  }
  if (*doctor_cmd) {
    return amoauth::app::RunDoctor(doctor_common);
  }
  if (*export_cmd) {
    return amoauth::app::RunExport(export_common, export_options);
  }
  if (*import_cmd) {
    return amoauth::app::RunImport(import_common, import_options);
  }
  if (*rotate_cmd) {
    return amoauth::app::RunRotateKey(rotate_common, rotate_options);
  }

  if (*serve_cmd) {
    return amoauth::app::RunServe(serve);
  }
  if (*sandbox_cmd) {
    return amoauth::app::RunSandbox(sandbox);
  }
  if (*exchange_cmd) {
    return amoauth::app::RunExchangeCode(exchange_common, code, code_file, referer);
  }
  if (*api_key_cmd) {
    return amoauth::app::RunExchangeApiKey(api_key_common, api_login, api_key, api_domain);
  }
  if (*accounts_cmd) {
    return amoauth::app::RunAccounts(accounts_common);
  }
  if (*long_lived_cmd) {
    return amoauth::app::RunAddLongLivedToken(
        long_lived_common, long_lived_token, long_lived_domain);
  }
  if (*token_cmd) {
    return amoauth::app::RunToken(token_common, account_id);
  }
  if (*button_cmd) {
    amoauth::core::ButtonOptionPairs given;
    for (std::size_t i = 0; i < button_flags.size(); ++i) {
      if (button_options[i]->count() > 0) {
        given.emplace_back(button_flags[i].first.substr(2), button_values[i]);
      }
    }
    return amoauth::app::RunButton(button_common, given);
  }
  return 2;
}
