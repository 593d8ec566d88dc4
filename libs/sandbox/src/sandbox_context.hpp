#pragma once

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "hook_sender.hpp"
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
  /// Sends a hook in the background after hook.delay (Sandbox::Start sets it to the HookSender;
  /// unit tests record instead). Empty: hooks are dropped.
  std::function<void(OutgoingHook)> send_later;
};

/// The spdlog logger "sandbox" (the registered one, else a clone of the default logger).
/// Never give it codes, tokens or secrets.
[[nodiscard]] std::shared_ptr<spdlog::logger> SandboxLogger();

}  // namespace amoauth::sandbox
