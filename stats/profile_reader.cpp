#include "stats/profile_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pg::stats {

namespace {

constexpr char kNotSampling[] = " does not sample its heap (run it with POOLGUARD_PROFILE=BYTES)";

std::string octal_mode(mode_t m) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// The seqlock-protected figures are read one word at a time: the writer may be rewriting them,
// and a torn copy is detected by `seq`, not prevented.
uint64_t load(const uint64_t& v) {
  return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

}  // namespace

std::string profile_path(int pid) {
  return segment_path(pid) + kProfileSuffix;
}

std::vector<int> profile_pids() {
  return published_pids(kProfileSuffix);
}

ProfileReader::~ProfileReader() {
  close();
}

void ProfileReader::close() {
  if (seg_ != nullptr) munmap(const_cast<ProfileSegment*>(seg_), map_size_);
  if (fd_ >= 0) ::close(fd_);
  seg_ = nullptr;
  fd_ = -1;
  map_size_ = capacity_ = 0;
  dev_ = 0;
  ino_ = 0;
}

OpenStatus ProfileReader::open(int pid, std::string* why) {
  close();
  path_ = profile_path(pid);
  // Read-only: unlike the stats segment, a profile reader never writes (no request word).
  struct stat st;
  OpenStatus status = open_published_file(pid, path_, O_RDONLY, "heap profile", "profile",
                                          kNotSampling, &proc_, &fd_, &st, why);
  if (status != OpenStatus::kOk) return status;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  // The publisher creates it 0600: a profile others can read (or write) was not made by it, and
  // its stacks would not be trustworthy, nor private.
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    *why = path_ + " has mode " + octal_mode(st.st_mode) +
           ": other users may read it, so poolguard did not create it (its profiles are 0600)";
    return OpenStatus::kInvalid;
  }
  if (st.st_size == 0) {
    *why = describe_process(proc_) + " is creating its profile; try again";
    return OpenStatus::kNotReady;
  }
  if (static_cast<uint64_t>(st.st_size) < profile_bytes_for(0)) {
    *why = path_ + " is too small to be a poolguard profile";
    return OpenStatus::kInvalid;
  }
  map_size_ = static_cast<size_t>(st.st_size);
  void* mem = mmap(nullptr, map_size_, PROT_READ, MAP_SHARED, fd_, 0);
  if (mem == MAP_FAILED) {
    map_size_ = 0;
    *why = "cannot map " + path_ + ": " + strerror(errno);
    return OpenStatus::kError;
  }
  seg_ = static_cast<const ProfileSegment*>(mem);
  status = check_published_header(__atomic_load_n(&seg_->magic, __ATOMIC_ACQUIRE), kProfileMagic,
                                  seg_->version, kProfileVersion, "profile", path_, proc_, why);
  if (status != OpenStatus::kOk) return status;
  if (seg_->size != map_size_) {
    *why = path_ + " has the wrong size (" + std::to_string(seg_->size) + " bytes declared, " +
           std::to_string(map_size_) + " in the file)";
    return OpenStatus::kInvalid;
  }
  // Entries are only ever read within the file: a max_stacks that does not fit is refused here,
  // not trusted later.
  if (seg_->pid != pid ||
      seg_->max_stacks > (map_size_ - profile_bytes_for(0)) / sizeof(ProfileEntry)) {
    *why = path_ + " describes pid " + std::to_string(seg_->pid) + " or a geometry this reader " +
           "does not understand";
    return OpenStatus::kInvalid;
  }
  capacity_ = seg_->max_stacks;
  if (!process_maps(pid, dev_, ino_)) {
    *why = path_ + " is stale: " + describe_process(proc_) +
           " no longer publishes there (it exec'd a program without poolguard, or the pid was "
           "reused); `poolguard ls` removes it";
    return OpenStatus::kStale;
  }
  return OpenStatus::kOk;
}

bool ProfileReader::copy(Profile* out, uint64_t deadline_ns) const {
  std::vector<ProfileEntry> entries;
  for (;;) {
    uint64_t before = __atomic_load_n(&seg_->seq, __ATOMIC_ACQUIRE);
    if ((before & 1) == 0) {
      Profile p;
      p.pid = seg_->pid;
      p.uid = seg_->uid;
      p.publish_time_ns = load(seg_->publish_time_ns);
      p.sample_bytes = load(seg_->sample_bytes);
      p.stacks_total = load(seg_->stacks_total);
      p.live_samples = load(seg_->live_samples);
      p.bytes = load(seg_->bytes);
      p.blocks = load(seg_->blocks);
      p.sampled_total = load(seg_->sampled_total);
      // Bounded by the mapping whatever a torn `stacks` says; the seq check below decides
      // whether the copy is kept.
      size_t n = std::min<uint64_t>(load(seg_->stacks), capacity_);
      entries.resize(n);
      memcpy(static_cast<void*>(entries.data()), seg_->entries, n * sizeof(ProfileEntry));
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      if (__atomic_load_n(&seg_->seq, __ATOMIC_RELAXED) == before) {
        p.stacks.reserve(n);
        for (const ProfileEntry& e : entries) {
          size_t depth = std::min<size_t>(e.depth, kProfileMaxFrames);
          p.stacks.push_back({e.bytes, e.blocks, e.samples, {e.pcs, e.pcs + depth}});
        }
        *out = std::move(p);
        return true;
      }
    }
    if (monotonic_ns() >= deadline_ns) return false;
    sched_yield();
  }
}

OpenStatus read_profile(SegmentReader& stats, uint64_t deadline_ns, Profile* out, bool* fresh,
                        std::string* why) {
  int pid = stats.process().pid;
  stats.request();
  *fresh = stats.wait_fresh(deadline_ns);
  ProfileReader reader;
  OpenStatus st = reader.open(pid, why);
  // The publisher creates the profile next to the stats segment; one caught half-made is retried
  // briefly rather than reported.
  for (int tries = 0; st == OpenStatus::kNotReady && tries < 25; ++tries) {
    timespec pause{0, 20 * 1000 * 1000};
    nanosleep(&pause, nullptr);
    st = reader.open(pid, why);
  }
  if (st != OpenStatus::kOk) return st;
  if (!reader.copy(out, std::max(deadline_ns, monotonic_ns() + 100'000'000))) {
    *why = "process " + std::to_string(pid) + " did not finish publishing its heap profile";
    return OpenStatus::kError;
  }
  // A profile segment with no sampling rate describes no sampling (the writer left it empty).
  if (out->sample_bytes == 0) {
    *why = describe_process(reader.process()) + kNotSampling;
    return OpenStatus::kNoSegment;
  }
  return OpenStatus::kOk;
}

}  // namespace pg::stats
