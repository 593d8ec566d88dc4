#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/core/random.hpp"
#include "amoauth/service/ports.hpp"

namespace amoauth::service {

/// The event types amoauth tells the integrator's backend about (docs/api.md, "Webhooks").
namespace event_type {
inline constexpr std::string_view kAccountConnected = "account.connected";
inline constexpr std::string_view kAccountReauthRequired = "account.reauth_required";
inline constexpr std::string_view kAccountDisconnected = "account.disconnected";
inline constexpr std::string_view kAccountApiBlocked = "account.api_blocked";
/// A signed disconnect hook came, but amoCRM still accepts the account's tokens: a replay.
inline constexpr std::string_view kAccountDisconnectIgnored = "account.disconnect_ignored";
inline constexpr std::string_view kTokenRefreshFailed = "token.refresh_failed";
inline constexpr std::string_view kTokenRefreshRecovered = "token.refresh_recovered";
inline constexpr std::string_view kCodeExchangeFailed = "code.exchange_failed";
/// A long-lived token nears its expiry (30, 7 and 1 days ahead): a person must make a new one.
inline constexpr std::string_view kTokenExpiring = "token.expiring";
/// A refresh succeeded (scheduled, on demand or forced). History only: never a webhook.
inline constexpr std::string_view kTokenRefreshed = "token.refreshed";
}  // namespace event_type

/// Builds the JSON bodies of events. When webhooks are off (no AMOAUTH_WEBHOOK_URL) the events
/// about an account are still built, marked not to be delivered (Event::deliver), for the
/// account's history (AccountHistory): nothing piles up in the outbox. A body never holds a token
/// or a secret. Thread-safe (Random and Clock are).
class EventFactory {
 public:
  EventFactory(bool enabled, const core::Clock& clock, core::Random& random);

  /// {"id","type","created_at","account_id","client_id","base_domain","status","data":{…}}.
  /// `data_json` is a serialized JSON object (or empty for {}). One event, about `connection`'s
  /// row; delivered by webhook when webhooks are on.
  [[nodiscard]] std::vector<Event> Make(std::string_view type,
                                        const core::Connection& connection,
                                        std::string_view data_json = {}) const;

  /// The same envelope for the account's history only, never delivered: what the backend is not
  /// told about (event_type::kTokenRefreshed).
  [[nodiscard]] std::vector<Event> MakeHistory(std::string_view type,
                                               const core::Connection& connection,
                                               std::string_view data_json = {}) const;

  /// The same envelope for an event about an account host with no stored connection (a queued
  /// code that could not be exchanged): account_id and status are null. None when webhooks are
  /// off (there is no account whose history could hold it).
  [[nodiscard]] std::vector<Event> MakeForHost(std::string_view type,
                                               std::string_view base_domain,
                                               std::string_view client_id,
                                               std::string_view data_json = {}) const;

  [[nodiscard]] bool Enabled() const { return enabled_; }

 private:
  [[nodiscard]] Event Build(std::string_view type,
                            boost::json::value account_id,
                            std::string_view client_id,
                            std::string_view base_domain,
                            boost::json::value status,
                            std::string_view data_json) const;
  /// One event about `connection`'s row, for its history; `deliver`: by webhook too.
  [[nodiscard]] std::vector<Event> ForAccount(std::string_view type,
                                              const core::Connection& connection,
                                              std::string_view data_json,
                                              bool deliver) const;

  bool enabled_;
  const core::Clock& clock_;
  core::Random& random_;
};

}  // namespace amoauth::service
