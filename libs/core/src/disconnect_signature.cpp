#include "amoauth/core/disconnect_signature.hpp"

#include <string>

#include "amoauth/crypto/constant_time.hpp"
#include "amoauth/crypto/digest.hpp"

namespace amoauth::core {

bool VerifyDisconnectSignature(std::string_view client_secret,
                               std::string_view client_uuid,
                               std::string_view account_id,
                               std::string_view signature) {
  std::string message;
  message.reserve(client_uuid.size() + 1 + account_id.size());
  message.append(client_uuid).append("|").append(account_id);
  const std::string expected = crypto::HmacSha256Hex(client_secret, message);
  // Lowercase the candidate without branching on its bytes: the comparison below is the only
  // thing that may look at them, and it takes the same time whatever they are.
  std::string candidate(signature);
  for (char& c : candidate) {
    const auto u = static_cast<unsigned char>(c);
    const unsigned upper = static_cast<unsigned>(u - 'A') <= 'Z' - 'A' ? 1U : 0U;
    c = static_cast<char>(u | (upper << 5U));
  }
  return crypto::ConstantTimeEquals(expected, candidate);
}

}  // namespace amoauth::core
