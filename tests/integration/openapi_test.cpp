// docs/openapi.json against the router: every route WebApp adds is documented, with its method,
// and every documented operation is a route; and GET /openapi.json serves the document as built.
// (tests/e2e/openapi.test.mjs checks real responses against the document's schemas.)
#include "amoauth/web/openapi.hpp"

#include <set>
#include <string>
#include <utility>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "service_harness.hpp"

namespace amoauth::testing {
namespace {

using Operation = std::pair<std::string, std::string>;  // (lower-case method, OpenAPI path)

/// The HTTP methods an OpenAPI path item may hold operations for.
const std::set<std::string> kMethods = {
    "get", "put", "post", "delete", "options", "head", "patch", "trace"};

boost::json::object Document() {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(web::OpenApiDocument(), ec);
  EXPECT_FALSE(ec) << "docs/openapi.json is not JSON: " << ec.message();
  return ec || !doc.is_object() ? boost::json::object{} : doc.as_object();
}

/// A router pattern as an OpenAPI path: `{path*}` (the rest of the path) is written `{path}`.
std::string OpenApiPath(std::string pattern) {
  if (const auto star = pattern.find("*}"); star != std::string::npos) {
    pattern.erase(star, 1);
  }
  return pattern;
}

std::string Lower(std::string text) {
  for (char& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

TEST(OpenApi, EveryRouteIsDocumentedAndEveryDocumentedOperationIsARoute) {
  ServiceHarness h;
  const boost::json::object doc = Document();
  ASSERT_EQ(doc.at("openapi").as_string(), "3.1.0");
  const boost::json::object& paths = doc.at("paths").as_object();

  std::set<Operation> documented;
  for (const auto& [path, item] : paths) {
    for (const auto& [key, operation] : item.as_object()) {
      if (kMethods.contains(std::string(key))) {
        documented.emplace(std::string(key), std::string(path));
      }
    }
  }

  std::set<Operation> routed;
  for (const auto& route : h.Routes().Table()) {
    // The admin UI is pages and forms for a person behind a session cookie, not an API a program
    // calls; docs/admin-ui.md describes it, and the document says so.
    if (route.pattern == "/admin" || route.pattern.starts_with("/admin/")) {
      continue;
    }
    const std::string path = OpenApiPath(route.pattern);
    if (route.method == "*") {
      // Any method: the document lists the ones that make sense, at least GET.
      EXPECT_TRUE(documented.contains({"get", path}))
          << "route * " << route.pattern << " is not in docs/openapi.json";
      for (const auto& op : documented) {
        if (op.second == path) {
          routed.insert(op);
        }
      }
      continue;
    }
    EXPECT_TRUE(documented.contains({Lower(route.method), path}))
        << "route " << route.method << " " << route.pattern
        << " is not in docs/openapi.json: document it (paths." << path << "." << Lower(route.method)
        << ")";
    routed.emplace(Lower(route.method), path);
  }
  for (const auto& [method, path] : documented) {
    EXPECT_TRUE(routed.contains({method, path}))
        << "docs/openapi.json documents " << method << " " << path << ", which no route serves";
  }
  EXPECT_GE(routed.size(), 20U);
}

TEST(OpenApi, EveryOperationHasAnIdAndDescribesItsResponses) {
  const boost::json::object doc = Document();
  std::set<std::string> ids;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [key, operation] : item.as_object()) {
      if (!kMethods.contains(std::string(key))) {
        continue;
      }
      const auto& op = operation.as_object();
      ASSERT_TRUE(op.contains("operationId")) << key << " " << path;
      EXPECT_TRUE(ids.insert(std::string(op.at("operationId").as_string())).second)
          << "operationId used twice: " << op.at("operationId").as_string();
      ASSERT_TRUE(op.contains("responses")) << key << " " << path;
      EXPECT_FALSE(op.at("responses").as_object().empty()) << key << " " << path;
    }
  }
}

TEST(OpenApi, ServedPubliclyAsBuiltWithAnETag) {
  ServiceHarness h;
  auto served = h.Call("GET", "/openapi.json", {}, std::string{});
  ASSERT_EQ(served.status, 200) << served.body;
  EXPECT_EQ(served.headers.Get("Content-Type").value_or(""), "application/json; charset=utf-8");
  EXPECT_EQ(served.body, web::OpenApiDocument());
  EXPECT_NE(served.headers.Get("Cache-Control").value_or("").find("public"), std::string::npos);
  const std::string etag(served.headers.Get("ETag").value_or(""));
  ASSERT_FALSE(etag.empty());

  auto again = h.CallWithHeader("GET", "/openapi.json", "If-None-Match", etag);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.headers.Get("ETag").value_or(""), etag);
  auto stale = h.CallWithHeader("GET", "/openapi.json", "If-None-Match", "\"other\"");
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, web::OpenApiDocument());
}

}  // namespace
}  // namespace amoauth::testing
