#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/object.hpp>

#include "amoauth/net/http_message.hpp"
#include "sandbox_state.hpp"

/// Scripted failures of amoCRM's endpoints (POST /sandbox/faults, docs/sandbox.md §3): the
/// control API's JSON, and the answers a fault gives.
namespace amoauth::sandbox {

using FaultSet = std::array<std::optional<Fault>, kFaultTargets>;

/// "token_endpoint", "api", "subdomain", "exchange_api_key".
[[nodiscard]] std::string_view FaultTargetName(FaultTarget target);

/// POST /sandbox/faults's body: an object of targets, each one fault spec. All or nothing: the
/// faults, or what is wrong in words.
[[nodiscard]] std::variant<FaultSet, std::string> ParseFaults(std::string_view body);

/// {"token_endpoint": {...} | null, "api": …, "subdomain": …, "exchange_api_key": …}.
[[nodiscard]] boost::json::object FaultsJson(const FaultSet& faults);

/// The answer of a fault of any kind but kSlowBody (which wraps the real answer, see
/// SlowDown): a status page, a malformed 200, or a response that drops the connection. kStall's
/// wait is the caller's (it suspends). Marked with X-Sandbox-Fault.
[[nodiscard]] net::HttpResponse FaultAnswer(const Fault& fault,
                                            FaultTarget target,
                                            Flavor flavor,
                                            std::chrono::seconds default_retry_after);

/// kSlowBody: `response` sent as a slow body.
void SlowDown(const Fault& fault, net::HttpResponse& response);

}  // namespace amoauth::sandbox
