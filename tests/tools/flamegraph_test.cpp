// tools/flamegraph: folded stacks and the SVG flame graph, from synthetic stacks (no process, no
// symbolization).
//
// `tools_tests --svg sample|empty|timeline` prints an SVG instead of running the tests (a flame
// graph, or the chart of tests/tools/timeline_chart_test.cpp), for the ctest entry that checks
// with an XML parser that it is well-formed (tests/tools/CMakeLists.txt).
#include <gtest/gtest.h>

#include <cstring>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tools/flamegraph.h"

namespace {

using pg::flame::Frame;
using pg::flame::Stack;

Frame fn(const std::string& name, const std::string& module = "/usr/bin/prog") {
  Frame f;
  f.function = name;
  f.module = module;
  return f;
}

// A stack given root-first (as it is read) and stored innermost-first (as it is captured).
Stack stack(std::vector<Frame> root_first, uint64_t value) {
  Stack s;
  s.frames.assign(root_first.rbegin(), root_first.rend());
  s.value = value;
  return s;
}

std::string folded(const std::vector<Stack>& stacks) {
  std::ostringstream out;
  pg::flame::write_folded(out, stacks);
  return out.str();
}

// The frames of a rendered SVG: label (full, from data-l when cut), title, x, y, width, fill.
struct Drawn {
  std::string label, title, fill;
  double x, y, w;
};

std::vector<Drawn> frames_of(const std::string& svg) {
  static const std::regex kFrame(
      "<g class=\"f\"(?: data-l=\"([^\"]*)\")?><rect x=\"([0-9.]+)\" y=\"([0-9.]+)\" "
      "width=\"([0-9.]+)\" height=\"[0-9.]+\" fill=\"([^\"]*)\"[^>]*><title>([^<]*)</title>"
      "</rect><text [^>]*>([^<]*)</text></g>");
  std::vector<Drawn> out;
  for (std::sregex_iterator it(svg.begin(), svg.end(), kFrame), end; it != end; ++it) {
    const std::smatch& m = *it;
    out.push_back({m[1].matched ? m[1].str() : m[7].str(), m[6].str(), m[5].str(),
                   std::stod(m[2].str()), std::stod(m[3].str()), std::stod(m[4].str())});
  }
  return out;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

const Drawn* find(const std::vector<Drawn>& frames, const std::string& label) {
  for (const Drawn& d : frames) {
    if (d.label == label) return &d;
  }
  return nullptr;
}

// main -> parse -> {alloc_node 200, alloc_leaf 100}, main -> "operator<<" with awkward text.
std::vector<Stack> sample_stacks() {
  return {
      stack({fn("main"), fn("parse"), fn("alloc_node")}, 200),
      stack({fn("main"), fn("parse"), fn("alloc_leaf")}, 100),
      stack({fn("main"), fn("operator<<(std::ostream&, \"x\")", "/lib/libstdc++.so.6")}, 50),
      stack({fn("main"), fn("bad\xff utf8\x01")}, 10),
  };
}

TEST(FrameName, FunctionElseModuleOffsetElsePc) {
  Frame f;
  f.pc = 0x7f0000001234;
  EXPECT_EQ(pg::flame::frame_name(f), "0x7f0000001234");
  f.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  f.offset = 0x2a1c0;
  EXPECT_EQ(pg::flame::frame_name(f), "libc.so.6+0x2a1c0");
  f.function = "malloc";
  EXPECT_EQ(pg::flame::frame_name(f), "malloc");
}

TEST(Folded, RootFirstSortedOneLinePerStack) {
  std::vector<Stack> stacks = {
      stack({fn("main"), fn("parse"), fn("alloc_node")}, 200),
      stack({fn("main"), fn("alloc_big")}, 4096),
      stack({fn("_start"), fn("main")}, 7),
  };
  EXPECT_EQ(folded(stacks),
            "_start;main 7\n"
            "main;alloc_big 4096\n"
            "main;parse;alloc_node 200\n");
}

TEST(Folded, StacksThatReadTheSameAreMerged) {
  // Two call sites in one function: different pcs, the same text.
  Stack a = stack({fn("main"), fn("grow")}, 100);
  Stack b = stack({fn("main"), fn("grow")}, 28);
  a.frames[0].pc = 0x1000;
  b.frames[0].pc = 0x1008;
  EXPECT_EQ(folded({a, b}), "main;grow 128\n");
}

TEST(Folded, SeparatorsAndNewlinesInNamesAreReplaced) {
  std::vector<Stack> stacks = {stack({fn("main"), fn("a;b\nc\r\td")}, 5)};
  EXPECT_EQ(folded(stacks), "main;a:b c  d 5\n");
}

TEST(Folded, UnknownFramesZeroValuesAndEmptyStacks) {
  Frame anon;
  anon.pc = 0xdead0;
  Frame in_lib;
  in_lib.module = "/opt/lib/libx.so";
  in_lib.offset = 0x10;
  std::vector<Stack> stacks = {
      stack({fn("main"), in_lib, anon}, 3),
      stack({fn("main"), fn("gone")}, 0),  // nothing live: left out
      stack({}, 9),                        // no frames captured
  };
  EXPECT_EQ(folded(stacks),
            "[unknown] 9\n"
            "main;libx.so+0x10;0xdead0 3\n");
}

TEST(Svg, OneFramePerTreeNode) {
  std::string svg = pg::flame::render_svg(sample_stacks(), {});
  // all, main, parse, alloc_node, alloc_leaf, operator<<, bad...
  std::vector<Drawn> frames = frames_of(svg);
  EXPECT_EQ(frames.size(), 7u);
  EXPECT_EQ(count(svg, "<g class=\"f\""), 7u);
  EXPECT_EQ(count(svg, "<rect "), 8u);  // and the background
  EXPECT_EQ(count(svg, "<title>"), 7u);
  ASSERT_NE(find(frames, "all"), nullptr);
  EXPECT_NE(find(frames, "alloc_node"), nullptr);
  EXPECT_NE(find(frames, "alloc_leaf"), nullptr);
}

TEST(Svg, WidthsAreProportionalToBytes) {
  std::vector<Drawn> frames = frames_of(pg::flame::render_svg(sample_stacks(), {}));
  const Drawn* all = find(frames, "all");
  const Drawn* main = find(frames, "main");
  const Drawn* parse = find(frames, "parse");
  const Drawn* node = find(frames, "alloc_node");
  const Drawn* leaf = find(frames, "alloc_leaf");
  ASSERT_TRUE(all && main && parse && node && leaf);
  EXPECT_NEAR(all->w, 1180, 0.01);  // 1200 less the margins
  EXPECT_NEAR(main->w, all->w, 0.01);
  EXPECT_NEAR(parse->w, all->w * 300 / 360, 0.01);
  EXPECT_NEAR(node->w, 2 * leaf->w, 0.02);  // the 2:1 split
  EXPECT_NEAR(node->w + leaf->w, parse->w, 0.02);
  // Children side by side, sorted by name: alloc_leaf left of alloc_node.
  EXPECT_NEAR(leaf->x, parse->x, 0.01);
  EXPECT_NEAR(node->x, leaf->x + leaf->w, 0.02);
  // A flame: callers below callees, one row (16 px) per depth.
  EXPECT_NEAR(all->y - main->y, 16, 0.01);
  EXPECT_NEAR(parse->y - node->y, 16, 0.01);
  EXPECT_EQ(node->y, leaf->y);
}

TEST(Svg, TitlesGiveFunctionModuleBytesAndPercent) {
  std::vector<Drawn> frames = frames_of(pg::flame::render_svg(sample_stacks(), {}));
  const Drawn* node = find(frames, "alloc_node");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->title, "alloc_node (/usr/bin/prog) \u2014 200 bytes, 55.56%");
  EXPECT_EQ(find(frames, "all")->title, "all \u2014 360 bytes, 100.00%");
}

TEST(Svg, TextIsEscaped) {
  pg::flame::SvgOptions options;
  options.title = "Live heap of <a&b> \"q\"";
  std::string svg = pg::flame::render_svg(sample_stacks(), options);
  EXPECT_NE(svg.find("Live heap of &lt;a&amp;b&gt; &quot;q&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<a&b>"), std::string::npos);
  EXPECT_NE(svg.find("operator&lt;&lt;(std::ostream&amp;, &quot;x&quot;)"), std::string::npos);
  EXPECT_EQ(svg.find("operator<<"), std::string::npos);
  // Invalid UTF-8 and control characters cannot reach the XML.
  EXPECT_NE(svg.find("bad? utf8 "), std::string::npos);
  EXPECT_EQ(svg.find('\xff'), std::string::npos);
  EXPECT_EQ(svg.find('\x01'), std::string::npos);
}

TEST(Svg, XmlEscape) {
  EXPECT_EQ(pg::flame::xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(pg::flame::xml_escape("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 kept
  EXPECT_EQ(pg::flame::xml_escape("x\xc3"), "x?");                 // cut sequence
  EXPECT_EQ(pg::flame::xml_escape("\xed\xa0\x80"), "???");         // a surrogate
  EXPECT_EQ(pg::flame::xml_escape("tab\there\n"), "tab here ");    // control characters
}

TEST(Svg, LongLabelsAreCutToFit) {
  std::string longname(300, 'n');
  // 1% of 1180 px: 11.8 px, room for one character, so no text; data-l keeps the name for zoom.
  std::vector<Stack> stacks = {stack({fn("main"), fn(longname)}, 10),
                               stack({fn("main"), fn("other")}, 990)};
  std::string svg = pg::flame::render_svg(stacks, {});
  EXPECT_NE(svg.find("<g class=\"f\" data-l=\"" + longname + "\"><rect"), std::string::npos);
  EXPECT_NE(find(frames_of(svg), longname), nullptr);
  // Across the whole width: cut, ending in "..", and short enough to fit.
  std::string wide = pg::flame::render_svg({stack({fn(longname)}, 1)}, {});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(wide, m, std::regex("<text [^>]*>(n+\\.\\.)</text>")));
  EXPECT_LE(m[1].length() * 7.25 + 6, 1180.0);
  EXPECT_GT(m[1].length(), 150);
  // Short names are drawn whole, without data-l.
  EXPECT_NE(svg.find("<g class=\"f\"><rect"), std::string::npos);
  EXPECT_NE(svg.find(">other</text>"), std::string::npos);
}

TEST(Svg, SortBySizeOrTheDefaultByName) {
  std::vector<Stack> stacks = {stack({fn("main"), fn("a_small")}, 100),
                               stack({fn("main"), fn("z_big")}, 200)};
  std::vector<Drawn> by_name = frames_of(pg::flame::render_svg(stacks, {}));
  EXPECT_LT(find(by_name, "a_small")->x, find(by_name, "z_big")->x);
  pg::flame::SvgOptions options;
  options.sort_by_size = true;
  std::vector<Drawn> by_size = frames_of(pg::flame::render_svg(stacks, options));
  EXPECT_LT(find(by_size, "z_big")->x, find(by_size, "a_small")->x);
}

TEST(Svg, ColoursAreDeterministicAndWarm) {
  std::vector<Drawn> one = frames_of(pg::flame::render_svg(sample_stacks(), {}));
  std::vector<Stack> other = {stack({fn("parse"), fn("main")}, 1)};
  std::vector<Drawn> two = frames_of(pg::flame::render_svg(other, {}));
  EXPECT_EQ(find(one, "main")->fill, find(two, "main")->fill);
  EXPECT_EQ(find(one, "parse")->fill, find(two, "parse")->fill);
  std::smatch m;
  for (const Drawn& d : one) {
    ASSERT_TRUE(std::regex_match(d.fill, m, std::regex("rgb\\((\\d+),(\\d+),(\\d+)\\)")));
    EXPECT_GE(std::stoi(m[1]), 205) << d.fill;  // red dominates
    EXPECT_LE(std::stoi(m[3]), 55) << d.fill;   // little blue
  }
}

TEST(Svg, FramesTooNarrowToSeeAreLeftOut) {
  std::vector<Stack> stacks = {stack({fn("main"), fn("huge")}, 1000000000),
                               stack({fn("main"), fn("tiny"), fn("tinier")}, 1)};
  std::vector<Drawn> frames = frames_of(pg::flame::render_svg(stacks, {}));
  EXPECT_EQ(frames.size(), 3u);  // all, main, huge
  EXPECT_EQ(find(frames, "tiny"), nullptr);
  pg::flame::SvgOptions options;
  options.min_width = 0;
  EXPECT_EQ(frames_of(pg::flame::render_svg(stacks, options)).size(), 5u);
}

TEST(Svg, HeadingAndSelfContained) {
  pg::flame::SvgOptions options;
  options.title = "Live heap of prog (pid 42)";
  options.subtitle = "360 bytes live, sampled every 512 KiB";
  std::string svg = pg::flame::render_svg(sample_stacks(), options);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find(">Live heap of prog (pid 42)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">360 bytes live, sampled every 512 KiB</text>"), std::string::npos);
  EXPECT_NE(svg.find("width=\"1200\""), std::string::npos);
  // Nothing fetched from elsewhere: no external references or fonts.
  EXPECT_EQ(svg.find("href"), std::string::npos);
  EXPECT_EQ(svg.find("@import"), std::string::npos);
  EXPECT_EQ(svg.find("<script src"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

TEST(Svg, EmptyProfile) {
  std::string svg = pg::flame::render_svg({}, {});
  EXPECT_NE(svg.find("no live sampled allocations"), std::string::npos);
  EXPECT_EQ(frames_of(svg).size(), 0u);
}

}  // namespace

// The sample chart of `poolguard plot` (tests/tools/timeline_chart_test.cpp).
std::string timeline_sample_svg();

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--svg") == 0 && strcmp(argv[2], "timeline") == 0) {
    std::cout << timeline_sample_svg();
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "--svg") == 0) {
    pg::flame::SvgOptions options;
    options.title = "Live heap of <prog> & \"friends\" (pid 1)";
    options.subtitle = "\xff bad bytes \x02 too";
    std::vector<Stack> stacks =
        strcmp(argv[2], "empty") == 0 ? std::vector<Stack>{} : sample_stacks();
    std::cout << pg::flame::render_svg(stacks, options);
    return 0;
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
