#include "amoauth/core/request_window.hpp"

namespace amoauth::core {

RequestWindow::RequestWindow(std::size_t limit, std::chrono::nanoseconds window)
    : limit_(limit), window_(window) {}

void RequestWindow::Forget(TimePoint now) {
  while (!finished_.empty() && finished_.front() + window_ <= now) {
    finished_.pop_front();
  }
}

bool RequestWindow::TryStart(TimePoint now) {
  Forget(now);
  if (in_flight_ + finished_.size() >= limit_) {
    return false;
  }
  ++in_flight_;
  return true;
}

void RequestWindow::Finish(TimePoint now) {
  if (in_flight_ > 0) {
    --in_flight_;
  }
  finished_.push_back(now);
}

std::optional<RequestWindow::TimePoint> RequestWindow::NextChance(TimePoint now) {
  Forget(now);
  if (in_flight_ + finished_.size() < limit_ || in_flight_ >= limit_ || finished_.empty()) {
    return std::nullopt;
  }
  return finished_.front() + window_;
}

}  // namespace amoauth::core
