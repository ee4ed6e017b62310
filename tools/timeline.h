// The timeline `poolguard record` writes (docs/TIMELINE.md, format version 1): a sample's figures
// computed from a segment's, the events between two samples of a process, when to copy the heap
// profile for the peak, and each line of the file as JSON. Plain data in, text out: the unit
// tests (tests/tools) check them without a process.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "stats/profile_reader.h"
#include "stats/reader.h"
#include "tools/remote_symbolizer.h"

namespace pg::tool::timeline {

inline constexpr int kFormatVersion = 1;

// The largest block of the small tier: pool/config.h's kSmallMax, which tools/ may not include
// (docs/DESIGN.md's layer table). The segment does not carry it: its small_max is the largest
// request the pools serve (kPoolMax), the top of the medium tier.
inline constexpr uint64_t kSmallMax = 256;

// The largest stacks a peak line lists.
inline constexpr size_t kPeakStacks = 20;

// When a line was made: seconds since the recording started (monotonic) and the wall clock.
struct Stamp {
  double t = 0;
  uint64_t unix_ms = 0;
};

// One size class in a sample: block size, live blocks, bytes in use (size * live), bytes held
// (pools * pool bytes).
struct ClassSample {
  uint64_t size = 0, live_blocks = 0, in_use = 0, held = 0;
};

// A sample's figures, as the sample line names them (docs/TIMELINE.md defines each).
struct Sample {
  uint64_t small_in_use = 0, small_held = 0, medium_in_use = 0, medium_held = 0;
  uint64_t large_bytes = 0, large_blocks = 0, live_bytes = 0;
  uint64_t pools_in_use = 0, arenas_in_use = 0, arenas_mapped = 0, arena_bytes = 0, rss_bytes = 0;
  uint64_t limit_bytes = 0, limit_in_use = 0, allocs = 0, frees = 0;
  uint64_t guard_events = 0, limit_refused = 0, errors = 0;
  // The process's own high-water marks, kept at every change (not only at samples): the most
  // pool units in use, and the most bytes charged to the limit (0 without a limit).
  uint64_t pools_peak = 0, limit_peak = 0;
  std::vector<ClassSample> classes;  // only those with live blocks or pools, by size
};

Sample sample_of(const pg::stats::Figures& f);

// An event made from counters: what grew (`kind` as the event line names it) and by how much.
struct CounterEvent {
  const char* kind;
  uint64_t count;
};
// The events of a process between two of its samples: each counter worth a mark (guard events,
// refusals of the limit, errors) that grew. A counter that fell belongs to a new program (the
// process executed another, whose counters start from 0): all of it is new.
std::vector<CounterEvent> events_between(const Sample& before, const Sample& after);

// The rule for copying a process's heap profile at its peak (docs/TIMELINE.md, peak): a copy
// costs a pass over up to 8192 stacks, too much to make at every new high of a heap that grows
// steadily. Copies are made at a new high of live bytes that exceeds the copy kept by 1% (so that
// a heap growing by a factor F is copied about 100 ln F times at most), and at most one per
// kProfileGapSeconds; a high held back by that gap is copied at the first sample after it that is
// still within 1% of the peak, at the recording's last sample whatever the gap, or when the
// process ends with its live bytes still within 1% (from its profile as it left it).
inline constexpr double kProfileGapSeconds = 0.25;
struct ProfileRule {
  bool have_copy = false;
  uint64_t copy_live = 0;  // live bytes of the sample the kept copy was made at
  double copy_t = 0;
  bool pending = false;    // a peak the kept copy is more than 1% below, not copied yet
  uint64_t peak_live = 0;  // the highest live bytes sampled
  bool have_peak = false;

  // A sample of `live` bytes at `t` (`last`: the recording's last): updates the peak; true when
  // the profile should be copied now (the caller then calls copied()).
  bool sampled(double t, uint64_t live, bool last = false);
  // At the process's end, with the live bytes it left: true for a last copy.
  bool last_chance(uint64_t live) const;
  void copied(double t, uint64_t live);
};

// The lines. Each ends with '\n'.
struct Header {
  uint64_t unix_ns = 0;  // wall clock at the start
  double interval_s = 0.1;
  bool has_command = false;
  std::vector<std::string> command;
  int pid = 0;
  uint64_t profile_bytes = 0;
  std::string version;  // of poolguard
};
std::string header_line(const Header& h);
std::string process_line(Stamp s, int pid, int ppid, const std::string& comm,
                         const pg::stats::Figures& f);
std::string sample_line(Stamp s, int pid, const Sample& v);
std::string event_line(Stamp s, int pid, const char* kind, uint64_t count);
// A process's peak: the sample with the highest live bytes, and the heap profile kept for it
// (ProfileRule), copied at `profile_t` when the sample there had `profile_live` live bytes.
struct Peak {
  Stamp at;
  uint64_t live_bytes = 0;
  const pg::stats::Profile* profile = nullptr;  // null: the process had no heap profile
  double profile_t = 0;
  uint64_t profile_live = 0;
};
// `names` names the frames of the profile's first kPeakStacks stacks.
std::string peak_line(int pid, const Peak& peak, const std::map<uint64_t, RemoteFrame>& names);
// `exit_status` < 0: null (a running process was recorded).
std::string end_line(Stamp s, uint64_t samples, int exit_status);

}  // namespace pg::tool::timeline
