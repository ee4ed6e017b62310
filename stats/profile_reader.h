// The reader side of the profile segment (base/profile_segment.h), for tools: open a process's
// live heap profile with the same checks as its stats segment (stats/reader.h) and copy it. The
// process keeps it current as it allocates and frees: a copy is the profile of that moment.
// Ordinary C++ (it allocates): never linked into the preloaded library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/profile_segment.h"
#include "stats/reader.h"

namespace pg::stats {

// One allocation stack of the profile, as copied.
struct ProfileStack {
  uint64_t bytes = 0;         // estimated live bytes
  uint64_t blocks = 0;        // estimated live blocks
  uint64_t samples = 0;       // live sampled allocations behind the estimate
  std::vector<uint64_t> pcs;  // return addresses, innermost first (pcs[0] called malloc)
};

// A copy of a profile: the totals and the stacks with live samples.
struct Profile {
  int pid = 0;
  uint32_t uid = 0;
  uint64_t read_time_ns = 0;      // CLOCK_REALTIME when copied
  uint64_t sample_bytes = 0;      // mean bytes between samples; 1: every allocation (exact)
  uint64_t stacks_total = 0;      // stacks with live samples among the entries
  uint64_t unlisted_samples = 0;  // live samples of stacks that found no entry
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

  // Opens process pid's profile and validates it (owner, magic, version, size, pid, start time).
  // kNoSegment with a sentence saying why when there is none. On failure `*why` holds one
  // sentence for the user.
  OpenStatus open(int pid, std::string* why);
  // Validates `size` bytes at `mem` as the profile of process `proc` and reads from there (the
  // memory must outlive the reader). What open() does once it has mapped the file; for fuzzing.
  OpenStatus attach(const char* mem, size_t size, const ProcessInfo& proc, std::string* why);
  // Copies the totals and every stack with live samples, largest first.
  void copy(Profile* out) const;

  const ProcessInfo& process() const { return proc_; }

 private:
  void close();
  const char* mem_ = nullptr;
  size_t size_ = 0;
  bool attached_ = false;  // mem_ is our attachment (open), not the caller's memory (attach)
  ProfileHeader header_{};
  ProcessInfo proc_;
};

}  // namespace pg::stats
