#include "code_redirect.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "sandbox_state.hpp"

namespace amoauth::sandbox {

std::optional<std::string> WithParams(std::string_view url, const UrlParams& params) {
  auto parsed = boost::urls::parse_uri_reference(url);
  if (!parsed) {
    return std::nullopt;
  }
  boost::urls::url out(*parsed);
  for (const auto& [key, value] : params) {
    out.params().append({key, value});
  }
  return std::string(out.buffer());
}

UrlParams CodeParams(const Account& account,
                     std::string_view client_id,
                     std::string_view code,
                     std::string_view state,
                     bool always_client_id) {
  UrlParams params{{"code", std::string(code)}, {"referer", AccountHost(account)}};
  if (!state.empty()) {
    params.emplace_back("state", std::string(state));
  }
  switch (account.flavor) {
    case Flavor::kAmocrm:
      params.emplace_back("platform", "1");  // §2.5: 1 = installed from amocrm.ru
      if (always_client_id) {
        params.emplace_back("client_id", std::string(client_id));
      }
      break;
    case Flavor::kKommo:
      params.emplace_back("client_id", std::string(client_id));  // §2.5: Kommo sends client_id
      break;
  }
  return params;
}

}  // namespace amoauth::sandbox
