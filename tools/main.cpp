// poolguard: runs programs under the preloaded allocator and reads the live statistics that every
// such process publishes (base/segment.h, docs/STATS.md). This file holds the usage and the
// dispatch; each command has its own file (tools/cmd_*.cpp).
//
//   poolguard run [--stats] [--limit SIZE] [--log PATH] [--guard MODE] [--leaks]
//                 [--profile BYTES] -- CMD [ARGS...]
//   poolguard stat PID [--json] [--watch SECONDS] [--profile [--top N]]
//   poolguard ls
//   poolguard map PID [--classes]
//   poolguard profile PID (--folded [FILE] | --svg FILE)
//   poolguard symbolize [FILE|-]
//
// Exit status: 0 success, 1 the process cannot be read (no such process, no segment, another
// user's, invalid; no heap profile for `stat --profile` and `profile`) or FILE cannot be written,
// 2 bad arguments; `run` exits with the command's status (127: not found).
#include <cstdio>
#include <string>
#include <vector>

#include "base/segment.h"
#include "tools/args.h"
#include "tools/commands.h"

#ifndef PG_VERSION
#define PG_VERSION "0"
#endif

namespace {

const char kUsage[] =
    "usage: poolguard COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  run [--stats] [--limit SIZE] [--log PATH] [--guard MODE] [--leaks] [--profile BYTES]\n"
    "      -- CMD [ARGS...]\n"
    "                      run CMD with libpoolguard.so preloaded\n"
    "  stat PID [--json] [--watch SECONDS] [--profile [--top N]]\n"
    "                      the heap of a running process: size classes, arenas, large blocks,\n"
    "                      fragmentation; with --profile, the stacks that hold it\n"
    "  ls                  processes that publish statistics now\n"
    "  map PID [--classes] occupancy map of the process's arenas and pools\n"
    "  profile PID (--folded [FILE] | --svg FILE)\n"
    "                      the live heap by allocation stack: folded stacks or a flame graph\n"
    "  symbolize [FILE|-]  a report or log with the function and file:line of every frame\n"
    "\n"
    "`poolguard COMMAND --help` describes each command; `man poolguard` has the details.\n";

}  // namespace

int main(int argc, char** argv) {
  using pg::tool::help;
  using pg::tool::is_help;
  using pg::tool::usage_error;
  if (argc < 2) return usage_error(kUsage, "COMMAND missing");
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (is_help(cmd) || cmd == "help") return help(kUsage);
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
  return usage_error(kUsage, "unknown command '" + cmd + "'");
}
