// `poolguard profile PID`: a process's live heap by allocation stack, as folded stacks or an SVG
// flame graph (tools/flamegraph.h).
#include <time.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "stats/profile_reader.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/flamegraph.h"
#include "tools/output.h"
#include "tools/reading.h"
#include "tools/remote_symbolizer.h"
#include "tools/text.h"

namespace pg::tool {

namespace {

const char kProfileUsage[] =
    "usage: poolguard profile PID --folded [FILE]\n"
    "       poolguard profile PID --svg FILE\n"
    "\n"
    "Writes the live heap profile of process PID (run with POOLGUARD_PROFILE=BYTES, or\n"
    "POOLGUARD_LEAKS=1): the bytes still held, estimated from sampled allocations, by allocation\n"
    "stack, symbolized with addr2line.\n"
    "  --folded [FILE]  folded stacks, one line per stack: frames root first joined by ';', a\n"
    "                   space, the live bytes (for flamegraph.pl, speedscope, inferno); to FILE,\n"
    "                   or to stdout when FILE is omitted or '-'\n"
    "  --svg FILE       a self-contained SVG flame graph (in a browser: hover for details, click\n"
    "                   to zoom)\n"
    "Exit status 1 when the process does not exist, publishes nothing, belongs to another user or\n"
    "does not sample its heap.\n";

// The profile as flame-graph stacks, every listed stack named.
std::vector<pg::flame::Stack> flame_stacks(const pg::stats::Profile& p, RemoteSymbolizer& sym) {
  std::map<uint64_t, RemoteFrame> names = name_frames(sym, p, 0);
  std::vector<pg::flame::Stack> stacks;
  stacks.reserve(p.stacks.size());
  for (const pg::stats::ProfileStack& s : p.stacks) {
    pg::flame::Stack fs;
    fs.value = s.bytes;
    for (uint64_t pc : s.pcs) fs.frames.push_back(names.at(pc).frame);
    // A stack as deep as the depot keeps lost its outer frames: it gets a root of its own that
    // says so, rather than standing as a root beside main's.
    if (s.pcs.size() >= pg::stats::kProfileMaxFrames) {
      pg::flame::Frame cut;
      cut.function = "[truncated: outer frames not captured]";
      fs.frames.push_back(cut);
    }
    stacks.push_back(std::move(fs));
  }
  return stacks;
}

}  // namespace

int cmd_profile(const std::vector<std::string>& args) {
  enum class Format { kNone, kFolded, kSvg } format = Format::kNone;
  int pid = 0;
  bool have_pid = false;
  std::string file;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], name = a, value;
    bool inline_value = split_eq(a, &name, &value);
    if (is_help(a)) return help(kProfileUsage);
    if (name == "--folded" || name == "--svg") {
      if (format != Format::kNone) return usage_error(kProfileUsage, "one of --folded or --svg");
      format = name == "--folded" ? Format::kFolded : Format::kSvg;
      // FILE is optional after --folded: the next argument is it if it is '-', or if it is not
      // an option and is not the only candidate left for PID (`profile --folded 1234`).
      auto file_follows = [&]() {
        if (i + 1 >= args.size()) return false;
        const std::string& next = args[i + 1];
        if (next == "-") return true;
        if (next.empty() || next[0] == '-') return false;
        if (format == Format::kSvg || have_pid) return true;
        for (size_t k = i + 2; k < args.size(); ++k) {
          if (!args[k].empty() && args[k][0] != '-') return true;
        }
        return false;
      };
      if (inline_value) {
        file = value;
      } else if (file_follows()) {
        file = args[++i];
      }
      if (format == Format::kSvg && file.empty()) {
        return usage_error(kProfileUsage, "--svg needs FILE");
      }
    } else if (int status = pid_argument(kProfileUsage, a, &pid, &have_pid); status != 0) {
      return status;
    }
  }
  if (!have_pid) return usage_error(kProfileUsage, "PID missing");
  if (format == Format::kNone) return usage_error(kProfileUsage, "--folded or --svg missing");

  ProfileReading r;
  if (read_profile_of(pid, &r) != 0) return 1;
  const pg::stats::Profile& p = r.profile;
  RemoteSymbolizer sym(pid);
  std::vector<pg::flame::Stack> stacks = flame_stacks(p, sym);
  if (p.stacks.empty()) {
    fprintf(stderr, "poolguard: process %d holds no sampled allocations now\n", pid);
  } else if (p.unlisted_samples != 0) {
    fprintf(stderr, "poolguard: %llu live samples belong to stacks the profile had no room for\n",
            static_cast<unsigned long long>(p.unlisted_samples));
  }
  if (std::string few = uncertainty(p, p.live_samples); !few.empty() && !p.stacks.empty()) {
    fprintf(stderr, "poolguard: %llu live samples behind these figures, %s\n",
            static_cast<unsigned long long>(p.live_samples), few.c_str());
  }

  std::string text;
  if (format == Format::kFolded) {
    std::ostringstream folded;
    pg::flame::write_folded(folded, stacks);
    text = folded.str();
  } else {
    pg::flame::SvgOptions options;
    options.title = "Live heap of " + r.proc.comm + " (pid " + std::to_string(pid) + ")";
    time_t when = static_cast<time_t>(p.read_time_ns / 1000000000u);
    char stamp[32] = "";
    struct tm tm;
    if (localtime_r(&when, &tm) != nullptr) strftime(stamp, sizeof stamp, "%F %T", &tm);
    options.subtitle = bytes(p.bytes) + " live in " + std::to_string(p.blocks) + " blocks, " +
                       sampling(p) + "; " + std::to_string(p.stacks.size()) + " stacks" + "; " +
                       stamp;
    text = pg::flame::render_svg(stacks, options);
  }
  // The file is opened only now, so that a process that cannot be read leaves no empty file.
  const bool to_stdout = file.empty() || file == "-";
  if (!write_output(file, text)) return 1;
  if (!to_stdout) {
    fprintf(stderr, "poolguard: wrote %s: %zu stacks, %s live\n", file.c_str(), p.stacks.size(),
            bytes(p.bytes).c_str());
  }
  return 0;
}

}  // namespace pg::tool
