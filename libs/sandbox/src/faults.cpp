// Scripted failures of amoCRM's endpoints: POST /sandbox/faults's JSON and the faulted answers.

#include "faults.hpp"

#include <cstdint>
#include <utility>

#include <boost/json/parse.hpp>

#include "responses.hpp"

namespace amoauth::sandbox {
namespace {

constexpr std::array<std::string_view, kFaultTargets> kTargetNames = {
    "token_endpoint", "api", "subdomain", "exchange_api_key"};

constexpr std::string_view kKinds =
    R"(exactly one of "status" (400..599), "close": true, "malformed" ("truncated", )"
    R"("wrong_types", "html"), "stall_ms" (1..60000), "slow_body_ms" (1..10000))";

/// An integral JSON number (1 and 1.0 alike); nullopt for anything else.
std::optional<std::int64_t> Integer(const boost::json::value& v) {
  if (v.is_int64()) {
    return v.get_int64();
  }
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (d >= -9.0e15 && d <= 9.0e15 && static_cast<double>(static_cast<std::int64_t>(d)) == d) {
      return static_cast<std::int64_t>(d);
    }
  }
  return std::nullopt;
}

std::string_view MalformedName(MalformedBody body) {
  switch (body) {
    case MalformedBody::kTruncated:
      return "truncated";
    case MalformedBody::kWrongTypes:
      return "wrong_types";
    case MalformedBody::kHtml:
      return "html";
  }
  return "truncated";
}

/// One target's spec, or what is wrong with it.
std::variant<Fault, std::string> ParseFault(std::string_view target,
                                            const boost::json::value& value) {
  const std::string where(target);
  if (!value.is_object()) {
    return where + " must be an object";
  }
  Fault fault;
  int kinds = 0;
  for (const auto& [key, v] : value.get_object()) {
    const auto number = Integer(v);
    if (key == "status") {
      if (!number || *number < 400 || *number > 599) {
        return where + ".status must be an integer from 400 to 599";
      }
      fault.kind = FaultKind::kStatus;
      fault.status = static_cast<int>(*number);
      ++kinds;
    } else if (key == "close") {
      if (!v.is_bool() || !v.get_bool()) {
        return where + ".close must be true";
      }
      fault.kind = FaultKind::kClose;
      ++kinds;
    } else if (key == "malformed") {
      const std::string_view name = v.is_string() ? std::string_view(v.get_string()) : "";
      if (name == "truncated") {
        fault.malformed = MalformedBody::kTruncated;
      } else if (name == "wrong_types") {
        fault.malformed = MalformedBody::kWrongTypes;
      } else if (name == "html") {
        fault.malformed = MalformedBody::kHtml;
      } else {
        return where + R"(.malformed must be "truncated", "wrong_types" or "html")";
      }
      fault.kind = FaultKind::kMalformed;
      ++kinds;
    } else if (key == "stall_ms") {
      if (!number || *number < 1 || *number > 60000) {
        return where + ".stall_ms must be an integer from 1 to 60000";
      }
      fault.kind = FaultKind::kStall;
      fault.stall = std::chrono::milliseconds{*number};
      ++kinds;
    } else if (key == "slow_body_ms") {
      if (!number || *number < 1 || *number > 10000) {
        return where + ".slow_body_ms must be an integer from 1 to 10000";
      }
      fault.kind = FaultKind::kSlowBody;
      fault.interval = std::chrono::milliseconds{*number};
      ++kinds;
    } else if (key == "chunk_bytes") {
      if (!number || *number < 1 || *number > 65536) {
        return where + ".chunk_bytes must be an integer from 1 to 65536";
      }
      fault.chunk_bytes = static_cast<std::size_t>(*number);
    } else if (key == "retry_after") {
      if (!number || *number < 0 || *number > 86400) {
        return where + ".retry_after must be an integer from 0 to 86400";
      }
      fault.retry_after = *number;
    } else if (key == "path") {
      if (!v.is_string() || !v.get_string().starts_with("/")) {
        return where + ".path must be a string starting with /";
      }
      fault.path_prefix = std::string(v.get_string());
    } else if (key == "times") {
      if (!number || *number < 1 || *number > 1000000) {
        return where + ".times must be an integer from 1 to 1000000";
      }
      fault.times = static_cast<std::uint32_t>(*number);
    } else {
      return where + ": unknown field \"" + std::string(key) + "\"; expected " +
             std::string(kKinds) + ", and optionally times, path, retry_after, chunk_bytes";
    }
  }
  if (kinds != 1) {
    return where + " needs " + std::string(kKinds);
  }
  if (fault.retry_after && !(fault.kind == FaultKind::kStatus && fault.status == 429)) {
    return where + ".retry_after goes with \"status\": 429 only";
  }
  return fault;
}

/// The 200 body of a kMalformed fault, and its Content-Type.
std::pair<std::string, std::string_view> MalformedBodyOf(MalformedBody kind, FaultTarget target) {
  if (kind == MalformedBody::kHtml) {
    return {
        "<!DOCTYPE html>\n<html><head><title>amoCRM</title></head>"
        "<body><h1>Технические работы</h1><p>Скоро всё заработает.</p></body></html>\n",
        "text/html; charset=utf-8"};
  }
  const bool truncated = kind == MalformedBody::kTruncated;
  switch (target) {
    case FaultTarget::kTokenEndpoint:
      return {
          truncated
              ? R"({"token_type":"Bearer","expires_in":86400,"access_token":"eyJ0eXAiOiJKV1Qi)"
              : R"({"token_type":"Bearer","expires_in":"86400","access_token":42,"refresh_token":null})",
          "application/json"};
    case FaultTarget::kApi:
      return {truncated ? R"({"id":30000001,"name":"Exam)"
                        : R"({"id":"30000001","name":42,"_links":[]})",
              "application/hal+json"};
    case FaultTarget::kSubdomain:
      return {truncated ? R"({"id":30000001,"subdom)"
                        : R"({"id":"30000001","subdomain":1,"domain":null})",
              "application/json"};
    case FaultTarget::kExchangeApiKey:
      return {truncated ? R"({"status":2)" : R"({"status":"accepted","code":[]})",
              "application/json"};
  }
  return {"{", "application/json"};
}

}  // namespace

std::string_view FaultTargetName(FaultTarget target) {
  return kTargetNames[static_cast<std::size_t>(target)];
}

std::variant<FaultSet, std::string> ParseFaults(std::string_view body) {
  constexpr std::string_view kUsage =
      R"(Expected a JSON object of targets ("token_endpoint", "api", "subdomain", )"
      R"("exchange_api_key"), e.g. {"api": {"status": 429, "times": 20}})";
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(body, ec);
  if (ec || !parsed.is_object() || parsed.get_object().empty()) {
    return std::string(kUsage);
  }
  FaultSet faults;
  for (const auto& [key, value] : parsed.get_object()) {
    std::size_t index = kFaultTargets;
    for (std::size_t i = 0; i < kFaultTargets; ++i) {
      if (kTargetNames[i] == key) {
        index = i;
      }
    }
    if (index == kFaultTargets) {
      return "unknown target \"" + std::string(key) + "\". " + std::string(kUsage);
    }
    auto fault = ParseFault(key, value);
    if (auto* error = std::get_if<std::string>(&fault)) {
      return std::move(*error);
    }
    faults[index] = std::get<Fault>(std::move(fault));
  }
  return faults;
}

boost::json::object FaultsJson(const FaultSet& faults) {
  boost::json::object out;
  for (std::size_t i = 0; i < kFaultTargets; ++i) {
    boost::json::value spec;  // null: none pending
    if (const auto& f = faults[i]) {
      boost::json::object o{{"times", f->times}};
      switch (f->kind) {
        case FaultKind::kStatus:
          o["status"] = f->status;
          if (f->retry_after) {
            o["retry_after"] = *f->retry_after;
          }
          break;
        case FaultKind::kClose:
          o["close"] = true;
          break;
        case FaultKind::kMalformed:
          o["malformed"] = MalformedName(f->malformed);
          break;
        case FaultKind::kStall:
          o["stall_ms"] = f->stall.count();
          break;
        case FaultKind::kSlowBody:
          o["slow_body_ms"] = f->interval.count();
          o["chunk_bytes"] = f->chunk_bytes;
          break;
      }
      if (!f->path_prefix.empty()) {
        o["path"] = f->path_prefix;
      }
      spec = std::move(o);
    }
    out[kTargetNames[i]] = std::move(spec);
  }
  return out;
}

net::HttpResponse FaultAnswer(const Fault& fault,
                              FaultTarget target,
                              Flavor flavor,
                              std::chrono::seconds default_retry_after) {
  net::HttpResponse response;
  switch (fault.kind) {
    case FaultKind::kStatus:
      if (fault.status == 429) {
        response = TooManyRequestsResponse(
            flavor,
            fault.retry_after ? std::chrono::seconds{*fault.retry_after} : default_retry_after);
      } else {
        // 403 is the block page (protocol §9.7); 5xx what nginx in front of amoCRM answers.
        response = NginxErrorResponse(fault.status);
      }
      response.headers.Set("X-Sandbox-Fault", "status");
      return response;
    case FaultKind::kMalformed: {
      auto [body, type] = MalformedBodyOf(fault.malformed, target);
      response.status = 200;
      response.body = std::move(body);
      response.headers.Set("Content-Type", type);
      response.headers.Set("X-Sandbox-Fault", "malformed");
      return response;
    }
    case FaultKind::kClose:
    case FaultKind::kStall:
    case FaultKind::kSlowBody:  // not answered here; dropped if it ever is
      response.drop_connection = true;
      return response;
  }
  response.drop_connection = true;
  return response;
}

void SlowDown(const Fault& fault, net::HttpResponse& response) {
  response.trickle_bytes = fault.chunk_bytes;
  response.trickle_interval = fault.interval;
  response.headers.Set("X-Sandbox-Fault", "slow_body");
}

}  // namespace amoauth::sandbox
