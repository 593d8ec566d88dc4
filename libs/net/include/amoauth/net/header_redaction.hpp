#pragma once

#include <string>
#include <string_view>

#include "amoauth/net/http_message.hpp"

namespace amoauth::net {

/// True for the header fields that carry credentials — Authorization, Proxy-Authorization,
/// Cookie, Set-Cookie, X-Api-Key — compared case-insensitively.
[[nodiscard]] bool IsCredentialHeader(std::string_view name);

/// What a log may show of a header field: the value itself, or for a credential header only its
/// scheme ("Bearer ***" for "Bearer abc…", "***" when there is no scheme). The one place that
/// decides it: any code that logs request or response headers (access log, http_client debug,
/// proxy) goes through RedactedHeaderValue or FormatHeadersForLog (docs/security.md, threat 6).
[[nodiscard]] std::string RedactedHeaderValue(std::string_view name, std::string_view value);

/// "Name: value" lines joined by "; ", each value through RedactedHeaderValue.
[[nodiscard]] std::string FormatHeadersForLog(const HttpHeaders& headers);

}  // namespace amoauth::net
