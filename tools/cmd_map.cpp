// `poolguard map PID`: the occupancy map of a process's arenas, one character per pool.
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

const char kMapUsage[] =
    "usage: poolguard map PID [--classes]\n"
    "\n"
    "Draws the arenas of process PID, one line per arena and one character per 16 KiB pool unit\n"
    "(the pools of classes above 3584 bytes span 2-16 units, each drawn as its pool):\n"
    "  #  full           1-9  in use, that many tenths full     0  in use, under a tenth full\n"
    "  +  in use, fill not readable (it needs a debugger's permission on the process)\n"
    "  :  free, resident (pages still mapped)                  .  free, returned to the OS\n"
    "  --classes   add a line per arena with each pool's size class (a = 16 bytes, b = 32, ...; "
    "the\n"
    "              legend below the map names them all)\n";

// A unit of a pool: its first, or one more of a span (the largest classes' pools span 2-16 units,
// each drawn with the pool's fill and class).
bool in_use(const pg::stats::PoolFigures& p) {
  return p.state == pg::stats::kSegPoolInUse || p.state == pg::stats::kSegPoolSpanTail;
}

char pool_char(const pg::stats::PoolFigures& p, const Figures& s) {
  if (p.state == pg::stats::kSegPoolFreeClean) return '.';
  if (p.state == pg::stats::kSegPoolFreeDirty) return ':';
  if (p.state == pg::stats::kSegPoolHeaders) return 'h';
  if (!in_use(p)) return '?';
  if (p.used == pg::stats::kUsedUnknown) return '+';
  const pg::stats::ClassFigures* c = p.cls < s.num_classes ? &s.classes[p.cls] : nullptr;
  uint64_t size = c ? c->block_size : 0;
  uint64_t capacity = size ? (c->pool_bytes - s.pool_header) / size : 0;
  if (capacity == 0) return '?';
  if (p.used >= capacity) return '#';
  return static_cast<char>('0' + p.used * 10 / capacity);
}

// The letter that stands for class c in --classes rows: a-z, then A-Z (the small tier's 16 classes
// and the medium tier's first ten are lower case).
char class_letter(uint32_t c) {
  if (c < 26) return static_cast<char>('a' + c);
  if (c < 52) return static_cast<char>('A' + (c - 26));
  return '?';
}

}  // namespace

int cmd_map(const std::vector<std::string>& args) {
  int pid = 0;
  bool have_pid = false, classes = false;
  for (const std::string& a : args) {
    if (is_help(a)) return help(kMapUsage);
    if (a == "--classes") {
      classes = true;
    } else if (int status = pid_argument(kMapUsage, a, &pid, &have_pid); status != 0) {
      return status;
    }
  }
  if (!have_pid) return usage_error(kMapUsage, "PID missing");
  SegmentReader reader;
  if (open_published(pid, &reader) != 0) return 1;
  Reading r;
  reader.read(&r.fig);
  r.proc = reader.process();
  std::string why;
  bool fill = reader.read_fill(&r.fig, &why);
  const Figures& s = r.fig;
  printf(
      "poolguard map: pid %d (%s): %llu arena%s of %zu pool units (%s each), %llu units in use\n",
      s.pid, r.proc.comm.c_str(), (unsigned long long)s.arenas_in_use,
      s.arenas_in_use == 1 ? "" : "s", pg::stats::kSegmentPoolsPerArena, bytes(s.pool_size).c_str(),
      (unsigned long long)s.pools_in_use);
  if (!fill) printf("(pools in use are drawn '+': %s)\n", why.c_str());
  for (const auto& arena : s.arenas) {
    std::string row, cls;
    for (const auto& p : arena.pools) {
      row += pool_char(p, s);
      cls += in_use(p) ? class_letter(p.cls) : ' ';
    }
    printf("0x%012llx %s\n", (unsigned long long)arena.base, row.c_str());
    if (classes) printf("%14s %s\n", "class", cls.c_str());
  }
  if (s.arenas_unlisted > 0) {
    printf("(%llu more arenas not shown: the map holds %zu)\n",
           (unsigned long long)s.arenas_unlisted, s.arenas.size());
  }
  printf(
      "legend: '#' full, '1'-'9' in use and that many tenths full, '0' in use and under a tenth, "
      "'+' in use (fill unknown), ':' free but resident, '.' free and returned to the OS, 'h' the "
      "arena's pool headers\n");
  if (classes) {
    std::string legend;
    for (uint32_t c = 0; c < s.num_classes && c < 52; ++c) {
      legend += std::string(c ? ", " : "") + class_letter(c) + " " +
                std::to_string(s.classes[c].block_size);
    }
    printf("classes (bytes): %s\n", legend.c_str());
  }
  return 0;
}

}  // namespace pg::tool
