#include "amoauth/web/client_addresses.hpp"

#include <algorithm>

#include <boost/asio/ip/address.hpp>

namespace amoauth::web {
namespace {

namespace ip = boost::asio::ip;

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

/// An address as text → the address, a v4-mapped IPv6 one as IPv4 ("::ffff:10.0.0.1").
std::optional<ip::address> ParseAddress(std::string_view text) {
  boost::system::error_code ec;
  ip::address address = ip::make_address(Trim(text), ec);
  if (ec) {
    return std::nullopt;
  }
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = ip::make_address_v4(ip::v4_mapped, address.to_v6());
  }
  return address;
}

bool IsForwardedFor(std::string_view name) {
  constexpr std::string_view kName = "x-forwarded-for";
  return name.size() == kName.size() &&
         std::equal(name.begin(), name.end(), kName.begin(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
         });
}

}  // namespace

std::optional<ClientAddresses> ClientAddresses::Parse(const std::vector<std::string>& trusted,
                                                      std::string* bad_entry) {
  ClientAddresses out;
  for (const std::string& entry : trusted) {
    const auto slash = entry.find('/');
    boost::system::error_code ec;
    if (slash == std::string::npos) {
      if (auto address = ParseAddress(entry)) {
        if (address->is_v4()) {
          out.v4_.emplace_back(address->to_v4(), 32);
        } else {
          out.v6_.emplace_back(address->to_v6(), 128);
        }
        continue;
      }
    } else if (entry.find(':') == std::string::npos) {
      auto network = ip::make_network_v4(entry, ec);
      if (!ec) {
        out.v4_.push_back(network.canonical());
        continue;
      }
    } else {
      auto network = ip::make_network_v6(entry, ec);
      if (!ec) {
        out.v6_.push_back(network.canonical());
        continue;
      }
    }
    if (bad_entry != nullptr) {
      *bad_entry = entry;
    }
    return std::nullopt;
  }
  return out;
}

bool ClientAddresses::IsTrusted(std::string_view text) const {
  const auto address = ParseAddress(text);
  if (!address) {
    return false;
  }
  if (address->is_v4()) {
    return std::any_of(v4_.begin(), v4_.end(), [&](const ip::network_v4& network) {
      return ip::network_v4(address->to_v4(), network.prefix_length()).canonical() == network;
    });
  }
  return std::any_of(v6_.begin(), v6_.end(), [&](const ip::network_v6& network) {
    return ip::network_v6(address->to_v6(), network.prefix_length()).canonical() == network;
  });
}

std::string ClientAddresses::Of(const net::HttpRequest& request) const {
  std::string client = request.remote_address;
  if ((v4_.empty() && v6_.empty()) || !IsTrusted(client)) {
    return client;
  }
  // Every X-Forwarded-For field, in order, is one list.
  std::string forwarded;
  for (const auto& field : request.headers.All()) {
    if (IsForwardedFor(field.name)) {
      if (!forwarded.empty()) {
        forwarded += ',';
      }
      forwarded += field.value;
    }
  }
  // Right to left: past the trusted proxies, the first address is the client.
  std::string_view rest = forwarded;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    const std::string_view hop =
        Trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    const auto address = ParseAddress(hop);
    if (!address) {
      break;  // not written by a proxy we trust: keep the last address we could vouch for
    }
    client = address->to_string();
    if (!IsTrusted(client)) {
      break;
    }
  }
  return client;
}

std::string ClientAddresses::LimitKey(std::string_view text) {
  // Every request asks (RejectUnauthorized): an IPv4 address, as the server writes the peer's,
  // is its own key. The text inet_pton accepts as IPv4 is the canonical dotted quad (no leading
  // zeros, no spaces), so it is what to_string() would write back: no second parse as IPv6 and
  // no formatting.
  if (text.find(':') == std::string_view::npos) {
    boost::system::error_code ec;
    ip::make_address_v4(std::string(text).c_str(), ec);
    if (!ec) {
      return std::string(text);
    }
  }
  const auto address = ParseAddress(text);
  if (!address) {
    return std::string(text);
  }
  if (address->is_v4()) {
    return address->to_string();
  }
  return ip::network_v6(address->to_v6(), 64).canonical().to_string();
}

std::string ClientAddresses::LimitKeyOf(const net::HttpRequest& request) const {
  return LimitKey(Of(request));
}

}  // namespace amoauth::web
