// The Prometheus text exposition format (version 0.0.4) and OpenMetrics 1.0 of the figures of
// processes, for `poolguard export`: one time series per process (and size class), families
// grouped, label values escaped and made valid UTF-8. Plain data in, text out.
#pragma once

#include <string>
#include <vector>

#include "tools/reading.h"

namespace pg::tool {

enum class MetricsFormat {
  kPrometheus,   // text/plain; version=0.0.4
  kOpenMetrics,  // application/openmetrics-text; version=1.0.0 (counter families named without
                 // _total, UNIT lines for the families in bytes and seconds, a closing "# EOF")
};

// The Content-Type header value of each format.
const char* metrics_content_type(MetricsFormat f);

// `s` as a label value between double quotes: backslash, double quote and newline escaped, bytes
// that are not UTF-8 (and NUL) replaced by U+FFFD.
std::string metrics_label_value(const std::string& s);

// Every metric of every reading (docs/FLEET.md lists them), one HELP and one TYPE line (and in
// OpenMetrics a UNIT line when the name ends in one) per family and all of its samples together;
// poolguard_processes (how many readings) even with none.
std::string render_metrics(const std::vector<Reading>& readings, MetricsFormat f);

}  // namespace pg::tool
