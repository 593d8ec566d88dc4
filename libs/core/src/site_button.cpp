#include "amoauth/core/site_button.hpp"

#include <string_view>

#include "amoauth/core/html_escape.hpp"

namespace amoauth::core {
namespace {

void AppendAttribute(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "=\"";
  out += HtmlEscape(value);
  out += '"';
}

}  // namespace

std::string RenderSiteButton(const SiteButton& b) {
  std::string out = "<script";
  AppendAttribute(out, "class", ButtonScriptClass(b.platform));
  AppendAttribute(out, "charset", "utf-8");
  AppendAttribute(out, "data-client-id", b.client_id);
  // The script falls back to its own text only when the attribute is absent; an empty value would
  // render an empty button.
  if (!b.title.empty()) {
    AppendAttribute(out, "data-title", b.title);
  }
  AppendAttribute(out, "data-compact", b.compact ? "true" : "false");
  AppendAttribute(out, "data-color", b.color);
  AppendAttribute(out, "data-state", b.state);
  AppendAttribute(out, "data-mode", ToString(b.mode));
  AppendAttribute(out, "src", b.script_url);
  out += "></script>";
  return out;
}

}  // namespace amoauth::core
