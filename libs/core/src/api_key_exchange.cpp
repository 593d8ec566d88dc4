#include "amoauth/core/api_key_exchange.hpp"

#include <algorithm>
#include <cctype>

#include <boost/json.hpp>

#include "amoauth/crypto/digest.hpp"

namespace amoauth::core {

std::string SerializeApiKeyExchange(const ApiKeyExchangeRequest& r) {
  boost::json::object body{
      {"login", r.login},
      {"api_key", r.api_key.Reveal()},
      {"client_uuid", r.client_uuid},
      {"client_secret", r.client_secret.Reveal()},
  };
  if (!r.state.empty()) {
    body["state"] = r.state;
  }
  return boost::json::serialize(body);
}

Errc ClassifyApiKeyExchangeStatus(int status) {
  if (status == 400) {
    return Errc::kAmoApiKeyRejected;
  }
  if (status == 403) {
    return Errc::kAmoApiKeyForbidden;
  }
  if (status == 429) {
    return Errc::kAmoApiKeyTooOften;
  }
  if (status >= 500 && status <= 599) {
    return Errc::kAmoServerError;
  }
  return Errc::kAmoRejected;
}

std::string ApiKeyExchangeSubject(std::string_view login, std::string_view client_id) {
  std::string folded(login);
  std::transform(folded.begin(), folded.end(), folded.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  // The newline cannot occur in a client id or a login, so the pair is unambiguous.
  return crypto::Sha256Hex("exchange_api_key\n" + folded + "\n" + std::string(client_id));
}

}  // namespace amoauth::core
