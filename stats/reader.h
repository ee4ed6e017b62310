// The reader side of the stats segment (base/segment.h), for tools: find a process's segment,
// check that the caller may read it and that it is what it claims to be, and compute the figures
// from it (sums over the per-thread slots). Ordinary C++ (it allocates): never linked into the
// preloaded library.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/segment.h"

namespace pg::stats {

// What /proc says about a process.
struct ProcessInfo {
  int pid = 0;
  int tgid = 0;             // the process a thread id belongs to (== pid for a process)
  uint32_t euid = 0;        // effective user id
  int ppid = 0;             // parent process (/proc/PID/stat field 4)
  char state = '?';         // R, S, D, Z (zombie), X (dead), ... (field 3)
  std::string comm;         // command name (/proc/PID/stat)
  uint64_t start_time = 0;  // clock ticks after boot (/proc/PID/stat field 22)
};
// Reads /proc/PID/status and /proc/PID/stat. false if there is no such process (or /proc hides it).
bool read_process(int pid, ProcessInfo* out);
// "process PID (comm)", for messages.
std::string describe_process(const ProcessInfo& p);

// Pids of the processes that publish a stats segment the caller may read (from
// /proc/sysvipc/shm, each segment's header), in increasing order.
std::vector<int> segment_pids();

enum class OpenStatus {
  kOk,
  kNoProcess,  // no process with this pid
  kNotOwner,   // the process belongs to another user, or hides its memory map
  kNoSegment,  // the process publishes nothing (the message says why, as far as /proc tells)
  kInvalid,    // not a segment this reader understands (magic, version, size, pid)
  kError,      // a system call failed
};

// Attaches, read-only, the segment process `pid` publishes whose first word is `magic`
// (kSegmentMagic, kProfileMagic): among the System V segments /proc/PID/maps shows, after checking
// that the process exists, is a process (not a thread) and belongs to the caller (unless the
// caller is root). On kOk, *mem is attached (detach it with shmdt) and *size is the segment's
// size. `what` names what is read in messages ("statistics", "heap profile"). On failure *mem is
// null and `*why` holds one sentence for the user, saying what /proc tells: no poolguard in the
// process, POOLGUARD_SEGMENT=off, no heap profile, ...
OpenStatus open_published(int pid, uint64_t magic, const char* what, ProcessInfo* proc,
                          const void** mem, uint64_t* size, std::string* why);

// Checks a published file's header: magic, version, size, pid and start time. `kind` names the
// file in messages ("segment", "profile").
OpenStatus check_published_header(uint64_t magic, uint64_t want_magic, uint32_t version,
                                  uint32_t want_version, int header_pid, uint64_t header_start,
                                  const char* kind, const ProcessInfo& proc, std::string* why);

// One size class, as computed from the segment.
struct ClassFigures {
  uint64_t block_size = 0;
  uint64_t allocs = 0, frees = 0, live_blocks = 0;
  uint64_t requested_bytes = 0;  // asked for by all `allocs` (all time)
  uint64_t held_bytes = 0;       // block_size * live_blocks
  uint64_t pools = 0;            // pools of this class carved now
  uint64_t pool_bytes = 0;       // bytes of each of them (a span of units for the largest classes)
  uint64_t free_blocks = 0;      // blocks not in use inside those pools
};

// One pool of the arena map. `used` is known only when the reader may read the process's
// memory (SegmentReader::read_fill); kUsedUnknown otherwise.
inline constexpr uint32_t kUsedUnknown = UINT32_MAX;
struct PoolFigures {
  uint8_t state = 0;  // SegmentPoolState
  uint8_t cls = 0;
  uint32_t used = kUsedUnknown;
};
struct ArenaFigures {
  uint64_t base = 0;
  PoolFigures pools[kSegmentPoolsPerArena];
};

// Everything a reader shows about a process, computed from its segment at one moment.
struct Figures {
  int pid = 0;
  uint32_t uid = 0;
  uint32_t version = 0;
  uint64_t read_time_ns = 0;  // CLOCK_REALTIME when read
  // Geometry.
  uint32_t num_classes = 0, small_max = 0, pool_size = 0, pool_header = 0, arena_size = 0;
  // Totals.
  uint64_t small_allocs = 0, small_frees = 0;
  uint64_t large_allocs = 0, large_frees = 0, large_live_bytes = 0;
  uint64_t arenas_mapped = 0, arenas_in_use = 0, arenas_released = 0;
  uint64_t reserved_bytes = 0, fallback_arenas = 0;
  uint64_t pools_in_use = 0, pools_purged = 0, peak_small_bytes = 0;
  uint64_t rss_bytes = 0;  // /proc/PID/statm
  uint64_t limit_bytes = 0, limit_in_use = 0, limit_peak = 0, limit_refused = 0;
  uint64_t guard_events = 0;
  uint64_t threads = 0;  // thread heaps created
  uint64_t double_frees = 0, invalid_frees = 0, corruptions = 0;
  ClassFigures classes[kSegmentMaxClasses];
  // The arena map: the arenas in use among the entries the segment holds.
  std::vector<ArenaFigures> arenas;
  uint64_t arenas_unlisted = 0;  // arenas in use beyond the map's capacity
  bool fill_known = false;       // pools' `used` read from the process's memory
};

class SegmentReader {
 public:
  SegmentReader() = default;
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // Finds process pid's segment and validates it. On failure `*why` holds one sentence.
  OpenStatus open(int pid, std::string* why);
  // Validates `size` bytes at `mem` as the segment of process `proc` and reads from there (the
  // memory must outlive the reader; it is not unmapped). What open() does once it has mapped the
  // file; the segment fuzzer calls it directly.
  OpenStatus attach(const void* mem, size_t size, const ProcessInfo& proc, std::string* why);
  // Computes the figures as they are now (the process keeps running: a moment's figures).
  void read(Figures* out) const;
  // Reads each listed pool's count of blocks in use from the process's memory
  // (process_vm_readv: a debugger's permission, ptrace_scope permitting). false when not allowed;
  // the map then shows pools without their fill.
  bool read_fill(Figures* f, std::string* why) const;

  const ProcessInfo& process() const { return proc_; }

 private:
  void close();
  const char* at(uint64_t offset) const { return static_cast<const char*>(mem_) + offset; }
  const void* mem_ = nullptr;
  size_t size_ = 0;
  bool attached_ = false;   // mem_ is our attachment (open), not the caller's memory (attach)
  SegmentHeader header_{};  // a validated copy
  ProcessInfo proc_;
};

// CLOCK_MONOTONIC in nanoseconds, for deadlines.
uint64_t monotonic_ns();

}  // namespace pg::stats
