// The SVG chart of `poolguard plot` (tools/timeline_chart.h).
//
// The tiers are stacked by painting, back to front, areas from the time axis up to cumulative
// tops: held (in use plus the pools' free bytes, plus large blocks), then in use, then small and
// medium, then small. Each top is a series of its own and is downsampled on its own, which keeps
// every top's maxima; a shared lower edge would have to be downsampled in step with the upper one.
#include "tools/timeline_chart.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "tools/flamegraph.h"
#include "tools/text.h"

namespace pg::timeline {

namespace {

using flame::xml_escape;
using tool::bytes;
using tool::code_points;
using tool::first_code_points;
using tool::fixed;

// Okabe-Ito colours, told apart with the common colour-vision deficiencies: the tiers blue,
// orange and green, the limit vermillion; the pools' free bytes a pale blue-grey under them.
constexpr const char* kSmallColour = "#0072B2";
constexpr const char* kMediumColour = "#E69F00";
constexpr const char* kLargeColour = "#009E73";
constexpr const char* kFreeColour = "#cdd9e5";
constexpr const char* kRssColour = "#222222";
constexpr const char* kLimitColour = "#D55E00";
constexpr const char* kGridColour = "#e3e3e3";
constexpr const char* kMutedText = "#555555";

struct EventStyle {
  const char* kind;
  const char* label;
  const char* colour;
};
// One per kEventKinds entry, in its order.
constexpr EventStyle kEventStyles[] = {
    {"start", "start", "#56B4E9"}, {"exit", "exit", "#777777"},
    {"guard", "guard", "#CC79A7"}, {"limit_refused", "limit refused", "#D55E00"},
    {"error", "error", "#111111"},
};
static_assert(std::size(kEventStyles) == std::size(kEventKinds));

// Layout, in pixels. Widths of text are estimated from the fonts' mean advance: 0.54 em for
// DejaVu Sans and Verdana (0.6 bold; wider than Arial or Helvetica, so the estimates err on the
// side of room), 0.6 em for monospace fonts. Labels are placed or cut by these estimates.
constexpr double kEm = 0.54;
constexpr double kBoldEm = 0.6;
constexpr double kMonoEm = 0.6;
constexpr double kLeft = 104;  // y tick labels and event lane names
constexpr double kRightPad = 24;
constexpr double kPlotHeight = 360;
constexpr double kLaneHeight = 16;
constexpr double kRowHeight = 19;  // a stack's row
constexpr double kFontSize = 12;
constexpr size_t kHoverColumns = 200;  // tooltip columns across the plot, at most
// The byte axis always holds the peak and every series; it reaches up to the limit only when
// the limit is at most this many times their top, so that a far limit (or the sum of the limits
// of many processes) does not squash the chart. Above the axis the limit line is cut off, and the
// legend says so.
constexpr double kLimitOnChart = 2.0;

// The last n code points of s.
std::string tail(const std::string& s, size_t n) {
  size_t total = code_points(s);
  if (total <= n) return s;
  size_t skip = total - n, i = 0;
  for (size_t seen = 0; i < s.size(); ++i) {
    if ((s[i] & 0xc0) != 0x80 && seen++ == skip) break;
  }
  return s.substr(i);
}

// s cut to at most n code points, its end replaced by "…" when cut.
std::string cut(const std::string& s, size_t n) {
  if (code_points(s) <= n) return s;
  if (n == 0) return "";
  return first_code_points(s, n - 1) + "\u2026";
}

double text_width(const std::string& s, double size, double em = kEm) {
  return static_cast<double>(code_points(s)) * size * em;
}

std::string basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string num(double v) {
  return fixed(v, 1);
}

// The name of a frame in a stack's row: "function (file:line)", or "module+offset", or the pc.
std::string frame_label(const Frame& f, size_t max_function) {
  std::string where = f.file_line.empty() ? "" : " (" + basename(f.file_line) + ")";
  if (!f.function.empty()) return short_function(f.function, max_function) + where;
  if (!f.module.empty()) return basename(f.module) + "+" + f.offset + where;
  return f.pc.empty() ? "?" : f.pc;
}

// A frame in full, for tooltips.
std::string frame_detail(const Frame& f) {
  std::string s = f.function.empty() ? "?" : f.function;
  if (!f.file_line.empty()) s += " (" + f.file_line + ")";
  if (!f.module.empty()) s += " in " + f.module + "+" + f.offset;
  return s;
}

// A stack's frames in a row of `budget` code points: the innermost `max_frames` frames, each
// caller after "←", every function name as long as the row lets all of them be (down to 28 code
// points); else fewer frames, with longer names. "← …" ends a row that leaves callers out.
std::string stack_line(const std::vector<Frame>& frames, size_t max_frames, size_t budget) {
  if (frames.empty() || max_frames == 0) return "(no frames)";
  auto build = [&](size_t count, size_t per_name) {
    std::string line;
    for (size_t k = 0; k < count; ++k) {
      line += (k ? " \u2190 " : "") + frame_label(frames[k], per_name);
    }
    if (count < frames.size()) line += " \u2190 \u2026";
    return line;
  };
  for (size_t count = std::min(frames.size(), max_frames); count >= 1; --count) {
    for (size_t per_name = 96; per_name >= (count > 1 ? 28 : 8); per_name -= 4) {
      std::string line = build(count, per_name);
      if (code_points(line) <= budget) return line;
    }
  }
  return cut(build(1, 8), budget);
}

// A legend entry: a swatch (filled box, line, dashed line or dot) and its text.
struct LegendEntry {
  enum class Mark { kBox, kLine, kDashed, kDot } mark;
  std::string colour, text;
};

class Svg {
 public:
  std::string out;

  void text(double x, double y, const std::string& s, const std::string& attrs = "") {
    out += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (attrs.empty() ? "" : " " + attrs) +
           ">" + xml_escape(s) + "</text>\n";
  }
  void line(double x1, double y1, double x2, double y2, const std::string& attrs) {
    out += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
           num(y2) + "\" " + attrs + "/>\n";
  }
  void rect(double x, double y, double w, double h, const std::string& attrs,
            const std::string& title = "") {
    out += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" +
           num(h) + "\" " + attrs;
    if (title.empty()) {
      out += "/>\n";
    } else {
      out += "><title>" + xml_escape(title) + "</title></rect>\n";
    }
  }
};

}  // namespace

// --- Pieces ------------------------------------------------------------------------------------

std::vector<Point> downsample(const std::vector<Point>& points, size_t max_points) {
  max_points = std::max<size_t>(max_points, 4);
  if (points.size() <= max_points) return points;
  std::vector<Point> out;
  out.reserve(max_points);
  out.push_back(points.front());
  const size_t inner = points.size() - 2;  // points[1 .. size-2] go into buckets
  const size_t buckets = (max_points - 2) / 2;
  for (size_t b = 0; b < buckets; ++b) {
    size_t lo = 1 + b * inner / buckets, hi = 1 + (b + 1) * inner / buckets;
    if (lo >= hi) continue;
    size_t low = lo, high = lo;
    for (size_t i = lo; i < hi; ++i) {
      if (points[i].y < points[low].y) low = i;
      if (points[i].y > points[high].y) high = i;
    }
    out.push_back(points[std::min(low, high)]);
    if (low != high) out.push_back(points[std::max(low, high)]);
  }
  out.push_back(points.back());
  return out;
}

Axis byte_axis(double max_value, int max_ticks) {
  if (!(max_value > 0)) max_value = 1024;
  max_ticks = std::max(max_ticks, 1);
  static const double kMultiples[] = {1, 2, 5, 10, 20, 50, 100, 200, 500};
  for (int u = 0; u <= 4; ++u) {
    double unit = std::ldexp(1.0, 10 * u);
    for (double m : kMultiples) {
      double step = m * unit;
      double n = std::ceil(max_value / step - 1e-9);
      if (n <= max_ticks) return {step, std::max(n, 1.0) * step};
    }
  }
  double step = std::ldexp(1000.0, 40);  // beyond 500 TiB: steps of 1000 TiB
  return {step, std::ceil(max_value / step) * step};
}

std::string byte_tick_label(double value, double step) {
  if (value == 0) return "0";
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && step >= std::ldexp(1.0, 10 * (u + 1))) ++u;
  double v = value / std::ldexp(1.0, 10 * u);
  bool whole = std::fabs(v - std::round(v)) < 1e-6;
  return fixed(v, whole ? 0 : 1) + " " + kUnits[u];
}

Axis time_axis(double max_value, int max_ticks) {
  if (!(max_value > 0)) max_value = 1;
  max_ticks = std::max(max_ticks, 1);
  double base = std::pow(10.0, std::floor(std::log10(max_value / max_ticks)));
  for (;; base *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      double step = m * base;
      double n = std::ceil(max_value / step - 1e-9);
      if (n <= max_ticks) return {step, std::max(n, 1.0) * step};
    }
  }
}

std::string time_tick_label(double value, double step) {
  int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  if (std::fabs(value) < step * 1e-6) value = 0;  // no "-0.0"
  return fixed(value, decimals) + " s";
}

std::string time_label(double t, double interval) {
  int decimals = interval > 0 ? static_cast<int>(std::ceil(-std::log10(interval) - 1e-9)) : 2;
  std::string s = fixed(t, std::clamp(decimals, 0, 3));
  // Trailing zeros say nothing here: "0.1 s", not "0.100 s".
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s + " s";
}

std::string short_function(const std::string& name, size_t max) {
  if (code_points(name) <= max) return name;
  // The parameter list: from the '(' that matches the last ')' (what follows it, " const" and
  // the like, goes with it). A '(' at the start is "(anonymous namespace)", not parameters.
  std::string s = name;
  size_t close = s.rfind(')');
  if (close != std::string::npos) {
    int depth = 0;
    for (size_t i = close + 1; i-- > 0;) {
      if (s[i] == ')') ++depth;
      if (s[i] == '(' && --depth == 0) {
        if (i > 0) s.erase(i);
        break;
      }
    }
  }
  if (code_points(s) <= max) return s;
  // Template arguments as <…>; the '<' and '>' of operator<, operator<<, operator-> are kept.
  std::string t;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool op = (c == '<' || c == '>') && depth == 0 && i >= 8 &&
              (s.compare(i - 8, 8, "operator") == 0 ||
               (i >= 9 && s.compare(i - 9, 8, "operator") == 0 &&
                (s[i - 1] == '<' || s[i - 1] == '>' || s[i - 1] == '-')));
    if (op) {
      t += c;
    } else if (c == '<') {
      if (depth++ == 0) t += "<\u2026";
    } else if (c == '>' && depth > 0) {
      if (--depth == 0) t += '>';
    } else if (depth == 0) {
      t += c;
    }
  }
  if (code_points(t) <= max) return t;
  // The end of a qualified name is the most telling part (the method, not the namespaces).
  return max == 0 ? "" : "\u2026" + tail(t, max - 1);
}

// --- The chart ---------------------------------------------------------------------------------

std::string render_svg(const ChartData& data, const ChartOptions& options) {
  const double width = std::max(options.width, 640);
  const double left = kLeft, right = width - kRightPad, plot_w = right - left;
  Svg svg;
  std::string& o = svg.out;

  // The series: cumulative tops, so that painting each from the axis up stacks them.
  const std::vector<Tick>& ticks = data.ticks;
  bool any_medium = false, any_free = false, any_limit = false;
  double data_max = 0, t_first = ticks.empty() ? 0 : ticks.front().t, t_last = t_first;
  uint64_t limit_max = 0, limit_min = UINT64_MAX;
  std::vector<Point> small_top, medium_top, live_top, held_top, rss;
  for (const Tick& k : ticks) {
    double s = static_cast<double>(k.small);
    double m = s + static_cast<double>(k.medium);
    double l = m + static_cast<double>(k.large);
    // Held is at least in use; a tier whose pools' figure lags behind by a sample draws no band.
    double h = std::max(l, static_cast<double>(std::max(k.small_held, k.small) +
                                               std::max(k.medium_held, k.medium) + k.large));
    any_medium |= k.medium != 0;
    any_free |= h > l;
    small_top.push_back({k.t, s});
    medium_top.push_back({k.t, m});
    live_top.push_back({k.t, l});
    held_top.push_back({k.t, h});
    rss.push_back({k.t, static_cast<double>(k.rss)});
    data_max = std::max({data_max, h, static_cast<double>(k.rss)});
    if (k.limit != 0) {
      any_limit = true;
      limit_max = std::max(limit_max, k.limit);
      limit_min = std::min(limit_min, k.limit);
    }
    t_first = std::min(t_first, k.t);
    t_last = std::max(t_last, k.t);
  }
  for (const Event& e : data.events) t_last = std::max(t_last, e.t);
  if (data.has_peak) {
    data_max = std::max(data_max, static_cast<double>(data.peak_bytes));
    t_last = std::max(t_last, data.peak_t);
  }
  const bool limit_on_axis =
      any_limit && static_cast<double>(limit_max) <= kLimitOnChart * std::max(data_max, 1.0);

  // Axes. Time runs from the recording's start (t = 0) to its last tick or event; a single tick
  // is drawn one interval wide. The byte axis leaves room above the peak for its label.
  const double t0 = std::min(0.0, t_first);
  const double one_interval = data.interval_s > 0 ? data.interval_s : 1;
  double t1 = t_last;
  if (ticks.size() == 1) t1 = std::max(t1, ticks[0].t + one_interval);
  if (t1 <= t0) t1 = t0 + one_interval;
  Axis tx = time_axis(t1 - t0, std::clamp(static_cast<int>(plot_w / 90), 2, 14));
  double y_need = data_max * 1.04;
  if (data.has_peak) {
    double label_h = data.peak_between.empty() ? 40 : 56;  // one line, or two
    y_need = std::max(y_need, data.peak_bytes * kPlotHeight / (kPlotHeight - label_h));
  }
  if (limit_on_axis) y_need = std::max(y_need, static_cast<double>(limit_max) * 1.04);
  Axis ty = byte_axis(y_need, 6);
  const bool limit_drawn = any_limit && static_cast<double>(limit_min) <= ty.top;

  // Vertical layout: heading, legend, plot, time labels, event lanes, stacks.
  std::vector<LegendEntry> legend;
  legend.push_back({LegendEntry::Mark::kBox, kSmallColour, "small in use"});
  if (any_medium) legend.push_back({LegendEntry::Mark::kBox, kMediumColour, "medium in use"});
  legend.push_back({LegendEntry::Mark::kBox, kLargeColour, "large blocks"});
  if (any_free) legend.push_back({LegendEntry::Mark::kBox, kFreeColour, "free in pools"});
  legend.push_back({LegendEntry::Mark::kLine, kRssColour, "RSS"});
  if (any_limit) {
    std::string text = "limit " + bytes(limit_max);
    if (limit_min != limit_max) text = "limit " + bytes(limit_min) + " to " + bytes(limit_max);
    if (!data.limit_note.empty()) text += " " + data.limit_note;
    if (!limit_drawn) {
      text += ", above the chart";
    } else if (static_cast<double>(limit_max) > ty.top) {
      text += ", partly above the chart";
    }
    legend.push_back({LegendEntry::Mark::kDashed, kLimitColour, text});
  }
  if (data.has_peak) legend.push_back({LegendEntry::Mark::kDot, "#000000", "peak"});
  // Legend rows: entries left to right, wrapped at the right edge.
  struct Placed {
    const LegendEntry* e;
    double x;
    int row;
  };
  std::vector<Placed> legend_at;
  {
    double x = left;
    int row = 0;
    for (const LegendEntry& e : legend) {
      double w = 22 + text_width(e.text, kFontSize) + 20;
      if (x + w > right && x > left) x = left, ++row;
      legend_at.push_back({&e, x, row});
      x += w;
    }
  }
  const int legend_rows = legend_at.empty() ? 0 : legend_at.back().row + 1;
  const double legend_y = 80;
  const double plot_top = legend_y + 20.0 * (legend_rows - 1) + 22;
  const double plot_bottom = plot_top + kPlotHeight;
  const double labels_y = plot_bottom + 17;

  std::vector<const EventStyle*> lanes;
  for (const EventStyle& st : kEventStyles) {
    for (const Event& e : data.events) {
      if (e.kind == st.kind) {
        lanes.push_back(&st);
        break;
      }
    }
  }
  const double lanes_top = labels_y + 10;
  const double lanes_bottom = lanes_top + kLaneHeight * static_cast<double>(lanes.size());
  const double stacks_top = lanes_bottom + 34;
  size_t shown_stacks = std::min(data.stacks.size(), options.top_stacks);
  size_t stack_rows = shown_stacks == 0 ? 1 : shown_stacks + 1;  // + the column heads
  if (data.stacks.size() > shown_stacks) ++stack_rows;           // "and N more"
  const double height = stacks_top + 8 + kRowHeight * static_cast<double>(stack_rows) + 24;

  auto X = [&](double t) { return left + (t - t0) / (t1 - t0) * plot_w; };
  auto Y = [&](double b) { return plot_bottom - b / ty.top * kPlotHeight; };

  o.reserve(64 * 1024);
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  o += "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fixed(width, 0) +
       "\" height=\"" + fixed(height, 0) + "\" viewBox=\"0 0 " + fixed(width, 0) + " " +
       fixed(height, 0) + "\" font-family=\"DejaVu Sans, Verdana, sans-serif\" font-size=\"" +
       fixed(kFontSize, 0) + "\">\n";
  o += "<style>.mono { font-family: \"DejaVu Sans Mono\", Menlo, Consolas, monospace; } "
       ".hover:hover { fill: #000; fill-opacity: 0.06; }</style>\n";
  // Lines that leave the plot (a limit above the axis) are cut at its edges.
  o += "<defs><clipPath id=\"plot-area\"><rect x=\"" + num(left) + "\" y=\"" + num(plot_top) +
       "\" width=\"" + num(plot_w) + "\" height=\"" + num(kPlotHeight) + "\"/></clipPath></defs>\n";
  svg.rect(0, 0, width, height, "fill=\"#ffffff\"");

  // Heading.
  svg.text(left, 30, cut(data.title, static_cast<size_t>(plot_w / (18 * kBoldEm))),
           "id=\"title\" font-size=\"18\" font-weight=\"bold\"");
  svg.text(left, 52, cut(data.caption, static_cast<size_t>(plot_w / (12.5 * kEm))),
           "id=\"caption\" font-size=\"12.5\" fill=\"" + std::string(kMutedText) + "\"");

  // Legend.
  o += "<g id=\"legend\">\n";
  for (const Placed& p : legend_at) {
    double y = legend_y + 20.0 * p.row;
    const LegendEntry& e = *p.e;
    switch (e.mark) {
      case LegendEntry::Mark::kBox:
        svg.rect(p.x, y - 10, 14, 12, "fill=\"" + e.colour + "\" stroke=\"#00000033\"");
        break;
      case LegendEntry::Mark::kLine:
        svg.line(p.x, y - 4, p.x + 16, y - 4, "stroke=\"" + e.colour + "\" stroke-width=\"2\"");
        break;
      case LegendEntry::Mark::kDashed:
        svg.line(p.x, y - 4, p.x + 16, y - 4,
                 "stroke=\"" + e.colour + "\" stroke-width=\"2\" stroke-dasharray=\"5,3\"");
        break;
      case LegendEntry::Mark::kDot:
        o += "<circle cx=\"" + num(p.x + 7) + "\" cy=\"" + num(y - 4) +
             "\" r=\"4.5\" fill=\"#000000\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>\n";
        break;
    }
    svg.text(p.x + 22, y, e.text);
  }
  o += "</g>\n";

  // Grid and y labels.
  o += "<g id=\"grid\">\n";
  for (double b = 0; b <= ty.top * (1 + 1e-9); b += ty.step) {
    double y = Y(b);
    svg.line(left, y, right, y,
             "stroke=\"" + std::string(b == 0 ? "#888888" : kGridColour) + "\" stroke-width=\"1\"");
    svg.text(left - 8, y + 4, byte_tick_label(b, ty.step), "text-anchor=\"end\"");
  }
  std::vector<double> time_ticks;
  for (double t = std::ceil(t0 / tx.step - 1e-9) * tx.step; t <= t1 + tx.step * 1e-6;
       t += tx.step) {
    time_ticks.push_back(t);
  }
  for (double t : time_ticks) {
    double x = X(t);
    svg.line(x, plot_top, x, plot_bottom, "stroke=\"" + std::string(kGridColour) + "\"");
  }
  o += "</g>\n";

  // The stacked areas, painted from the back: each is a polygon from the axis up to its top.
  auto area = [&](const std::vector<Point>& top, const char* colour, const char* id,
                  const char* title) {
    std::vector<Point> pts = downsample(top, options.max_points);
    o += "<polygon id=\"" + std::string(id) + "\" fill=\"" + colour + "\" points=\"";
    o += num(X(pts.front().x)) + "," + num(plot_bottom);
    for (const Point& p : pts) o += " " + num(X(p.x)) + "," + num(Y(p.y));
    if (pts.size() == 1) o += " " + num(X(t1)) + "," + num(Y(pts[0].y));
    o += " " + num(pts.size() == 1 ? X(t1) : X(pts.back().x)) + "," + num(plot_bottom);
    o += "\"><title>" + std::string(title) + "</title></polygon>\n";
  };
  if (!ticks.empty()) {
    o += "<g id=\"areas\">\n";
    if (any_free) area(held_top, kFreeColour, "held", "free in pools (held, not in use)");
    area(live_top, kLargeColour, "large", "large blocks");
    if (any_medium) area(medium_top, kMediumColour, "medium", "medium blocks in use");
    area(small_top, kSmallColour, "small", "small blocks in use");
    o += "</g>\n";
  }

  // The limit: a step line, broken where a tick has none.
  if (limit_drawn) {
    std::string d;
    bool open = false;
    uint64_t last = 0;
    for (size_t i = 0; i < ticks.size(); ++i) {
      const Tick& k = ticks[i];
      if (k.limit == 0) {
        open = false;
        continue;
      }
      double x = X(k.t), y = Y(static_cast<double>(k.limit));
      if (!open) {
        d += "M" + num(x) + "," + num(y);
        open = true;
      } else if (k.limit != last) {
        d += "H" + num(x) + "V" + num(y);
      }
      last = k.limit;
      bool run_ends = i + 1 == ticks.size() || ticks[i + 1].limit != k.limit;
      if (run_ends) d += "H" + num(i + 1 == ticks.size() ? X(t1) : X(ticks[i + 1].t));
    }
    o += "<path id=\"limit\" d=\"" + d + "\" fill=\"none\" stroke=\"" + kLimitColour +
         "\" stroke-width=\"2\" stroke-dasharray=\"7,4\" "
         "clip-path=\"url(#plot-area)\"><title>limit " +
         bytes(limit_max) + "</title></path>\n";
  }

  // RSS.
  if (!ticks.empty()) {
    std::vector<Point> pts = downsample(rss, options.max_points);
    o += "<polyline id=\"rss\" fill=\"none\" stroke=\"" + std::string(kRssColour) +
         "\" stroke-width=\"1.6\" stroke-linejoin=\"round\" points=\"";
    for (size_t i = 0; i < pts.size(); ++i) {
      o += (i ? " " : "") + num(X(pts[i].x)) + "," + num(Y(pts[i].y));
    }
    o += "\"><title>RSS</title></polyline>\n";
  }

  // Tooltips: transparent columns across the plot, each naming the figures of its busiest tick.
  if (!ticks.empty()) {
    o += "<g id=\"hover\">\n";
    size_t columns = std::min(ticks.size(), kHoverColumns);
    double col_w = plot_w / static_cast<double>(columns);
    size_t i = 0;
    for (size_t c = 0; c < columns && i < ticks.size(); ++c) {
      double x_end = left + col_w * static_cast<double>(c + 1);
      size_t best = i, first = i;
      for (; i < ticks.size() && (X(ticks[i].t) < x_end || c + 1 == columns); ++i) {
        if (live_top[i].y > live_top[best].y) best = i;
      }
      if (i == first) continue;  // no tick under this column
      const Tick& k = ticks[best];
      std::string title =
          time_label(k.t, data.interval_s) + ": " + bytes(static_cast<uint64_t>(live_top[best].y)) +
          " in use (small " + bytes(k.small) + (any_medium ? ", medium " + bytes(k.medium) : "") +
          ", large " + bytes(k.large) + "), " + bytes(static_cast<uint64_t>(held_top[best].y)) +
          " held, RSS " + bytes(k.rss) + (k.limit ? ", limit " + bytes(k.limit) : "");
      svg.rect(left + col_w * static_cast<double>(c), plot_top, col_w, kPlotHeight,
               "class=\"hover\" fill=\"#ffffff\" fill-opacity=\"0\"", title);
    }
    o += "</g>\n";
  }

  // The peak: a dot on the top of the in-use area, a dotted drop to the axis, and its label
  // above, on whichever side of the dot has room, over a white box so that lines do not cross it.
  if (data.has_peak) {
    double x = X(data.peak_t), y = Y(static_cast<double>(data.peak_bytes));
    std::string label = "peak " + bytes(data.peak_bytes) + " at " +
                        time_label(data.peak_t, data.interval_s) +
                        (data.peak_note.empty() ? "" : " (" + data.peak_note + ")");
    double size = 13, w = text_width(label, size, kBoldEm);
    const double size2 = 11.5, line2 = data.peak_between.empty() ? 0 : size2 + 4;
    if (line2 != 0) w = std::max(w, text_width(data.peak_between, size2, kEm));
    bool to_left = x + 8 + w > right;
    double tx0 = to_left ? x - 8 - w : x + 8;
    tx0 = std::max(tx0, left + 2);
    double ty0 = y - 12 - line2;
    o += "<g id=\"peak\">\n";
    svg.line(x, y, x, plot_bottom,
             "stroke=\"#000000\" stroke-width=\"1\" stroke-dasharray=\"2,3\"");
    svg.rect(tx0 - 4, ty0 - size, w + 8, size + 6 + line2,
             "fill=\"#ffffff\" fill-opacity=\"0.85\" rx=\"3\" stroke=\"#00000040\"");
    svg.text(tx0, ty0, label, "id=\"peak-label\" font-size=\"13\" font-weight=\"bold\"");
    if (line2 != 0) {
      svg.text(tx0, ty0 + line2, data.peak_between,
               "id=\"peak-between\" font-size=\"11.5\" fill=\"" + std::string(kMutedText) + "\"");
    }
    o += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) +
         "\" r=\"5\" fill=\"#000000\" stroke=\"#ffffff\" stroke-width=\"1.5\"><title>" +
         xml_escape(label) + "</title></circle>\n";
    o += "</g>\n";
  }

  // Time labels.
  o += "<g id=\"time-axis\">\n";
  for (double t : time_ticks) {
    double x = X(t);
    svg.line(x, plot_bottom, x, plot_bottom + 4, "stroke=\"#888888\"");
    std::string label = time_tick_label(t, tx.step);
    // The last label moves left rather than out of the picture.
    double half = text_width(label, kFontSize) / 2;
    svg.text(std::min(x, width - 4 - half), labels_y, label, "text-anchor=\"middle\"");
  }
  o += "</g>\n";

  // Event lanes: one per kind, named on the left; events of a kind that fall on the same pixel
  // are one tick (its tooltip sums them), so a storm of events cannot bloat the picture.
  if (!lanes.empty()) {
    o += "<g id=\"events\">\n";
    for (size_t lane = 0; lane < lanes.size(); ++lane) {
      const EventStyle& st = *lanes[lane];
      double y = lanes_top + kLaneHeight * static_cast<double>(lane);
      svg.rect(left, y + 1, plot_w, kLaneHeight - 2, "fill=\"#f5f5f5\"");
      svg.text(left - 18, y + kLaneHeight - 4, st.label,
               "text-anchor=\"end\" font-size=\"11\" fill=\"#333333\"");
      svg.rect(left - 13, y + 4, 8, 8, "fill=\"" + std::string(st.colour) + "\"");
      struct Merged {
        double t_first = 0, t_last = 0;
        uint64_t count = 0;
        size_t events = 0;
        std::vector<int64_t> pids;
      };
      std::map<long, Merged> at;  // by pixel column
      for (const Event& e : data.events) {
        if (e.kind != st.kind) continue;
        Merged& m = at[std::lround(X(e.t))];
        if (m.events == 0) m.t_first = e.t;
        m.t_first = std::min(m.t_first, e.t);
        m.t_last = std::max(m.t_last, e.t);
        m.count += e.count;
        ++m.events;
        if (std::find(m.pids.begin(), m.pids.end(), e.pid) == m.pids.end()) m.pids.push_back(e.pid);
      }
      for (const auto& [px, m] : at) {
        std::string title = st.label + std::string(" \u00d7") + std::to_string(m.count) +
                            (m.pids.size() == 1 ? ", pid " : ", pids ");
        for (size_t k = 0; k < m.pids.size() && k < 8; ++k) {
          title += (k ? ", " : "") + std::to_string(m.pids[k]);
        }
        if (m.pids.size() > 8) title += ", \u2026";
        title += " at " + time_label(m.t_first, data.interval_s);
        if (m.events > 1) {
          title += " to " + time_label(m.t_last, data.interval_s) + " (" +
                   std::to_string(m.events) + " events)";
        }
        double x = static_cast<double>(px);
        o += "<line class=\"ev\" data-kind=\"" + std::string(st.kind) + "\" x1=\"" + num(x) +
             "\" y1=\"" + num(y + 2) + "\" x2=\"" + num(x) + "\" y2=\"" + num(y + kLaneHeight - 2) +
             "\" stroke=\"" + st.colour + "\" stroke-width=\"2.5\"><title>" + xml_escape(title) +
             "</title></line>\n";
      }
    }
    o += "</g>\n";
  }

  // The stacks at the peak: a bar of each one's share, its bytes and share, and its innermost
  // frames, the callers after "←".
  o += "<g id=\"stacks\">\n";
  const double x0 = 16;
  svg.text(x0, stacks_top,
           cut(data.stacks_heading, static_cast<size_t>((width - 32) / (13 * kBoldEm))),
           "font-size=\"13\" font-weight=\"bold\"");
  double row_y = stacks_top + 8 + kRowHeight;
  const double bar_w = 100, bytes_right = x0 + bar_w + 84, share_right = bytes_right + 58;
  const double frames_x = share_right + 16;
  const double mono_w = kFontSize * kMonoEm;
  const size_t budget = static_cast<size_t>((width - 16 - frames_x) / mono_w);
  if (shown_stacks == 0) {
    svg.text(x0, row_y, data.stacks_note, "fill=\"" + std::string(kMutedText) + "\"");
  } else {
    svg.text(bytes_right, row_y, "bytes", "text-anchor=\"end\" fill=\"#777777\" font-size=\"11\"");
    svg.text(share_right, row_y, "share", "text-anchor=\"end\" fill=\"#777777\" font-size=\"11\"");
    svg.text(frames_x, row_y,
             "innermost frames first: function (file:line) or module+offset \u2190 its caller",
             "fill=\"#777777\" font-size=\"11\"");
    row_y += kRowHeight;
    for (size_t i = 0; i < shown_stacks; ++i, row_y += kRowHeight) {
      const Stack& s = data.stacks[i];
      double share = tool::ratio(s.bytes, data.profile_bytes);
      std::string detail = bytes(s.bytes) + ", " + fixed(100 * share, 1) + "% of the profile";
      for (size_t f = 0; f < s.frames.size(); ++f) {
        detail += "\n#" + std::to_string(f) + " " + frame_detail(s.frames[f]);
      }
      o += "<g class=\"stack\"><title>" + xml_escape(detail) + "</title>\n";
      svg.rect(x0, row_y - 10, bar_w, 11, "fill=\"#eeeeee\"");
      svg.rect(x0, row_y - 10, bar_w * std::min(share, 1.0), 11, "fill=\"#6f6f6f\"");
      svg.text(bytes_right, row_y, bytes(s.bytes), "text-anchor=\"end\"");
      svg.text(share_right, row_y, fixed(100 * share, 1) + "%", "text-anchor=\"end\"");
      std::string line = stack_line(s.frames, options.frames_per_stack, budget);
      svg.text(frames_x, row_y, cut(line, budget), "class=\"mono\"");
      o += "</g>\n";
    }
    if (data.stacks.size() > shown_stacks) {
      uint64_t rest = 0;
      for (size_t i = shown_stacks; i < data.stacks.size(); ++i) rest += data.stacks[i].bytes;
      svg.text(frames_x, row_y,
               "and " + std::to_string(data.stacks.size() - shown_stacks) + " more stacks: " +
                   bytes(rest) + ", " + fixed(100 * tool::ratio(rest, data.profile_bytes), 1) + "%",
               "fill=\"" + std::string(kMutedText) + "\"");
    }
  }
  o += "</g>\n";
  o += "</svg>\n";
  return o;
}

}  // namespace pg::timeline
