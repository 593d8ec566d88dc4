#include "amoauth/core/connection.hpp"

namespace amoauth::core {

std::string_view ToString(ConnectionStatus s) {
  switch (s) {
    case ConnectionStatus::kActive:
      return "active";
    case ConnectionStatus::kReauthRequired:
      return "reauth_required";
    case ConnectionStatus::kDisconnected:
      return "disconnected";
  }
  return "unknown";
}

std::optional<ConnectionStatus> ParseConnectionStatus(std::string_view s) {
  if (s == "active") {
    return ConnectionStatus::kActive;
  }
  if (s == "reauth_required") {
    return ConnectionStatus::kReauthRequired;
  }
  if (s == "disconnected") {
    return ConnectionStatus::kDisconnected;
  }
  return std::nullopt;
}

std::string_view ToString(ConnectionKind k) {
  switch (k) {
    case ConnectionKind::kOAuth:
      return "oauth";
    case ConnectionKind::kLongLived:
      return "long_lived";
  }
  return "unknown";
}

ConnectionKind KindOf(const Connection& c) {
  return c.refresh_token.Empty() && c.last_refresh_at == TimePoint{} ? ConnectionKind::kLongLived
                                                                     : ConnectionKind::kOAuth;
}

}  // namespace amoauth::core
