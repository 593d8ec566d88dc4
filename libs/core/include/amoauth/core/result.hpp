#pragma once

#include <boost/system/result.hpp>

#include "amoauth/core/errc.hpp"

namespace amoauth {

/// The one way amoauth returns "a value or why not" (docs/adr/0001-stack.md).
template <class T>
using Result = boost::system::result<T, boost::system::error_code>;

/// `return Fail(Errc::kNotFound);` reads better than constructing the error_code by hand.
[[nodiscard]] inline boost::system::error_code Fail(Errc e) noexcept {
  return make_error_code(e);
}

}  // namespace amoauth
