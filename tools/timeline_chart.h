// The chart of `poolguard plot`: memory over time as one self-contained SVG. Plain data in, SVG
// text out (no file format here: tools/recording_reader.h turns a recording into ChartData), so
// the unit tests draw synthetic timelines.
//
// What it draws, top to bottom: the title and a caption; a legend; the plot: bytes in use
// stacked by tier (small, medium when there is any, large) with the pools' free bytes as a
// lighter band above them (their top is what a limit counts), RSS as a line, the limit as a
// dashed step line, the peak as a marker with its bytes and time; one lane per kind of event
// with a tick per event; the time axis; and the largest stacks of the heap profile at the peak.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pg::timeline {

// One tick of the timeline: the figures of the processes drawn, summed, at time t.
struct Tick {
  double t = 0;                               // seconds since the recording started
  uint64_t small = 0, medium = 0, large = 0;  // bytes in use: blocks of each tier
  uint64_t small_held = 0, medium_held = 0;   // bytes of the small and medium pools
  uint64_t rss = 0;
  uint64_t limit = 0;  // 0: no limit line at this tick
};

// Kinds of events with a lane of their own, in lane order; others are not drawn.
inline const char* const kEventKinds[] = {"start", "exit", "guard", "limit_refused", "error"};

struct Event {
  double t = 0;
  std::string kind;  // one of kEventKinds
  int64_t pid = 0;
  uint64_t count = 0;
};

// A frame of a profile stack, as the recording names it; any field may be empty.
struct Frame {
  std::string pc, function, module, offset, file_line;
};

struct Stack {
  uint64_t bytes = 0;
  std::vector<Frame> frames;  // innermost first
};

struct ChartData {
  std::string title;        // heading, e.g. "Memory of ./prog args"
  std::string caption;      // the line below it: pid, start time, interval, samples
  double interval_s = 0;    // the sampling interval (for the precision of times), 0 if unknown
  std::vector<Tick> ticks;  // in time order, at least one
  std::vector<Event> events;
  std::string limit_note;  // after "limit" in the legend, e.g. "(sum of 3 processes' limits)"

  bool has_peak = false;
  double peak_t = 0;
  uint64_t peak_bytes = 0;
  std::string peak_note;  // after the peak label, e.g. "all processes"
  // A second line under the peak label, when the process held more between samples than any
  // sample shows (its own high-water marks say so), e.g. "between samples: up to 72 MiB charged
  // to the limit"; empty otherwise.
  std::string peak_between;

  // The stacks panel: the heading, then the stacks (largest first) with their share of
  // profile_bytes, or `stacks_note` alone when there are none to show.
  std::string stacks_heading;
  uint64_t profile_bytes = 0;
  std::vector<Stack> stacks;
  std::string stacks_note;
};

struct ChartOptions {
  int width = 1280;             // pixels
  size_t max_points = 2000;     // per series; longer series are downsampled (downsample())
  size_t top_stacks = 10;       // stacks listed at most
  size_t frames_per_stack = 4;  // innermost frames named per stack, at most
};

std::string render_svg(const ChartData& data, const ChartOptions& options);

// --- Pieces, exposed for the tests -------------------------------------------------------------

struct Point {
  double x = 0, y = 0;
};

// At most `max_points` (at least 4) of `points`: the first and the last, and between them, per
// bucket of consecutive points, the lowest and the highest in their order. A maximum (the peak)
// or a minimum is never lost, however long the series; shorter series are returned unchanged.
std::vector<Point> downsample(const std::vector<Point>& points, size_t max_points);

// An axis from 0: the step between ticks and the top (a multiple of the step, >= max_value).
struct Axis {
  double step = 1, top = 1;
};
// Bytes: steps of 1, 2 or 5 (times 1, 10, 100) B, KiB, MiB, GiB or TiB, at most `max_ticks`
// steps to the top.
Axis byte_axis(double max_value, int max_ticks = 6);
// A tick of a byte axis with step `step`, in the step's unit: "0", "500 KiB", "1500 KiB", "2 GiB".
std::string byte_tick_label(double value, double step);
// Seconds: steps of 1, 2 or 5 times a power of ten, at most `max_ticks` steps to the top.
Axis time_axis(double max_value, int max_ticks = 10);
std::string time_tick_label(double value, double step);  // "0 s", "0.5 s", "120 s"

// A time for labels: as many decimals as the sampling interval has, trailing zeros dropped
// ("3.4 s" with interval 0.1, "12 s" with 1; interval 0: up to two decimals).
std::string time_label(double t, double interval);

// A function name cut to at most `max` code points for a label: the parameter list dropped
// first, then template arguments shown as <…>, then the start cut ("…_M_realloc_insert").
std::string short_function(const std::string& name, size_t max);

}  // namespace pg::timeline
