// `poolguard ls`: the processes that publish statistics now, one line each.
#include <cstdio>
#include <string>
#include <vector>

#include "stats/reader.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/reading.h"
#include "tools/text.h"

namespace pg::tool {

namespace {

const char kLsUsage[] =
    "usage: poolguard ls\n"
    "\n"
    "Lists the processes of yours (all of them, for root) that publish poolguard statistics now:\n"
    "pid, command, live bytes in the pools and in large blocks, resident set size.\n";

}  // namespace

int cmd_ls(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (is_help(a)) return help(kLsUsage);
    return usage_error(kLsUsage, "unexpected argument '" + a + "'");
  }
  int others = 0;
  printf("%7s  %-16s %12s %12s %12s\n", "PID", "COMMAND", "SMALL LIVE", "LARGE LIVE", "RSS");
  for (int pid : pg::stats::segment_pids()) {
    SegmentReader reader;
    std::string why;
    switch (reader.open(pid, &why)) {
      case OpenStatus::kOk: {
        Figures f;
        reader.read(&f);
        Derived d = derive(f);
        printf("%7d  %-16s %12s %12s %12s\n", pid, reader.process().comm.c_str(),
               bytes(d.small_held).c_str(), bytes(f.large_live_bytes).c_str(),
               bytes(f.rss_bytes).c_str());
        break;
      }
      case OpenStatus::kNotOwner:
        ++others;
        break;
      case OpenStatus::kInvalid:
        fprintf(stderr, "poolguard: %s; left alone\n", why.c_str());
        break;
      default:  // gone meanwhile, or sharing its parent's segment
        break;
    }
  }
  if (others > 0) {
    fprintf(stderr, "poolguard: %d process%s of other users not shown\n", others,
            others == 1 ? "" : "es");
  }
  return 0;
}

}  // namespace pg::tool
