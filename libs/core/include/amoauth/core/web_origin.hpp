#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace amoauth::core {

/// The origin (scheme://host[:port]) of an absolute http(s) URL, as browsers write it in
/// MessageEvent.origin and compare it with postMessage's targetOrigin: scheme and host in lower
/// case, the port only when it is not the scheme's default. nullopt for anything else.
[[nodiscard]] std::optional<std::string> WebOrigin(std::string_view url);

}  // namespace amoauth::core
