// recording_fuzzer: `poolguard plot`'s reading of a recording (tools/json.*,
// tools/recording_reader.*) and its chart (tools/timeline_chart.*) on any text. A recording is a
// file anyone may hand to the tool: reading it must refuse what it cannot use with a reason, and
// whatever it accepts must draw, without a read out of bounds, UB or a hang.
//
// Input: the recording's text, as is. Checked: a refusal says why; an accepted recording has a
// sample (the reader's promise) and draws, for every process and for the first sample's
// process, one SVG document with no NaN or infinite coordinate.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "tools/json.h"
#include "tools/recording_reader.h"
#include "tools/timeline_chart.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  fprintf(stderr, "recording_fuzzer: MODEL MISMATCH: %s: %s\n", what, detail.c_str());
  abort();
}

void draw(const pg::timeline::Recording& r, int64_t pid) {
  pg::timeline::ChartData data;
  std::string error;
  if (!pg::timeline::chart_data(r, pid, &data, &error)) {
    if (error.empty()) fail("chart_data refused without a reason", "");
    return;
  }
  pg::timeline::ChartOptions options;
  options.max_points = 64;  // thinning on small inputs too
  std::string svg = pg::timeline::render_svg(data, options);
  if (svg.find("<svg") == std::string::npos || svg.rfind("</svg>") == std::string::npos) {
    fail("not an SVG document", svg.substr(0, 200));
  }
  // Coordinates come out of arithmetic on the file's numbers: a NaN or an infinity there is a
  // chart no viewer draws. Text from the file is escaped into elements, never into attributes
  // that hold numbers, so look in the numeric attributes only.
  for (const char* attr : {" x=\"", " y=\"", " width=\"", " height=\"", " points=\"", " d=\""}) {
    for (size_t at = svg.find(attr); at != std::string::npos; at = svg.find(attr, at + 1)) {
      size_t start = at + std::char_traits<char>::length(attr), end = svg.find('"', start);
      std::string value = svg.substr(start, end - start);
      if (value.find("nan") != std::string::npos || value.find("inf") != std::string::npos) {
        fail("a coordinate that is not a number", value.substr(0, 200));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  pg::json::Value value;
  pg::json::Error jerr;
  pg::json::parse(text, &value, &jerr);  // the parser alone, on every input

  std::istringstream in(text);
  pg::timeline::Recording r;
  std::string error;
  if (!pg::timeline::read_recording(in, &r, &error)) {
    if (error.empty()) fail("a recording refused without a reason", "");
    return 0;
  }
  if (r.samples.empty()) fail("a recording accepted without a sample", "");
  draw(r, 0);
  draw(r, r.samples.front().pid);
  return 0;
}
