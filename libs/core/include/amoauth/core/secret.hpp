#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace amoauth {

/// A value that must never reach a log line, an error message or a printed URL: client secrets,
/// authorization codes, tokens, API keys. Formatting it (fmt or ostream) prints "***"; the only way
/// to the bytes is the explicit Reveal().
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  [[nodiscard]] const std::string& Reveal() const noexcept { return value_; }
  [[nodiscard]] bool Empty() const noexcept { return value_.empty(); }

  friend std::ostream& operator<<(std::ostream& os, const Secret& /*unused*/) {
    return os << "***";
  }
  // Equality is for tests and bookkeeping; compare secrets from outside with
  // crypto::ConstantTimeEquals instead.
  friend bool operator==(const Secret&, const Secret&) = default;

 private:
  std::string value_;
};

}  // namespace amoauth

template <>
struct fmt::formatter<amoauth::Secret> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const amoauth::Secret& /*unused*/, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};
