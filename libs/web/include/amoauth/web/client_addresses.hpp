#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include "amoauth/net/http_message.hpp"

namespace amoauth::web {

/// Who a request comes from, for per-client limits (service::AttemptLimiter). The peer's
/// address, unless the peer is a trusted reverse proxy (AMOAUTH_TRUSTED_PROXIES): then the
/// right-most address in X-Forwarded-For that is not itself a trusted proxy — the one the
/// nearest trusted proxy saw, which the client cannot forge (what it writes into the header
/// lands further left). Immutable; thread-safe.
class ClientAddresses final {
 public:
  /// No proxy is trusted: the peer's address is the client's.
  ClientAddresses() = default;

  /// `trusted`: IP addresses or CIDR networks ("127.0.0.1", "10.0.0.0/8", "::1",
  /// "fd00::/8"). nullopt when an entry is neither; `bad_entry` (if given) then names it.
  [[nodiscard]] static std::optional<ClientAddresses> Parse(const std::vector<std::string>& trusted,
                                                            std::string* bad_entry = nullptr);

  /// The client's address as text ("203.0.113.7", "2001:db8::1"); the peer's when the peer is
  /// not trusted, or the header is missing or holds no address.
  [[nodiscard]] std::string Of(const net::HttpRequest& request) const;
  /// The key to count a client by: its address, an IPv6 one cut to its /64 (one subscriber
  /// usually holds a whole /64, so a per-address count over full IPv6 addresses counts nothing).
  [[nodiscard]] std::string LimitKeyOf(const net::HttpRequest& request) const;
  [[nodiscard]] static std::string LimitKey(std::string_view address);

  /// True when `address` (text) is a trusted proxy.
  [[nodiscard]] bool IsTrusted(std::string_view address) const;

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace amoauth::web
