#pragma once

#include <optional>
#include <string>
#include <utility>

namespace amoauth::app {

/// A value, or a sentence for the operator explaining why not. Start-up code only (configuration,
/// key files): these errors end the process with a message, they never travel as error_codes.
template <class T>
class [[nodiscard]] Checked {
 public:
  Checked(T value) : value_(std::move(value)) {}            // NOLINT: implicit by design
  Checked(std::string error) : error_(std::move(error)) {}  // NOLINT: implicit by design
  Checked(const char* error) : error_(error) {}             // NOLINT: implicit by design

  explicit operator bool() const { return value_.has_value(); }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }
  const std::string& error() const { return error_; }

 private:
  std::optional<T> value_;
  std::string error_;
};

template <>
class [[nodiscard]] Checked<void> {
 public:
  Checked() = default;
  Checked(std::string error) : error_(std::move(error)), failed_(true) {}  // NOLINT
  explicit operator bool() const { return !failed_; }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
  bool failed_ = false;
};

}  // namespace amoauth::app
