// `poolguard stat PID`: a process's live heap statistics (table or JSON), or with --profile the
// stacks that hold the most live bytes; --watch repeats either.
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "stats/profile_reader.h"
#include "stats/reader.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/reading.h"
#include "tools/remote_symbolizer.h"
#include "tools/text.h"

namespace pg::tool {

namespace {

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

std::string stat_json(const Reading& r) {
  const Figures& s = r.fig;
  Derived d = derive(s);
  std::string j = "{";
  auto num = [&j](const char* k, uint64_t v, bool comma = true) {
    j += std::string("\"") + k + "\":" + std::to_string(v) + (comma ? "," : "");
  };
  num("pid", static_cast<uint64_t>(s.pid));
  j += "\"command\":" + json_string(r.proc.comm) + ",";
  // When it was read: successive objects of --watch line up on a wall clock.
  j += "\"time\":" + json_string(iso_time(s.read_time_ns)) + ",";
  num("time_unix_ms", s.read_time_ns / 1000000u);
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

// How many stacks `stat --profile` shows and how many frames of each.
constexpr size_t kDefaultTop = 10;
constexpr size_t kTableFrames = 8;

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
         "%)  " + u(s.blocks) + " blocks  " + u(s.samples) + " samples";
    if (std::string few = uncertainty(p, s.samples); !few.empty()) t += " (" + few + ")";
    t += "\n";
    for (size_t k = 0; k < s.pcs.size() && k < kTableFrames; ++k) {
      const RemoteFrame& f = names.at(s.pcs[k]);
      t += "    #" + u(k);
      if (!f.frame.function.empty()) t += " " + f.frame.function;
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
  str("time", iso_time(p.read_time_ns));
  num("time_unix_ms", p.read_time_ns / 1000000u);
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

volatile sig_atomic_t g_interrupted = 0;

void on_sigint(int) {
  g_interrupted = 1;
}

}  // namespace

int cmd_stat(const std::vector<std::string>& args) {
  int pid = 0;
  bool have_pid = false, json = false, profile = false, have_top = false;
  double watch = 0;
  size_t top = kDefaultTop;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = args[i];
    std::string value;
    if (is_help(a)) return help(kStatUsage);
    if (a == "--json") {
      json = true;
    } else if (a == "--profile") {
      profile = true;
    } else if (is_option(a, "--top")) {
      if (!option_value(args, &i, &value)) return usage_error(kStatUsage, "--top needs N");
      if (value.empty() || value.size() > 9 ||
          !std::all_of(value.begin(), value.end(), ::isdigit)) {
        return usage_error(kStatUsage, "--top: not a number of stacks: '" + value + "'");
      }
      top = std::stoul(value);
      have_top = true;
    } else if (is_option(a, "--watch")) {
      if (!option_value(args, &i, &value)) return usage_error(kStatUsage, "--watch needs SECONDS");
      if (!parse_seconds(value, &watch)) {
        return usage_error(kStatUsage, "--watch: not a number of seconds: '" + value + "'");
      }
    } else if (int status = pid_argument(kStatUsage, a, &pid, &have_pid); status != 0) {
      return status;
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

}  // namespace pg::tool
