// poolguard: runs programs under the preloaded allocator and reads the live statistics that every
// such process publishes (base/segment.h, docs/STATS.md). This file holds the usage and the
// dispatch; each command has its own file (tools/cmd_*.cpp).
//
//   poolguard run [--stats] [--limit SIZE] [--log PATH] [--guard MODE] [--leaks]
//                 [--profile BYTES] [-e NAME=VALUE]... -- CMD [ARGS...]
//   poolguard stat PID [--json] [--watch SECONDS] [--profile [--top N]]
//   poolguard ls
//   poolguard map PID [--classes]
//   poolguard profile PID (--folded [FILE] | --svg FILE)
//   poolguard symbolize [FILE|-]
//   poolguard export [PID | --all] [--listen [ADDR:]PORT | --textfile DIR [--interval SECONDS]]
//   poolguard record [-i SECONDS] [--profile BYTES] [-e NAME=VALUE]... -o FILE
//                    (-- CMD [ARGS...] | PID)
//   poolguard plot FILE [-o OUT.svg] [--pid PID] [--title TEXT]
//   poolguard --version
//
// Exit status: 0 success, 1 the process cannot be read (no such process, no segment, another
// user's, invalid; no heap profile for `stat --profile` and `profile`), FILE cannot be written,
// or (plot) the recording cannot be read; 2 bad arguments; `run` and `record -- CMD` exit with
// the command's status (127: not found).
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "base/options.h"
#include "base/segment.h"
#include "tools/args.h"
#include "tools/commands.h"

#ifndef PG_VERSION
#define PG_VERSION "0"
#endif
#ifndef PG_BIN_TO_MAN
#define PG_BIN_TO_MAN "../share/man/man1"
#endif
#ifndef PG_SOURCE_MAN
#define PG_SOURCE_MAN ""
#endif

namespace {

const char kUsage[] =
    "usage: poolguard COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  run [--stats] [--limit SIZE] [--log PATH] [--guard MODE] [--leaks] [--profile BYTES]\n"
    "      [-e NAME=VALUE]... -- CMD [ARGS...]\n"
    "                      run CMD with libpoolguard.so preloaded\n"
    "  stat PID [--json] [--watch SECONDS] [--profile [--top N]]\n"
    "                      the heap of a running process: size classes, arenas, large blocks,\n"
    "                      fragmentation; with --profile, the stacks that hold it\n"
    "  ls                  processes that publish statistics now\n"
    "  map PID [--classes] occupancy map of the process's arenas and pools\n"
    "  profile PID (--folded [FILE] | --svg FILE)\n"
    "                      the live heap by allocation stack: folded stacks or a flame graph\n"
    "  symbolize [FILE|-]  a report or log with the function and file:line of every frame\n"
    "  export [PID | --all] [--listen [ADDR:]PORT | --textfile DIR [--interval SECONDS]]\n"
    "                      Prometheus metrics of every process (or PID): printed, served over\n"
    "                      HTTP or written for node_exporter's textfile collector\n"
    "  record [-i SECONDS] [--profile BYTES] [-e NAME=VALUE]... -o FILE\n"
    "         (-- CMD [ARGS...] | PID)\n"
    "                      the heap of CMD (run as by `run`) or of PID, and of their children,\n"
    "                      over time: a timeline of JSON lines, with each process's peak\n"
    "  plot FILE [-o OUT.svg] [--pid PID] [--title TEXT]\n"
    "                      a recording of memory over time (poolguard record) as an SVG chart\n"
    "  --version           the version of poolguard and of the statistics segment it reads\n"
    "\n";

const char* const kCommands[] = {"run",    "stat",   "ls",   "map",  "profile", "symbolize",
                                 "export", "record", "plot", "help", "--help",  "--version"};

// Where the man page is: installed next to the tool (bin/../share/man/man1), or, for a tool run
// from its build tree, docs/poolguard.1 in the source tree it was built from.
std::string man_hint() {
  for (const std::string& page :
       {pg::tool::tool_dir() + "/" + PG_BIN_TO_MAN + "/poolguard.1", std::string(PG_SOURCE_MAN)}) {
    if (!page.empty() && access(page.c_str(), R_OK) == 0) {
      return "`man -l " + pg::tool::clean_path(page) + "` has the details.\n";
    }
  }
  return "`man poolguard` has the details (docs/poolguard.1 in the source tree).\n";
}

// The command nearest to an unknown one: one it starts with (stats: stat), one that starts with
// it (prof: profile), or else one a typo away (sl: ls); null if none. A prefix wins over a typo
// (prof is two letters from plot, but the start of profile).
const char* nearest_command(const std::string& given) {
  const char* nearest = nullptr;
  size_t best = SIZE_MAX;
  bool best_prefix = false;
  for (const char* c : kCommands) {
    std::string cmd = c;
    size_t d = pg::name_distance(given.c_str(), c);
    bool prefix = (given.size() >= 2 && cmd.rfind(given, 0) == 0) || given.rfind(cmd, 0) == 0;
    if (!prefix && d > (cmd.size() <= 3 ? 1 : 2)) continue;
    if ((prefix && !best_prefix) || (prefix == best_prefix && d < best)) {
      best = d, nearest = c, best_prefix = prefix;
    }
  }
  return nearest;
}

}  // namespace

int main(int argc, char** argv) {
  using pg::tool::help;
  using pg::tool::is_help;
  using pg::tool::usage_error;
  const std::string usage =
      std::string(kUsage) + "`poolguard COMMAND --help` describes each command; " + man_hint();
  if (argc < 2) return usage_error(usage.c_str(), "COMMAND missing");
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (is_help(cmd) || cmd == "help") return help(usage.c_str());
  if (cmd == "--version") {
    printf("poolguard %s (stats segment version %u)\n", PG_VERSION, pg::stats::kSegmentVersion);
    return 0;
  }
  if (cmd == "run") return pg::tool::cmd_run(args);
  if (cmd == "stat") return pg::tool::cmd_stat(args);
  if (cmd == "ls") return pg::tool::cmd_ls(args);
  if (cmd == "map") return pg::tool::cmd_map(args);
  if (cmd == "profile") return pg::tool::cmd_profile(args);
  if (cmd == "symbolize") return pg::tool::cmd_symbolize(args);
  if (cmd == "export") return pg::tool::cmd_export(args);
  if (cmd == "record") return pg::tool::cmd_record(args);
  if (cmd == "plot") return pg::tool::cmd_plot(args);
  std::string message =
      (!cmd.empty() && cmd[0] == '-' ? "unknown option '" : "unknown command '") + cmd + "'";
  if (const char* nearest = nearest_command(cmd)) {
    message += std::string("; did you mean '") + nearest + "'?";
  }
  return usage_error(usage.c_str(), message);
}
