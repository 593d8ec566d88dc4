#include "responses.hpp"

#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace amoauth::sandbox {

net::HttpResponse JsonResponse(int status,
                               const boost::json::value& body,
                               std::string_view content_type) {
  net::HttpResponse response;
  response.status = status;
  response.headers.Set("Content-Type", content_type);
  response.body = boost::json::serialize(body);
  return response;
}

net::HttpResponse HtmlResponse(int status, std::string body) {
  net::HttpResponse response;
  response.status = status;
  response.headers.Set("Content-Type", "text/html; charset=utf-8");
  response.headers.Set("Cache-Control", "no-store");
  response.body = std::move(body);
  return response;
}

net::HttpResponse RedirectResponse(std::string_view location) {
  net::HttpResponse response;
  response.status = 302;
  response.headers.Set("Location", location);
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

net::HttpResponse OAuthProblemResponse(const OAuthError& error) {
  net::HttpResponse response =
      JsonResponse(error.status,
                   boost::json::object{
                       {"hint", error.hint},
                       {"title", "Некорректный запрос"},
                       {"type", "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"},
                       {"status", error.status},
                       {"detail", "В запросе отсутствует ряд параметров или параметры невалидны"},
                   });
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

net::HttpResponse ProblemResponse(int status, std::string_view title, std::string_view detail) {
  return JsonResponse(status,
                      boost::json::object{
                          {"title", title},
                          {"type", "https://httpstatus.es/" + std::to_string(status)},
                          {"status", status},
                          {"detail", detail},
                      },
                      "application/problem+json");
}

net::HttpResponse UnauthorizedResponse() {
  return ProblemResponse(401, "Unauthorized", "Неверный логин или пароль");
}

net::HttpResponse TooManyRequestsResponse(Flavor flavor, std::chrono::seconds retry_after) {
  boost::json::object body{
      {"title", "Too Many Requests"},
      {"type", "https://httpstatus.es/429"},
      {"status", 429},
      {"detail",
       "You have sent too many requests in a given amount of time. Please try again later."},
  };
  if (flavor == Flavor::kKommo) {
    body["retry_after"] = retry_after.count();
  }
  net::HttpResponse response = JsonResponse(429, body, "application/problem+json");
  response.headers.Set("Retry-After", std::to_string(retry_after.count()));
  return response;
}

net::HttpResponse NginxErrorResponse(int status) {
  // nginx's own reason phrases (ngx_http_special_response.c), which differ from RFC 9110's in
  // places ("Service Temporarily Unavailable", "Gateway Time-out").
  std::string_view reason = "Error";
  switch (status) {
    case 400:
      reason = "Bad Request";
      break;
    case 401:
      reason = "Authorization Required";
      break;
    case 403:
      reason = "Forbidden";
      break;
    case 404:
      reason = "Not Found";
      break;
    case 429:
      reason = "Too Many Requests";
      break;
    case 500:
      reason = "Internal Server Error";
      break;
    case 502:
      reason = "Bad Gateway";
      break;
    case 503:
      reason = "Service Temporarily Unavailable";
      break;
    case 504:
      reason = "Gateway Time-out";
      break;
    default:
      break;
  }
  const std::string title = std::to_string(status) + " " + std::string(reason);
  net::HttpResponse response;
  response.status = status;
  response.headers.Set("Content-Type", "text/html");
  response.body = "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" +
                  title + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
  return response;
}

net::HttpResponse MethodNotAllowedResponse(std::string_view allow) {
  net::HttpResponse response =
      ProblemResponse(405, "Method Not Allowed", "This method is not allowed for the resource");
  response.headers.Set("Allow", allow);
  return response;
}

}  // namespace amoauth::sandbox
