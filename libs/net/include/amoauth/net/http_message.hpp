#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "amoauth/core/result.hpp"

namespace amoauth::net {

/// Header fields in arrival order. Names compare case-insensitively. No Beast types here:
/// this header is included everywhere, Beast only in the server and client .cpp files.
class HttpHeaders {
 public:
  struct Field {
    std::string name;
    std::string value;
  };

  /// First value of `name`, if present.
  [[nodiscard]] std::optional<std::string_view> Get(std::string_view name) const;
  /// Replaces every field called `name` with one.
  void Set(std::string_view name, std::string_view value);
  void Add(std::string_view name, std::string_view value);
  void Remove(std::string_view name);
  /// Room for `fields` fields, so that adding them one by one allocates once.
  void Reserve(std::size_t fields) { fields_.reserve(fields); }
  [[nodiscard]] const std::vector<Field>& All() const { return fields_; }

 private:
  std::vector<Field> fields_;
};

/// A field name (or a method): one or more token characters (RFC 9110 §5.1, §5.6.2).
[[nodiscard]] bool IsHttpToken(std::string_view text) noexcept;
/// A field value that cannot end its field or the head early: no CR, LF or NUL. Three memchr
/// scans: std::string_view::find_first_of took 1.8 µs on a 1 kB Authorization value.
[[nodiscard]] bool IsSafeFieldValue(std::string_view value) noexcept;

using QueryParams = std::vector<std::pair<std::string, std::string>>;

/// Decodes an encoded query string or form body ("a=1&b=x%20y", '+' is a space) with Boost.URL.
/// Errors: Errc::kInvalidArgument for bad percent-encoding.
[[nodiscard]] Result<QueryParams> ParseQuery(std::string_view encoded);
/// First value of `name` in `params`.
[[nodiscard]] std::optional<std::string_view> Find(const QueryParams& params,
                                                   std::string_view name);

struct HttpRequest {
  std::string method;  ///< "GET", "POST", …
  std::string target;  ///< origin-form as received: "/path?query"
  HttpHeaders headers;
  std::string body;
  std::string remote_address;  ///< peer IP, for logs
  std::string request_id;      ///< assigned by the server; echoed as X-Request-Id
  std::vector<std::pair<std::string, std::string>> path_params;  ///< filled by the router

  [[nodiscard]] std::string_view Path() const;      ///< target up to '?'
  [[nodiscard]] std::string_view RawQuery() const;  ///< after '?', still encoded; "" if none
  [[nodiscard]] std::string_view PathParam(std::string_view name) const;  ///< "" if absent
};

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;
  std::string body;
  /// Test servers only (the sandbox's scripted faults, docs/sandbox.md): http_server closes the
  /// connection without answering. Everything else above is ignored.
  bool drop_connection = false;
  /// Test servers only: > 0 makes http_server send the head at once and then the body
  /// `trickle_bytes` at a time, `trickle_interval` apart (a slow body).
  std::size_t trickle_bytes = 0;
  std::chrono::milliseconds trickle_interval{0};

  [[nodiscard]] static HttpResponse Json(int status, std::string body);
  [[nodiscard]] static HttpResponse Html(int status, std::string body);
  [[nodiscard]] static HttpResponse Text(int status, std::string body);
  /// 302/303 with Location; the body stays empty.
  [[nodiscard]] static HttpResponse Redirect(int status, std::string_view location);
  /// JSON `{"error": error, "message": message}`, both properly escaped.
  [[nodiscard]] static HttpResponse JsonError(int status,
                                              std::string_view error,
                                              std::string_view message);
};

}  // namespace amoauth::net
