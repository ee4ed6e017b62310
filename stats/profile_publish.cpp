// The profile segment's writer. See stats/profile_publish.h and stats/profile_segment.h.
//
// The file's memory is allocated (posix_fallocate) in steps of kEntryChunk entries as the number of
// stacks grows, as the stats segment does with its arena map, so that writing into it can never
// raise SIGBUS on a full /dev/shm; when it cannot grow, fewer stacks are published (the totals
// still cover all of them).
#include "stats/profile_publish.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "guard/depot.h"
#include "pool/format.h"
#include "pool/os.h"
#include "stats/profile_segment.h"
#include "stats/segment.h"
#include "stats/seqlock.h"
#include "stats/shm_file.h"
#include "track/tracker.h"

namespace pg {

namespace {

using stats::ProfileSegment;

constexpr size_t kEntryChunk = 256;  // entries backed at a time (72 KiB)

struct ProfileWriter {
  ProfileSegment* seg = nullptr;
  char path[64] = {};
  ShmId id;
  ShmGrowth growth;                 // entries with memory allocated in /dev/shm
  TrackedStack* scratch = nullptr;  // kProfileMaxStacks entries, for tracker_profile()
};

ProfileWriter g_writer;

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

void profile_segment_path(int pid, char* path, unsigned size) {
  TextBuffer<64> b;
  b.str(stats::kSegmentPathPrefix).u64(static_cast<uint64_t>(pid)).str(stats::kProfileSuffix);
  size_t n = b.size() < size ? b.size() : size - 1;
  memcpy(path, b.data(), n);
  path[n] = '\0';
}

bool profile_segment_create(int pid) {
  ProfileWriter& w = g_writer;
  w.seg = nullptr;
  w.growth = ShmGrowth{};
  if (!tracking()) return false;
  if (w.scratch == nullptr) {
    w.scratch =
        static_cast<TrackedStack*>(os::map(stats::kProfileMaxStacks * sizeof(TrackedStack)));
    if (w.scratch == nullptr) return false;
  }
  profile_segment_path(pid, w.path, sizeof w.path);
  void* mem =
      shm_create(w.path, sizeof(ProfileSegment), stats::profile_bytes_for(kEntryChunk), &w.id);
  if (mem == nullptr) return false;
  w.growth.backed = kEntryChunk;
  ProfileSegment* s = static_cast<ProfileSegment*>(mem);
  s->size = sizeof(ProfileSegment);
  s->version = stats::kProfileVersion;
  s->pid = pid;
  s->uid = geteuid();
  s->max_stacks = stats::kProfileMaxStacks;
  __atomic_store_n(&s->magic, stats::kProfileMagic, __ATOMIC_RELEASE);
  w.seg = s;
  return true;
}

void profile_segment_publish() {
  ProfileWriter& w = g_writer;
  ProfileSegment* s = w.seg;
  if (s == nullptr) return;
  TrackTotals totals;
  size_t n = tracker_profile(w.scratch, stats::kProfileMaxStacks, &totals);
  if (!shm_ensure_backed(w.path, w.id, &w.growth, n, kEntryChunk, stats::kProfileMaxStacks,
                         stats::profile_bytes_for)) {
    n = w.growth.backed;
  }

  uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
  seq_begin(&s->seq, seq + 1);
  s->publish_time_ns = realtime_ns();
  s->sample_bytes = track_sample_bytes();
  s->stacks_total = totals.stacks;
  s->live_samples = totals.samples;
  s->bytes = totals.bytes;
  s->blocks = totals.blocks;
  s->sampled_total = totals.tracked_total;
  for (size_t i = 0; i < n; ++i) {
    stats::ProfileEntry& e = s->entries[i];
    const TrackedStack& t = w.scratch[i];
    e.bytes = t.bytes;
    e.blocks = t.blocks;
    e.samples = t.samples;
    uintptr_t pcs[stats::kProfileMaxFrames];
    int depth = depot_get(t.stack, pcs, static_cast<int>(stats::kProfileMaxFrames));
    e.depth = static_cast<uint32_t>(depth);
    for (int f = 0; f < depth; ++f) e.pcs[f] = pcs[f];
  }
  s->stacks = n;
  seq_end(&s->seq, seq + 2);
}

}  // namespace pg
