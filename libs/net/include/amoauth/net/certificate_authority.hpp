#pragma once

#include <string>
#include <vector>

#include "amoauth/core/result.hpp"

namespace amoauth::net {

/// A throwaway certificate authority and one server certificate it signed, all PEM.
/// Used by the sandbox (which must be verified exactly as amoCRM would be) and by tests.
struct IssuedCertificate {
  std::string ca_certificate_pem;     ///< trust this (AMOAUTH_AMO_CA_FILE)
  std::string certificate_chain_pem;  ///< leaf, then CA
  std::string private_key_pem;        ///< the leaf's key
};

/// Generates an EC P-256 CA and a leaf for `dns_names` (wildcards such as "*.amocrm.ru" allowed)
/// and `ip_addresses` ("127.0.0.1"), valid from one hour ago for `valid_days`.
/// Errors: Errc::kCryptoFailure; Errc::kInvalidArgument for no names, an empty DNS name, an
/// unparsable IP address or `valid_days` <= 0.
[[nodiscard]] Result<IssuedCertificate> IssueCertificate(
    const std::vector<std::string>& dns_names,
    const std::vector<std::string>& ip_addresses,
    int valid_days = 365);

}  // namespace amoauth::net
