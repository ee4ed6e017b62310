// poolguard: runs programs under the preloaded allocator and reads the live statistics that every
// such process publishes (base/segment.h, docs/STATS.md).
//
//   poolguard run [--stats] [--limit SIZE] [--log PATH] [--guard MODE] [--leaks]
//                 [--profile BYTES] -- CMD [ARGS...]
//   poolguard stat PID [--json] [--watch SECONDS] [--profile [--top N]]
//   poolguard ls
//   poolguard map PID [--classes]
//   poolguard profile PID (--folded [FILE] | --svg FILE)
//
// Exit status: 0 success, 1 the process cannot be read (no such process, no segment, another
// user's, invalid; no heap profile for `stat --profile` and `profile`) or FILE cannot be written,
// 2 bad arguments; `run` exits with the command's status (127: not found).
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/options.h"
#include "base/segment.h"
#include "stats/profile_reader.h"
#include "stats/reader.h"
#include "tools/flamegraph.h"
#include "track/symbolize.h"

#ifndef PG_VERSION
#define PG_VERSION "0"
#endif
#ifndef PG_BIN_TO_LIB
#define PG_BIN_TO_LIB "../lib"
#endif
#ifndef PG_MULTIARCH
#define PG_MULTIARCH ""
#endif

namespace {

using pg::stats::Figures;
using pg::stats::OpenStatus;
using pg::stats::SegmentReader;

// --- Usage
// ----------------------------------------------------------------------------------------

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
    "\n"
    "`poolguard COMMAND --help` describes each command; `man poolguard` has the details.\n";

const char kRunUsage[] =
    "usage: poolguard run [--stats] [--limit SIZE] [--log PATH] [--guard MODE] [--leaks]\n"
    "                     [--profile BYTES] -- CMD [ARGS...]\n"
    "\n"
    "Runs CMD with libpoolguard.so preloaded (LD_PRELOAD); child processes inherit it.\n"
    "  --stats          print a summary when each process exits (POOLGUARD_STATS=exit)\n"
    "  --limit SIZE     cap the bytes the program holds, e.g. 512M (POOLGUARD_LIMIT)\n"
    "  --log PATH       where limit records go: stderr or a file, %p = pid (POOLGUARD_LOG)\n"
    "  --guard MODE     guard zones around every block: off, redzone or page (POOLGUARD_GUARD)\n"
    "  --leaks          report the blocks nothing points to at exit, by allocation stack\n"
    "                   (POOLGUARD_LEAKS=1)\n"
    "  --profile BYTES  sample one allocation per BYTES allocated (e.g. 512K) and keep the live\n"
    "                   samples by stack, for `stat --profile` and `profile` (POOLGUARD_PROFILE)\n"
    "Exits with CMD's status; 127 if CMD is not found, 126 if it cannot be run.\n";

const char kStatUsage[] =
    "usage: poolguard stat PID [--json] [--watch SECONDS] [--profile [--top N]]\n"
    "\n"
    "Prints the live heap statistics of process PID (which must run under poolguard): per size\n"
    "class, arenas, large blocks and fragmentation, as of now (read from the memory the process\n"
    "shares with readers; nothing runs in the process to answer).\n"
    "  --json             one JSON object instead of the table\n"
    "  --watch SECONDS    refresh every SECONDS until interrupted (Ctrl-C ends with status 0)\n"
    "  --profile          instead, the allocation stacks that hold the most live bytes, from the\n"
    "                     heap profile of a process run with POOLGUARD_PROFILE=BYTES (or\n"
    "                     POOLGUARD_LEAKS=1): estimated bytes, blocks, samples and the frames,\n"
    "                     innermost first, with file:line where there is debug information\n"
    "  --top N            with --profile: the N largest stacks (default 10; 0: all listed)\n"
    "Exit status 1 when the process does not exist, publishes nothing or belongs to another\n"
    "user, or (with --profile) does not sample its heap.\n";

const char kLsUsage[] =
    "usage: poolguard ls\n"
    "\n"
    "Lists the processes of yours (all of them, for root) that publish poolguard statistics now:\n"
    "pid, command, live bytes in the pools and in large blocks, resident set size.\n";

const char kMapUsage[] =
    "usage: poolguard map PID [--classes]\n"
    "\n"
    "Draws the arenas of process PID, one line per arena and one character per pool:\n"
    "  #  full           1-9  in use, that many tenths full     0  in use, under a tenth full\n"
    "  +  in use, fill not readable (it needs a debugger's permission on the process)\n"
    "  :  free, resident (pages still mapped)                  .  free, returned to the OS\n"
    "  --classes   add a line per arena with each pool's size class (a = 16 bytes, b = 32, ...)\n";

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

int usage_error(const char* usage, const std::string& message) {
  fprintf(stderr, "poolguard: %s\n%s", message.c_str(), usage);
  return 2;
}

int help(const char* usage) {
  fputs(usage, stdout);
  return 0;
}

bool is_help(const std::string& a) {
  return a == "--help" || a == "-h";
}

// --- Formatting
// -----------------------------------------------------------------------------------

std::string bytes(uint64_t n) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) v = 0;
  char buf[48];
  snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

double ratio(uint64_t a, uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

// --- Arguments
// ------------------------------------------------------------------------------------

bool parse_pid(const std::string& s, int* pid) {
  if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), ::isdigit)) return false;
  long long v = std::stoll(s);
  if (v <= 0 || v > INT_MAX) return false;
  *pid = static_cast<int>(v);
  return true;
}

bool parse_seconds(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = strtod(s.c_str(), &end);
  if (end == nullptr || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 86400) return false;
  *out = v;
  return true;
}

// Splits "--name=value" into name and value; true if there was a '='.
bool split_eq(const std::string& a, std::string* name, std::string* value) {
  size_t eq = a.find('=');
  if (a.rfind("--", 0) != 0 || eq == std::string::npos) return false;
  *name = a.substr(0, eq);
  *value = a.substr(eq + 1);
  return true;
}

// --- Reading a process
// ----------------------------------------------------------------------------

// A process's figures at one moment.
struct Reading {
  Figures fig;
  pg::stats::ProcessInfo proc;
};

// Seconds since process `p` started (from its start time and /proc/uptime); -1 if unknown.
double process_age(const pg::stats::ProcessInfo& p) {
  FILE* f = fopen("/proc/uptime", "r");
  double uptime = -1;
  if (f != nullptr) {
    if (fscanf(f, "%lf", &uptime) != 1) uptime = -1;
    fclose(f);
  }
  long ticks = sysconf(_SC_CLK_TCK);
  if (uptime < 0 || ticks <= 0) return -1;
  return uptime - static_cast<double>(p.start_time) / static_cast<double>(ticks);
}

// A process sets its segment up as its first allocation is served, before main: only one that
// has just been started may not have it yet.
constexpr double kYoungSeconds = 0.5;

// Opens pid's segment (or profile, with a ProfileReader). Prints why not and returns 1 on
// failure, else 0.
template <typename Reader>
int open_published(int pid, Reader* reader) {
  std::string why;
  OpenStatus st = reader->open(pid, &why);
  for (int tries = 0; tries < 25; ++tries) {
    double age = process_age(reader->process());
    if (st != OpenStatus::kNoSegment || age < 0 || age >= kYoungSeconds) break;
    timespec pause{0, 20 * 1000 * 1000};
    nanosleep(&pause, nullptr);
    st = reader->open(pid, &why);
  }
  if (st != OpenStatus::kOk) {
    fprintf(stderr, "poolguard: %s\n", why.c_str());
    return 1;
  }
  return 0;
}

// Reads pid's figures. Prints why not and returns 1 on failure, else 0.
int read_one(int pid, Reading* r) {
  SegmentReader reader;
  if (open_published(pid, &reader) != 0) return 1;
  reader.read(&r->fig);
  r->proc = reader.process();
  return 0;
}

// Figures derived from a segment: totals and fragmentation (docs/STATS.md defines them).
struct Derived {
  uint64_t small_live_blocks = 0, small_held = 0;
  uint64_t internal_bytes = 0;    // held - (mean request * live), summed over the classes
  uint64_t free_block_bytes = 0;  // free blocks inside pools in use
  uint64_t free_pools = 0;        // free pools inside arenas in use
  uint64_t free_pools_dirty = 0;  // ... of which resident (from the map)
  uint64_t free_pools_clean = 0;  // ... of which returned to the OS (from the map)
  uint64_t pool_overhead = 0;     // pool headers and the tail that no block fits in
  uint64_t arena_bytes = 0;       // arenas in use * arena size
  uint64_t live_bytes = 0;        // small held + large live (usable)
  bool map_complete = true;
};

double mean_request(const pg::stats::ClassFigures& c) {
  return c.allocs == 0 ? 0.0 : static_cast<double>(c.requested_bytes) / c.allocs;
}

Derived derive(const Figures& s) {
  Derived d;
  for (uint32_t i = 0; i < s.num_classes; ++i) {
    const auto& c = s.classes[i];
    d.small_live_blocks += c.live_blocks;
    d.small_held += c.held_bytes;
    double est = mean_request(c) * static_cast<double>(c.live_blocks);
    if (static_cast<double>(c.held_bytes) > est) {
      d.internal_bytes += c.held_bytes - static_cast<uint64_t>(std::llround(est));
    }
    d.free_block_bytes += c.free_blocks * c.block_size;
    if (c.block_size != 0) {
      uint64_t per_pool = (s.pool_size - s.pool_header) / c.block_size;
      d.pool_overhead += c.pools * (s.pool_size - per_pool * c.block_size);
    }
  }
  // Every arena's first pool holds the headers of the others: never free, never in use.
  uint64_t pools_in_arenas = s.arenas_in_use * (pg::stats::kSegmentPoolsPerArena - 1);
  d.free_pools = pools_in_arenas > s.pools_in_use ? pools_in_arenas - s.pools_in_use : 0;
  for (const auto& arena : s.arenas) {
    for (const auto& p : arena.pools) {
      if (p.state == pg::stats::kSegPoolFreeDirty) ++d.free_pools_dirty;
      if (p.state == pg::stats::kSegPoolFreeClean) ++d.free_pools_clean;
    }
  }
  d.map_complete = s.arenas_unlisted == 0;
  d.arena_bytes = s.arenas_in_use * s.arena_size;
  d.live_bytes = d.small_held + s.large_live_bytes;
  return d;
}

std::string stat_json(const Reading& r) {
  const Figures& s = r.fig;
  Derived d = derive(s);
  std::string j = "{";
  auto num = [&j](const char* k, uint64_t v, bool comma = true) {
    j += std::string("\"") + k + "\":" + std::to_string(v) + (comma ? "," : "");
  };
  num("pid", static_cast<uint64_t>(s.pid));
  j += "\"command\":" + json_string(r.proc.comm) + ",";
  num("uid", s.uid);
  num("version", s.version);
  j += "\"classes\":[";
  for (uint32_t i = 0; i < s.num_classes; ++i) {
    const auto& c = s.classes[i];
    j += i ? ",{" : "{";
    num("size", c.block_size);
    num("allocs", c.allocs);
    num("frees", c.frees);
    num("live_blocks", c.live_blocks);
    num("requested_bytes", c.requested_bytes);
    j += "\"mean_request\":" + fixed(mean_request(c), 1) + ",";
    num("held_bytes", c.held_bytes);
    num("pools", c.pools);
    num("free_blocks", c.free_blocks, false);
    j += "}";
  }
  j += "],\"small\":{";
  num("allocs", s.small_allocs);
  num("frees", s.small_frees);
  num("live_blocks", d.small_live_blocks);
  num("held_bytes", d.small_held);
  num("peak_bytes", s.peak_small_bytes, false);
  j += "},\"large\":{";
  num("allocs", s.large_allocs);
  num("frees", s.large_frees);
  num("live_blocks", s.large_allocs >= s.large_frees ? s.large_allocs - s.large_frees : 0);
  num("live_bytes", s.large_live_bytes, false);
  j += "},\"arenas\":{";
  num("mapped", s.arenas_mapped);
  num("in_use", s.arenas_in_use);
  num("released", s.arenas_released);
  num("reserved_bytes", s.reserved_bytes);
  num("fallback", s.fallback_arenas);
  num("pools_in_use", s.pools_in_use);
  num("pools_purged", s.pools_purged);
  num("free_pools", d.free_pools);
  num("arena_size", s.arena_size);
  num("pool_size", s.pool_size);
  num("map_listed", s.arenas.size(), false);
  j += "},\"process\":{";
  num("rss_bytes", s.rss_bytes);
  num("threads", s.threads);
  num("limit_bytes", s.limit_bytes);
  num("limit_in_use", s.limit_in_use);
  num("limit_peak", s.limit_peak);
  num("limit_refused", s.limit_refused);
  num("guard_events", s.guard_events, false);
  j += "},\"errors\":{";
  num("double_frees", s.double_frees);
  num("invalid_frees", s.invalid_frees);
  num("corruptions", s.corruptions, false);
  j += "},\"fragmentation\":{";
  num("internal_bytes", d.internal_bytes);
  j += "\"internal_ratio\":" + fixed(ratio(d.internal_bytes, d.small_held), 4) + ",";
  num("free_block_bytes", d.free_block_bytes);
  num("free_pool_bytes", d.free_pools * s.pool_size);
  num("free_pools_resident", d.free_pools_dirty);
  num("free_pools_returned", d.free_pools_clean);
  num("pool_overhead_bytes", d.pool_overhead);
  num("arena_bytes", d.arena_bytes);
  j += "\"external_ratio\":" +
       fixed(ratio(d.free_block_bytes + d.free_pools * s.pool_size, d.arena_bytes), 4) + ",";
  num("live_bytes", d.live_bytes);
  num("rss_bytes", s.rss_bytes);
  j += "\"rss_to_live\":" + fixed(ratio(s.rss_bytes, d.live_bytes), 3);
  j += "}}\n";
  return j;
}

std::string stat_table(const Reading& r) {
  const Figures& s = r.fig;
  Derived d = derive(s);
  std::string t;
  char line[512];
  snprintf(line, sizeof line, "poolguard stat: pid %d (%s)\n", s.pid, r.proc.comm.c_str());
  t += line;
  t += "class       allocs       frees        live   held bytes  mean req   pools  free blocks\n";
  for (uint32_t i = 0; i < s.num_classes; ++i) {
    const auto& c = s.classes[i];
    if (c.allocs == 0 && c.pools == 0) continue;
    snprintf(line, sizeof line, "%5llu %12llu %11llu %11llu %12llu %9.1f %7llu %12llu\n",
             (unsigned long long)c.block_size, (unsigned long long)c.allocs,
             (unsigned long long)c.frees, (unsigned long long)c.live_blocks,
             (unsigned long long)c.held_bytes, mean_request(c), (unsigned long long)c.pools,
             (unsigned long long)c.free_blocks);
    t += line;
  }
  auto u = [](uint64_t v) { return std::to_string(v); };
  t += "small     " + u(d.small_live_blocks) + " live blocks, " + bytes(d.small_held) +
       " held in " + u(s.pools_in_use) + " pools (peak " + bytes(s.peak_small_bytes) +
       " in pools); " + u(s.small_allocs) + " allocations, " + u(s.small_frees) + " frees\n";
  uint64_t large_live = s.large_allocs >= s.large_frees ? s.large_allocs - s.large_frees : 0;
  t += "large     " + u(large_live) + " live blocks, " + bytes(s.large_live_bytes) + "; " +
       u(s.large_allocs) + " allocations, " + u(s.large_frees) + " frees\n";
  t += "arenas    " + u(s.arenas_in_use) + " in use (" + bytes(d.arena_bytes) + "), " +
       u(s.arenas_mapped) + " mapped, " + u(s.arenas_released) + " released to the OS, " +
       u(s.fallback_arenas) + " outside the reservation; " + bytes(s.reserved_bytes) +
       " of address space reserved\n";
  t += "pools     " + u(s.pools_in_use) + " in use, " + u(d.free_pools) +
       " free in arenas in use (" + u(d.free_pools_dirty) + " resident, " + u(d.free_pools_clean) +
       " returned" +
       (d.map_complete ? "" : ", counted in the first " + u(s.arenas.size()) + " arenas") + "), " +
       u(s.pools_purged) + " purged so far\n";
  t += "process   RSS " + bytes(s.rss_bytes) + ", " + u(s.threads) + " thread heaps; limit " +
       (s.limit_bytes ? bytes(s.limit_bytes) + " (" + bytes(s.limit_in_use) + " charged, peak " +
                            bytes(s.limit_peak) + ", " + u(s.limit_refused) + " refused)"
                      : std::string("none")) +
       "; guard events " + u(s.guard_events) + "; errors " +
       u(s.double_frees + s.invalid_frees + s.corruptions) + "\n";
  t += "fragmentation\n";
  t += "  internal  " + bytes(d.internal_bytes) + " (" +
       fixed(100 * ratio(d.internal_bytes, d.small_held), 1) +
       "% of the bytes held): blocks larger than their requests (mean request per class)\n";
  t += "  external  " + bytes(d.free_block_bytes) + " in free blocks of pools in use, " +
       bytes(d.free_pools * s.pool_size) + " in free pools of arenas in use (" +
       fixed(100 * ratio(d.free_block_bytes + d.free_pools * s.pool_size, d.arena_bytes), 1) +
       "% of the arenas); pool headers and tails " + bytes(d.pool_overhead) + "\n";
  t += "  rss/live  " + bytes(s.rss_bytes) + " resident for " + bytes(d.live_bytes) +
       " live (small and large blocks held): " + fixed(ratio(s.rss_bytes, d.live_bytes), 2) + "x\n";
  return t;
}

// --- Profiles
// ---------------------------------------------------------------------------------------

// A process's heap profile at one moment.
struct ProfileReading {
  pg::stats::Profile profile;
  pg::stats::ProcessInfo proc;
};

// Reads pid's heap profile. Prints why not and returns 1 on failure (no process, no profile,
// another user's), else 0.
int read_profile_of(int pid, ProfileReading* r) {
  pg::stats::ProfileReader reader;
  if (open_published(pid, &reader) != 0) return 1;
  reader.copy(&r->profile);
  r->proc = reader.process();
  return 0;
}

// One frame of another process, named.
struct RemoteFrame {
  pg::flame::Frame frame;  // function, module, offset of the return address in it, pc
  std::string file_line;   // "file.c:12"; "" without line information
};

// Names the return addresses of another process: /proc/PID/maps says which module holds each
// and where it is loaded, addr2line (pg::symbolize_module) reads the module's symbol and line
// tables. Names are cached by (module, offset), so `stat --watch` runs addr2line on new frames
// only.
class RemoteSymbolizer {
 public:
  explicit RemoteSymbolizer(int pid) : pid_(pid) {}

  // A frame for each of `pcs` (repeats allowed), by pc. Reads /proc/PID/maps once, then runs
  // addr2line once per module for all its new offsets.
  std::map<uint64_t, RemoteFrame> symbolize(const std::vector<uint64_t>& pcs) {
    std::vector<Mapping> maps = read_maps();
    std::map<uint64_t, RemoteFrame> out;
    std::map<uint64_t, std::pair<std::string, uint64_t>> lookups;  // pc -> (module, offset)
    std::map<std::string, std::set<uint64_t>> todo;                // module -> offsets to name
    for (uint64_t pc : pcs) {
      if (out.count(pc)) continue;
      RemoteFrame& rf = out[pc];
      rf.frame.pc = pc;
      auto next = std::upper_bound(maps.begin(), maps.end(), pc,
                                   [](uint64_t v, const Mapping& m) { return v < m.start; });
      if (next == maps.begin() || pc >= std::prev(next)->end) continue;  // JIT code, or gone
      const Mapping& m = *std::prev(next);
      rf.frame.module = m.path;
      rf.frame.offset = pc - m.start + m.file_offset;
      // [vdso], [heap], and files deleted since they were mapped: no file to read symbols from.
      if (m.path[0] != '/' || m.path.ends_with(" (deleted)")) continue;
      int type = elf_type(m.path);
      if (type == 0) continue;
      // Offsets of a shared object or PIE are from where its first byte (file offset 0) is
      // mapped (the nearest such mapping below, should the file be loaded twice); a
      // fixed-address executable is linked at the addresses it runs at.
      uint64_t base = m.start - m.file_offset;
      for (const Mapping& other : maps) {
        if (other.start > m.start) break;
        if (other.path == m.path && other.file_offset == 0) base = other.start;
      }
      rf.frame.offset = type == ET_EXEC ? pc : pc - base;
      // A return address may be just past the call, at the next line or function: name the
      // byte before it, the call itself.
      uint64_t lookup = rf.frame.offset > 0 ? rf.frame.offset - 1 : 0;
      lookups[pc] = {m.path, lookup};
      if (!names_.count({m.path, lookup})) todo[m.path].insert(lookup);
    }
    for (const auto& [module, offsets] : todo) name_all(module, offsets);
    for (const auto& [pc, where] : lookups) {
      const auto& [function, file_line] = names_[where];
      out[pc].frame.function = function;
      out[pc].file_line = file_line;
    }
    return out;
  }

 private:
  struct Mapping {
    uint64_t start, end, file_offset;
    std::string path;  // "" for anonymous memory
  };

  // The file mapped at `path` in the process's view of the file system (its mount namespace,
  // through /proc/PID/root) when we may look there, else the same path in ours.
  std::string local_path(const std::string& path) const {
    std::string through = "/proc/" + std::to_string(pid_) + "/root" + path;
    return access(through.c_str(), R_OK) == 0 ? through : path;
  }

  std::vector<Mapping> read_maps() const {
    std::vector<Mapping> maps;
    std::ifstream in("/proc/" + std::to_string(pid_) + "/maps");
    std::string line;
    while (std::getline(in, line)) {
      // start-end perms offset major:minor inode path
      unsigned long long start, end, offset;
      int path_at = 0;
      if (sscanf(line.c_str(), "%llx-%llx %*s %llx %*s %*s %n", &start, &end, &offset, &path_at) !=
          3) {
        continue;
      }
      Mapping m{start, end, offset, ""};
      if (path_at > 0 && static_cast<size_t>(path_at) < line.size()) m.path = line.substr(path_at);
      if (!m.path.empty()) maps.push_back(std::move(m));
    }
    std::sort(maps.begin(), maps.end(),
              [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
    return maps;
  }

  // ET_EXEC or ET_DYN from the file's ELF header; 0 when it is not an ELF file we can read.
  int elf_type(const std::string& path) {
    auto it = elf_types_.find(path);
    if (it != elf_types_.end()) return it->second;
    int type = 0;
    std::ifstream in(local_path(path), std::ios::binary);
    unsigned char h[EI_NIDENT + 2];
    if (in.read(reinterpret_cast<char*>(h), sizeof h) && memcmp(h, ELFMAG, SELFMAG) == 0) {
      // e_type follows e_ident in both ELF classes, in the file's byte order.
      int t = h[EI_DATA] == ELFDATA2MSB ? (h[EI_NIDENT] << 8 | h[EI_NIDENT + 1])
                                        : (h[EI_NIDENT + 1] << 8 | h[EI_NIDENT]);
      if (t == ET_EXEC || t == ET_DYN) type = t;
    }
    elf_types_[path] = type;
    return type;
  }

  // Runs addr2line over `module` for `offsets` and caches the names (empty ones too: a frame
  // that cannot be named is not asked about again).
  void name_all(const std::string& module, const std::set<uint64_t>& offsets) {
    // One run per module, unless it has very many frames: keep argument lists and buffers sane.
    constexpr size_t kBatch = 8192;
    std::vector<uint64_t> all(offsets.begin(), offsets.end());
    std::string file = local_path(module);
    for (size_t from = 0; from < all.size(); from += kBatch) {
      size_t n = std::min(kBatch, all.size() - from);
      std::vector<pg::SymFrame> syms(n);
      for (size_t i = 0; i < n; ++i) syms[i].offset = all[from + i];
      if (!pg::symbolize_module(file.c_str(), all.data() + from, n, syms.data()) && !warned_) {
        warned_ = true;
        fprintf(stderr,
                "poolguard: cannot run addr2line (apt-get install binutils): frames are shown as "
                "module+offset\n");
      }
      for (size_t i = 0; i < n; ++i) {
        names_[{module, all[from + i]}] = {known(syms[i].function), known(syms[i].file_line)};
      }
    }
  }

  // addr2line says "??", "??:0" or ":?" (no file name) for what it does not know.
  static std::string known(const char* s) {
    return s[0] == '\0' || s[0] == ':' || strncmp(s, "??", 2) == 0 ? "" : s;
  }

  int pid_;
  std::map<std::string, int> elf_types_;
  std::map<std::pair<std::string, uint64_t>, std::pair<std::string, std::string>> names_;
  bool warned_ = false;
};

// How many stacks `stat --profile` shows and how many frames of each.
constexpr size_t kDefaultTop = 10;
constexpr size_t kTableFrames = 8;

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "one sample per 512.0 KiB allocated" or the exact mode of POOLGUARD_LEAKS.
std::string sampling(const pg::stats::Profile& p) {
  if (p.sample_bytes <= 1) return "exact: every allocation is tracked";
  return "estimated from " + std::to_string(p.live_samples) + " live samples, one per " +
         bytes(p.sample_bytes) + " allocated";
}

// The frames of the first `top` stacks (0: all), named.
std::map<uint64_t, RemoteFrame> name_frames(RemoteSymbolizer& sym, const pg::stats::Profile& p,
                                            size_t top) {
  std::vector<uint64_t> pcs;
  for (size_t i = 0; i < p.stacks.size() && (top == 0 || i < top); ++i) {
    pcs.insert(pcs.end(), p.stacks[i].pcs.begin(), p.stacks[i].pcs.end());
  }
  return sym.symbolize(pcs);
}

std::string profile_table(const ProfileReading& r, size_t top, RemoteSymbolizer& sym) {
  const pg::stats::Profile& p = r.profile;
  std::map<uint64_t, RemoteFrame> names = name_frames(sym, p, top);
  size_t shown = top == 0 ? p.stacks.size() : std::min(top, p.stacks.size());
  auto u = [](uint64_t v) { return std::to_string(v); };
  char line[256];
  snprintf(line, sizeof line, "poolguard stat: pid %d (%s), heap profile\n", p.pid,
           r.proc.comm.c_str());
  std::string t = line;
  t += "live      " + bytes(p.bytes) + " in " + u(p.blocks) + " blocks (" + sampling(p) + ")\n";
  t += "stacks    " + u(p.stacks_total) + " with live allocations";
  if (p.unlisted_samples != 0) {
    t += " (and " + u(p.unlisted_samples) + " samples of stacks the profile had no room for)";
  }
  t += "; " + (shown == 0 ? std::string("none") : "the " + u(shown) + " largest") + " below\n";
  t += "sampled   " + u(p.sampled_total) + " allocations since the start\n";
  for (size_t i = 0; i < shown; ++i) {
    const pg::stats::ProfileStack& s = p.stacks[i];
    t += "\n#" + u(i + 1) + "  " + bytes(s.bytes) + " (" + fixed(100 * ratio(s.bytes, p.bytes), 1) +
         "%)  " + u(s.blocks) + " blocks  " + u(s.samples) + " samples\n";
    for (size_t k = 0; k < s.pcs.size() && k < kTableFrames; ++k) {
      const RemoteFrame& f = names.at(s.pcs[k]);
      t += "    #" + u(k) + " " + (f.frame.function.empty() ? "??" : f.frame.function);
      if (!f.file_line.empty()) t += " at " + f.file_line;
      t += f.frame.module.empty() ? " (" + hex(f.frame.pc) + ", no module)"
                                  : " (" + f.frame.module + "+" + hex(f.frame.offset) + ")";
      t += "\n";
    }
    if (s.pcs.size() > kTableFrames) {
      t += "    ... " + u(s.pcs.size() - kTableFrames) + " more frames (--json shows them all)\n";
    }
    if (s.pcs.empty()) t += "    (no stack)\n";
  }
  return t;
}

std::string profile_json(const ProfileReading& r, size_t top, RemoteSymbolizer& sym) {
  const pg::stats::Profile& p = r.profile;
  std::map<uint64_t, RemoteFrame> names = name_frames(sym, p, top);
  size_t shown = top == 0 ? p.stacks.size() : std::min(top, p.stacks.size());
  std::string j = "{";
  auto num = [&j](const char* k, uint64_t v, bool comma = true) {
    j += std::string("\"") + k + "\":" + std::to_string(v) + (comma ? "," : "");
  };
  auto str = [&j](const char* k, const std::string& v, bool comma = true) {
    j += std::string("\"") + k + "\":" + json_string(v) + (comma ? "," : "");
  };
  num("pid", static_cast<uint64_t>(p.pid));
  str("command", r.proc.comm);
  num("sample_bytes", p.sample_bytes);
  j += std::string("\"exact\":") + (p.sample_bytes <= 1 ? "true" : "false") + ",";
  num("bytes", p.bytes);
  num("blocks", p.blocks);
  num("live_samples", p.live_samples);
  num("sampled_total", p.sampled_total);
  num("stacks_total", p.stacks_total);
  num("stacks_listed", p.stacks.size());
  num("unlisted_samples", p.unlisted_samples);
  j += "\"stacks\":[";
  for (size_t i = 0; i < shown; ++i) {
    const pg::stats::ProfileStack& s = p.stacks[i];
    j += i ? ",{" : "{";
    num("rank", i + 1);
    num("bytes", s.bytes);
    num("blocks", s.blocks);
    num("samples", s.samples);
    j += "\"frames\":[";
    for (size_t k = 0; k < s.pcs.size(); ++k) {
      const RemoteFrame& f = names.at(s.pcs[k]);
      j += k ? ",{" : "{";
      str("pc", hex(f.frame.pc));
      str("fn", f.frame.function);
      str("module", f.frame.module);
      str("offset", hex(f.frame.offset));
      str("file_line", f.file_line, false);
      j += "}";
    }
    j += "]}";
  }
  j += "]}\n";
  return j;
}

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

// --- profile
// --------------------------------------------------------------------------------------

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
    } else if (!a.empty() && a[0] == '-') {
      return usage_error(kProfileUsage, "unknown option '" + a + "'");
    } else if (have_pid) {
      return usage_error(kProfileUsage, "one PID only");
    } else if (!parse_pid(a, &pid)) {
      return usage_error(kProfileUsage, "not a process id: '" + a + "'");
    } else {
      have_pid = true;
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

  // The file is opened only now, so that a process that cannot be read leaves no empty file.
  bool to_stdout = file.empty() || file == "-";
  std::ofstream out_file;
  if (!to_stdout) {
    out_file.open(file, std::ios::out | std::ios::trunc | std::ios::binary);
    if (!out_file) {
      fprintf(stderr, "poolguard: cannot write %s: %s\n", file.c_str(), strerror(errno));
      return 1;
    }
  }
  std::ostream& out = to_stdout ? std::cout : out_file;
  if (format == Format::kFolded) {
    pg::flame::write_folded(out, stacks);
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
    out << pg::flame::render_svg(stacks, options);
  }
  out.flush();
  if (!out) {
    fprintf(stderr, "poolguard: cannot write %s: %s\n", to_stdout ? "to stdout" : file.c_str(),
            strerror(errno));
    return 1;
  }
  if (!to_stdout) {
    fprintf(stderr, "poolguard: wrote %s: %zu stacks, %s live\n", file.c_str(), p.stacks.size(),
            bytes(p.bytes).c_str());
  }
  return 0;
}

// --- stat
// -----------------------------------------------------------------------------------------

volatile sig_atomic_t g_interrupted = 0;

void on_sigint(int) {
  g_interrupted = 1;
}

int cmd_stat(const std::vector<std::string>& args) {
  int pid = 0;
  bool have_pid = false, json = false, profile = false, have_top = false;
  double watch = 0;
  size_t top = kDefaultTop;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string name, value;
    if (is_help(a)) return help(kStatUsage);
    if (a == "--json") {
      json = true;
    } else if (a == "--profile") {
      profile = true;
    } else if (a == "--top" || (split_eq(a, &name, &value) && name == "--top")) {
      if (a == "--top") {
        if (i + 1 >= args.size()) return usage_error(kStatUsage, "--top needs N");
        value = args[++i];
      }
      if (value.empty() || value.size() > 9 ||
          !std::all_of(value.begin(), value.end(), ::isdigit)) {
        return usage_error(kStatUsage, "--top: not a number of stacks: '" + value + "'");
      }
      top = std::stoul(value);
      have_top = true;
    } else if (a == "--watch" || (split_eq(a, &name, &value) && name == "--watch")) {
      if (a == "--watch") {
        if (i + 1 >= args.size()) return usage_error(kStatUsage, "--watch needs SECONDS");
        value = args[++i];
      }
      if (!parse_seconds(value, &watch)) {
        return usage_error(kStatUsage, "--watch: not a number of seconds: '" + value + "'");
      }
    } else if (!a.empty() && a[0] == '-') {
      return usage_error(kStatUsage, "unknown option '" + a + "'");
    } else if (have_pid) {
      return usage_error(kStatUsage, "one PID only");
    } else if (!parse_pid(a, &pid)) {
      return usage_error(kStatUsage, "not a process id: '" + a + "'");
    } else {
      have_pid = true;
    }
  }
  if (!have_pid) return usage_error(kStatUsage, "PID missing");
  if (have_top && !profile) return usage_error(kStatUsage, "--top goes with --profile");

  if (watch > 0) {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: the sleep below ends at once
  }
  bool tty = isatty(STDOUT_FILENO);
  RemoteSymbolizer symbolizer(pid);  // outside the loop: --watch names each frame once
  for (int frame = 0;; ++frame) {
    Reading r;
    ProfileReading pr;
    if ((profile ? read_profile_of(pid, &pr) : read_one(pid, &r)) != 0) {
      // The first reading decides the status; later, the process has simply gone away.
      if (frame == 0) return 1;
      fprintf(stderr, "poolguard: stopped watching process %d\n", pid);
      return 0;
    }
    std::string out =
        profile ? (json ? profile_json(pr, top, symbolizer) : profile_table(pr, top, symbolizer))
                : (json ? stat_json(r) : stat_table(r));
    if (watch > 0 && !json) out = (tty ? "\033[H\033[2J" : (frame ? "\n" : "")) + out;
    fputs(out.c_str(), stdout);
    fflush(stdout);
    if (watch <= 0) return 0;
    timespec ts{static_cast<time_t>(watch), static_cast<long>((watch - std::floor(watch)) * 1e9)};
    while (!g_interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    if (g_interrupted) return 0;
  }
}

// --- ls
// -------------------------------------------------------------------------------------------

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

// --- map
// ------------------------------------------------------------------------------------------

char pool_char(const pg::stats::PoolFigures& p, const Figures& s) {
  if (p.state == pg::stats::kSegPoolFreeClean) return '.';
  if (p.state == pg::stats::kSegPoolFreeDirty) return ':';
  if (p.state == pg::stats::kSegPoolHeaders) return 'h';
  if (p.state != pg::stats::kSegPoolInUse) return '?';
  if (p.used == pg::stats::kUsedUnknown) return '+';
  uint64_t size = p.cls < s.num_classes ? s.classes[p.cls].block_size : 0;
  uint64_t capacity = size ? (s.pool_size - s.pool_header) / size : 0;
  if (capacity == 0) return '?';
  if (p.used >= capacity) return '#';
  return static_cast<char>('0' + p.used * 10 / capacity);
}

int cmd_map(const std::vector<std::string>& args) {
  int pid = 0;
  bool have_pid = false, classes = false;
  for (const std::string& a : args) {
    if (is_help(a)) return help(kMapUsage);
    if (a == "--classes") {
      classes = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error(kMapUsage, "unknown option '" + a + "'");
    } else if (have_pid) {
      return usage_error(kMapUsage, "one PID only");
    } else if (!parse_pid(a, &pid)) {
      return usage_error(kMapUsage, "not a process id: '" + a + "'");
    } else {
      have_pid = true;
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
  printf("poolguard map: pid %d (%s): %llu arena%s of %zu pools (%s each), %llu pools in use\n",
         s.pid, r.proc.comm.c_str(), (unsigned long long)s.arenas_in_use,
         s.arenas_in_use == 1 ? "" : "s", pg::stats::kSegmentPoolsPerArena,
         bytes(s.pool_size).c_str(), (unsigned long long)s.pools_in_use);
  if (!fill) printf("(pools in use are drawn '+': %s)\n", why.c_str());
  for (const auto& arena : s.arenas) {
    std::string row, cls;
    for (const auto& p : arena.pools) {
      row += pool_char(p, s);
      cls +=
          p.state == pg::stats::kSegPoolInUse && p.cls < 26 ? static_cast<char>('a' + p.cls) : ' ';
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
    for (uint32_t c = 0; c < s.num_classes && c < 26; ++c) {
      legend += std::string(c ? ", " : "") + static_cast<char>('a' + c) + " " +
                std::to_string(s.classes[c].block_size);
    }
    printf("classes (bytes): %s\n", legend.c_str());
  }
  return 0;
}

// --- run
// ------------------------------------------------------------------------------------------

std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

// libpoolguard.so next to the tool: in the build tree (build/tools/poolguard ->
// build/preload/libpoolguard.so) or where `cmake --install` put it.
std::string find_library(std::vector<std::string>* tried) {
  std::string dir = exe_dir();
  std::vector<std::string> candidates = {dir + "/../preload/libpoolguard.so",
                                         dir + "/" + PG_BIN_TO_LIB + "/libpoolguard.so"};
  if (PG_MULTIARCH[0] != '\0') {
    candidates.push_back(dir + "/../lib/" + PG_MULTIARCH + "/libpoolguard.so");
  }
  candidates.push_back(dir + "/../lib/libpoolguard.so");
  for (const std::string& c : candidates) {
    tried->push_back(c);
    char real[PATH_MAX];
    if (access(c.c_str(), R_OK) == 0 && realpath(c.c_str(), real) != nullptr) return real;
  }
  return "";
}

int cmd_run(const std::vector<std::string>& args) {
  bool stats = false, leaks = false;
  std::string limit, log, guard, profile;
  bool have_limit = false, have_log = false, have_guard = false, have_profile = false;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string a = args[i], name = a, value;
    bool inline_value = split_eq(a, &name, &value);
    auto take_value = [&]() -> bool {
      if (inline_value) return true;
      if (i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
    if (a == "--") {
      ++i;
      break;
    }
    if (is_help(a)) return help(kRunUsage);
    if (a == "--stats") {
      stats = true;
    } else if (a == "--leaks") {
      leaks = true;
    } else if (name == "--profile") {
      uint64_t v;
      if (!take_value()) return usage_error(kRunUsage, "--profile needs BYTES");
      if (!pg::option_parse("PROFILE", value.c_str(), &v)) {
        return usage_error(kRunUsage,
                           "--profile: not a size: '" + value + "' (bytes, or with K, M, G or T)");
      }
      profile = value;
      have_profile = true;
    } else if (name == "--limit") {
      if (!take_value()) return usage_error(kRunUsage, "--limit needs SIZE");
      uint64_t v;
      if (!pg::parse_size(value.c_str(), &v)) {
        return usage_error(kRunUsage,
                           "--limit: not a size: '" + value + "' (bytes, or with K, M, G or T)");
      }
      limit = value;
      have_limit = true;
    } else if (name == "--log") {
      if (!take_value() || value.empty()) return usage_error(kRunUsage, "--log needs PATH");
      log = value;
      have_log = true;
    } else if (name == "--guard") {
      uint64_t mode;
      if (!take_value()) return usage_error(kRunUsage, "--guard needs MODE");
      if (!pg::option_parse("GUARD", value.c_str(), &mode)) {
        return usage_error(kRunUsage,
                           "--guard: not a guard mode: '" + value + "' (off, redzone or page)");
      }
      guard = value;
      have_guard = true;
    } else if (!a.empty() && a[0] == '-') {
      return usage_error(kRunUsage, "unknown option '" + a + "'");
    } else {
      break;  // the command starts here
    }
  }
  if (i >= args.size()) return usage_error(kRunUsage, "CMD missing");

  std::vector<std::string> tried;
  std::string lib = find_library(&tried);
  if (lib.empty()) {
    fprintf(stderr, "poolguard run: cannot find libpoolguard.so; looked for:\n");
    for (const std::string& t : tried) fprintf(stderr, "  %s\n", t.c_str());
    return 1;
  }
  if (lib.find_first_of(" :") != std::string::npos) {
    fprintf(stderr, "poolguard run: LD_PRELOAD cannot name %s (spaces and ':' separate entries)\n",
            lib.c_str());
    return 1;
  }
  const char* old = getenv("LD_PRELOAD");
  std::string preload = lib;
  if (old != nullptr && *old != '\0') preload += std::string(":") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  if (stats) setenv("POOLGUARD_STATS", "exit", 1);
  if (have_limit) setenv("POOLGUARD_LIMIT", limit.c_str(), 1);
  if (have_log) setenv("POOLGUARD_LOG", log.c_str(), 1);
  if (have_guard) setenv("POOLGUARD_GUARD", guard.c_str(), 1);
  if (leaks) setenv("POOLGUARD_LEAKS", "1", 1);
  if (have_profile) setenv("POOLGUARD_PROFILE", profile.c_str(), 1);

  std::vector<char*> argv;
  for (size_t k = i; k < args.size(); ++k) argv.push_back(const_cast<char*>(args[k].c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  int err = errno;
  fprintf(stderr, "poolguard run: %s: %s\n", argv[0],
          err == ENOENT ? "command not found" : strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error(kUsage, "COMMAND missing");
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (is_help(cmd) || cmd == "help") return help(kUsage);
  if (cmd == "--version") {
    printf("poolguard %s (stats segment version %u)\n", PG_VERSION, pg::stats::kSegmentVersion);
    return 0;
  }
  if (cmd == "run") return cmd_run(args);
  if (cmd == "stat") return cmd_stat(args);
  if (cmd == "ls") return cmd_ls(args);
  if (cmd == "map") return cmd_map(args);
  if (cmd == "profile") return cmd_profile(args);
  return usage_error(kUsage, "unknown command '" + cmd + "'");
}
