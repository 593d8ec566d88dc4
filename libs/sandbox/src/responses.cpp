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

net::HttpResponse MethodNotAllowedResponse(std::string_view allow) {
  net::HttpResponse response =
      ProblemResponse(405, "Method Not Allowed", "This method is not allowed for the resource");
  response.headers.Set("Allow", allow);
  return response;
}

}  // namespace amoauth::sandbox
