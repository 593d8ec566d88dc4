#pragma once

#include <chrono>

#include <boost/system/error_code.hpp>

/// What to do with an authorization code that arrived without a person (the widget-install hook,
/// the exchange_api_key hook) and failed to exchange. Pure: tested with plain values.
namespace amoauth::core {

/// amoCRM's codes live 20 minutes (protocol §3.4): a queued code is worth retrying that long.
inline constexpr std::chrono::minutes kCodeLifetime{20};

enum class CodeFailure {
  kPermanent,  ///< the code will never work (used, expired, foreign, our keys refused): give up
  kTransient,  ///< amoCRM unreachable, 5xx, 429, a malformed 200, our store: retry while it lives
};

/// Keyed on our Errc; foreign codes (Asio, Beast, OpenSSL) are network trouble: transient.
[[nodiscard]] CodeFailure ClassifyCodeFailure(const boost::system::error_code& ec);

}  // namespace amoauth::core
