#include "export_file.hpp"

#include <chrono>
#include <exception>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "amoauth/core/iso_time.hpp"
#include "amoauth/crypto/base64.hpp"

namespace amoauth::app {
namespace {

namespace json = boost::json;

constexpr std::string_view kFormat = "amoauth-export";

// Whole seconds since the epoch: the stores keep no finer times; 0 is TimePoint{} ("never").
std::int64_t Seconds(core::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
core::TimePoint FromSeconds(std::int64_t s) {
  return core::TimePoint(std::chrono::seconds(s));
}

json::object ToJson(const core::Connection& c) {
  return {
      {"account_id", c.account_id},
      {"client_id", c.client_id},
      {"base_domain", c.base_domain},
      {"api_domain", c.api_domain},
      {"user_id", c.user_id},
      {"status", core::ToString(c.status)},
      {"access_token", c.access_token.Reveal()},
      {"refresh_token", c.refresh_token.Reveal()},
      {"expires_at", Seconds(c.expires_at)},
      {"created_at", Seconds(c.created_at)},
      {"updated_at", Seconds(c.updated_at)},
      {"version", c.version},
      {"last_refresh_at", Seconds(c.last_refresh_at)},
      {"next_refresh_at", Seconds(c.next_refresh_at)},
      {"refresh_failures", c.refresh_failures},
      {"last_error", c.last_error},
      {"last_error_at", Seconds(c.last_error_at)},
  };
}

json::object ToJson(const service::ExternalIntegration& i) {
  return {
      {"client_id", i.client_id},
      {"client_secret", i.client_secret.Reveal()},
      {"state_hash", i.state_hash},
      {"created_at", Seconds(i.created_at)},
  };
}

// The payload was authenticated by GCM, so a shape error means a bug or a foreign writer: the
// accessors throw and OpenExport turns that into one sentence.
std::string Text(const json::object& o, std::string_view name) {
  return std::string(o.at(name).as_string());
}
std::int64_t Int(const json::object& o, std::string_view name) {
  return o.at(name).to_number<std::int64_t>();
}

core::Connection ConnectionFromJson(const json::object& o) {
  core::Connection c;
  c.account_id = Int(o, "account_id");
  c.client_id = Text(o, "client_id");
  c.base_domain = Text(o, "base_domain");
  c.api_domain = Text(o, "api_domain");
  c.user_id = Text(o, "user_id");
  const auto status = core::ParseConnectionStatus(Text(o, "status"));
  if (!status) {
    throw std::invalid_argument("unknown status");
  }
  c.status = *status;
  c.access_token = Secret(Text(o, "access_token"));
  c.refresh_token = Secret(Text(o, "refresh_token"));
  c.expires_at = FromSeconds(Int(o, "expires_at"));
  c.created_at = FromSeconds(Int(o, "created_at"));
  c.updated_at = FromSeconds(Int(o, "updated_at"));
  c.version = Int(o, "version");
  c.last_refresh_at = FromSeconds(Int(o, "last_refresh_at"));
  c.next_refresh_at = FromSeconds(Int(o, "next_refresh_at"));
  c.refresh_failures = static_cast<int>(Int(o, "refresh_failures"));
  c.last_error = Text(o, "last_error");
  c.last_error_at = FromSeconds(Int(o, "last_error_at"));
  return c;
}

service::ExternalIntegration IntegrationFromJson(const json::object& o) {
  return {
      .client_id = Text(o, "client_id"),
      .client_secret = Secret(Text(o, "client_secret")),
      .state_hash = Text(o, "state_hash"),
      .created_at = FromSeconds(Int(o, "created_at")),
  };
}

}  // namespace

std::string SealExport(const ExportContents& contents,
                       const crypto::MasterKey& key,
                       core::TimePoint now,
                       std::string_view engine,
                       int schema_version) {
  json::array connections;
  for (const auto& c : contents.connections) {
    connections.push_back(ToJson(c));
  }
  json::array integrations;
  for (const auto& i : contents.integrations) {
    integrations.push_back(ToJson(i));
  }
  const json::object payload{{"connections", std::move(connections)},
                             {"integrations", std::move(integrations)}};
  const json::object envelope{
      {"format", kFormat},
      {"format_version", kExportFormatVersion},
      {"created_at", core::FormatIsoTime(now)},
      {"key_id", key.Id()},
      {"engine", engine},
      {"schema_version", schema_version},
      {"connections", contents.connections.size()},
      {"integrations", contents.integrations.size()},
      {"sealed", crypto::Base64Encode(crypto::Seal(key, json::serialize(payload), kExportAad))},
  };
  return json::serialize(envelope) + "\n";
}

Checked<ExportHeader> ReadExportHeader(std::string_view text) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec);
  const json::object* o = ec ? nullptr : parsed.if_object();
  if (o == nullptr || o->if_contains("format") == nullptr || !o->at("format").is_string() ||
      o->at("format").as_string() != kFormat) {
    return std::string("this is not an amoauth export file (no \"format\": \"amoauth-export\")");
  }
  try {
    ExportHeader h;
    h.format_version = static_cast<int>(Int(*o, "format_version"));
    if (h.format_version != kExportFormatVersion) {
      return fmt::format("the export file has format version {}; this amoauth reads version {}",
                         h.format_version,
                         kExportFormatVersion);
    }
    h.key_id = Text(*o, "key_id");
    h.created_at = Text(*o, "created_at");
    h.engine = Text(*o, "engine");
    h.schema_version = static_cast<int>(Int(*o, "schema_version"));
    h.connections = static_cast<std::size_t>(Int(*o, "connections"));
    h.integrations = static_cast<std::size_t>(Int(*o, "integrations"));
    Text(*o, "sealed");
    return h;
  } catch (const std::exception&) {
    return std::string("the export file's header is damaged (a field is missing or malformed)");
  }
}

Checked<ExportContents> OpenExport(std::string_view text, const crypto::MasterKey& key) {
  auto header = ReadExportHeader(text);
  if (!header) {
    return header.error();
  }
  const json::value envelope = json::parse(text);
  const auto sealed = crypto::Base64Decode(envelope.as_object().at("sealed").as_string());
  if (header->key_id != key.Id()) {
    return fmt::format(
        "the master key does not open this export: it was sealed under key id {}, the "
        "configured AMOAUTH_MASTER_KEY has key id {}",
        header->key_id,
        key.Id());
  }
  const auto plain = sealed ? crypto::Open(key, *sealed, kExportAad) : std::nullopt;
  if (!plain) {
    return std::string(
        "the export file is damaged or was altered: its sealed contents do not decrypt");
  }
  ExportContents contents;
  try {
    const json::value payload = json::parse(*plain);
    for (const auto& c : payload.at("connections").as_array()) {
      contents.connections.push_back(ConnectionFromJson(c.as_object()));
    }
    for (const auto& i : payload.at("integrations").as_array()) {
      contents.integrations.push_back(IntegrationFromJson(i.as_object()));
    }
  } catch (const std::exception&) {
    return std::string("the export file's sealed contents are not in the expected shape");
  }
  if (contents.connections.size() != header->connections ||
      contents.integrations.size() != header->integrations) {
    return fmt::format(
        "the export file's header says {} connections and {} integrations but it holds {} and {}",
        header->connections,
        header->integrations,
        contents.connections.size(),
        contents.integrations.size());
  }
  return contents;
}

}  // namespace amoauth::app
