// segment_fuzzer: the readers of the statistics and profile segments (stats/reader.*,
// stats/profile_reader.*) on segments of any content. A segment is what another process wrote:
// a reader must never read outside it, whatever its header says, nor trip on its figures.
//
// Input: byte 0 holds flags, the rest is the segment, copied into a buffer of exactly its size
// (ASan's redzones then catch a read past its end).
//   bit 0  a profile segment (else a stats segment)
//   bit 1  the header names the reader's process (pid and start time), so that the checks of
//          identity pass and what is fuzzed is the geometry and the contents
//   bit 2  the header's magic, version and size are made right too
// The seeds (make_seeds.cpp) are small well-formed segments of both kinds.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/profile_segment.h"
#include "base/segment.h"
#include "stats/profile_reader.h"
#include "stats/reader.h"

namespace {

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "segment_fuzzer: MODEL MISMATCH: %s\n", what);
  abort();
}

// Where the identity fields are: the same offsets in both headers.
constexpr size_t kPidAt = 20, kStartAt = 32, kVersionAt = 16, kSizeAt = 8;
static_assert(offsetof(pg::stats::SegmentHeader, pid) == kPidAt &&
              offsetof(pg::stats::ProfileHeader, pid) == kPidAt);
static_assert(offsetof(pg::stats::SegmentHeader, start_time) == kStartAt &&
              offsetof(pg::stats::ProfileHeader, start_time) == kStartAt);

template <typename T>
void put(std::vector<uint8_t>& b, size_t at, T v) {
  if (at + sizeof v <= b.size()) memcpy(b.data() + at, &v, sizeof v);
}

void check_figures(const pg::stats::Figures& f, const pg::stats::SegmentHeader& h) {
  if (f.arenas.size() > h.max_arenas) fail("more arenas than the map holds");
  if (f.num_classes > pg::stats::kSegmentMaxClasses) fail("more classes than the segment holds");
  for (uint32_t c = 0; c < f.num_classes; ++c) {
    const pg::stats::ClassFigures& cf = f.classes[c];
    if (cf.live_blocks > cf.allocs) fail("more live blocks than allocations");
    if (cf.held_bytes != cf.live_blocks * cf.block_size) fail("held bytes not live x size");
  }
  for (const pg::stats::ArenaFigures& a : f.arenas) {
    if (a.base == 0) fail("an arena without base listed");
  }
}

void check_profile(const pg::stats::Profile& p) {
  for (size_t i = 0; i < p.stacks.size(); ++i) {
    const pg::stats::ProfileStack& s = p.stacks[i];
    if (s.pcs.size() > pg::stats::kProfileMaxFrames) fail("a stack deeper than an entry holds");
    if (s.samples == 0) fail("a stack without live samples listed");
    if (i > 0 && p.stacks[i - 1].bytes < s.bytes) fail("stacks not largest first");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (size_t{8} << 20)) return 0;
  uint8_t flags = data[0];
  std::vector<uint8_t> seg(data + 1, data + size);
  bool profile = (flags & 1) != 0;

  pg::stats::ProcessInfo proc;
  proc.pid = getpid();
  proc.tgid = proc.pid;
  proc.euid = geteuid();
  proc.comm = "segment_fuzzer";
  proc.start_time = 4242;
  if ((flags & 2) != 0) {
    put<int32_t>(seg, kPidAt, proc.pid);
    put<uint64_t>(seg, kStartAt, proc.start_time);
  }
  if ((flags & 4) != 0) {
    put<uint64_t>(seg, 0, profile ? pg::stats::kProfileMagic : pg::stats::kSegmentMagic);
    put<uint64_t>(seg, kSizeAt, seg.size());
    put<uint32_t>(seg, kVersionAt,
                  profile ? pg::stats::kProfileVersion : pg::stats::kSegmentVersion);
  }
  // The buffer, of exactly the segment's size: std::vector's storage is 16-byte aligned, as a
  // segment is page-aligned, and ASan guards both its ends.
  std::string why;
  static const bool trace = getenv("PG_FUZZ_TRACE") != nullptr;  // says what the reader said
  pg::stats::OpenStatus status;
  if (profile) {
    pg::stats::ProfileReader reader;
    status = reader.attach(reinterpret_cast<const char*>(seg.data()), seg.size(), proc, &why);
    if (status == pg::stats::OpenStatus::kOk) {
      pg::stats::Profile p;
      reader.copy(&p);
      check_profile(p);
      if (trace) fprintf(stderr, "segment_fuzzer: profile of %zu stacks\n", p.stacks.size());
    }
  } else {
    pg::stats::SegmentReader reader;
    status = reader.attach(seg.data(), seg.size(), proc, &why);
    if (status == pg::stats::OpenStatus::kOk) {
      pg::stats::Figures f;
      reader.read(&f);
      pg::stats::SegmentHeader h;
      memcpy(&h, seg.data(), sizeof h);
      check_figures(f, h);
      if (trace) {
        fprintf(stderr, "segment_fuzzer: figures: %llu small allocations, %zu arenas\n",
                static_cast<unsigned long long>(f.small_allocs), f.arenas.size());
      }
    }
  }
  if (status != pg::stats::OpenStatus::kOk) {
    if (why.empty()) fail("a segment refused without a reason");
    if (trace) fprintf(stderr, "segment_fuzzer: refused: %s\n", why.c_str());
  }
  return 0;
}
