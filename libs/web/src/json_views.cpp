#include "json_views.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "amoauth/core/iso_time.hpp"
#include "error_mapping.hpp"

namespace amoauth::web::json {
namespace {

/// An ISO time, or null for "never".
boost::json::value TimeOrNull(core::TimePoint t) {
  if (t == core::TimePoint{}) {
    return nullptr;
  }
  return boost::json::value(core::FormatIsoTime(t));
}

boost::json::object AccountObject(const core::Connection& c) {
  boost::json::value last_error = nullptr;
  if (!c.last_error.empty()) {
    last_error = boost::json::value(c.last_error);
  }
  return {
      {"account_id", c.account_id},
      {"client_id", c.client_id},
      {"base_domain", c.base_domain},
      {"api_domain", c.api_domain},
      {"user_id", c.user_id},
      {"status", core::ToString(c.status)},
      {"kind", core::ToString(core::KindOf(c))},
      {"expires_at", core::FormatIsoTime(c.expires_at)},
      {"created_at", core::FormatIsoTime(c.created_at)},
      {"updated_at", core::FormatIsoTime(c.updated_at)},
      {"refresh",
       {
           {"last_refresh_at", TimeOrNull(c.last_refresh_at)},
           {"next_refresh_at", TimeOrNull(c.next_refresh_at)},
           {"failures", c.refresh_failures},
           {"last_error", std::move(last_error)},
           {"last_error_at", TimeOrNull(c.last_error_at)},
       }},
  };
}

/// Appends JSON strings escaped by Boost.JSON's serializer, one serializer for all the strings of
/// an answer: boost::json::serialize(string_view) built a serializer and a std::string for each.
class StringWriter {
 public:
  void Append(std::string& out, std::string_view text) {
    serializer_.reset(boost::json::string_view(text.data(), text.size()));
    while (!serializer_.done()) {
      const boost::json::string_view part = serializer_.read(buffer_.data(), buffer_.size());
      out.append(part.data(), part.size());
    }
  }

 private:
  boost::json::serializer serializer_;
  std::array<char, 1024> buffer_{};  // a /token access token fits whole
};

}  // namespace

std::string Account(const core::Connection& c,
                    std::optional<std::chrono::seconds> api_blocked_for) {
  boost::json::object o = AccountObject(c);
  if (api_blocked_for) {
    o["api_blocked_for_seconds"] = api_blocked_for->count();
  } else {
    o["api_blocked_for_seconds"] = nullptr;
  }
  return boost::json::serialize(o);
}

std::string Accounts(const std::vector<core::Connection>& all) {
  boost::json::array list;
  list.reserve(all.size());
  for (const auto& c : all) {
    list.emplace_back(AccountObject(c));
  }
  return boost::json::serialize(boost::json::object{{"accounts", std::move(list)}});
}

std::string Token(const core::Connection& c, core::TimePoint now) {
  // The API's hottest answer (6 % of a /token request's CPU as a json::object: a table allocated
  // and the access token copied into it, then serialised). Written field by field instead, each
  // string still escaped by Boost.JSON: the same bytes as serialize(object{...}) in this order
  // (JsonViews.TokenIsWhatBoostJsonWrites).
  const std::int64_t left = std::chrono::duration_cast<core::Seconds>(c.expires_at - now).count();
  const std::string_view access = c.access_token.Reveal();
  std::string out;
  out.reserve(access.size() + c.base_domain.size() + c.api_domain.size() + 192);
  StringWriter strings;
  out += R"({"access_token":)";
  strings.Append(out, access);
  out += R"(,"token_type":"Bearer","expires_at":)";
  strings.Append(out, core::FormatIsoTime(c.expires_at));
  out += R"(,"expires_in":)";
  out += std::to_string(left > 0 ? left : 0);
  out += R"(,"account_id":)";
  out += std::to_string(c.account_id);
  out += R"(,"base_domain":)";
  strings.Append(out, c.base_domain);
  out += R"(,"api_domain":)";
  strings.Append(out, c.api_domain);
  out += '}';
  return out;
}

std::string ConnectStart(const service::ConnectStart& start) {
  boost::json::object out{
      {"authorize_url", start.authorize_url},
      {"state", start.state},
      {"expires_at", core::FormatIsoTime(start.expires_at)},
  };
  if (!start.reference.empty()) {
    out["reference"] = start.reference;
  }
  return boost::json::serialize(out);
}

net::HttpResponse Error(const boost::system::error_code& ec, std::string_view request_id) {
  return Error(ec, request_id, ViewOf(ec).message);
}

net::HttpResponse Error(const boost::system::error_code& ec,
                        std::string_view request_id,
                        std::string_view message) {
  const ErrorView view = ViewOf(ec);
  return net::HttpResponse::Json(view.status,
                                 boost::json::serialize(boost::json::object{
                                     {"error", view.code},
                                     {"message", message},
                                     {"request_id", request_id},
                                 }));
}

}  // namespace amoauth::web::json
