#include "amoauth/core/request_window.hpp"

#include <algorithm>

namespace amoauth::core {

RequestWindow::RequestWindow(std::size_t limit, std::chrono::nanoseconds window)
    : limit_(limit), window_(window) {}

std::optional<RequestWindow::TimePoint> RequestWindow::Reserve(TimePoint now,
                                                               std::chrono::nanoseconds max_wait,
                                                               TimePoint not_before) {
  TimePoint at = std::max(now, not_before);
  if (!booked_.empty()) {
    at = std::max(at, booked_.back());  // keep booked times ordered
  }
  if (booked_.size() >= limit_) {
    // The request `limit_` places back must be a full window behind this one.
    at = std::max(at, booked_[booked_.size() - limit_] + window_);
  }
  if (at > now + max_wait) {
    return std::nullopt;
  }
  booked_.push_back(at);
  while (booked_.size() > limit_) {
    booked_.pop_front();
  }
  return at;
}

}  // namespace amoauth::core
