// Folded stacks and SVG flame graphs of a heap profile (tools/flamegraph.h).
#include "tools/flamegraph.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "tools/text.h"

namespace pg::flame {

namespace {

using tool::code_points;
using tool::first_code_points;
using tool::fixed;
using tool::hex;

// Valid UTF-8 only, with control characters as spaces and invalid bytes as '?': what is left is
// safe to count by code point, to cut, and to put in XML (which forbids most control characters).
std::string sanitize(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    // Overlong and surrogate forms that the lead byte alone does not rule out.
    if (ok && len >= 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) ||
          (c == 0xf4 && c1 >= 0x90)) {
        ok = false;
      }
    }
    if (!ok) {
      out += '?';
      ++i;
      continue;
    }
    out.append(s, i, len);
    i += len;
  }
  return out;
}

std::string basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Frame text for the folded format: ';' separates frames there, and a line ends at a newline.
std::string folded_name(const Frame& f) {
  std::string s = sanitize(frame_name(f));
  std::replace(s.begin(), s.end(), ';', ':');
  return s;
}

// --- The merged tree ---------------------------------------------------------------------------

struct Node {
  std::string name;    // frame_name(), sanitized
  std::string module;  // the module of the first frame merged here
  uint64_t value = 0;  // inclusive: bytes of every stack through this node
  int depth = 0;       // 0: the root "all"
  std::vector<size_t> children;
};

// Stacks merged root-first: frames with the same name and module under the same parent are one
// node (as flamegraph.pl merges by name; the module keeps same-named functions of different
// libraries apart).
std::vector<Node> build_tree(const std::vector<Stack>& stacks) {
  std::vector<Node> nodes(1);
  nodes[0].name = "all";
  std::map<std::tuple<size_t, std::string, std::string>, size_t> index;
  for (const Stack& s : stacks) {
    if (s.value == 0) continue;
    nodes[0].value += s.value;
    size_t at = 0;
    auto descend = [&](const std::string& name, const std::string& module) {
      auto key = std::make_tuple(at, name, module);
      auto it = index.find(key);
      size_t child;
      if (it != index.end()) {
        child = it->second;
      } else {
        child = nodes.size();
        Node n;
        n.name = name;
        n.module = module;
        n.depth = nodes[at].depth + 1;
        nodes.push_back(std::move(n));
        nodes[at].children.push_back(child);
        index.emplace(key, child);
      }
      nodes[child].value += s.value;
      at = child;
    };
    if (s.frames.empty()) descend("[unknown]", "");
    for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) {
      descend(sanitize(frame_name(*f)), sanitize(f->module));
    }
  }
  return nodes;
}

// Deterministic warm colours (reds, oranges, yellows) from a hash of the name, so a function has
// the same colour in every graph and neighbours usually differ.
std::string colour(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  auto part = [&h](int shift) { return static_cast<double>((h >> shift) & 0xffff) / 65535.0; };
  int r = 205 + static_cast<int>(50 * part(0));
  int g = static_cast<int>(230 * part(16));
  int b = static_cast<int>(55 * part(32));
  return "rgb(" + std::to_string(r) + "," + std::to_string(g) + "," + std::to_string(b) + ")";
}

// Layout constants, in pixels. The font is the viewer's monospace so that the width of a label
// is known here and labels can be cut to fit their frame.
constexpr double kPadX = 10;
constexpr double kTop = 56;     // heading lines above the frames
constexpr double kBottom = 30;  // the details line below
constexpr double kFontSize = 12;
constexpr double kCharWidth = 7.25;  // monospace advance at 12px, rounded up
constexpr double kTextPad = 3;

// The label drawn in a frame `w` pixels wide: the whole name, or its start and "..", or nothing
// when not even three characters fit.
std::string fit_label(const std::string& name, double w) {
  double room = (w - 2 * kTextPad) / kCharWidth;
  if (room < 3) return "";
  size_t fit = static_cast<size_t>(room);
  if (code_points(name) <= fit) return name;
  return first_code_points(name, fit - 2) + "..";
}

// The inline script: hover shows a frame's title in the details line; a click zooms on a frame
// (its callers stretch to the full width, its callees widen with it, the rest hide); clicking
// the root or "Reset zoom" undoes it. It rereads each frame's geometry from the SVG, so it needs
// no data beyond the full label of frames whose text was cut (data-l).
const char kScript[] = R"JS(
(function () {
  var svg = document.documentElement;
  var W = +svg.getAttribute('width'), pad = @PAD@, cw = @CW@, tp = @TP@;
  var details = document.getElementById('details'), reset = document.getElementById('reset');
  var frames = [].slice.call(document.getElementsByClassName('f'));
  function fit(g, x, w) {
    var t = g.getElementsByTagName('text')[0], s = g.l, room = (w - 2 * tp) / cw;
    if (room < 3) s = '';
    else if (s.length > Math.floor(room)) s = s.substring(0, Math.floor(room) - 2) + '..';
    t.textContent = s;
    t.setAttribute('x', (x + tp).toFixed(2));
  }
  function place(g, x, w) {
    g.r.setAttribute('x', x.toFixed(2));
    g.r.setAttribute('width', w.toFixed(2));
    g.style.display = '';
    fit(g, x, w);
  }
  function zoom(z) {
    var full = W - 2 * pad, k = full / z.w, eps = 1e-3;
    frames.forEach(function (g) {
      var inside = g.x >= z.x - eps && g.x + g.w <= z.x + z.w + eps;
      var covers = g.x <= z.x + eps && g.x + g.w >= z.x + z.w - eps;
      if (g.y > z.y && covers) place(g, pad, full);
      else if (g === z) place(g, pad, full);
      else if (g.y < z.y && inside) place(g, pad + (g.x - z.x) * k, g.w * k);
      else g.style.display = 'none';
    });
    reset.style.display = z === frames[0] ? 'none' : '';
  }
  frames.forEach(function (g) {
    var t = g.getElementsByTagName('text')[0];
    g.r = g.getElementsByTagName('rect')[0];
    g.x = +g.r.getAttribute('x'); g.w = +g.r.getAttribute('width'); g.y = +g.r.getAttribute('y');
    g.l = g.getAttribute('data-l') || t.textContent;
    var title = g.r.getElementsByTagName('title')[0].textContent;
    g.onmouseover = function () { details.textContent = title; };
    g.onmouseout = function () { details.textContent = ' '; };
    g.onclick = function () { zoom(g); };
  });
  frames.sort(function (a, b) { return b.y - a.y; });
  reset.onclick = function () { zoom(frames[0]); };
})();
)JS";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace

std::string frame_name(const Frame& f) {
  if (!f.function.empty()) return f.function;
  if (!f.module.empty()) return basename(f.module) + "+" + hex(f.offset);
  return hex(f.pc);
}

std::string xml_escape(const std::string& s) {
  std::string clean = sanitize(s), out;
  out.reserve(clean.size());
  for (char c : clean) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void write_folded(std::ostream& out, const std::vector<Stack>& stacks) {
  std::map<std::string, uint64_t> lines;  // sorted by text, as stackcollapse prints them
  for (const Stack& s : stacks) {
    if (s.value == 0) continue;
    std::string line;
    for (auto f = s.frames.rbegin(); f != s.frames.rend(); ++f) {
      if (!line.empty()) line += ';';
      line += folded_name(*f);
    }
    if (line.empty()) line = "[unknown]";
    lines[line] += s.value;
  }
  for (const auto& [line, value] : lines) out << line << ' ' << value << '\n';
}

std::string render_svg(const std::vector<Stack>& stacks, const SvgOptions& options) {
  std::vector<Node> nodes = build_tree(stacks);
  const double width = std::max(options.width, 100);
  const double row = std::max(options.row_height, 8);
  const double full = width - 2 * kPadX;
  const uint64_t total = nodes[0].value;

  // Children in drawing order (left to right), then positions: x and w as fractions of the total.
  for (Node& n : nodes) {
    std::sort(n.children.begin(), n.children.end(), [&](size_t a, size_t b) {
      const Node& x = nodes[a];
      const Node& y = nodes[b];
      if (options.sort_by_size && x.value != y.value) return x.value > y.value;
      return std::tie(x.name, x.module) < std::tie(y.name, y.module);
    });
  }
  struct Placed {
    size_t node;
    double x, w;  // pixels
  };
  std::vector<Placed> placed;
  int max_depth = 0;
  if (total > 0) {
    // Depth-first from the root, parents before children: the script takes the first frame as
    // the root. Frames too narrow to see are dropped with everything above them.
    std::vector<Placed> todo = {{0, kPadX, full}};
    while (!todo.empty()) {
      Placed p = todo.back();
      todo.pop_back();
      if (p.w < options.min_width && p.node != 0) continue;
      placed.push_back(p);
      max_depth = std::max(max_depth, nodes[p.node].depth);
      double x = p.x;
      std::vector<Placed> kids;
      for (size_t c : nodes[p.node].children) {
        double w = full * static_cast<double>(nodes[c].value) / static_cast<double>(total);
        kids.push_back({c, x, w});
        x += w;
      }
      todo.insert(todo.end(), kids.rbegin(), kids.rend());
    }
  }
  const double height = kTop + (max_depth + 1) * row + kBottom;

  std::string o;
  o.reserve(256 * placed.size() + 4096);
  o += "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n";
  o += "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fixed(width, 0) +
       "\" height=\"" + fixed(height, 0) + "\" viewBox=\"0 0 " + fixed(width, 0) + " " +
       fixed(height, 0) + "\" font-family=\"monospace\" font-size=\"" + fixed(kFontSize, 0) +
       "\">\n";
  o += "<defs><linearGradient id=\"bg\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">"
       "<stop stop-color=\"#eeeeee\" offset=\"5%\"/><stop stop-color=\"#eeeeb0\" offset=\"95%\"/>"
       "</linearGradient></defs>\n";
  // Labels must not catch the mouse: hover and click go to the frame's rectangle and group.
  o += "<style>text { pointer-events: none; } .f { cursor: pointer; } "
       ".f:hover rect { stroke: #000; stroke-width: 0.5; } #reset { cursor: pointer; }</style>\n";
  o += "<rect id=\"background\" x=\"0\" y=\"0\" width=\"" + fixed(width, 0) + "\" height=\"" +
       fixed(height, 0) + "\" fill=\"url(#bg)\"/>\n";
  o += "<text id=\"heading\" x=\"" + fixed(width / 2, 1) +
       "\" y=\"22\" text-anchor=\"middle\" font-size=\"16\">" + xml_escape(options.title) +
       "</text>\n";
  o += "<text id=\"subtitle\" x=\"" + fixed(width / 2, 1) +
       "\" y=\"42\" text-anchor=\"middle\" fill=\"#444\">" + xml_escape(options.subtitle) +
       "</text>\n";
  o += "<text id=\"reset\" x=\"" + fixed(kPadX, 0) +
       "\" y=\"22\" style=\"display: none; pointer-events: all\">Reset zoom</text>\n";
  if (total == 0) {
    o += "<text x=\"" + fixed(width / 2, 1) + "\" y=\"" + fixed(kTop + row, 1) +
         "\" text-anchor=\"middle\">no live sampled allocations</text>\n";
  }
  for (const Placed& p : placed) {
    const Node& n = nodes[p.node];
    double y = kTop + (max_depth - n.depth) * row;
    double pct = 100.0 * static_cast<double>(n.value) / static_cast<double>(total);
    std::string title = n.name + (n.module.empty() ? "" : " (" + n.module + ")") + " \u2014 " +
                        std::to_string(n.value) + " bytes, " + fixed(pct, 2) + "%";
    std::string label = fit_label(n.name, p.w);
    o += "<g class=\"f\"";
    if (label != n.name) o += " data-l=\"" + xml_escape(n.name) + "\"";
    o += "><rect x=\"" + fixed(p.x, 2) + "\" y=\"" + fixed(y, 1) + "\" width=\"" + fixed(p.w, 2) +
         "\" height=\"" + fixed(row - 1, 1) + "\" fill=\"" + colour(n.name) +
         "\" rx=\"2\" ry=\"2\"><title>" + xml_escape(title) + "</title></rect><text x=\"" +
         fixed(p.x + kTextPad, 2) + "\" y=\"" + fixed(y + row - 4.5, 1) + "\">" +
         xml_escape(label) + "</text></g>\n";
  }
  o += "<text id=\"details\" x=\"" + fixed(kPadX, 0) + "\" y=\"" + fixed(height - 10, 1) +
       "\"> </text>\n";
  std::string script = replace_all(kScript, "@PAD@", fixed(kPadX, 1));
  script = replace_all(script, "@CW@", fixed(kCharWidth, 2));
  script = replace_all(script, "@TP@", fixed(kTextPad, 1));
  o += "<script type=\"text/ecmascript\"><![CDATA[" + script + "]]></script>\n";
  o += "</svg>\n";
  return o;
}

}  // namespace pg::flame
