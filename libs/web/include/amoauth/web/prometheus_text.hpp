#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "amoauth/service/metrics.hpp"

/// Prometheus's text exposition format, version 0.0.4, written by hand: prometheus-cpp is not
/// packaged for Debian 12, and what amoauth needs of it is about a hundred lines.
namespace amoauth::web {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\`, `"` and line feeds escaped, as the format requires.
[[nodiscard]] std::string EscapeLabelValue(std::string_view value);
/// A HELP text with `\` and line feeds escaped.
[[nodiscard]] std::string EscapeHelp(std::string_view help);
/// A sample value: integers as integers, the rest as the shortest text that reads back exactly;
/// +Inf, -Inf and NaN as the format spells them.
[[nodiscard]] std::string FormatSampleValue(double value);

/// Builds one exposition: a family's `# HELP` and `# TYPE` lines, then its samples.
class PrometheusText {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  /// `type`: counter | gauge | histogram | summary | untyped.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, double value);
  void Sample(std::string_view name, double value) { Sample(name, {}, value); }

  [[nodiscard]] std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

/// GET /metrics's body: every amoauth_* family (docs/api.md, "Metrics").
[[nodiscard]] std::string RenderMetrics(const service::MetricsSample& sample);

}  // namespace amoauth::web
