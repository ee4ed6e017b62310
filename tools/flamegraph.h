// Flame graphs of a heap profile, for `poolguard profile`: folded stacks (the text format of
// Brendan Gregg's stackcollapse scripts, read by flamegraph.pl, speedscope and inferno) and a
// self-contained SVG flame graph. Plain data in, text out: no symbolization or /proc here, so the
// unit tests feed synthetic stacks.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace pg::flame {

// One symbolized frame. Any field may be empty or 0 when unknown.
struct Frame {
  std::string function;  // demangled function name
  std::string module;    // path of the module holding the code
  uint64_t offset = 0;   // of the return address in the module (what addr2line -e MODULE takes)
  uint64_t pc = 0;       // the return address in the process
};

// One allocation stack and what it holds.
struct Stack {
  std::vector<Frame> frames;  // innermost first, as captured (frames[0] called malloc)
  uint64_t value = 0;         // live bytes
};

// The text shown for a frame: the function name, else "module-basename+0xoffset", else "0xpc".
std::string frame_name(const Frame& f);

// Folded stacks: one line per distinct stack, "root;...;innermost VALUE\n", frames root-first,
// sorted by text. Stacks whose frames read the same (two call sites in one function) are merged
// and their values summed; stacks of value 0 are left out. In names, ';' (the frame separator)
// becomes ':' and control characters (newlines) become spaces; a stack without frames is
// "[unknown]".
void write_folded(std::ostream& out, const std::vector<Stack>& stacks);

struct SvgOptions {
  std::string title = "Live heap";  // first heading line, e.g. "Live heap of prog (pid 1234)"
  std::string subtitle;             // second heading line (totals, sampling rate)
  int width = 1200;                 // pixels
  int row_height = 16;              // pixels per frame
  bool sort_by_size = false;        // children largest first instead of by name (flamegraph.pl)
  double min_width = 0.1;           // frames narrower than this (pixels) are left out, with callees
};

// An SVG flame graph of the stacks: merged into one tree root-first under a root "all", each
// node a rectangle as wide as its share of the total value, callers below their callees. Needs
// nothing outside the file: text is drawn in the viewer's monospace font, and a small inline
// script adds click-to-zoom and a details line on hover (the graph reads the same without it).
std::string render_svg(const std::vector<Stack>& stacks, const SvgOptions& options);

// `s` with XML's special characters escaped, control characters replaced by spaces and invalid
// UTF-8 by '?', so that any name makes well-formed XML.
std::string xml_escape(const std::string& s);

}  // namespace pg::flame
