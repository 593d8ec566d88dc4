#include "runtime.hpp"

#include <filesystem>

#include <fmt/format.h>

#include "amoauth/core/referer_policy.hpp"

namespace amoauth::app {

Checked<std::unique_ptr<Runtime>> Runtime::Build(Config config,
                                                 boost::asio::any_io_executor executor) {
  if (!config.master_key) {
    return std::string("no master key: set AMOAUTH_MASTER_KEY");
  }
  std::error_code fs_error;
  std::filesystem::create_directories(config.DataDir(), fs_error);
  if (fs_error) {
    return fmt::format(
        "cannot create the data directory {}: {}", config.DataDir(), fs_error.message());
  }

  std::unique_ptr<Runtime> rt(new Runtime(std::move(config)));
  const Config& c = rt->config_;

  auto store = store_sqlite::SqliteStore::Open({.path = c.database_path}, *c.master_key);
  if (!store) {
    return fmt::format("cannot open the database {} (see the log above)", c.database_path);
  }
  rt->store_ = std::move(*store);

  auto http = http_client::HttpClient::Create(executor,
                                              {
                                                  .connect_to = c.amo_connect_to,
                                                  .ca_file = c.amo_ca_file,
                                                  .timeout = c.amo_timeout,
                                              });
  if (!http) {
    return std::string(
        "cannot set up the HTTPS client: check AMOAUTH_AMO_CA_FILE and "
        "AMOAUTH_AMO_CONNECT_TO");
  }
  rt->http_ = std::move(*http);
  rt->amo_ = std::make_unique<amo_client::AmoHttpClient>(*rt->http_);

  service::Integration integration{
      .platform = c.platform,
      .client_id = c.client_id,
      .client_secret = c.client_secret,
      .redirect_uri = c.redirect_uri,
      .consent_url = c.consent_url,
  };
  service::FlowSettings settings{.refresh_margin = c.refresh_margin};
  rt->flow_ = std::make_unique<service::ConnectFlow>(integration,
                                                     settings,
                                                     core::RefererPolicy(c.allowed_domains),
                                                     *rt->store_,
                                                     *rt->store_,
                                                     *rt->store_,
                                                     *rt->amo_,
                                                     rt->clock_,
                                                     rt->random_);
  rt->accounts_ = std::make_unique<service::AccountService>(
      integration, settings, *rt->store_, *rt->amo_, rt->clock_);
  return rt;
}

}  // namespace amoauth::app
