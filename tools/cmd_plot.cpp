// `poolguard plot FILE`: a recording of `poolguard record` (docs/TIMELINE.md) drawn as one
// self-contained SVG chart (tools/recording_reader.h reads, tools/timeline_chart.h draws).
#include <errno.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tools/args.h"
#include "tools/commands.h"
#include "tools/output.h"
#include "tools/recording_reader.h"
#include "tools/text.h"
#include "tools/timeline_chart.h"

namespace pg::tool {

namespace {

const char kPlotUsage[] =
    "usage: poolguard plot FILE [-o OUT.svg] [--pid PID] [--title TEXT]\n"
    "\n"
    "Draws a recording of `poolguard record` (FILE, or standard input for '-') as a\n"
    "self-contained SVG chart: bytes in use over time stacked by tier (small, medium, large)\n"
    "under the pools' free bytes, RSS, the limit, the peak, the events, and the largest stacks\n"
    "of the heap profile at the peak. Several processes are summed per tick.\n"
    "  -o OUT.svg     where to write it: '-' for stdout; by default FILE with its extension\n"
    "                 replaced by .svg (stdout when FILE is '-')\n"
    "  --pid PID      draw process PID only\n"
    "  --title TEXT   the heading (default: the command recorded)\n"
    "Exit status 1 when FILE cannot be read or is not a recording of format version 1, holds\n"
    "no sample (of PID), or OUT cannot be written.\n";

// FILE with its extension replaced by .svg ("run.pgrec" -> "run.svg"); ".svg" appended when it
// has none or has .svg already (the input is never overwritten).
std::string default_output(const std::string& file) {
  size_t slash = file.rfind('/');
  size_t dot = file.rfind('.');
  bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
  if (!has_ext || file.substr(dot) == ".svg") return file + ".svg";
  return file.substr(0, dot) + ".svg";
}

}  // namespace

int cmd_plot(const std::vector<std::string>& args) {
  std::string file, output, title;
  bool have_file = false, have_output = false, have_title = false;
  int pid = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = args[i];
    std::string value;
    if (is_help(a)) return help(kPlotUsage);
    if (a == "-o") {
      if (!option_value(args, &i, &value) || value.empty()) {
        return usage_error(kPlotUsage, "-o needs OUT.svg");
      }
      output = value;
      have_output = true;
    } else if (is_option(a, "--pid")) {
      if (!option_value(args, &i, &value)) return usage_error(kPlotUsage, "--pid needs PID");
      if (!parse_pid(value, &pid)) {
        return usage_error(kPlotUsage, "--pid: not a process id: '" + value + "'");
      }
    } else if (is_option(a, "--title")) {
      if (!option_value(args, &i, &value)) return usage_error(kPlotUsage, "--title needs TEXT");
      title = value;
      have_title = true;
    } else if (a != "-" && !a.empty() && a[0] == '-') {
      return usage_error(kPlotUsage, "unknown option '" + a + "'");
    } else if (have_file) {
      return usage_error(kPlotUsage, "one FILE only");
    } else {
      if (a.empty()) return usage_error(kPlotUsage, "FILE is empty");
      file = a;
      have_file = true;
    }
  }
  if (!have_file) return usage_error(kPlotUsage, "FILE missing");
  const bool from_stdin = file == "-";
  if (!have_output) output = from_stdin ? "-" : default_output(file);
  const std::string name = from_stdin ? "standard input" : file;

  std::ifstream in_file;
  if (!from_stdin) {
    in_file.open(file, std::ios::in | std::ios::binary);
    if (!in_file) {
      fprintf(stderr, "poolguard: cannot read %s: %s\n", file.c_str(), strerror(errno));
      return 1;
    }
  }
  timeline::Recording rec;
  std::string error;
  if (!timeline::read_recording(from_stdin ? std::cin : in_file, &rec, &error)) {
    fprintf(stderr, "poolguard: %s: %s\n", name.c_str(), error.c_str());
    return 1;
  }
  for (const std::string& note : rec.notes) {
    fprintf(stderr, "poolguard: %s: %s\n", name.c_str(), note.c_str());
  }
  timeline::ChartData data;
  if (!timeline::chart_data(rec, pid, &data, &error)) {
    fprintf(stderr, "poolguard: %s: %s\n", name.c_str(), error.c_str());
    return 1;
  }
  if (have_title) data.title = title;
  std::string svg = timeline::render_svg(data, timeline::ChartOptions{});

  // The output is opened only now, so that a recording that cannot be read leaves no file.
  const bool to_stdout = output == "-";
  if (!write_output(output, svg)) return 1;
  if (!to_stdout) {
    fprintf(stderr, "poolguard: wrote %s: %zu ticks, peak %s at %s\n", output.c_str(),
            data.ticks.size(), bytes(data.peak_bytes).c_str(),
            timeline::time_label(data.peak_t, data.interval_s).c_str());
  }
  return 0;
}

}  // namespace pg::tool
