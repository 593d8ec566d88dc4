#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "amoauth/http_server/http_server.hpp"

namespace amoauth::http_server {

/// Maps (method, path pattern) to handlers. Patterns are literal segments and `{name}` segments
/// that match one non-empty segment; a last segment `{name*}` matches the rest of the path
/// (possibly empty, slashes included). Matched values land in HttpRequest::path_params,
/// percent-decoded for `{name}` and left encoded for `{name*}`.
/// Method "*" matches any method. First match in insertion order wins.
/// Unmatched path → the fallback (default: 404 JSON); path matched but not the method → 405 JSON.
class Router {
 public:
  void Add(std::string_view method, std::string_view pattern, Handler handler);
  void SetFallback(Handler handler);

  [[nodiscard]] boost::asio::awaitable<net::HttpResponse> Dispatch(net::HttpRequest request) const;

  /// One registered route: its method ("*" for any) and its pattern, as given to Add.
  struct RouteEntry {
    std::string method;
    std::string pattern;
  };
  /// Every route, in insertion order (the OpenAPI test compares them with docs/openapi.json).
  [[nodiscard]] std::vector<RouteEntry> Table() const;

  /// A Handler that dispatches through this router; the router must outlive it.
  [[nodiscard]] Handler AsHandler() const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    std::string pattern;
    Handler handler;
  };
  std::vector<Route> routes_;
  Handler fallback_;
};

}  // namespace amoauth::http_server
