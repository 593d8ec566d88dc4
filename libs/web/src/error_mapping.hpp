#pragma once

#include <string_view>

#include <boost/system/error_code.hpp>

namespace amoauth::web {

/// How one failure is told to a program (internal API) and to a person (HTML pages).
struct ErrorView {
  int status = 500;
  std::string_view code;     ///< machine code for {"error": …}
  std::string_view message;  ///< one sentence for a program's log
  std::string_view title;    ///< page heading for a person
  std::string_view advice;   ///< what the person can do next
};

/// The single place where errors become HTTP statuses and words. Unknown foreign error codes
/// (Asio, SQLite…) become a 500 "internal error".
[[nodiscard]] ErrorView ViewOf(const boost::system::error_code& ec);

}  // namespace amoauth::web
