#pragma once

#include <string>

#include "amoauth/http_client/http_client.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::webhook_client {

/// service::WebhookSender over the HTTP(S) client: POSTs events to AMOAUTH_WEBHOOK_URL.
/// The URL may carry a secret path or query, so it is never logged; only its host is.
/// Thread-safe; `http` must outlive it.
class HttpWebhookSender final : public service::WebhookSender {
 public:
  HttpWebhookSender(http_client::HttpClient& http, std::string url);

  service::Task<Result<int>> Post(std::string body, net::HttpHeaders headers) override;

 private:
  http_client::HttpClient& http_;
  std::string url_;
};

}  // namespace amoauth::webhook_client
