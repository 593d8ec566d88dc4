#pragma once

#include <string_view>

namespace amoauth::web {

/// docs/openapi.json as it was at build time (cmake/EmbedFile.cmake): the OpenAPI 3.1 description
/// of every route WebApp adds, served at GET /openapi.json.
[[nodiscard]] std::string_view OpenApiDocument();

}  // namespace amoauth::web
