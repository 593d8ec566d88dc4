#pragma once

#include <mutex>
#include <utility>

#include "amoauth/service/ports.hpp"

namespace amoauth::testing {

/// A change feed the test drives by hand: nothing is delivered unless the test says so, which is
/// how a test holds back another instance's notification. Thread-safe.
class FakeConnectionChanges final : public service::ConnectionChanges {
 public:
  /// `listening`: what Subscribe tells the listener first.
  explicit FakeConnectionChanges(bool listening = true) : listening_(listening) {}

  void Subscribe(Listener listener) override {
    bool listening = false;
    {
      std::lock_guard lock(mutex_);
      listener_ = std::move(listener);
      listening = listening_;
    }
    listener_.continuity(listening);
  }

  /// Delivers "a write of `key` committed".
  void Changed(const core::AccountKey& key) {
    if (listener_.changed) {
      listener_.changed(key);
    }
  }

  /// Delivers continuity(`listening`).
  void SetListening(bool listening) {
    {
      std::lock_guard lock(mutex_);
      listening_ = listening;
    }
    if (listener_.continuity) {
      listener_.continuity(listening);
    }
  }

  [[nodiscard]] bool Subscribed() const { return static_cast<bool>(listener_.changed); }

 private:
  std::mutex mutex_;
  bool listening_;
  Listener listener_;
};

}  // namespace amoauth::testing
