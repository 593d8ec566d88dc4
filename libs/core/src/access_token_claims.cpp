#include "amoauth/core/access_token_claims.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>

#include <boost/json.hpp>

#include "amoauth/crypto/base64.hpp"

namespace amoauth::core {
namespace {

namespace json = boost::json;

constexpr std::ptrdiff_t kJwtDots = 2;

// amoCRM sends account_id as a JSON number; a digit string is accepted because other JWT issuers
// (and a future amoCRM) stringify large ids. Zero and negatives are never real account ids.
std::optional<std::int64_t> ReadAccountId(const json::value& v) {
  if (v.is_int64()) {
    const auto id = v.get_int64();
    return id > 0 ? std::optional(id) : std::nullopt;
  }
  if (v.is_uint64()) {
    const auto id = v.get_uint64();
    if (id == 0 || id > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(id);
  }
  if (v.is_string()) {
    const json::string& s = v.get_string();
    if (s.empty() || s.front() < '0' || s.front() > '9') {
      return std::nullopt;  // from_chars would accept a leading '-'
    }
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
    if (ec != std::errc{} || end != s.data() + s.size() || id <= 0) {
      return std::nullopt;
    }
    return id;
  }
  return std::nullopt;
}

// Optional claims of an unexpected type are treated as absent: they are informational, and a
// surprise in one of them must not stop an account from connecting.
std::string ReadString(const json::object& payload, std::string_view name) {
  const json::value* v = payload.if_contains(name);
  if (v == nullptr || !v->is_string()) {
    return {};
  }
  return std::string(v->get_string());
}

std::string ReadStringOrNumber(const json::object& payload, std::string_view name) {
  const json::value* v = payload.if_contains(name);
  if (v == nullptr) {
    return {};
  }
  if (v->is_string()) {
    return std::string(v->get_string());
  }
  if (v->is_int64()) {
    return std::to_string(v->get_int64());
  }
  if (v->is_uint64()) {
    return std::to_string(v->get_uint64());
  }
  return {};
}

// RFC 7519 allows `aud` to be a string or an array of strings; amoCRM uses a string.
std::string ReadAudience(const json::object& payload) {
  const json::value* v = payload.if_contains("aud");
  if (v != nullptr && v->is_array() && !v->get_array().empty() &&
      v->get_array().front().is_string()) {
    return std::string(v->get_array().front().get_string());
  }
  return ReadString(payload, "aud");
}

std::int64_t ReadSeconds(const json::object& payload, std::string_view name) {
  const json::value* v = payload.if_contains(name);
  if (v != nullptr && v->is_int64()) {
    return v->get_int64();
  }
  return 0;
}

std::vector<std::string> ReadScopes(const json::object& payload) {
  std::vector<std::string> scopes;
  const json::value* v = payload.if_contains("scopes");
  if (v == nullptr || !v->is_array()) {
    return scopes;
  }
  for (const json::value& scope : v->get_array()) {
    if (scope.is_string()) {
      scopes.emplace_back(scope.get_string());
    }
  }
  return scopes;
}

}  // namespace

Result<AccessTokenClaims> DecodeAccessTokenClaims(std::string_view jwt) {
  // header.payload.signature; only the payload is read (the signature cannot be checked, §4).
  if (std::count(jwt.begin(), jwt.end(), '.') != kJwtDots) {
    return Fail(Errc::kAmoMalformedResponse);
  }
  const auto first_dot = jwt.find('.');
  const auto second_dot = jwt.find('.', first_dot + 1);
  const std::string_view payload_part = jwt.substr(first_dot + 1, second_dot - first_dot - 1);
  if (payload_part.empty()) {
    return Fail(Errc::kAmoMalformedResponse);
  }
  const auto payload_text = crypto::Base64UrlDecode(payload_part);
  if (!payload_text) {
    return Fail(Errc::kAmoMalformedResponse);
  }
  boost::system::error_code ec;
  const json::value payload_value = json::parse(*payload_text, ec);
  if (ec || !payload_value.is_object()) {
    return Fail(Errc::kAmoMalformedResponse);
  }
  const json::object& payload = payload_value.get_object();

  const json::value* account_id = payload.if_contains("account_id");
  const auto parsed_account_id = account_id == nullptr ? std::nullopt : ReadAccountId(*account_id);
  if (!parsed_account_id) {
    return Fail(Errc::kAmoMalformedResponse);
  }

  AccessTokenClaims claims;
  claims.account_id = *parsed_account_id;
  claims.client_id = ReadAudience(payload);
  claims.user_id = ReadStringOrNumber(payload, "sub");
  claims.base_domain = ReadString(payload, "base_domain");
  claims.api_domain = ReadString(payload, "api_domain");
  claims.expires_at = ReadSeconds(payload, "exp");
  claims.scopes = ReadScopes(payload);
  return claims;
}

}  // namespace amoauth::core
