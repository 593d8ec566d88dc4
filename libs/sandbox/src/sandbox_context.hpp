#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "jwt_signer.hpp"
#include "sandbox_state.hpp"

namespace spdlog {
class logger;
}

namespace amoauth::sandbox {

/// Everything a request handler needs; shared by both listeners. Thread-safe: the state locks
/// itself, the signer is immutable.
struct SandboxContext {
  SandboxContext(StateConfig config,
                 std::vector<Account> accounts,
                 JwtSigner jwt_signer,
                 BaseClock base_clock = {})
      : state(config, std::move(accounts), std::move(base_clock)), signer(std::move(jwt_signer)) {}

  SandboxState state;
  const JwtSigner signer;
};

/// The spdlog logger "sandbox" (the registered one, else a clone of the default logger).
/// Never give it codes, tokens or secrets.
[[nodiscard]] std::shared_ptr<spdlog::logger> SandboxLogger();

}  // namespace amoauth::sandbox
