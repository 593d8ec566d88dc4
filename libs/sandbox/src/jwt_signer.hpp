#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json/object.hpp>
#include <openssl/evp.h>

#include "amoauth/core/result.hpp"

namespace amoauth::sandbox {

/// RFC 4648 §5 base64url without padding.
[[nodiscard]] std::string Base64UrlEncode(std::string_view bytes);
/// Accepts unpadded (and padded) base64url; nullopt on any other character or a bad length.
[[nodiscard]] std::optional<std::string> Base64UrlDecode(std::string_view text);

/// The simulated amoCRM's signing key: RSA-2048, RS256 JWTs (protocol §4). Immutable after
/// Generate(), so thread-safe.
class JwtSigner {
 public:
  /// Generates a fresh key. Errors: Errc::kCryptoFailure.
  [[nodiscard]] static Result<JwtSigner> Generate();

  /// base64url(header) "." base64url(payload) "." base64url(RS256 signature). `header` should
  /// carry "alg":"RS256". Errors: Errc::kCryptoFailure.
  [[nodiscard]] Result<std::string> Sign(const boost::json::object& header,
                                         const boost::json::object& payload) const;

  /// The payload of a token this key signed with RS256; nullopt when malformed, not RS256, or the
  /// signature does not verify.
  [[nodiscard]] std::optional<boost::json::object> Verify(std::string_view token) const;

  /// SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----"), for tests and curious humans.
  [[nodiscard]] std::string PublicKeyPem() const;

 private:
  explicit JwtSigner(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace amoauth::sandbox
