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
  if (!enabled_) {
    return {};
  }
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
      {"account_id", connection.account_id},
      {"client_id", connection.client_id},
      {"base_domain", connection.base_domain},
      {"status", core::ToString(connection.status)},
      {"data", std::move(data)},
  };
  return {Event{std::string(type), json::serialize(body)}};
}

}  // namespace amoauth::service
