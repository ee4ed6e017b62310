#include "stats/profile_reader.h"

#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pg::stats {

namespace {

uint64_t load(const uint64_t& v) {
  return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

}  // namespace

ProfileReader::~ProfileReader() {
  close();
}

void ProfileReader::close() {
  if (mem_ != nullptr && attached_) shmdt(mem_);
  mem_ = nullptr;
  attached_ = false;
  size_ = 0;
}

OpenStatus ProfileReader::open(int pid, std::string* why) {
  close();
  uint64_t size = 0;
  ProcessInfo proc;
  const void* mem;
  OpenStatus status = open_published(pid, kProfileMagic, "heap profile", &proc, &mem, &size, why);
  proc_ = proc;
  if (status != OpenStatus::kOk) return status;
  status = attach(static_cast<const char*>(mem), size, proc, why);
  attached_ = true;
  return status;
}

OpenStatus ProfileReader::attach(const char* mem, size_t size, const ProcessInfo& proc,
                                 std::string* why) {
  proc_ = proc;
  mem_ = mem;
  size_ = size;
  if (size < kProfileEntriesOffset) {
    *why = "the heap profile of " + describe_process(proc_) + " is too small to be one";
    return OpenStatus::kInvalid;
  }
  const ProfileHeader* h = reinterpret_cast<const ProfileHeader*>(mem_);
  uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
  memcpy(&header_, h, sizeof header_);
  OpenStatus status =
      check_published_header(magic, kProfileMagic, header_.version, kProfileVersion, header_.pid,
                             header_.start_time, "profile", proc_, why);
  if (status != OpenStatus::kOk) return status;
  // Entries are only ever read within the memory: a geometry that does not fit is refused here.
  if (header_.size != size || header_.entries_offset > size || header_.entries_offset % 8 != 0 ||
      header_.entries_offset < kProfileTotalsOffset + sizeof(ProfileTotals) ||
      header_.max_stacks > (size - header_.entries_offset) / sizeof(ProfileEntry)) {
    *why = "the heap profile of " + describe_process(proc_) + " has a geometry this reader does " +
           "not understand";
    return OpenStatus::kInvalid;
  }
  return OpenStatus::kOk;
}

void ProfileReader::copy(Profile* out) const {
  const ProfileTotals& t = *reinterpret_cast<const ProfileTotals*>(mem_ + kProfileTotalsOffset);
  Profile p;
  p.pid = header_.pid;
  p.uid = header_.uid;
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  p.read_time_ns = static_cast<uint64_t>(now.tv_sec) * 1000000000u + now.tv_nsec;
  p.sample_bytes = header_.sample_bytes;
  p.live_samples = load(t.live_samples);
  p.bytes = load(t.bytes);
  p.blocks = load(t.blocks);
  p.sampled_total = load(t.sampled_total);
  p.unlisted_samples = load(t.unlisted_samples);
  const ProfileEntry* entries =
      reinterpret_cast<const ProfileEntry*>(mem_ + header_.entries_offset);
  uint64_t used = std::min<uint64_t>(load(t.entries_used), header_.max_stacks);
  for (uint64_t i = 0; i < used; ++i) {
    // An entry being given to another stack has `seq` odd: copy again until it is stable.
    ProfileEntry e;
    bool stable = false;
    for (int tries = 0; tries < 64 && !stable; ++tries) {
      uint64_t before = __atomic_load_n(&entries[i].seq, __ATOMIC_ACQUIRE);
      memcpy(&e, &entries[i], sizeof e);
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      stable = (before & 1) == 0 && __atomic_load_n(&entries[i].seq, __ATOMIC_RELAXED) == before;
    }
    // Counters move while we copy: a stack whose samples fell to zero (or a torn, negative-looking
    // count) holds nothing now.
    if (!stable || e.samples == 0 || static_cast<int64_t>(e.samples) < 0 ||
        static_cast<int64_t>(e.bytes) < 0) {
      continue;
    }
    size_t depth = std::min<size_t>(e.depth, kProfileMaxFrames);
    p.stacks.push_back({e.bytes, e.blocks, e.samples, {e.pcs, e.pcs + depth}});
  }
  std::sort(p.stacks.begin(), p.stacks.end(),
            [](const ProfileStack& a, const ProfileStack& b) { return a.bytes > b.bytes; });
  p.stacks_total = p.stacks.size();
  *out = std::move(p);
}

}  // namespace pg::stats
