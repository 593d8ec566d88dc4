#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "amoauth/core/clock.hpp"
#include "amoauth/core/connection.hpp"
#include "amoauth/crypto/aead.hpp"
#include "amoauth/service/ports.hpp"
#include "checked.hpp"

/// The file `amoauth export` writes and `amoauth import` reads (docs/operations.md): one JSON
/// envelope whose clear fields say what it is — format, version, key id, time, counts, never a
/// secret — and whose "sealed" field holds every row, AES-256-GCM under the master key.
namespace amoauth::app {

/// What moves between engines: every amo_tokens row and every external integration.
struct ExportContents {
  std::vector<core::Connection> connections;
  std::vector<service::ExternalIntegration> integrations;
};

/// The envelope's clear fields.
struct ExportHeader {
  int format_version = 0;
  std::string key_id;      ///< crypto::MasterKey::Id() of the key it is sealed under
  std::string created_at;  ///< ISO-8601
  std::string engine;      ///< the store it came from: "sqlite" | "postgresql"
  int schema_version = 0;
  std::size_t connections = 0;
  std::size_t integrations = 0;
};

/// Bound into the ciphertext, so that nothing sealed for another purpose opens as an export.
inline constexpr std::string_view kExportAad = "amoauth-export/v1";
inline constexpr int kExportFormatVersion = 1;

/// The file's text (one line of JSON and a newline).
[[nodiscard]] std::string SealExport(const ExportContents& contents,
                                     const crypto::MasterKey& key,
                                     core::TimePoint now,
                                     std::string_view engine,
                                     int schema_version);

/// The clear fields, without the key. Errors: a sentence (not an export, another version).
[[nodiscard]] Checked<ExportHeader> ReadExportHeader(std::string_view text);

/// Opens the file with `key`. Errors: a sentence — another key (both key ids named), damaged
/// contents, counts that disagree with the header.
[[nodiscard]] Checked<ExportContents> OpenExport(std::string_view text,
                                                 const crypto::MasterKey& key);

}  // namespace amoauth::app
