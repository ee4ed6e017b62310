// `poolguard symbolize [FILE|-]`: a poolguard report or log with every frame's function and
// file:line filled in. A report written in a signal handler names its frames from the symbol
// tables only (no child process may be started there); limit records carry module+offset frames
// in JSON. Both are resolved here, where allocating is fine, through addr2line and the modules'
// symbol tables (base/symbolize.h), the same checks as in-process: never a name that no symbol
// covers.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/elf_symbols.h"
#include "base/symbolize.h"
#include "tools/args.h"
#include "tools/commands.h"

namespace pg::tool {

namespace {

const char kSymbolizeUsage[] =
    "usage: poolguard symbolize [FILE|-]\n"
    "\n"
    "Copies a poolguard report or log (FILE, or standard input) to standard output with the\n"
    "function and file:line of every frame filled in: the text frames of error and leak reports\n"
    "(\"#0 0x... (MODULE+0xOFF)\") and the JSON frames of limit records. The modules must still\n"
    "be there; when the report lists a module's build-id and the file on disk has another, the\n"
    "debug file /usr/lib/debug/.build-id/xx/yyyy.debug is used if present, else the module's\n"
    "frames are left as they were.\n";

// "    #3 0x55d4f3a0b1c9 in fn (/path/mod+0x11c9) file.c:12": prefix, name, module, offset, tail.
const std::regex kTextFrame(
    R"(^(\s*#\d+ 0x[0-9a-f]+)(?: in (.*?))? \((.+)\+0x([0-9a-f]+)\)(?: (.*))?$)");
// A stack's title line: "  the access by thread 7:" (its frame #0 is an exact pc).
const std::regex kTitle(R"(^  (\S.*):$)");
// A module line of a report written in a signal handler: "    /path/mod build-id 1a2b...".
const std::regex kModuleLine(R"(^    (/.*) build-id ([0-9a-f]+)$)");
// A JSON frame of a limit record.
const std::regex kJsonFrame(
    R"re(\{"pc":"(0x[0-9a-f]+)"(?:,"fn":"((?:[^"\\]|\\.)*)")?,"module":"((?:[^"\\]|\\.)*)","offset":"0x([0-9a-f]+)"(?:,"line":"(?:[^"\\]|\\.)*")?\})re");

std::string json_unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

struct Name {
  std::string function, file_line;
};

// The names of (module, lookup offset) pairs, one addr2line run per module.
class Namer {
 public:
  void want(const std::string& module, uint64_t offset) { wanted_[module].insert(offset); }
  void expect_build_id(const std::string& module, const std::string& id) { ids_[module] = id; }

  void resolve() {
    for (const auto& [module, offsets] : wanted_) {
      std::string file = file_for(module);
      if (file.empty()) continue;
      std::vector<uint64_t> all(offsets.begin(), offsets.end());
      std::vector<SymFrame> frames(all.size());
      for (SymFrame& f : frames) f.function[0] = f.file_line[0] = '\0';
      if (!symbolize_module(file.c_str(), all.data(), all.size(), frames.data()) && !warned_) {
        warned_ = true;
        fprintf(stderr,
                "poolguard: cannot run addr2line on %s (apt-get install binutils?): names from the "
                "symbol tables only, no file:line\n",
                file.c_str());
      }
      for (size_t i = 0; i < all.size(); ++i) {
        names_[{module, all[i]}] = {frames[i].function, frames[i].file_line};
      }
    }
  }

  const Name* find(const std::string& module, uint64_t offset) const {
    auto it = names_.find({module, offset});
    return it == names_.end() ? nullptr : &it->second;
  }

 private:
  // The file to read for `module`: itself, unless the report gave a build-id that the file no
  // longer has (rebuilt or upgraded since), then its separate debug file, if installed.
  std::string file_for(const std::string& module) {
    auto it = ids_.find(module);
    if (it == ids_.end()) return module;
    char id[160];
    ElfSymbols elf(module.c_str());
    if (elf.build_id(id, sizeof id) && it->second == id) return module;
    const std::string& want = it->second;
    std::string debug =
        "/usr/lib/debug/.build-id/" + want.substr(0, 2) + "/" + want.substr(2) + ".debug";
    if (want.size() > 2 && access(debug.c_str(), R_OK) == 0) return debug;
    fprintf(stderr,
            "poolguard: %s is not the file that ran (build-id %s): its frames are left as they "
            "were\n",
            module.c_str(), want.c_str());
    return "";
  }

  std::map<std::string, std::set<uint64_t>> wanted_;
  std::map<std::string, std::string> ids_;
  std::map<std::pair<std::string, uint64_t>, Name> names_;
  bool warned_ = false;
};

// The offset to look up for a frame at `offset`: a return address names the call before it
// (offset - 1), an exact pc (frame #0 of a fault) itself.
uint64_t lookup_offset(uint64_t offset, bool exact) {
  return exact || offset == 0 ? offset : offset - 1;
}

bool frame_zero(const std::string& prefix) {
  size_t hash = prefix.find('#');
  return hash != std::string::npos && prefix.compare(hash, 3, "#0 ") == 0;
}

// What a line of the report is.
enum class Kind { kPlain, kTextFrame, kJsonFrames };
struct Line {
  std::string text;
  Kind kind = Kind::kPlain;
  bool exact = false;  // a text frame at an exact pc
};

// Splits the report into lines and classifies them; the build-ids listed go to namer.
std::vector<Line> classify(const std::string& text, Namer* namer) {
  std::vector<Line> lines;
  std::istringstream split(text);
  bool exact_stack = false;
  std::smatch m;
  for (std::string s; std::getline(split, s);) {
    Line l;
    l.text = std::move(s);
    const std::string& t = l.text;
    if (std::regex_match(t, m, kTitle)) {
      exact_stack = m[1].str().rfind("the access", 0) == 0;
    } else if (std::regex_match(t, m, kModuleLine)) {
      namer->expect_build_id(m[1], m[2]);
    } else if (t.find("+0x") != std::string::npos && std::regex_match(t, m, kTextFrame)) {
      l.kind = Kind::kTextFrame;
      l.exact = exact_stack && frame_zero(m[1]);
    } else if (t.find("\"offset\":\"0x") != std::string::npos) {
      l.kind = Kind::kJsonFrames;
    }
    lines.push_back(std::move(l));
  }
  return lines;
}

uint64_t hex_offset(const std::ssub_match& m) {
  return std::stoull(m.str(), nullptr, 16);
}

// A text frame with what was found (what it said before otherwise).
std::string named_text(const Line& l, const Namer& namer) {
  std::smatch m;
  std::regex_match(l.text, m, kTextFrame);
  const Name* n = namer.find(m[3], lookup_offset(hex_offset(m[4]), l.exact));
  std::string function = n != nullptr && !n->function.empty() ? n->function : m[2].str();
  std::string file_line = n != nullptr && !n->file_line.empty() ? n->file_line : m[5].str();
  std::string s = m[1].str();
  if (!function.empty()) s += " in " + function;
  s += " (" + m[3].str() + "+0x" + m[4].str() + ")";
  if (!file_line.empty()) s += " " + file_line;
  return s;
}

// A line of JSON frames, each with "fn" and "line" from what was found.
std::string named_json(const Line& l, const Namer& namer) {
  std::string s;
  auto last = l.text.cbegin();
  for (std::sregex_iterator it(l.text.begin(), l.text.end(), kJsonFrame), end; it != end; ++it) {
    const std::smatch& m = *it;
    s.append(last, m[0].first);
    last = m[0].second;
    const Name* n = namer.find(json_unescape(m[3]), lookup_offset(hex_offset(m[4]), false));
    std::string function =
        n != nullptr && !n->function.empty() ? n->function : json_unescape(m[2].str());
    s += "{\"pc\":\"" + m[1].str() + "\"";
    if (!function.empty()) s += ",\"fn\":\"" + json_escape(function) + "\"";
    s += ",\"module\":\"" + m[3].str() + "\",\"offset\":\"0x" + m[4].str() + "\"";
    if (n != nullptr && !n->file_line.empty())
      s += ",\"line\":\"" + json_escape(n->file_line) + "\"";
    s += "}";
  }
  s.append(last, l.text.cend());
  return s;
}

}  // namespace

int cmd_symbolize(const std::vector<std::string>& args) {
  std::string path = "-";
  bool have_path = false;
  for (const std::string& a : args) {
    if (is_help(a)) return help(kSymbolizeUsage);
    if (a != "-" && !a.empty() && a[0] == '-') {
      return usage_error(kSymbolizeUsage, "unknown option '" + a + "'");
    }
    if (have_path) return usage_error(kSymbolizeUsage, "one FILE only");
    path = a;
    have_path = true;
  }
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      fprintf(stderr, "poolguard: cannot read %s\n", path.c_str());
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  Namer namer;
  std::vector<Line> lines = classify(text, &namer);
  std::smatch m;
  for (const Line& l : lines) {
    if (l.kind == Kind::kTextFrame && std::regex_match(l.text, m, kTextFrame)) {
      namer.want(m[3], lookup_offset(hex_offset(m[4]), l.exact));
    } else if (l.kind == Kind::kJsonFrames) {
      for (std::sregex_iterator it(l.text.begin(), l.text.end(), kJsonFrame), end; it != end;
           ++it) {
        namer.want(json_unescape((*it)[3]), lookup_offset(hex_offset((*it)[4]), false));
      }
    }
  }
  namer.resolve();
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const Line& l = lines[i];
    out += l.kind == Kind::kTextFrame    ? named_text(l, namer)
           : l.kind == Kind::kJsonFrames ? named_json(l, namer)
                                         : l.text;
    if (i + 1 < lines.size() || (!text.empty() && text.back() == '\n')) out += '\n';
  }
  fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace pg::tool
