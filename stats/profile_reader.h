// The reader side of the profile segment (stats/profile_segment.h), for tools: open a process's
// /dev/shm/poolguard.<pid>.profile with the same checks as its stats segment (stats/reader.h),
// and copy the live heap profile consistently. Ordinary C++ (it allocates): never linked into the
// preloaded library.
//
// The profile has no request/answer protocol of its own: the publisher rewrites it at the same
// moment as the stats segment, so a fresh profile is had by asking the stats segment
// (SegmentReader::request / wait_fresh) and copying the profile afterwards; read_profile() does
// both.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "stats/profile_segment.h"
#include "stats/reader.h"

namespace pg::stats {

// "/dev/shm/poolguard.<pid>.profile"
std::string profile_path(int pid);
// Pids of the files named poolguard.<pid>.profile in /dev/shm, in increasing order.
std::vector<int> profile_pids();

// One allocation stack of the profile, as copied (ProfileEntry without the fixed-size array).
struct ProfileStack {
  uint64_t bytes = 0;         // estimated live bytes
  uint64_t blocks = 0;        // estimated live blocks
  uint64_t samples = 0;       // live sampled allocations behind the estimate
  std::vector<uint64_t> pcs;  // return addresses, innermost first (pcs[0] called malloc)
};

// A consistent copy of a profile segment: the header figures and the stacks it lists.
struct Profile {
  int pid = 0;
  uint32_t uid = 0;
  uint64_t publish_time_ns = 0;  // CLOCK_REALTIME of the publication
  uint64_t sample_bytes = 0;     // mean bytes between samples; 1: every allocation (exact)
  uint64_t stacks_total = 0;     // distinct stacks with live samples (> stacks.size(): dropped)
  uint64_t live_samples = 0;
  uint64_t bytes = 0;  // estimated live bytes over every stack, listed or not
  uint64_t blocks = 0;
  uint64_t sampled_total = 0;        // allocations sampled since the start
  std::vector<ProfileStack> stacks;  // largest `bytes` first
};

class ProfileReader {
 public:
  ProfileReader() = default;
  ~ProfileReader();
  ProfileReader(const ProfileReader&) = delete;
  ProfileReader& operator=(const ProfileReader&) = delete;

  // Opens /dev/shm/poolguard.<pid>.profile read-only and validates it like SegmentReader::open
  // (owner, mode 0600, size, magic, version, pid, mapped by the process). kNoSegment with "process
  // PID does not sample its heap ..." when there is no profile. On failure `*why` holds one
  // sentence for the user.
  OpenStatus open(int pid, std::string* why);

  // Copies consistent figures and stacks into *out; false if no consistent copy could be taken
  // before `deadline_ns` (CLOCK_MONOTONIC; a writer stopped mid-publication).
  bool copy(Profile* out, uint64_t deadline_ns) const;

  const ProcessInfo& process() const { return proc_; }
  const std::string& path() const { return path_; }
  dev_t dev() const { return dev_; }
  ino_t ino() const { return ino_; }

 private:
  void close();
  int fd_ = -1;
  const ProfileSegment* seg_ = nullptr;
  size_t map_size_ = 0;
  size_t capacity_ = 0;  // entries the mapping holds (max_stacks, checked against the file size)
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  ProcessInfo proc_;
  std::string path_;
};

// A fresh profile of the process behind `stats` (opened, kOk): asks it to publish, waits until it
// has (or `deadline_ns`), then opens and copies its profile. `*fresh` says whether the process
// answered in time (if not, the last published profile is returned). Statuses as
// ProfileReader::open; kError with a sentence when no consistent copy could be had.
OpenStatus read_profile(SegmentReader& stats, uint64_t deadline_ns, Profile* out, bool* fresh,
                        std::string* why);

}  // namespace pg::stats
