// core::ClassifyAmoFailure: any non-2xx answer of amoCRM (JSON, problem+json, nginx HTML, text).
// The first two bytes pick the HTTP status (0..999), the rest is the body. Invariants: it never
// throws; the code is one of the amoCRM errors and follows the status where the status decides;
// hint, title and detail are at most 300 bytes, single-line (no control characters), and a cut
// never splits a UTF-8 sequence of a valid body.
#include <algorithm>

#include "amoauth/core/token_exchange.hpp"
#include "fuzz_check.hpp"

namespace {

using amoauth::Errc;

bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (c < 0x80) {
      len = 1;
    } else if ((c & 0xE0U) == 0xC0U) {
      len = 2;
    } else if ((c & 0xF0U) == 0xE0U) {
      len = 3;
    } else if ((c & 0xF8U) == 0xF0U) {
      len = 4;
    } else {
      return false;
    }
    if (i + len > s.size()) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0U) != 0x80U) {
        return false;
      }
    }
    i += len;
  }
  return true;
}

bool IsLogSafe(std::string_view field) {
  return field.size() <= 300 && std::none_of(field.begin(), field.end(), [](char ch) {
           const auto c = static_cast<unsigned char>(ch);
           return c < 0x20 || c == 0x7F;
         });
}

bool IsAmoError(Errc code) {
  switch (code) {
    case Errc::kAmoBlocked:
    case Errc::kAmoRateLimited:
    case Errc::kAmoServerError:
    case Errc::kAmoMalformedResponse:
    case Errc::kAmoCodeExpired:
    case Errc::kAmoCodeRevoked:
    case Errc::kAmoCodeInvalid:
    case Errc::kAmoRedirectUriMismatch:
    case Errc::kAmoInvalidClient:
    case Errc::kAmoInvalidAccount:
    case Errc::kAmoTokenRevoked:
    case Errc::kAmoTokenNotLinked:
    case Errc::kAmoTokenExpired:
    case Errc::kAmoUnauthorized:
    case Errc::kAmoNotFound:
    case Errc::kAmoRejected:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) {
    return 0;
  }
  const int status = ((data[0] << 8) | data[1]) % 1000;
  const std::string_view body = amoauth::fuzz::AsText(data + 2, size - 2);
  const auto failure = amoauth::core::ClassifyAmoFailure(status, body);
  FUZZ_CHECK(failure.status == status);
  FUZZ_CHECK(IsAmoError(failure.code));
  if (status == 403) {
    FUZZ_CHECK(failure.code == Errc::kAmoBlocked);
  } else if (status == 429) {
    FUZZ_CHECK(failure.code == Errc::kAmoRateLimited);
  } else if (status >= 500 && status <= 599) {
    FUZZ_CHECK(failure.code == Errc::kAmoServerError);
  } else if (status < 400 || status > 499) {
    FUZZ_CHECK(failure.code == Errc::kAmoMalformedResponse);
  }
  for (std::string_view field : {failure.hint, failure.title, failure.detail}) {
    FUZZ_CHECK(IsLogSafe(field));
    if (IsValidUtf8(body)) {
      FUZZ_CHECK(IsValidUtf8(field));
    }
  }
  return 0;
}
