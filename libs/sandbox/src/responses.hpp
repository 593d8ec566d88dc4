#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "amoauth/net/http_message.hpp"
#include "sandbox_state.hpp"

/// Response shapes the simulated amoCRM uses in more than one place.
namespace amoauth::sandbox {

/// `body` serialized, with the given Content-Type.
[[nodiscard]] net::HttpResponse JsonResponse(int status,
                                             const boost::json::value& body,
                                             std::string_view content_type = "application/json");
[[nodiscard]] net::HttpResponse HtmlResponse(int status, std::string body);
/// 302 with Location.
[[nodiscard]] net::HttpResponse RedirectResponse(std::string_view location);

/// The token endpoint's refusal (protocol §3.3): {"hint","title","type","status","detail"},
/// served as application/json.
[[nodiscard]] net::HttpResponse OAuthProblemResponse(const OAuthError& error);

/// application/problem+json {"title","type":"https://httpstatus.es/{status}","status","detail"}.
[[nodiscard]] net::HttpResponse ProblemResponse(int status,
                                                std::string_view title,
                                                std::string_view detail);

/// The API's 401 (protocol §7.4, amoCRM wording).
[[nodiscard]] net::HttpResponse UnauthorizedResponse();

/// The API's 429 (protocol §7.4) as application/problem+json, with a Retry-After header on both
/// flavors; Kommo's body also carries `retry_after` (K-HTTP), amoCRM's does not (UNCONFIRMED).
[[nodiscard]] net::HttpResponse TooManyRequestsResponse(Flavor flavor,
                                                        std::chrono::seconds retry_after);

/// The page nginx serves for `status` ("<h1>403 Forbidden</h1>…<center>nginx</center>"), as
/// text/html: what a blocked account gets (protocol §7.4, §9.7) and what a faulted token endpoint
/// answers.
[[nodiscard]] net::HttpResponse NginxErrorResponse(int status);

/// 405 with an Allow header.
[[nodiscard]] net::HttpResponse MethodNotAllowedResponse(std::string_view allow);

}  // namespace amoauth::sandbox
