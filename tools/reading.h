// Reading a process: its statistics segment or heap profile, opened with a few retries while the
// process is too young to have set it up, and the figures derived from a segment (totals and
// fragmentation, docs/STATS.md).
#pragma once

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "stats/profile_reader.h"
#include "stats/reader.h"

namespace pg::tool {

using pg::stats::Figures;
using pg::stats::OpenStatus;
using pg::stats::SegmentReader;

// A process's figures at one moment.
struct Reading {
  Figures fig;
  pg::stats::ProcessInfo proc;
  double start_seconds = 0;  // when the process started (process_start_seconds); 0: unknown
};

// Seconds since process `p` started (from its start time and /proc/uptime); -1 if unknown.
double process_age(const pg::stats::ProcessInfo& p);
// When process `p` started, in seconds since the epoch (its start time, counted in clock ticks
// from boot, plus the time of the boot); 0 if unknown.
double process_start_seconds(const pg::stats::ProcessInfo& p);

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
int read_one(int pid, Reading* r);
// What read_one does once the segment is open: the figures, the process and its start.
void read_open(const SegmentReader& reader, Reading* r);

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

double mean_request(const pg::stats::ClassFigures& c);
Derived derive(const Figures& s);

// A process's heap profile at one moment.
struct ProfileReading {
  pg::stats::Profile profile;
  pg::stats::ProcessInfo proc;
};

// Reads pid's heap profile. Prints why not and returns 1 on failure (no process, no profile,
// another user's), else 0.
int read_profile_of(int pid, ProfileReading* r);

// "estimated from N live samples, one per 512.0 KiB allocated" or the exact mode of
// POOLGUARD_LEAKS, with uncertainty()'s note when few samples stand behind the total.
std::string sampling(const pg::stats::Profile& p);
// Below this many samples a sampled figure gets a note of its uncertainty: at 100 the 95%
// interval is +/-20%, wide enough to mislead a reader comparing it with `stat`'s exact counts.
inline constexpr uint64_t kFewSamples = 100;
// "few samples: +/-62% at 95% confidence" for a figure estimated from `samples` samples of a
// sampled profile (fewer than kFewSamples); "" for more, and for an exact profile.
std::string uncertainty(const pg::stats::Profile& p, uint64_t samples);

}  // namespace pg::tool
