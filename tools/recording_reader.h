// Reading a recording of `poolguard record` (docs/TIMELINE.md, format version 1: JSON lines)
// into plain structs, and the per-tick series `poolguard plot` draws from it. Knows the file
// format and nothing of SVG (tools/timeline_chart.h draws).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "tools/timeline_chart.h"

namespace pg::timeline {

// The version of the format this reader knows; a file of another version is refused whole (an
// incompatible change raises it, docs/TIMELINE.md).
constexpr int kFormatVersion = 1;

struct Header {
  std::string poolguard;             // the recorder's version
  std::string time;                  // wall clock at t = 0, ISO 8601 UTC
  uint64_t time_unix_ms = 0;         // the same, in milliseconds since 1970
  double interval_s = 0;             // the sampling interval
  std::vector<std::string> command;  // empty when a running process was recorded
  int64_t pid = 0;                   // the command's, or the process recorded
  uint64_t profile_bytes = 0;        // --profile's sampling period, 0 if none
};

struct Process {
  double t = 0;
  int64_t pid = 0, ppid = 0;
  std::string comm;
  uint64_t pool_size = 0;  // bytes of a pool unit (0: not given)
};

// The fields of a sample line the chart uses (the others are skipped).
struct Sample {
  double t = 0;
  int64_t pid = 0;
  uint64_t small_in_use = 0, small_held = 0, medium_in_use = 0, medium_held = 0;
  uint64_t large_bytes = 0, live_bytes = 0, rss_bytes = 0, limit_bytes = 0;
  uint64_t pools_in_use = 0, limit_in_use = 0;
  // The process's high-water marks (0 in recordings made before they were added).
  uint64_t pools_peak = 0, limit_peak = 0;
};

// Event lines are read into timeline::Event, and the frames of peak stacks into timeline::Frame
// (tools/timeline_chart.h), as the chart takes them.

struct PeakStack {
  uint64_t bytes = 0, blocks = 0, samples = 0;
  std::vector<Frame> frames;  // innermost first
};

struct Peak {
  double t = 0;
  int64_t pid = 0;
  uint64_t live_bytes = 0;
  bool has_profile = false;  // "profile" was not null
  uint64_t profile_sample_bytes = 0, profile_bytes = 0, profile_blocks = 0;
  std::vector<PeakStack> stacks;  // largest first
};

struct End {
  double t = 0;
  uint64_t samples = 0;
  bool has_exit_status = false;
  int64_t exit_status = 0;
};

struct Recording {
  Header header;
  std::vector<Process> processes;
  std::vector<Sample> samples;
  std::vector<Event> events;
  std::vector<Peak> peaks;
  bool has_end = false;  // false for a recording cut short (the recorder killed)
  End end;
  // Things worth telling whoever reads it, none fatal ("line 812 is cut short: ignored").
  std::vector<std::string> notes;
};

// Reads a recording. Returns false with *error set ("line 3, column 17: expected ',' or '}'")
// when it cannot be read: no header line, another version, a line that is not a JSON object, a
// known line with a field missing or of the wrong type, no sample at all. A last line cut short
// (no newline at its end, not valid JSON: the recorder was stopped while writing it) is left out
// with a note; lines of unknown types and unknown fields are skipped.
bool read_recording(std::istream& in, Recording* out, std::string* error);

// What `poolguard plot` draws of a recording: the processes' samples summed per tick (samples
// with the same t), or those of process `pid` only when it is not 0; the peak, events and stacks
// of those processes. Returns false with *error set when there is no sample to draw (of `pid`).
bool chart_data(const Recording& r, int64_t pid, ChartData* out, std::string* error);

}  // namespace pg::timeline
