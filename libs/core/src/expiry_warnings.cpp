#include "amoauth/core/expiry_warnings.hpp"

namespace amoauth::core {

TimePoint NextExpiryVisit(TimePoint expires_at, TimePoint now) {
  for (const Seconds ahead : kExpiryWarningsAhead) {
    if (expires_at - ahead > now) {
      return expires_at - ahead;  // earliest first, so the first one later than now
    }
  }
  return expires_at;
}

std::int64_t DaysLeft(TimePoint expires_at, TimePoint now) {
  if (expires_at <= now) {
    return 0;
  }
  constexpr std::int64_t kDay = 24 * 60 * 60;
  const std::int64_t seconds = std::chrono::duration_cast<Seconds>(expires_at - now).count();
  return (seconds + kDay - 1) / kDay;
}

bool WarnAtOnce(TimePoint expires_at, TimePoint now) {
  return expires_at > now && expires_at - now <= kWarnAtOnceWithin;
}

}  // namespace amoauth::core
