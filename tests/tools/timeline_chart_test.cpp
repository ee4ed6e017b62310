// tools/timeline_chart: the SVG of `poolguard plot` from synthetic timelines (no file, no
// process): the peak's label, the limit line, one tick per event, escaped names, the medium tier
// only when there is one, and downsampling that keeps the maxima; the axes' ticks and the cutting
// of long function names.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tools/timeline_chart.h"

using pg::timeline::ChartData;
using pg::timeline::ChartOptions;
using pg::timeline::Event;
using pg::timeline::Frame;
using pg::timeline::Point;
using pg::timeline::Stack;
using pg::timeline::Tick;

namespace {

constexpr uint64_t kMiB = 1 << 20;
// 84.2 MiB, as bytes() prints it.
constexpr uint64_t kPeakBytes = 88290509;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

Frame fn(const std::string& function, const std::string& file_line = "") {
  Frame f;
  f.function = function;
  f.file_line = file_line;
  f.module = "/usr/bin/prog";
  f.offset = "0x1000";
  f.pc = "0x55550000";
  return f;
}

// One process over 6 s: small and medium growing, large up to the peak at 3.4 s and down again,
// a 96 MiB limit, five events, three stacks at the peak with names that need escaping.
ChartData sample_chart() {
  ChartData d;
  d.title = "Memory of <prog> & \"friends\"";
  d.caption = "pid 1 \xff bad bytes \x02 too";
  d.interval_s = 0.1;
  for (int i = 0; i <= 60; ++i) {
    Tick k;
    k.t = i / 10.0;
    k.small = static_cast<uint64_t>(i) * 100 * 1024;
    k.medium = static_cast<uint64_t>(i) * 50 * 1024;
    uint64_t in_small_medium = k.small + k.medium;
    uint64_t peak_large = kPeakBytes - (34 * 150 * 1024);
    k.large = i <= 34 ? peak_large * i / 34 : peak_large * (60 - i) / 26;
    if (i == 34) k.large = kPeakBytes - in_small_medium;
    k.small_held = k.small + k.small / 8;
    k.medium_held = k.medium + k.medium / 8;
    k.rss = k.small_held + k.medium_held + k.large + 3 * kMiB;
    k.limit = 96 * kMiB;
    d.ticks.push_back(k);
  }
  d.events = {{0.0, "start", 1, 1},
              {2.2, "guard", 1, 1},
              {3.3, "limit_refused", 1, 3},
              {4.7, "error", 1, 1},
              {6.0, "exit", 1, 1}};
  d.has_peak = true;
  d.peak_t = 3.4;
  d.peak_bytes = kPeakBytes;
  d.stacks_heading = "Largest stacks at the peak of pid 1 (prog)";
  d.profile_bytes = 60 * kMiB;
  d.stacks = {
      {30 * kMiB, {fn("operator<<(std::ostream&, \"x\")", "out.cc:9"), fn("main", "main.c:3")}},
      {20 * kMiB, {fn("std::vector<int, std::allocator<int> >::push_back(int const&)")}},
      {10 * kMiB, {Frame{"0x7f0000001234", "", "/lib/libz.so.1", "0x1234", ""}}},
  };
  return d;
}

std::string render(const ChartData& d) {
  return pg::timeline::render_svg(d, ChartOptions{});
}

// The points of a polygon or polyline, by id.
std::vector<Point> points_of(const std::string& svg, const std::string& id) {
  std::vector<Point> out;
  std::smatch m;
  if (!std::regex_search(svg, m, std::regex("id=\"" + id + "\"[^>]* points=\"([^\"]*)\""))) {
    return out;
  }
  std::string pts = m[1].str();
  std::regex pair("([0-9.]+),([0-9.]+)");
  for (std::sregex_iterator it(pts.begin(), pts.end(), pair), end; it != end; ++it) {
    out.push_back({std::stod((*it)[1].str()), std::stod((*it)[2].str())});
  }
  return out;
}

TEST(TimelineChart, PeakLabelled) {
  std::string svg = render(sample_chart());
  EXPECT_NE(svg.find(">peak 84.2 MiB at 3.4 s</text>"), std::string::npos);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

TEST(TimelineChart, HeldBetweenSamplesUnderThePeakLabel) {
  ChartData d = sample_chart();
  EXPECT_EQ(render(d).find("peak-between"), std::string::npos);
  d.peak_between = "between samples: up to 120 MiB in pools";
  std::string svg = render(d);
  std::smatch first, second;
  ASSERT_TRUE(std::regex_search(svg, first,
                                std::regex("<text x=\"[0-9.]+\" y=\"([0-9.]+)\" "
                                           "id=\"peak-label\"")));
  ASSERT_TRUE(
      std::regex_search(svg, second,
                        std::regex("<text x=\"[0-9.]+\" y=\"([0-9.]+)\" id=\"peak-between\"[^>]*>"
                                   "between samples: up to 120 MiB in pools</text>")));
  EXPECT_GT(std::stod(second[1].str()), std::stod(first[1].str()));  // the line below the label
}

TEST(TimelineChart, PeakLabelInsideThePlot) {
  // Just under 8/9 of 10 MiB throughout: with room for one line of label the axis tops out at
  // 10 MiB, the label just inside; a second line needs more room, or it covers the legend.
  for (bool two_lines : {false, true}) {
    ChartData d;
    d.title = "flat";
    for (int i = 0; i <= 10; ++i) {
      Tick k;
      k.t = i;
      k.small = (10 << 20) * 8 / 9 - 1024;
      k.small_held = k.small;
      d.ticks.push_back(k);
    }
    d.has_peak = true;
    d.peak_t = 5;
    d.peak_bytes = d.ticks[0].small;
    if (two_lines) d.peak_between = "between samples: up to 11.0 MiB in pools";
    std::string svg = render(d);
    std::smatch plot, box;
    ASSERT_TRUE(std::regex_search(
        svg, plot, std::regex("<clipPath id=\"plot-area\"><rect x=\"[0-9.]+\" y=\"([0-9.]+)\"")));
    ASSERT_TRUE(std::regex_search(
        svg, box, std::regex("<g id=\"peak\">\n<line[^\n]*\n<rect x=\"[0-9.]+\" y=\"([0-9.]+)\"")));
    EXPECT_GE(std::stod(box[1].str()), std::stod(plot[1].str())) << two_lines;
  }
}

TEST(TimelineChart, PeakMarkerOnTheTopOfTheInUseArea) {
  std::string svg = render(sample_chart());
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(svg, m, std::regex("<circle cx=\"([0-9.]+)\" cy=\"([0-9.]+)\" r=\"5\"")));
  double cy = std::stod(m[2].str());
  // The in-use top (the "large" polygon: small + medium + large) reaches the marker, no higher.
  std::vector<Point> large = points_of(svg, "large");
  ASSERT_FALSE(large.empty());
  double top = large[0].y;
  for (const Point& p : large) top = std::min(top, p.y);
  EXPECT_NEAR(top, cy, 0.11);
}

TEST(TimelineChart, LimitLine) {
  ChartData d = sample_chart();
  std::string svg = render(d);
  EXPECT_EQ(count(svg, "<path id=\"limit\""), 1u);
  EXPECT_NE(svg.find("limit 96.0 MiB"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray=\"7,4\""), std::string::npos);

  for (Tick& k : d.ticks) k.limit = 0;
  svg = render(d);
  EXPECT_EQ(svg.find("id=\"limit\""), std::string::npos);
  EXPECT_EQ(svg.find(">limit 96.0 MiB"), std::string::npos);  // nor in the legend
}

TEST(TimelineChart, LimitFarAboveIsNamedNotDrawn) {
  ChartData d = sample_chart();
  for (Tick& k : d.ticks) k.limit = 1024 * kMiB;
  std::string svg = render(d);
  EXPECT_EQ(svg.find("id=\"limit\""), std::string::npos);
  EXPECT_NE(svg.find("limit 1.0 GiB, above the chart"), std::string::npos);
  // The byte axis is the data's: 100 MiB at the top, not 1 GiB.
  EXPECT_NE(svg.find(">100 MiB</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">1 GiB</text>"), std::string::npos);
}

TEST(TimelineChart, OneTickPerEvent) {
  std::string svg = render(sample_chart());
  EXPECT_EQ(count(svg, "class=\"ev\""), 5u);
  EXPECT_EQ(count(svg, "data-kind=\"guard\""), 1u);
  EXPECT_NE(svg.find("<title>limit refused \u00d73, pid 1 at 3.3 s</title>"), std::string::npos);
  // A lane per kind, named.
  for (const char* lane : {">start<", ">exit<", ">guard<", ">limit refused<", ">error<"}) {
    EXPECT_NE(svg.find(lane), std::string::npos) << lane;
  }
}

TEST(TimelineChart, EventsOnOnePixelMerge) {
  ChartData d = sample_chart();
  d.events.clear();
  for (int i = 0; i < 1000; ++i) d.events.push_back({2.0 + i * 1e-6, "guard", 7 + i % 2, 2});
  d.events.push_back({2.0, "someday", 1, 1});  // a kind of a later format: no lane
  std::string svg = render(d);
  EXPECT_EQ(count(svg, "class=\"ev\""), 1u);
  EXPECT_NE(svg.find("guard \u00d72000, pids 7, 8 at 2 s to 2 s (1000 events)"), std::string::npos);
  EXPECT_EQ(svg.find("someday"), std::string::npos);
  EXPECT_EQ(svg.find(">start<"), std::string::npos);  // kinds without events have no lane
}

TEST(TimelineChart, TextEscaped) {
  std::string svg = render(sample_chart());
  EXPECT_NE(svg.find("operator&lt;&lt;(std::ostream&amp;, &quot;x&quot;) (out.cc:9)"),
            std::string::npos);
  EXPECT_NE(svg.find("Memory of &lt;prog&gt; &amp; &quot;friends&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<prog>"), std::string::npos);
  EXPECT_EQ(svg.find("\xff"), std::string::npos);
  EXPECT_EQ(svg.find('\x02'), std::string::npos);
  // Frames without a function: module+offset.
  EXPECT_NE(svg.find("libz.so.1+0x1234"), std::string::npos);
  // Nothing fetched from elsewhere.
  EXPECT_EQ(svg.find("href"), std::string::npos);
  EXPECT_EQ(svg.find("<script"), std::string::npos);
  EXPECT_EQ(svg.find("@import"), std::string::npos);
}

TEST(TimelineChart, StacksWithShares) {
  std::string svg = render(sample_chart());
  EXPECT_NE(svg.find(">30.0 MiB</text>"), std::string::npos);
  EXPECT_NE(svg.find(">50.0%</text>"), std::string::npos);  // 30 of 60 MiB
  EXPECT_NE(svg.find(">16.7%</text>"), std::string::npos);
  EXPECT_EQ(count(svg, "<g class=\"stack\">"), 3u);
  EXPECT_NE(svg.find("Largest stacks at the peak of pid 1 (prog)"), std::string::npos);
}

TEST(TimelineChart, NoProfile) {
  ChartData d = sample_chart();
  d.stacks.clear();
  d.stacks_note = "no heap profile: run `poolguard record --profile 512K ...`";
  std::string svg = render(d);
  EXPECT_EQ(count(svg, "<g class=\"stack\">"), 0u);
  EXPECT_NE(svg.find(">no heap profile: run `poolguard record --profile 512K ...`</text>"),
            std::string::npos);
}

TEST(TimelineChart, MediumOnlyWhenThereIsSome) {
  ChartData d = sample_chart();
  std::string svg = render(d);
  EXPECT_NE(svg.find("id=\"medium\""), std::string::npos);
  EXPECT_NE(svg.find(">medium in use</text>"), std::string::npos);
  for (Tick& k : d.ticks) k.medium = k.medium_held = 0;
  svg = render(d);
  EXPECT_EQ(svg.find("id=\"medium\""), std::string::npos);
  EXPECT_EQ(svg.find("medium in use"), std::string::npos);
  EXPECT_NE(svg.find("id=\"small\""), std::string::npos);
  EXPECT_NE(svg.find("id=\"large\""), std::string::npos);
}

TEST(TimelineChart, HugeTimelineDownsampledPeakKept) {
  ChartData d = sample_chart();
  d.ticks.clear();
  d.events.clear();
  const size_t n = 100000, spike = 73457;
  for (size_t i = 0; i < n; ++i) {
    Tick k;
    k.t = static_cast<double>(i) * 0.01;
    k.small = 4 * kMiB + (i % 7) * 4096;
    k.large = i == spike ? 900 * kMiB : 20 * kMiB + (i % 13) * 65536;
    k.small_held = k.small + kMiB;
    k.rss = k.small_held + k.large + kMiB;
    d.ticks.push_back(k);
  }
  d.peak_t = d.ticks[spike].t;
  d.peak_bytes = d.ticks[spike].small + d.ticks[spike].large;
  d.interval_s = 0.01;
  ChartOptions options;
  std::string svg = pg::timeline::render_svg(d, options);
  EXPECT_LT(svg.size(), 400u * 1024) << "an SVG of " << svg.size() << " bytes";
  std::vector<Point> large = points_of(svg, "large");
  EXPECT_LE(large.size(), options.max_points + 2);
  EXPECT_GT(large.size(), options.max_points / 2);
  double top = large[1].y;
  for (const Point& p : large) top = std::min(top, p.y);
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(svg, m, std::regex("<circle cx=\"([0-9.]+)\" cy=\"([0-9.]+)\" r=\"5\"")));
  EXPECT_NEAR(top, std::stod(m[2].str()), 0.11) << "the spike was lost";
  EXPECT_NE(svg.find(">peak 904.0 MiB at 734.57 s</text>"), std::string::npos);
}

TEST(TimelineChart, SingleTick) {
  ChartData d = sample_chart();
  d.ticks.resize(1);
  d.ticks[0].t = 0.1;
  d.ticks[0].small = kMiB;
  d.events.clear();
  d.peak_t = 0.1;
  d.peak_bytes = kMiB;
  std::string svg = render(d);
  EXPECT_NE(svg.find(">peak 1.0 MiB at 0.1 s</text>"), std::string::npos);
  EXPECT_EQ(points_of(svg, "small").size(), 4u);  // a band one interval wide
}

TEST(Downsample, ShortSeriesUnchanged) {
  std::vector<Point> pts = {{0, 1}, {1, 5}, {2, 3}};
  std::vector<Point> out = pg::timeline::downsample(pts, 10);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].y, 5);
}

TEST(Downsample, KeepsMaximaMinimaAndEnds) {
  std::vector<Point> pts;
  for (int i = 0; i < 100000; ++i) pts.push_back({i * 0.5, 100.0 + (i * 7919 % 13)});
  pts[4242].y = 1e9;   // a spike
  pts[77777].y = -50;  // a dip
  for (size_t max_points : {4u, 100u, 2000u}) {
    std::vector<Point> out = pg::timeline::downsample(pts, max_points);
    SCOPED_TRACE(max_points);
    EXPECT_LE(out.size(), max_points);
    EXPECT_EQ(out.front().x, pts.front().x);
    EXPECT_EQ(out.back().x, pts.back().x);
    bool spike = false, dip = false;
    for (size_t i = 0; i < out.size(); ++i) {
      if (i > 0) {
        EXPECT_LT(out[i - 1].x, out[i].x);  // in order, no point twice
      }
      spike |= out[i].y == 1e9 && out[i].x == 4242 * 0.5;
      dip |= out[i].y == -50 && out[i].x == 77777 * 0.5;
    }
    EXPECT_TRUE(spike);
    EXPECT_TRUE(dip);
  }
}

TEST(Axes, BytesInOneTwoFiveSteps) {
  pg::timeline::Axis a = pg::timeline::byte_axis(84.0 * kMiB);
  EXPECT_EQ(a.step, 20.0 * kMiB);
  EXPECT_EQ(a.top, 100.0 * kMiB);
  a = pg::timeline::byte_axis(1000);
  EXPECT_EQ(a.step, 200);
  EXPECT_EQ(a.top, 1000);
  a = pg::timeline::byte_axis(3.0 * kMiB);
  EXPECT_EQ(a.step, 1.0 * kMiB);
  a = pg::timeline::byte_axis(2.5 * 1024 * kMiB);
  EXPECT_EQ(a.step, 500.0 * kMiB);
  EXPECT_EQ(a.top, 3000.0 * kMiB);
  a = pg::timeline::byte_axis(0);  // nothing at all: still an axis
  EXPECT_GT(a.top, 0);
  EXPECT_EQ(pg::timeline::byte_tick_label(0, kMiB), "0");
  EXPECT_EQ(pg::timeline::byte_tick_label(40.0 * kMiB, 20.0 * kMiB), "40 MiB");
  EXPECT_EQ(pg::timeline::byte_tick_label(1500.0 * 1024, 500.0 * 1024), "1500 KiB");
  EXPECT_EQ(pg::timeline::byte_tick_label(600, 200), "600 B");
  EXPECT_EQ(pg::timeline::byte_tick_label(2.0 * 1024 * kMiB, 1024.0 * kMiB), "2 GiB");
}

TEST(Axes, Seconds) {
  pg::timeline::Axis a = pg::timeline::time_axis(6.1, 10);
  EXPECT_EQ(a.step, 1);
  a = pg::timeline::time_axis(0.9, 10);
  EXPECT_DOUBLE_EQ(a.step, 0.1);
  a = pg::timeline::time_axis(3600, 8);
  EXPECT_EQ(a.step, 500);
  EXPECT_EQ(pg::timeline::time_tick_label(0.5, 0.5), "0.5 s");
  EXPECT_EQ(pg::timeline::time_tick_label(0, 0.2), "0.0 s");
  EXPECT_EQ(pg::timeline::time_tick_label(1000, 500), "1000 s");
  EXPECT_EQ(pg::timeline::time_label(3.4, 0.1), "3.4 s");
  EXPECT_EQ(pg::timeline::time_label(3.0, 0.1), "3 s");
  EXPECT_EQ(pg::timeline::time_label(12.25, 0.05), "12.25 s");
  EXPECT_EQ(pg::timeline::time_label(0.1, 0.001), "0.1 s");
}

TEST(ShortFunction, CutsTheLeastTellingPartsFirst) {
  using pg::timeline::short_function;
  EXPECT_EQ(short_function("main", 40), "main");
  EXPECT_EQ(short_function("ns::Parser::parse(std::string const&, int) const", 20),
            "ns::Parser::parse");
  EXPECT_EQ(short_function("std::vector<std::pair<std::string, int>, std::allocator<std::pair<"
                           "std::string, int> > >::_M_realloc_insert<int>(int&&)",
                           40),
            "std::vector<\u2026>::_M_realloc_insert<\u2026>");
  EXPECT_EQ(short_function("std::ostream& std::operator<< <std::char_traits<char> >(std::ostream&, "
                           "char const*)",
                           40),
            "std::ostream& std::operator<< <\u2026>");
  // No parameters or templates to drop: the start goes, the end (the function itself) stays.
  std::string cut = short_function("(anonymous namespace)::a_really_long_function_name_here", 30);
  EXPECT_EQ(cut, "\u2026eally_long_function_name_here");
}

}  // namespace

// For tests/tools/svg_wellformed.py (through `tools_tests --svg timeline`, flamegraph_test.cpp):
// the sample chart, whose text holds '<&"', invalid UTF-8 and control characters.
std::string timeline_sample_svg() {
  return render(sample_chart());
}
