// make_seeds: writes the seed corpus of the fuzzers, tests/fuzz/corpus/*_fuzzer/seed-*:
// a few dozen inputs, each a scenario worth starting from (every operation and error path, pools
// filled to full, arenas emptied, blocks handed between threads, heaps detached and threads
// exited; every option with good and bad values; small well-formed statistics and profile
// segments). Built with the fuzzers; run by
// `run_fuzz.sh seeds` (scripts/fuzz.sh --seeds). Inputs the fuzzers find on their own are added
// next to these by `run_fuzz.sh merge`.
//
// Usage: make_seeds CORPUS_DIR   (writes CORPUS_DIR/api_fuzzer/seed-* and
//                                 CORPUS_DIR/options_fuzzer/seed-*)
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/profile_segment.h"
#include "base/segment.h"
#include "tests/fuzz/api_input.h"
#include "tests/fuzz/options_input.h"

namespace {

using pg_fuzz::kHugeMin;
using pg_fuzz::kMaxRealSize;
using pg_fuzz::Writer;

std::string g_dir;

void write(const std::string& sub, const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = g_dir + "/" + sub + "/seed-" + name;
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr || fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || fclose(f) != 0) {
    perror(path.c_str());
    exit(1);
  }
}

void api(const std::string& name, const Writer& w) {
  write("api_fuzzer", name, w.bytes());
}

void option(std::string name, size_t target, const std::string& value) {
  for (char& c : name) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!plain && c != '-') c = '_';
  }
  std::vector<uint8_t> bytes{static_cast<uint8_t>(target)};
  bytes.insert(bytes.end(), value.begin(), value.end());
  write("options_fuzzer", name, bytes);
}

// A deterministic mix of every operation, for the generic seeds.
struct Lcg {
  uint64_t s;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 33);
  }
  size_t below(size_t n) { return next() % n; }
};

size_t some_size(Lcg& r) {
  static const size_t kSizes[] = {0,   1,   15,   16,   17,    31,    32,    33,  48,
                                  100, 127, 128,  129,  200,   240,   255,   256, 257,
                                  300, 512, 1000, 4096, 10000, 16384, 100000};
  return kSizes[r.below(sizeof kSizes / sizeof kSizes[0])];
}

void mixed(Writer& w, size_t threads, size_t ops, uint64_t seed) {
  Lcg r{seed};
  for (size_t i = 0; i < ops; ++i) {
    size_t t = r.below(threads), slot = r.below(pg_fuzz::kSlots);
    switch (r.below(16)) {
      case 0:
      case 1:
      case 2:
        w.malloc(t, slot, some_size(r));
        break;
      case 3:
        w.calloc(t, slot, 1 + r.below(8), some_size(r));
        break;
      case 4:
      case 5:
        w.realloc(t, slot, some_size(r));
        break;
      case 6:
        w.memalign(t, slot, size_t{1} << r.below(14), some_size(r));
        break;
      case 7:
        w.posix_memalign(t, slot, size_t{8} << r.below(10), some_size(r));
        break;
      case 8:
      case 9:
      case 10:
        w.free(t, slot);
        break;
      case 11:
        w.give(t, slot, r.below(threads));
        break;
      case 12:
        w.take(t, slot);
        break;
      case 13:
        w.burst(t, 1 + r.below(128), some_size(r) % 300);
        break;
      case 14:
        w.burst_free(t, 1 + r.below(4), 0, r.below(2) != 0);
        break;
      default:
        w.burst_give(t, 2, 1, false, r.below(threads));
        break;
    }
  }
}

void api_seeds() {
  // Every class boundary, allocated then freed in another order.
  {
    Writer w(0);
    for (size_t k = 1; k <= 16; ++k) {
      w.malloc(0, (3 * k) % 32, 16 * k - 1).malloc(0, (3 * k + 1) % 32, 16 * k);
      w.malloc(0, (3 * k + 2) % 32, 16 * k + 1);
    }
    for (size_t s = 0; s < 32; s += 2) w.free(0, s).usable_size(0, s + 1);
    api("class-boundaries", w);
  }
  {
    Writer w(0);
    for (size_t n = 0; n <= 32; ++n) w.malloc(0, n % 32, n);
    api("tiny", w);
  }
  {
    Writer w(0);
    size_t sizes[] = {257, 1000, 4096, 16384, 65536, 200000, 1 << 20, kMaxRealSize};
    for (size_t i = 0; i < 8; ++i) w.malloc(0, i, sizes[i]).usable_size(0, i);
    for (size_t i = 0; i < 8; ++i) w.realloc(0, i, sizes[7 - i]);
    for (size_t i = 0; i < 8; i += 2) w.free_sized(0, i);
    api("large", w);
  }
  {
    Writer w(0);
    size_t ladder[] = {0, 1, 16, 17, 255, 256, 257, 4096, 1 << 20, 100, 16, 300, 0, 8};
    for (size_t n : ladder) w.realloc(0, 0, n);
    api("realloc-ladder", w);
  }
  {
    Writer w(0);
    w.malloc(0, 0, 100).realloc(0, 0, SIZE_MAX).realloc(0, 0, kHugeMin);
    w.malloc(0, 1, 5000).realloc(0, 1, SIZE_MAX - 16).realloc(0, 1, 0);
    w.memalign(0, 2, 4096, 100).realloc(0, 2, 200).memalign(0, 3, 256, 300).realloc(0, 3, 5000);
    w.realloc(0, 3, (SIZE_MAX >> 1) + 1);
    api("realloc-failures", w);
  }
  {
    Writer w(0);
    w.reallocarray(0, 0, 4, 8).reallocarray(0, 0, 16, 24).reallocarray(0, 0, SIZE_MAX, 16);
    w.reallocarray(0, 0, (size_t{1} << 32) + 1, kHugeMin).reallocarray(0, 0, 0, 7);
    w.reallocarray(0, 1, 1000, 1000).reallocarray(0, 1, 3, 100).reallocarray(0, 2, 2, SIZE_MAX);
    api("reallocarray", w);
  }
  {
    Writer w(0);
    w.calloc(0, 0, 0, 0).calloc(0, 1, 1, 1).calloc(0, 2, 16, 16).calloc(0, 3, 17, 15);
    w.calloc(0, 4, 1000, 1000).calloc(0, 5, SIZE_MAX, 2).calloc(0, 6, 2, (SIZE_MAX >> 1) + 1);
    w.calloc(0, 7, 1, SIZE_MAX).calloc(0, 8, 100, 4096).calloc(0, 9, 3, 100);
    w.free(0, 2).calloc(0, 2, 4, 8).malloc(0, 10, 256).free(0, 10).calloc(0, 10, 1, 256);
    api("calloc", w);
  }
  for (size_t log = 0; log <= 16; log += 4) {
    Writer w(0);
    for (size_t l = log; l < log + 4 && l <= 16; ++l) {
      size_t a = size_t{1} << l;
      w.memalign(0, (4 * l) % 32, a, 0).memalign(0, (4 * l + 1) % 32, a, 1);
      w.memalign(0, (4 * l + 2) % 32, a, 200).memalign(0, (4 * l + 3) % 32, a, 5000);
    }
    w.free(0, 0).free(0, 5).realloc(0, 6, 77);
    api("memalign-" + std::to_string(size_t{1} << log), w);
  }
  {
    Writer w(0);
    for (size_t i = 0; i < pg_fuzz::kNumOddAligns; ++i) {
      w.memalign(0, i, pg_fuzz::kOddAligns[i], 24 * i);
    }
    w.memalign(0, 30, size_t{1} << 20, 10).memalign(0, 31, size_t{1} << 62, 10);
    api("memalign-odd", w);
  }
  {
    Writer w(0);
    size_t aligns[] = {0, 1, 2, 4, 8, 16, 24, 32, 64, 128, 256, 4096, 65536, 65537, SIZE_MAX};
    for (size_t i = 0; i < 15; ++i) w.posix_memalign(0, i, aligns[i], 100 + i);
    w.posix_memalign(0, 20, 64, SIZE_MAX).posix_memalign(0, 21, size_t{1} << 40, 16);
    api("posix-memalign", w);
  }
  {
    Writer w(0);
    size_t aligns[] = {0, 1, 3, 8, 16, 24, 32, 128, 256, 4096, 65536, 100};
    for (size_t i = 0; i < 12; ++i) w.aligned_alloc(0, i, aligns[i], 33 * i);
    w.aligned_alloc(0, 20, 64, SIZE_MAX).aligned_alloc(0, 21, 32, 256);
    api("aligned-alloc", w);
  }
  {
    Writer w(0);
    w.valloc(0, 0, 0).valloc(0, 1, 1).valloc(0, 2, 5000).pvalloc(0, 3, 0).pvalloc(0, 4, 1);
    w.pvalloc(0, 5, 4097).pvalloc(0, 6, SIZE_MAX).valloc(0, 7, SIZE_MAX - 100);
    w.realloc(0, 0, 10).realloc(0, 3, 9000);
    api("valloc-pvalloc", w);
  }
  {
    Writer w(0);
    w.malloc(0, 0, SIZE_MAX).malloc(0, 1, kHugeMin).malloc(0, 2, (SIZE_MAX >> 1) + 1);
    w.memalign(0, 3, 64, SIZE_MAX - 16).aligned_alloc(0, 4, 4096, SIZE_MAX).valloc(0, 5, SIZE_MAX);
    w.memalign(0, 6, (SIZE_MAX >> 1) + 2, 10).memalign(0, 7, size_t{1} << 63, 10);
    api("impossible", w);
  }
  {
    Writer w(0);
    w.foreign(0, 0, 10).foreign(0, 1, 300).foreign(0, 2, 100000).usable_size(0, 0);
    w.realloc(0, 0, 20).realloc(0, 1, 100).realloc(0, 2, 200000).free(0, 2);
    w.foreign(0, 3, 0).free(0, 3).foreign(0, 4, 256).realloc(0, 4, 0);
    api("foreign", w);
  }
  // Pools filled until full, holes punched, refilled: the full list and frees into full pools.
  {
    Writer w(0);
    w.burst(0, 1100, 16).burst_free(0, 2, 0, false).burst(0, 600, 16).burst_free(0, 3, 1, true);
    w.burst(0, 300, 16).collect(0);
    api("fill-pool-16", w);
  }
  {
    Writer w(0);
    w.burst(0, 128, 256).burst(0, 128, 250).burst_free(0, 3, 2, true).burst(0, 100, 241);
    w.burst_free(0, 1, 0, false).burst(0, 64, 129).collect(0);
    api("fill-pool-256", w);
  }
  // More than an arena of pools, all freed: arenas emptied, kept as the spare, given back.
  {
    Writer w(0);
    w.burst(0, 2048, 256).burst(0, 2048, 240).burst(0, 1000, 200).burst_free(0, 1, 0, true);
    w.collect(0).burst(0, 500, 64).burst_free(0, 1, 0, false).collect(0);
    api("arena-turnover", w);
  }
  {
    Writer w(0);
    for (size_t i = 0; i < 8; ++i) w.malloc(0, i, 16 * i + 8);
    w.burst(0, 200, 48).detach(0).free(0, 0).free(0, 1).burst_free(0, 2, 0, false);
    for (size_t i = 8; i < 16; ++i) w.malloc(0, i, 16 * i - 120);
    w.burst(0, 100, 48).detach(0).burst_free(0, 1, 0, false).collect(0);
    api("detach-adopt", w);
  }
  // Threads: blocks handed over and freed or reallocated by another thread.
  {
    Writer w(1);
    for (size_t i = 0; i < 16; ++i) w.malloc(0, i, 24 + 16 * i).give(0, i, 1);
    for (size_t i = 0; i < 16; ++i) w.take(1, i).realloc(1, i, 300 - 16 * i);
    for (size_t i = 0; i < 8; ++i) w.malloc(1, 16 + i, 5000 * i).give(1, 16 + i, 0);
    for (size_t i = 0; i < 8; ++i) w.take(0, 16 + i).free(0, 16 + i);
    api("threads-give-take", w);
  }
  {
    Writer w(1);
    w.burst(0, 1100, 16).burst_give(0, 2, 0, false, 1).burst(0, 200, 32);
    w.burst_give(0, 1, 0, true, 1).burst(1, 300, 16);
    for (int i = 0; i < 6; ++i) w.drain(1).burst(1, 20, 64).burst_free(1, 2, 1, false);
    w.burst(0, 500, 16).collect(0);
    api("threads-remote-full", w);
  }
  {
    Writer w(2, false, true);
    w.burst(1, 300, 64).burst(2, 300, 96).malloc(1, 0, 5000).malloc(2, 0, 100);
    w.burst(0, 100, 64).burst_give(1, 3, 0, false, 0).burst_give(2, 3, 1, false, 0);
    api("threads-leftovers-detached", w);
  }
  {
    Writer w(3, false, false, true);
    for (size_t t = 1; t < 4; ++t) w.burst(t, 200, 16 * t).malloc(t, 1, 700 * t);
    w.malloc(0, 0, 40).give(0, 0, 3);
    api("threads-exit", w);
  }
  {
    Writer w(3, true);
    for (size_t t = 0; t < 4; ++t) w.burst(t, 100, 32).burst_give(t, 2, 0, false, (t + 1) % 4);
    for (size_t t = 0; t < 4; ++t) w.drain(t).burst_free(t, 1, 0, false).collect(t);
    api("threads-ring", w);
  }
  // Generic mixes.
  {
    Writer w(0);
    mixed(w, 1, 250, 1);
    api("mixed-1", w);
  }
  {
    Writer w(1);
    mixed(w, 2, 250, 2);
    api("mixed-2", w);
  }
  {
    Writer w(3, true, true);
    mixed(w, 4, 300, 3);
    api("mixed-4", w);
  }
  {
    Writer w(2, false, true, true);
    mixed(w, 3, 300, 4);
    api("mixed-3-exit", w);
  }
}

void options_seeds() {
  using namespace pg_fuzz::opt;
  // Every option with a value in its syntax and one that is not (the defaults are checked at
  // start-up by the fuzzer itself).
  for (size_t i = 0; i < kNumSpecs; ++i) {
    const Spec& s = kSpecs[i];
    std::string good, bad;
    switch (s.kind) {
      case Kind::Enum: {
        std::string v(s.values);
        good = v.substr(v.rfind('|') + 1);
        bad = good + "x";
        break;
      }
      case Kind::Size:
        good = std::string(s.values).find("..") != std::string::npos ? "255" : "16MiB";
        bad = std::string(s.values).find("..") != std::string::npos ? "256" : "1.5G";
        break;
      case Kind::Percents:
        good = "50,080,100";
        bad = "50,,101";
        break;
      case Kind::Path:
        good = "/tmp/pg.%p.log";
        bad = "";
        break;
    }
    option(std::string(s.name) + "-good", i, good);
    option(std::string(s.name) + "-bad", i, bad);
  }
  const char* sizes[] = {"0",
                         "1K",
                         "16M",
                         "64G",
                         "1T",
                         "1KiB",
                         "7kb",
                         "3mB",
                         "17179869183G",
                         "16777216T",
                         "18446744073709551609",
                         "18446744073709551616",
                         "",
                         "K",
                         "-1",
                         " 1",
                         "0x10"};
  for (const char* v : sizes) {
    std::string name = std::string("size-") + (*v ? v : "empty");
    option(name, kTargetParseSize, v);
  }
  option("invented", kTargetInventedName, "FOO=1");
  option("invented-real", kTargetInventedName, "STATS=exit");
  option("invented-empty", kTargetInventedName, "=x");
  for (int how = 0; how < kNumNearNameChanges; ++how) {
    size_t spec = (3 * how + 1) % kNumSpecs;
    std::string value(1, static_cast<char>(spec + kNumSpecs * how));
    option("near-name-" + std::to_string(how), kTargetNearName, value + kSpecs[spec].def);
  }
}

// ---- segment_fuzzer: small well-formed segments (flags byte, then the segment) ----

template <typename T>
void put(std::vector<uint8_t>& b, size_t at, const T& v) {
  if (b.size() < at + sizeof v) b.resize(at + sizeof v);
  memcpy(b.data() + at, &v, sizeof v);
}

// A stats segment in miniature: the real layout's parts with small counts, some figures set.
std::vector<uint8_t> mini_stats(uint32_t heaps, uint32_t large, uint32_t arenas) {
  using namespace pg::stats;
  SegmentHeader h{};
  h.magic = kSegmentMagic;
  h.version = kSegmentVersion;
  h.num_classes = 16;
  for (uint32_t c = 0; c < 16; ++c) h.class_size[c] = (c + 1) * 16;
  h.num_slots = 17;
  h.small_max = 256;
  h.pool_size = 16384;
  h.pool_header = 128;
  h.arena_size = 1 << 20;
  h.globals_offset = (sizeof h + 63) & ~size_t{63};
  h.large_offset = h.globals_offset + sizeof(SegmentGlobals);
  h.large_capacity = large;
  h.large_stride = sizeof(SegmentLargeSlot);
  h.arenas_offset = h.large_offset + large * sizeof(SegmentLargeSlot);
  h.max_arenas = arenas;
  h.arena_stride = sizeof(SegmentArena);
  h.heaps_offset = h.arenas_offset + arenas * sizeof(SegmentArena);
  h.max_heaps = heaps;
  h.heap_stride = (2 * 17 + 16) * 8;
  h.pool_meta_size = 256;
  h.pool_used_offset = 72;
  h.size = h.heaps_offset + uint64_t{heaps} * h.heap_stride;
  std::vector<uint8_t> b(h.size, 0);
  put(b, 0, h);
  SegmentGlobals g{};
  g.heap_slots = heaps;
  g.large_slots = large;
  g.arenas_listed = arenas;
  g.arenas_total = arenas;
  g.arenas_in_use = arenas;
  g.pools_in_use = 3;
  g.class_pools[1] = 2;
  g.class_pools[12] = 1;
  put(b, h.globals_offset, g);
  for (uint32_t i = 0; i < heaps; ++i) {
    size_t at = h.heaps_offset + size_t{i} * h.heap_stride;
    put<uint64_t>(b, at + 2 * 8, 1000 + i);           // allocs of slot 2 (class 1, 32 bytes)
    put<uint64_t>(b, at + (17 + 2) * 8, 24000);       // requested
    put<uint64_t>(b, at + (2 * 17 + 1) * 8, 10 * i);  // frees of class 1
  }
  for (uint32_t i = 0; i < large; ++i) {
    SegmentLargeSlot slot{};
    slot.allocs = 11;
    slot.frees = 1;
    slot.bytes_in = 55000;
    slot.bytes_out = 5000;
    put(b, h.large_offset + i * sizeof slot, slot);
  }
  for (uint32_t i = 0; i < arenas; ++i) {
    SegmentArena e{};
    e.base = 0x7f0000000000ull + (uint64_t{i} << 20);
    e.pools[0].state = kSegPoolHeaders;
    e.pools[1] = {kSegPoolInUse, 1, 0};
    e.pools[2] = {kSegPoolFreeDirty, 0, 0};
    put(b, h.arenas_offset + i * sizeof e, e);
  }
  b.insert(b.begin(), 6);  // flags: stats, the reader's identity, magic and version right
  return b;
}

// A profile in miniature: `entries` stacks, the header's entries_offset right after the totals.
std::vector<uint8_t> mini_profile(uint32_t entries) {
  using namespace pg::stats;
  ProfileHeader h{};
  h.magic = kProfileMagic;
  h.version = kProfileVersion;
  h.max_stacks = entries;
  h.sample_bytes = 512 * 1024;
  h.entries_offset = kProfileEntriesOffset;
  h.size = kProfileEntriesOffset + entries * sizeof(ProfileEntry);
  std::vector<uint8_t> b(h.size, 0);
  put(b, 0, h);
  ProfileTotals t{};
  t.entries_used = entries;
  t.live_samples = 3 * entries;
  t.bytes = 1536 * 1024 * entries;
  t.blocks = 100 * entries;
  t.sampled_total = 10 * entries;
  put(b, kProfileTotalsOffset, t);
  for (uint32_t i = 0; i < entries; ++i) {
    ProfileEntry e{};
    e.bytes = (i + 1) * 512 * 1024;
    e.blocks = 10 * (i + 1);
    e.samples = i == 1 ? 0 : i + 1;  // the second holds nothing any more
    e.depth = 3 + i;
    e.stack = i + 1;
    for (uint32_t f = 0; f < e.depth; ++f) e.pcs[f] = 0x555500001000ull + 16 * f + i;
    put(b, kProfileEntriesOffset + i * sizeof e, e);
  }
  b.insert(b.begin(), 7);  // flags: profile, identity, magic and version right
  return b;
}

void segment_seeds() {
  write("segment_fuzzer", "stats-mini", mini_stats(2, 2, 1));
  write("segment_fuzzer", "stats-empty", mini_stats(0, 0, 0));
  write("segment_fuzzer", "stats-arenas", mini_stats(1, 1, 3));
  write("segment_fuzzer", "profile-mini", mini_profile(3));
  write("segment_fuzzer", "profile-empty", mini_profile(0));
  std::vector<uint8_t> raw = mini_stats(2, 2, 1);
  raw[0] = 0;  // as found: another process's pid, no help with the header
  write("segment_fuzzer", "stats-as-found", raw);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  g_dir = argv[1];
  for (const char* sub : {"api_fuzzer", "options_fuzzer", "segment_fuzzer"}) {
    mkdir((g_dir + "/" + sub).c_str(), 0755);
  }
  api_seeds();
  options_seeds();
  segment_seeds();
  return 0;
}
