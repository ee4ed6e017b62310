// The exit summary of stats/summary.h (POOLGUARD_STATS=exit): one JSON line and a table per size
// class on stderr or the log.
#include "stats/summary.h"

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

}  // namespace

void write_exit_summary() {
  int fd = log_exit_fd();
  if (fd >= 0) write_summary(fd);
}

void write_summary(int fd) {
  Snapshot s;
  take_snapshot(&s);
  uint64_t live_bytes = 0, held_bytes = 0;
  for (const ClassSnapshot& c : s.classes) held_bytes += c.live_blocks * c.block_size;
  (void)live_bytes;

  TextBuffer<8192> j;  // every class: about 100 bytes each
  j.str("{\"poolguard\":\"0.1\"");
  key(j, "pid", static_cast<uint64_t>(os::process_id()));
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
  LimitCounters lc;
  limit_counters(&lc);
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
