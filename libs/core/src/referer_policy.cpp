#include "amoauth/core/referer_policy.hpp"

#include <algorithm>
#include <utility>

namespace amoauth::core {
namespace {

constexpr std::size_t kMaxLabelChars = 63;
constexpr std::size_t kMaxHostChars = 253;

char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) { return AsciiLower(c); });
  return out;
}

// An allow-list over the whole host, rather than a deny-list of dangerous characters: anything a
// URL parser could read as scheme, userinfo, port, path, escape or separator is simply not here.
bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool IsDnsLabel(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabelChars) {
    return false;
  }
  if (label.front() == '-' || label.back() == '-') {
    return false;
  }
  return std::all_of(label.begin(), label.end(), [](char c) { return c != '.' && IsHostChar(c); });
}

}  // namespace

RefererPolicy::RefererPolicy(std::vector<std::string> allowed_domains)
    : allowed_(std::move(allowed_domains)) {
  for (auto& domain : allowed_) {
    domain = AsciiLower(domain);
  }
}

Result<AccountHost> RefererPolicy::Check(std::string_view referer) const {
  if (referer.empty() || referer.size() > kMaxHostChars) {
    return Fail(Errc::kRefererNotAllowed);
  }
  std::string host = AsciiLower(referer);
  if (!std::all_of(host.begin(), host.end(), IsHostChar)) {
    return Fail(Errc::kRefererNotAllowed);
  }
  const auto dot = host.find('.');
  if (dot == std::string::npos) {
    return Fail(Errc::kRefererNotAllowed);
  }
  const std::string_view subdomain = std::string_view(host).substr(0, dot);
  const std::string_view domain = std::string_view(host).substr(dot + 1);
  // An empty domain can only come from a trailing dot ("sub."), never from a real allow-list entry.
  if (!IsDnsLabel(subdomain) || domain.empty()) {
    return Fail(Errc::kRefererNotAllowed);
  }
  // Exact match on everything after the first label: "a.b.amocrm.ru" and "amocrm.ru.evil.example"
  // both fail here, and a trailing dot does too.
  const auto allowed = std::find(allowed_.begin(), allowed_.end(), domain);
  if (allowed == allowed_.end()) {
    return Fail(Errc::kRefererNotAllowed);
  }
  AccountHost result;
  result.subdomain = std::string(subdomain);
  result.domain = *allowed;
  result.host = std::move(host);
  return result;
}

}  // namespace amoauth::core
