#pragma once

#include <string_view>

/// The signature on amoCRM's disconnect ("access revoked") hook (protocol §7.1):
///   GET {hook}?client_uuid={client_id}&account_id={id}&signature={hex}
///   signature = lowercase hex HMAC-SHA256(key = client_secret, message = client_uuid|account_id)
namespace amoauth::core {

/// True when `signature` is the HMAC of `client_uuid + "|" + account_id` under `client_secret`.
/// The hex may be in either case (amoCRM sends lowercase; a proxy or a hand-made test may not).
/// `account_id` is signed as sent, byte for byte. Compares in constant time. Pure; thread-safe.
[[nodiscard]] bool VerifyDisconnectSignature(std::string_view client_secret,
                                             std::string_view client_uuid,
                                             std::string_view account_id,
                                             std::string_view signature);

}  // namespace amoauth::core
