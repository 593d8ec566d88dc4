#include "amoauth/service/events.hpp"

#include <array>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "amoauth/core/iso_time.hpp"

namespace amoauth::service {

namespace json = boost::json;

EventFactory::EventFactory(bool enabled, const core::Clock& clock, core::Random& random)
    : enabled_(enabled), clock_(clock), random_(random) {}

std::vector<Event> EventFactory::Make(std::string_view type,
                                      const core::Connection& connection,
                                      std::string_view data_json) const {
  // With webhooks off the event is still built, for the account's history only.
  return ForAccount(type, connection, data_json, enabled_);
}

std::vector<Event> EventFactory::MakeHistory(std::string_view type,
                                             const core::Connection& connection,
                                             std::string_view data_json) const {
  return ForAccount(type, connection, data_json, false);
}

std::vector<Event> EventFactory::MakeForHost(std::string_view type,
                                             std::string_view base_domain,
                                             std::string_view client_id,
                                             std::string_view data_json) const {
  if (!enabled_) {
    return {};  // no account to keep a history for, and nobody to tell
  }
  return {Build(type, nullptr, client_id, base_domain, nullptr, data_json)};
}

std::vector<Event> EventFactory::ForAccount(std::string_view type,
                                            const core::Connection& connection,
                                            std::string_view data_json,
                                            bool deliver) const {
  Event event = Build(type,
                      connection.account_id,
                      connection.client_id,
                      connection.base_domain,
                      json::value(core::ToString(connection.status)),
                      data_json);
  event.account_id = connection.account_id;
  event.client_id = connection.client_id;
  event.deliver = deliver;
  return {std::move(event)};
}

Event EventFactory::Build(std::string_view type,
                          json::value account_id,
                          std::string_view client_id,
                          std::string_view base_domain,
                          json::value status,
                          std::string_view data_json) const {
  // 128 random bits: receivers deduplicate at-least-once deliveries by this id.
  std::array<std::uint8_t, 16> bytes{};
  random_.Fill(bytes);
  std::string id = "evt_";
  for (std::uint8_t b : bytes) {
    id += fmt::format("{:02x}", b);
  }
  json::value data = json::object{};
  if (!data_json.empty()) {
    boost::system::error_code ec;
    json::value parsed = json::parse(data_json, ec);
    if (!ec && parsed.is_object()) {
      data = std::move(parsed);
    }
  }
  json::object body{
      {"id", id},
      {"type", type},
      {"created_at", core::FormatIsoTime(clock_.Now())},
      {"account_id", std::move(account_id)},
      {"client_id", client_id},
      {"base_domain", base_domain},
      {"status", std::move(status)},
      {"data", std::move(data)},
  };
  return Event{.type = std::string(type), .body = json::serialize(body)};
}

}  // namespace amoauth::service
