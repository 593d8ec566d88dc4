#include "amoauth/net/http_message.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/param.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/url.hpp>

namespace amoauth::net {
namespace {

bool IsTokenChar(char c) noexcept {
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  }
}

char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool NameEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return AsciiLower(x) == AsciiLower(y);
         });
}

}  // namespace

bool IsHttpToken(std::string_view text) noexcept {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar);
}

bool IsSafeFieldValue(std::string_view value) noexcept {
  const auto absent = [value](char c) {
    return std::memchr(value.data(), c, value.size()) == nullptr;
  };
  return value.empty() || (absent('\r') && absent('\n') && absent('\0'));
}

namespace {

Result<QueryParams> Collect(const boost::urls::params_encoded_view& params) {
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  QueryParams out;
  out.reserve(params.size());
  for (const boost::urls::param_pct_view p : params) {
    if (p.key.empty() && !p.has_value) {
      continue;  // "a=1&&b=2", or an empty query
    }
    out.emplace_back(p.key.decode(opts), p.has_value ? p.value.decode(opts) : std::string());
  }
  return out;
}

HttpResponse WithContentType(int status, std::string body, std::string_view content_type) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers.Set("Content-Type", content_type);
  return r;
}

}  // namespace

std::optional<std::string_view> HttpHeaders::Get(std::string_view name) const {
  for (const Field& f : fields_) {
    if (NameEquals(f.name, name)) {
      return std::string_view(f.value);
    }
  }
  return std::nullopt;
}

void HttpHeaders::Set(std::string_view name, std::string_view value) {
  Remove(name);
  Add(name, value);
}

void HttpHeaders::Add(std::string_view name, std::string_view value) {
  fields_.push_back(Field{std::string(name), std::string(value)});
}

void HttpHeaders::Remove(std::string_view name) {
  std::erase_if(fields_, [name](const Field& f) { return NameEquals(f.name, name); });
}

Result<QueryParams> ParseQuery(std::string_view encoded) {
  if (encoded.empty()) {
    return QueryParams{};
  }
  // Fast path: a query that is valid RFC 3986 as it stands. Boost.URL 1.81's parse_query rebuilds
  // its view from s.data() alone, i.e. with strlen: given a view that is not NUL-terminated it
  // reads past the end and parses whatever follows (found by fuzz/query_fuzzer.cpp). It gets a
  // NUL-terminated copy; a query that passes its grammar holds no NUL, so strlen ends at the end.
  const std::string terminated(encoded);
  if (auto view = boost::urls::parse_query(terminated)) {
    return Collect(*view);
  }
  // Otherwise tell bad percent-escapes (rejected) from characters a query may not hold
  // literally, such as '[' or '|', which real clients send anyway: those are encoded first.
  auto pct = boost::urls::make_pct_string_view(encoded);
  if (!pct) {
    return Fail(Errc::kInvalidArgument);
  }
  boost::urls::url holder;
  holder.set_encoded_query(*pct);
  return Collect(boost::urls::params_encoded_view(holder.encoded_params()));
}

std::optional<std::string_view> Find(const QueryParams& params, std::string_view name) {
  for (const auto& [key, value] : params) {
    if (key == name) {
      return std::string_view(value);
    }
  }
  return std::nullopt;
}

std::string_view HttpRequest::Path() const {
  const std::string_view t(target);
  return t.substr(0, t.find('?'));
}

std::string_view HttpRequest::RawQuery() const {
  const std::string_view t(target);
  const std::size_t q = t.find('?');
  if (q == std::string_view::npos) {
    return {};
  }
  std::string_view query = t.substr(q + 1);
  return query.substr(0, query.find('#'));
}

std::string_view HttpRequest::PathParam(std::string_view name) const {
  for (const auto& [key, value] : path_params) {
    if (key == name) {
      return value;
    }
  }
  return {};
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  return WithContentType(status, std::move(body), "application/json; charset=utf-8");
}

HttpResponse HttpResponse::Html(int status, std::string body) {
  return WithContentType(status, std::move(body), "text/html; charset=utf-8");
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  return WithContentType(status, std::move(body), "text/plain; charset=utf-8");
}

HttpResponse HttpResponse::Redirect(int status, std::string_view location) {
  HttpResponse r;
  r.status = status;
  r.headers.Set("Location", location);
  return r;
}

HttpResponse HttpResponse::JsonError(int status, std::string_view error, std::string_view message) {
  boost::json::object body;
  body["error"] = error;
  body["message"] = message;
  return Json(status, boost::json::serialize(body));
}

}  // namespace amoauth::net
