// Reading a process (tools/reading.h): process age, segment and profile, derived figures.
#include "tools/reading.h"

#include <unistd.h>

#include <cmath>

#include "tools/text.h"

namespace pg::tool {

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

double process_start_seconds(const pg::stats::ProcessInfo& p) {
  // /proc's start times count from the boot on CLOCK_BOOTTIME (suspended time included), so the
  // boot happened that clock's reading before now. Sub-second, unlike /proc/stat's btime.
  timespec real, boot;
  long ticks = sysconf(_SC_CLK_TCK);
  if (ticks <= 0 || p.start_time == 0 || clock_gettime(CLOCK_REALTIME, &real) != 0 ||
      clock_gettime(CLOCK_BOOTTIME, &boot) != 0) {
    return 0;
  }
  double booted = static_cast<double>(real.tv_sec - boot.tv_sec) +
                  static_cast<double>(real.tv_nsec - boot.tv_nsec) * 1e-9;
  return booted + static_cast<double>(p.start_time) / static_cast<double>(ticks);
}

void read_open(const SegmentReader& reader, Reading* r) {
  reader.read(&r->fig);
  r->proc = reader.process();
  r->start_seconds = process_start_seconds(r->proc);
}

int read_one(int pid, Reading* r) {
  SegmentReader reader;
  if (open_published(pid, &reader) != 0) return 1;
  read_open(reader, r);
  return 0;
}

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
      uint64_t per_pool = (c.pool_bytes - s.pool_header) / c.block_size;
      d.pool_overhead += c.pools * (c.pool_bytes - per_pool * c.block_size);
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

int read_profile_of(int pid, ProfileReading* r) {
  pg::stats::ProfileReader reader;
  if (open_published(pid, &reader) != 0) return 1;
  reader.copy(&r->profile);
  r->proc = reader.process();
  return 0;
}

std::string sampling(const pg::stats::Profile& p) {
  if (p.sample_bytes <= 1) return "exact: every allocation is tracked";
  std::string few = uncertainty(p, p.live_samples);
  return "estimated from " + std::to_string(p.live_samples) + " live samples, one per " +
         bytes(p.sample_bytes) + " allocated" + (few.empty() ? "" : "; " + few);
}

std::string uncertainty(const pg::stats::Profile& p, uint64_t samples) {
  if (p.sample_bytes <= 1 || samples >= kFewSamples) return "";
  // The samples behind a figure are close to a Poisson count: its relative standard error is
  // 1/sqrt(n), and 1.96 of them make the 95% interval.
  double pct = samples == 0 ? 100.0 : 196.0 / std::sqrt(static_cast<double>(samples));
  char text[64];
  snprintf(text, sizeof text, "few samples: +/-%.0f%% at 95%% confidence", pct);
  return text;
}

}  // namespace pg::tool
