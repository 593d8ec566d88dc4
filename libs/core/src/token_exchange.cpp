#include "amoauth/core/token_exchange.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string>

#include <boost/json.hpp>

namespace amoauth::core {
namespace {

namespace json = boost::json;

// Enough for any hint or title amoCRM writes, small enough that a hostile or broken body
// cannot flood a log line.
constexpr std::size_t kMaxFieldBytes = 300;
// nginx error pages put <title> in the first few hundred bytes; don't fold a huge body to find it.
constexpr std::size_t kHtmlTitleScanBytes = 4096;

std::optional<std::int64_t> ReadInteger(const json::value& v) {
  if (v.is_int64()) {
    return v.get_int64();
  }
  if (v.is_uint64() &&
      v.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  return std::nullopt;
}

std::optional<std::string> ReadNonEmptyString(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string() || v->get_string().empty()) {
    return std::nullopt;
  }
  return std::string(v->get_string());
}

// --- failure classification -------------------------------------------------------------------

// Folds ASCII and the Russian alphabet (UTF-8) to lower case: titles and details arrive in Russian
// ("Некорректный клиент"), hints in English, and either may change capitalisation.
std::string FoldCase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
      continue;
    }
    if (c == 0xD0 && i + 1 < s.size()) {
      const auto next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x90 && next <= 0x9F) {  // А..П -> а..п
        out += static_cast<char>(0xD0);
        out += static_cast<char>(next + 0x20);
        ++i;
        continue;
      }
      if (next >= 0xA0 && next <= 0xAF) {  // Р..Я -> р..я
        out += static_cast<char>(0xD1);
        out += static_cast<char>(next - 0x20);
        ++i;
        continue;
      }
      if (next == 0x81) {  // Ё -> ё
        out += static_cast<char>(0xD1);
        out += static_cast<char>(0x91);
        ++i;
        continue;
      }
    }
    out += static_cast<char>(c);
  }
  return out;
}

// Hints quote parameter names in backticks ("Check the `client_id` parameter"); dropping quotes
// and collapsing whitespace lets small rewordings of the punctuation still match.
std::string NormalizeForMatch(std::string_view s) {
  std::string folded = FoldCase(s);
  std::string out;
  out.reserve(folded.size());
  bool pending_space = false;
  for (const char c : folded) {
    if (c == '`' || c == '"' || c == '\'') {
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    out += c;
  }
  return out;
}

struct HintRule {
  std::string_view needle;  // normalized (see NormalizeForMatch)
  Errc code;
};

// league/oauth2-server hint strings (protocol §3.3). Each needle is a full phrase, so no two
// overlap ("authorization code has expired" does not contain "token has expired").
constexpr std::array kHintRules = {
    HintRule{"authorization code has expired", Errc::kAmoCodeExpired},
    HintRule{"authorization code has been revoked", Errc::kAmoCodeRevoked},
    HintRule{"cannot decrypt the authorization code", Errc::kAmoCodeInvalid},
    HintRule{"redirect uri is not associated with client", Errc::kAmoRedirectUriMismatch},
    HintRule{"check the client_id parameter", Errc::kAmoInvalidClient},
    HintRule{"check the client_secret parameter", Errc::kAmoInvalidClient},
    HintRule{"invalid account", Errc::kAmoInvalidAccount},
    HintRule{"token has been revoked", Errc::kAmoTokenRevoked},
    HintRule{"token is not linked to client", Errc::kAmoTokenNotLinked},
    HintRule{"token has expired", Errc::kAmoTokenExpired},
    // A refresh token that does not decrypt is as dead as a revoked one: only a new consent helps.
    HintRule{"invalid refresh token", Errc::kAmoTokenRevoked},
    HintRule{"cannot decrypt the refresh token", Errc::kAmoTokenRevoked},
};

std::optional<Errc> ClassifyHint(std::string_view hint) {
  if (hint.empty()) {
    return std::nullopt;
  }
  const std::string normalized = NormalizeForMatch(hint);
  for (const HintRule& rule : kHintRules) {
    if (normalized.find(rule.needle) != std::string::npos) {
      return rule.code;
    }
  }
  return std::nullopt;
}

// 401 "Некорректный клиент" / "Авторизация клиента не прошла" (amocrm-api-php#235) carries no
// hint; League's own wording is "Client authentication failed".
bool MentionsClient(std::string_view text) {
  const std::string normalized = NormalizeForMatch(text);
  return normalized.find("клиент") != std::string::npos ||
         normalized.find("client") != std::string::npos;
}

bool IsUtf8Continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U;
}

// Keeps log lines single-line and bounded: control characters become spaces, and the cut never
// splits a UTF-8 sequence.
std::string Sanitize(std::string_view s) {
  if (s.size() > kMaxFieldBytes) {
    std::size_t cut = kMaxFieldBytes;
    while (cut > 0 && IsUtf8Continuation(s[cut])) {
      --cut;
    }
    s = s.substr(0, cut);
  }
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      c = ' ';
    }
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// The 403 block page is nginx HTML; its <title> ("403 Forbidden") is the useful part for a log.
std::string_view HtmlTitle(std::string_view body) {
  const std::string folded = FoldCase(body.substr(0, std::min(body.size(), kHtmlTitleScanBytes)));
  const auto open = folded.find("<title>");
  if (open == std::string::npos) {
    return {};
  }
  const auto start = open + std::string_view("<title>").size();
  const auto close = folded.find("</title>", start);
  if (close == std::string::npos) {
    return {};
  }
  // FoldCase keeps byte offsets, so positions in `folded` are positions in `body`.
  return Trim(body.substr(start, close - start));
}

std::string_view StringField(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) {
    return {};
  }
  return v->get_string();
}

// The fields of an error body, before truncation: classification sees the whole text.
struct FailureText {
  std::string_view hint;
  std::string_view title;
  std::string_view detail;
};

Errc ClassifyStatus(int status, const FailureText& text) {
  if (status == 403) {
    return Errc::kAmoBlocked;
  }
  if (status == 429) {
    return Errc::kAmoRateLimited;
  }
  if (status >= 500 && status <= 599) {
    return Errc::kAmoServerError;
  }
  if (status < 400 || status > 499) {
    // 1xx/3xx or a nonsense status: not an answer the protocol describes.
    return Errc::kAmoMalformedResponse;
  }
  // The table pairs hints with 400 and 401 but observed statuses are inconsistent (code expiry
  // seen as 401, garbage refresh tokens as 400 or 401), so the hint decides for any 4xx.
  if (const auto by_hint = ClassifyHint(text.hint)) {
    return *by_hint;
  }
  if (status == 401) {
    if (FoldCase(text.title).find("некорректный клиент") != std::string::npos ||
        (text.hint.empty() && MentionsClient(text.detail))) {
      return Errc::kAmoInvalidClient;
    }
    return Errc::kAmoUnauthorized;
  }
  if (status == 404) {
    return Errc::kAmoNotFound;
  }
  return Errc::kAmoRejected;
}

}  // namespace

std::string SerializeGrant(const AuthorizationCodeGrant& g) {
  json::object o;
  o["client_id"] = g.client_id;
  o["client_secret"] = g.client_secret.Reveal();
  o["grant_type"] = "authorization_code";
  o["code"] = g.code.Reveal();
  o["redirect_uri"] = g.redirect_uri;
  return json::serialize(o);
}

std::string SerializeGrant(const RefreshTokenGrant& g) {
  json::object o;
  o["client_id"] = g.client_id;
  o["client_secret"] = g.client_secret.Reveal();
  o["grant_type"] = "refresh_token";
  o["refresh_token"] = g.refresh_token.Reveal();
  o["redirect_uri"] = g.redirect_uri;
  return json::serialize(o);
}

Result<TokenGrant> ParseTokenGrant(std::string_view body) {
  boost::system::error_code ec;
  const json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) {
    return Fail(Errc::kAmoMalformedResponse);
  }
  const json::object& o = value.get_object();

  auto access_token = ReadNonEmptyString(o, "access_token");
  auto refresh_token = ReadNonEmptyString(o, "refresh_token");
  const json::value* expires_in = o.if_contains("expires_in");
  const auto expires_in_seconds = expires_in == nullptr ? std::nullopt : ReadInteger(*expires_in);
  if (!access_token || !refresh_token || !expires_in_seconds || *expires_in_seconds <= 0) {
    return Fail(Errc::kAmoMalformedResponse);
  }

  TokenGrant grant;
  grant.access_token = Secret(std::move(*access_token));
  grant.refresh_token = Secret(std::move(*refresh_token));
  grant.expires_in = *expires_in_seconds;
  grant.token_type = std::string(StringField(o, "token_type"));
  // server_time is informational (skew estimate, Kommo only); a malformed one is ignored rather
  // than failing a grant whose tokens are fine.
  if (const json::value* server_time = o.if_contains("server_time")) {
    grant.server_time = ReadInteger(*server_time);
  }
  return grant;
}

Result<AccountDomain> ParseAccountDomain(std::string_view body) {
  boost::system::error_code ec;
  const json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) {
    return Fail(Errc::kAmoMalformedResponse);
  }
  const json::object& o = value.get_object();
  const json::value* id = o.if_contains("id");
  const auto id_value = id == nullptr ? std::nullopt : ReadInteger(*id);
  auto domain = ReadNonEmptyString(o, "domain");
  if (!id_value || *id_value <= 0 || !domain) {
    return Fail(Errc::kAmoMalformedResponse);
  }
  AccountDomain result;
  result.id = *id_value;
  result.domain = std::move(*domain);
  result.subdomain = std::string(StringField(o, "subdomain"));
  return result;
}

AmoFailure ClassifyAmoFailure(int status, std::string_view body) {
  FailureText text;
  boost::system::error_code ec;
  const json::value value = json::parse(body, ec);  // `text` may view into it
  if (!ec && value.is_object()) {
    const json::object& o = value.get_object();
    text.hint = Trim(StringField(o, "hint"));
    text.title = Trim(StringField(o, "title"));
    text.detail = Trim(StringField(o, "detail"));
  } else if (const auto title = HtmlTitle(body); !title.empty()) {
    text.title = title;
  } else if (ec) {
    // Plain text (or truncated JSON): the start of it is the best explanation we have.
    text.detail = Trim(body);
  }

  AmoFailure failure;
  failure.status = status;
  failure.code = ClassifyStatus(status, text);
  failure.hint = Sanitize(text.hint);
  failure.title = Sanitize(text.title);
  failure.detail = Sanitize(text.detail);
  return failure;
}

}  // namespace amoauth::core
