// The exit summary of stats/summary.h (POOLGUARD_STATS=exit): one JSON line and a table per size
// class on stderr or the log.
#include "stats/summary.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/format.h"
#include "base/log.h"
#include "base/os.h"
#include "front/introspect.h"
#include "pool/config.h"
#include "pool/limit.h"

namespace pg {

namespace {

template <size_t N>
void key(TextBuffer<N>& b, const char* name, uint64_t v) {
  b.str(",\"").str(name).str("\":").u64(v);
}

// The process's name (comm, up to 15 bytes) and the first word of its command line, which says
// which program a summary in a shared log comes from. Read at exit: the program may have renamed
// itself (prctl, or argv[0] rewritten, as servers do) and the summary says what it is now.
void process_names(char (&comm)[17], char (&argv0)[256]) {
  comm[0] = argv0[0] = '\0';
  if (prctl(PR_GET_NAME, comm) != 0) comm[0] = '\0';
  comm[16] = '\0';
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, argv0, sizeof argv0 - 1);
  close(fd);
  argv0[n > 0 ? n : 0] = '\0';  // the first NUL ends argv[0]
}

}  // namespace

void write_exit_summary() {
  LogOutput out(/*at_exit=*/true);  // POOLGUARD_LOG when set, else the start-up stderr
  if (out.fd() >= 0) write_summary(out.fd());
}

void write_summary(int fd) {
  Snapshot s;
  take_snapshot(&s);
  uint64_t live_bytes = 0, held_bytes = 0;
  for (const ClassSnapshot& c : s.classes) held_bytes += c.live_blocks * c.block_size;
  (void)live_bytes;

  char comm[17], argv0[256];
  process_names(comm, argv0);
  LimitCounters lc;
  limit_counters(&lc);

  TextBuffer<8192> j;  // every class: about 100 bytes each
  j.str("{\"poolguard\":\"0.1\"");
  key(j, "pid", static_cast<uint64_t>(os::process_id()));
  j.str(",\"comm\":").json_str(comm);
  j.str(",\"argv0\":").json_str(argv0);
  // The highest bytes held, pools and large blocks together (pool/limit.h says how it is seen).
  key(j, "peak_held_bytes", lc.held_peak);
  key(j, "small_allocs", s.small_allocs);
  key(j, "small_frees", s.small_frees);
  key(j, "small_live_blocks", s.small_allocs - s.small_frees);
  key(j, "small_held_bytes", held_bytes);
  key(j, "large_allocs", s.large_allocs);
  key(j, "large_frees", s.large_frees);
  key(j, "large_live_bytes", s.large_live_bytes);
  key(j, "arenas_mapped", s.arenas_mapped);
  key(j, "arenas_released", s.arenas_released);
  key(j, "arenas_in_use", s.arenas_in_use);
  key(j, "pools_in_use", s.pools_in_use);
  key(j, "pools_purged", s.pools_purged);
  key(j, "peak_small_bytes", s.peak_small_bytes);
  key(j, "reserved_bytes", s.reserved_bytes);
  key(j, "fallback_arenas", s.fallback_arenas);
  key(j, "threads", s.heaps_created);
  key(j, "double_frees", s.double_frees);
  key(j, "invalid_frees", s.invalid_frees);
  key(j, "corruptions", s.corruptions);
  key(j, "limit", lc.limit);
  key(j, "limit_in_use", lc.in_use);
  key(j, "limit_peak", lc.peak);
  key(j, "limit_refused", lc.refused);
  key(j, "limit_warnings", lc.warnings);
  j.str(",\"classes\":[");
  bool first = true;
  for (const ClassSnapshot& c : s.classes) {
    if (c.allocs == 0) continue;
    if (!first) j.chr(',');
    first = false;
    j.str("{\"size\":").u64(c.block_size);
    key(j, "allocs", c.allocs);
    key(j, "frees", c.frees);
    key(j, "live_blocks", c.live_blocks);
    key(j, "pools", c.pools);
    key(j, "free_blocks", c.free_blocks);
    j.chr('}');
  }
  j.str("]}\n");
  j.flush(fd);

  TextBuffer<8192> t;
  t.str("poolguard: summary of pid ").u64(static_cast<uint64_t>(os::process_id()));
  t.str(" (").str(comm).str("), ").str(argv0[0] ? argv0 : "?").str(": peak ");
  t.u64(lc.held_peak >> 10).str(" KiB held in pools and large blocks\n");
  t.str("poolguard: class      allocs       frees        live   pools  free blocks\n");
  for (const ClassSnapshot& c : s.classes) {
    if (c.allocs == 0) continue;
    t.str("poolguard: ").u64w(c.block_size, 5).u64w(c.allocs, 12).u64w(c.frees, 12);
    t.u64w(c.live_blocks, 12).u64w(c.pools, 8).u64w(c.free_blocks, 13).chr('\n');
  }
  t.str("poolguard: arenas mapped ").u64(s.arenas_mapped).str(", released ").u64(s.arenas_released);
  t.str(", in use ").u64(s.arenas_in_use).str("; pools in use ").u64(s.pools_in_use);
  t.str("; peak ")
      .u64(s.peak_small_bytes >> 10)
      .str(" KiB in pools; large blocks ")
      .u64(s.large_allocs);
  t.str(" (").u64(s.large_live_bytes).str(" bytes live)\n");
  if (lc.limit != 0) {
    t.str("poolguard: limit ").u64(lc.limit).str(" bytes; peak use ").u64(lc.peak).str(" (");
    t.fixed1(lc.peak * 100, lc.limit).str("%); requests refused ").u64(lc.refused).chr('\n');
  }
  t.flush(fd);
}

}  // namespace pg
