#include "amoauth/http_server/router.hpp"

#include <algorithm>
#include <utility>

#include <boost/url/pct_string_view.hpp>

// No Beast here: routing is plain string work and must stay cheap to compile.

namespace amoauth::http_server {
namespace {

using PathParams = std::vector<std::pair<std::string, std::string>>;

/// "/a/b/" → {"a", "b", ""}; "/" → {""}; "" → {}.
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.empty()) {
    return segments;
  }
  segments.reserve(8);  // every route of ours has fewer: one allocation, not four
  if (path.front() == '/') {
    path.remove_prefix(1);
  }
  for (;;) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return segments;
}

bool IsParam(std::string_view segment) {
  return segment.size() >= 3 && segment.front() == '{' && segment.back() == '}';
}

bool IsRestParam(std::string_view segment) {
  return IsParam(segment) && segment[segment.size() - 2] == '*';
}

/// Whether `path` has the shape of `pattern`: its literal segments, a non-empty segment for each
/// `{name}`, and as many segments unless a `{name*}` takes the rest. Decodes nothing: most routes
/// fail here, before Match allocates a decoded parameter for them.
bool Fits(const std::vector<std::string>& pattern, const std::vector<std::string_view>& path) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const std::string& want = pattern[i];
    if (IsRestParam(want)) {
      return true;
    }
    if (i >= path.size() || (IsParam(want) ? path[i].empty() : want != path[i])) {
      return false;
    }
  }
  return pattern.size() == path.size();
}

/// Matches `path` (already split) against a pattern; fills `params` on success.
bool Match(const std::vector<std::string>& pattern,
           const std::vector<std::string_view>& path,
           std::string_view raw_path,
           PathParams& params) {
  params.clear();
  if (!Fits(pattern, path)) {
    return false;
  }
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const std::string& want = pattern[i];
    if (IsRestParam(want)) {
      // The rest of the raw path, still encoded, possibly empty.
      std::string rest;
      if (i < path.size()) {
        const std::size_t offset = static_cast<std::size_t>(path[i].data() - raw_path.data());
        rest = std::string(raw_path.substr(offset));
      }
      params.emplace_back(want.substr(1, want.size() - 3), std::move(rest));
      return true;
    }
    if (i >= path.size()) {
      return false;
    }
    if (IsParam(want)) {
      if (path[i].empty()) {
        return false;
      }
      auto encoded = boost::urls::make_pct_string_view(path[i]);
      if (!encoded) {
        return false;
      }
      params.emplace_back(want.substr(1, want.size() - 2), encoded->decode());
    } else if (want != path[i]) {
      return false;
    }
  }
  return pattern.size() == path.size();
}

}  // namespace

void Router::Add(std::string_view method, std::string_view pattern, Handler handler) {
  Route route;
  route.method = std::string(method);
  for (std::string_view segment : SplitPath(pattern)) {
    route.segments.emplace_back(segment);
  }
  route.pattern = std::string(pattern);
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
}

std::vector<Router::RouteEntry> Router::Table() const {
  std::vector<RouteEntry> table;
  table.reserve(routes_.size());
  for (const Route& route : routes_) {
    table.push_back({.method = route.method, .pattern = route.pattern});
  }
  return table;
}

void Router::SetFallback(Handler handler) {
  fallback_ = std::move(handler);
}

boost::asio::awaitable<net::HttpResponse> Router::Dispatch(net::HttpRequest request) const {
  const std::string path(request.Path());
  const std::vector<std::string_view> segments = SplitPath(path);
  std::vector<std::string_view> allowed;
  PathParams params;
  for (const Route& route : routes_) {
    if (!Match(route.segments, segments, path, params)) {
      continue;
    }
    if (route.method == "*" || route.method == request.method) {
      request.path_params = std::move(params);
      co_return co_await route.handler(std::move(request));
    }
    if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) {
      allowed.emplace_back(route.method);
    }
  }
  if (!allowed.empty()) {
    std::string allow;
    for (std::string_view method : allowed) {
      allow += allow.empty() ? "" : ", ";
      allow += method;
    }
    net::HttpResponse response = net::HttpResponse::JsonError(
        405,
        "method_not_allowed",
        "method " + request.method + " is not allowed for " + path + " (allowed: " + allow + ")");
    response.headers.Set("Allow", allow);
    co_return response;
  }
  if (fallback_) {
    co_return co_await fallback_(std::move(request));
  }
  co_return net::HttpResponse::JsonError(404, "not_found", "no such endpoint: " + path);
}

Handler Router::AsHandler() const {
  return [this](net::HttpRequest request) { return Dispatch(std::move(request)); };
}

}  // namespace amoauth::http_server
