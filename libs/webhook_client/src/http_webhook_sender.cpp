#include "amoauth/webhook_client/http_webhook_sender.hpp"

#include <utility>

namespace amoauth::webhook_client {

HttpWebhookSender::HttpWebhookSender(http_client::HttpClient& http, std::string url)
    : http_(http), url_(std::move(url)) {}

service::Task<Result<int>> HttpWebhookSender::Post(std::string body, net::HttpHeaders headers) {
  http_client::ClientRequest request;
  request.method = "POST";
  request.url = url_;
  request.headers = std::move(headers);
  request.headers.Set("Content-Type", "application/json");
  request.body = std::move(body);
  auto response = co_await http_.Send(std::move(request));
  if (!response) {
    co_return response.error();
  }
  co_return response->status;
}

}  // namespace amoauth::webhook_client
