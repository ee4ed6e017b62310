// The input format of api_fuzzer: the operations, their weights and the decoder that turns bytes
// into them, and the encoder make_seeds.cpp writes the seed corpus with (one definition, so that
// the seeds mean what they say). The format is described in api_fuzzer.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "pool/config.h"

namespace pg_fuzz {

constexpr size_t kMaxThreads = 4;
constexpr size_t kSlots = 32;                              // blocks a thread holds in its slots
constexpr size_t kMaxRealSize = (size_t{1} << 20) + 4096;  // largest request meant to succeed
constexpr size_t kHugeMin = size_t{1} << 62;  // requests from here on cannot succeed (47-bit VA)

enum class Kind : uint8_t {
  kMalloc,
  kCalloc,
  kRealloc,
  kReallocArray,
  kMemalign,
  kPosixMemalign,
  kAlignedAlloc,
  kValloc,
  kPvalloc,
  kForeign,  // a block from glibc itself (__libc_malloc), as if allocated before poolguard
  kFree,
  kFreeSized,
  kUsableSize,
  kGive,       // hand the slot's block to another thread's mailbox
  kTake,       // take a block from this thread's mailbox into the slot
  kDrain,      // free every block in this thread's mailbox (cross-thread frees, in bulk)
  kBurst,      // allocate `count` blocks of one size onto the thread's bulk list (fills pools)
  kBurstFree,  // free every stride-th block of the bulk list, from the front or the back
  kBurstGive,  // hand every stride-th block of the bulk list to another thread's mailbox
  kCollect,    // pg::thread_collect(): remote frees collected, empty pools returned
  kDetach,     // pg::thread_detach(): the heap abandoned as at thread exit, a new one attached
  kNumKinds
};

inline constexpr const char* kKindNames[] = {
    "malloc", "calloc",  "realloc", "reallocarray", "memalign",   "posix_memalign", "aligned_alloc",
    "valloc", "pvalloc", "foreign", "free",         "free_sized", "usable_size",    "give",
    "take",   "drain",   "burst",   "burst_free",   "burst_give", "collect",        "detach"};
static_assert(sizeof kKindNames / sizeof kKindNames[0] == static_cast<size_t>(Kind::kNumKinds));

// How often each operation comes: out of 64, the opcode's low six bits.
struct Weight {
  Kind kind;
  int weight;
};
inline constexpr Weight kWeights[] = {
    {Kind::kMalloc, 8},       {Kind::kCalloc, 4},   {Kind::kRealloc, 6},
    {Kind::kReallocArray, 3}, {Kind::kMemalign, 4}, {Kind::kPosixMemalign, 3},
    {Kind::kAlignedAlloc, 3}, {Kind::kValloc, 1},   {Kind::kPvalloc, 1},
    {Kind::kForeign, 2},      {Kind::kFree, 7},     {Kind::kFreeSized, 2},
    {Kind::kUsableSize, 2},   {Kind::kGive, 3},     {Kind::kTake, 3},
    {Kind::kDrain, 1},        {Kind::kBurst, 3},    {Kind::kBurstFree, 3},
    {Kind::kBurstGive, 3},    {Kind::kCollect, 1},  {Kind::kDetach, 1},
};
struct OpTable {
  Kind kinds[64];
};
constexpr OpTable make_op_table() {
  OpTable t{};
  int n = 0;
  for (const Weight& w : kWeights) {
    for (int i = 0; i < w.weight; ++i) t.kinds[n++] = w.kind;
  }
  return t;
}
constexpr int weight_sum() {
  int n = 0;
  for (const Weight& w : kWeights) n += w.weight;
  return n;
}
static_assert(weight_sum() == 64, "the weights share the 64 opcodes");
inline constexpr OpTable kOpTable = make_op_table();

struct Op {
  Kind kind;
  uint8_t slot;
  uint8_t target;  // kGive, kBurstGive: the receiving thread
  uint8_t stride;  // kBurstFree, kBurstGive: every stride-th block, from `offset`
  uint8_t offset;
  bool reverse;  // kBurstFree: from the back of the list
  size_t size;   // size, or calloc/reallocarray's element size
  size_t count;  // calloc/reallocarray's element count, kBurst's number of blocks
  size_t align;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  uint8_t u8() { return p_ == end_ ? 0 : *p_++; }
  uint16_t u16() {
    uint16_t lo = u8();
    return static_cast<uint16_t>(lo | u8() << 8);
  }
  uint32_t u32() {
    uint32_t lo = u16();
    return lo | static_cast<uint32_t>(u16()) << 16;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Sizes that cannot be served: near SIZE_MAX (where size + header or + alignment overflows), and
// from 2^62 on.
inline size_t pick_huge(Reader& r) {
  switch (r.u8() % 4) {
    case 0:
      return SIZE_MAX - r.u8();
    case 1:
      return (SIZE_MAX >> 1) + 1 + r.u8();
    case 2:
      return kHugeMin + r.u16();
    default:
      return SIZE_MAX - pg::kPoolMax - r.u16();
  }
}

// Weighted to small sizes: 0..32, the class boundaries (a class's size - 1, its size, + 1: the
// small tier's, the medium tier's and the spans'), both sides of kPoolMax, then up to 4 KiB,
// 16 KiB and 1 MiB + 4 KiB, and a few impossible ones.
// (Each read is a statement of its own: the order of two reads in one expression is unspecified.)
inline size_t pick_size(Reader& r) {
  uint8_t b = r.u8();
  if (b < 80) return r.u8() % 33;
  if (b < 140) {
    size_t boundary = pg::class_size(r.u8() % pg::kNumClasses);
    return boundary + r.u8() % 3 - 1;
  }
  if (b < 170) return pg::kPoolMax - 16 + r.u8() % 64;
  if (b < 215) return r.u16() % 4097;
  if (b < 240) return r.u16() % 16385;
  // Up to 1 MiB + 4 KiB, log-uniform and rarer: every new page of a large block costs a page
  // fault, which soon is most of the fuzzer's time.
  if (b < 250) {
    int bits = 15 + r.u8() % 6;
    return r.u32() % ((size_t{1} << bits) + 1);
  }
  if (b < 252) return kMaxRealSize - r.u16() % 8192;
  return pick_huge(r);
}

// Element counts for calloc and reallocarray: mostly small, some whose product overflows.
inline size_t pick_count(Reader& r) {
  uint8_t b = r.u8();
  if (b < 32) return 0;
  if (b < 128) return 1;
  if (b < 200) return 2 + r.u8() % 16;
  if (b < 240) return r.u16() % 1025;
  switch (r.u8() % 4) {
    case 0:
      return SIZE_MAX;
    case 1:
      return (SIZE_MAX >> 1) + 1;
    case 2:
      return (size_t{1} << 32) + 1;
    default:
      return (size_t{1} << 33) + r.u16();
  }
}

// Powers of two up to 64 KiB (the pools honour up to kMaxPoolAlign), alignments that are not
// powers of two (or too small for posix_memalign), and huge powers of two that may be refused.
inline constexpr size_t kOddAligns[] = {0,
                                        3,
                                        5,
                                        6,
                                        8,
                                        12,
                                        24,
                                        48,
                                        96,
                                        100,
                                        129,
                                        255,
                                        4095,
                                        4097,
                                        65535,
                                        65537,
                                        size_t{3} << 20,
                                        (SIZE_MAX >> 1) + 2,
                                        SIZE_MAX};
inline constexpr size_t kNumOddAligns = sizeof kOddAligns / sizeof kOddAligns[0];

inline size_t pick_align(Reader& r) {
  uint8_t b = r.u8();
  if (b < 128) return size_t{1} << (r.u8() % 17);
  if (b < 176) return size_t{1} << (r.u8() % 8);
  if (b < 232) return kOddAligns[r.u8() % kNumOddAligns];
  return size_t{1} << (17 + r.u8() % 47);
}

// Blocks in one burst: mostly enough to fill a pool or two of a class, sometimes an arena's worth.
inline size_t pick_burst(Reader& r) {
  uint8_t b = r.u8();
  if (b < 192) return 1 + r.u8() % 128;
  return 1 + r.u16() % 2048;
}

inline Op decode(Reader& r, size_t threads, size_t* thread) {
  uint8_t code = r.u8();
  Op op{};
  op.kind = kOpTable.kinds[code & 63];
  *thread = (code >> 6) % threads;
  op.slot = static_cast<uint8_t>(r.u8() % kSlots);
  switch (op.kind) {
    case Kind::kMalloc:
    case Kind::kRealloc:
    case Kind::kValloc:
    case Kind::kPvalloc:
    case Kind::kForeign:
      op.size = pick_size(r);
      break;
    case Kind::kCalloc:
    case Kind::kReallocArray:
      op.count = pick_count(r);
      op.size = pick_size(r);
      break;
    case Kind::kMemalign:
    case Kind::kPosixMemalign:
    case Kind::kAlignedAlloc:
      op.align = pick_align(r);
      op.size = pick_size(r);
      break;
    case Kind::kGive:
      op.target = static_cast<uint8_t>(r.u8() % threads);
      break;
    case Kind::kBurst:
      op.count = pick_burst(r);
      op.size = pick_size(r);
      break;
    case Kind::kBurstFree:
    case Kind::kBurstGive: {
      uint8_t b = r.u8();
      op.stride = static_cast<uint8_t>(1 + (b & 7));
      op.offset = static_cast<uint8_t>(((b >> 3) & 15) % op.stride);
      op.reverse = (b & 0x80) != 0;
      op.target = static_cast<uint8_t>(r.u8() % threads);
      break;
    }
    default:
      break;
  }
  return op;
}

// The decoder's inverse, for make_seeds.cpp: each call appends the bytes of one operation, chosen
// so that the decoder reads back exactly these arguments (a value it cannot encode is a bug in the
// seed and aborts).
class Writer {
 public:
  // The configuration byte (see api_fuzzer.cpp).
  explicit Writer(size_t workers, bool free_own = false, bool detach = false, bool exit = false) {
    put(static_cast<uint8_t>(workers | (free_own ? 4 : 0) | (detach ? 8 : 0) | (exit ? 0x30 : 0)));
  }
  const std::vector<uint8_t>& bytes() const { return out_; }

  Writer& malloc(size_t t, size_t slot, size_t n) { return op(Kind::kMalloc, t, slot).size(n); }
  Writer& calloc(size_t t, size_t slot, size_t count, size_t n) {
    return op(Kind::kCalloc, t, slot).count(count).size(n);
  }
  Writer& realloc(size_t t, size_t slot, size_t n) { return op(Kind::kRealloc, t, slot).size(n); }
  Writer& reallocarray(size_t t, size_t slot, size_t count, size_t n) {
    return op(Kind::kReallocArray, t, slot).count(count).size(n);
  }
  Writer& memalign(size_t t, size_t slot, size_t align, size_t n) {
    return op(Kind::kMemalign, t, slot).align(align).size(n);
  }
  Writer& posix_memalign(size_t t, size_t slot, size_t align, size_t n) {
    return op(Kind::kPosixMemalign, t, slot).align(align).size(n);
  }
  Writer& aligned_alloc(size_t t, size_t slot, size_t align, size_t n) {
    return op(Kind::kAlignedAlloc, t, slot).align(align).size(n);
  }
  Writer& valloc(size_t t, size_t slot, size_t n) { return op(Kind::kValloc, t, slot).size(n); }
  Writer& pvalloc(size_t t, size_t slot, size_t n) { return op(Kind::kPvalloc, t, slot).size(n); }
  Writer& foreign(size_t t, size_t slot, size_t n) { return op(Kind::kForeign, t, slot).size(n); }
  Writer& free(size_t t, size_t slot) { return op(Kind::kFree, t, slot); }
  Writer& free_sized(size_t t, size_t slot) { return op(Kind::kFreeSized, t, slot); }
  Writer& usable_size(size_t t, size_t slot) { return op(Kind::kUsableSize, t, slot); }
  Writer& give(size_t t, size_t slot, size_t to) {
    op(Kind::kGive, t, slot);
    put(static_cast<uint8_t>(to));
    return *this;
  }
  Writer& take(size_t t, size_t slot) { return op(Kind::kTake, t, slot); }
  Writer& drain(size_t t) { return op(Kind::kDrain, t, 0); }
  Writer& burst(size_t t, size_t blocks, size_t n) {
    op(Kind::kBurst, t, 0);
    if (blocks >= 1 && blocks <= 128) {
      put(0);
      put(static_cast<uint8_t>(blocks - 1));
    } else {
      check(blocks >= 1 && blocks <= 2048, "burst");
      put(192);
      put16(blocks - 1);
    }
    return size(n);
  }
  // Every stride-th block of the bulk list from `offset` (< stride <= 8), maybe from the back.
  Writer& burst_free(size_t t, size_t stride, size_t offset, bool reverse) {
    return op(Kind::kBurstFree, t, 0).selection(stride, offset, reverse, 0);
  }
  Writer& burst_give(size_t t, size_t stride, size_t offset, bool reverse, size_t to) {
    return op(Kind::kBurstGive, t, 0).selection(stride, offset, reverse, to);
  }
  Writer& collect(size_t t) { return op(Kind::kCollect, t, 0); }
  Writer& detach(size_t t) { return op(Kind::kDetach, t, 0); }

 private:
  static void check(bool ok, const char* what) {
    if (ok) return;
    fprintf(stderr, "api_input.h: a seed asks for an argument the format cannot encode (%s)\n",
            what);
    abort();
  }

  void put(uint8_t b) { out_.push_back(b); }
  void put16(size_t v) {
    put(static_cast<uint8_t>(v));
    put(static_cast<uint8_t>(v >> 8));
  }
  void put32(size_t v) {
    put16(v & 0xffff);
    put16(v >> 16);
  }
  Writer& op(Kind kind, size_t t, size_t slot) {
    check(t < kMaxThreads && slot < kSlots, "thread or slot");
    int code = -1;
    for (int i = 0; i < 64 && code < 0; ++i) {
      if (kOpTable.kinds[i] == kind) code = i;
    }
    put(static_cast<uint8_t>(code | t << 6));
    put(static_cast<uint8_t>(slot));
    return *this;
  }
  Writer& size(size_t n) {
    if (n <= 32) {
      put(0);
      put(static_cast<uint8_t>(n));
    } else if (n <= 4096) {
      put(170);
      put16(n);
    } else if (n <= 16384) {
      put(215);
      put16(n);
    } else if (n <= (size_t{1} << 20)) {
      put(240);
      put(5);  // modulo 2^20 + 1
      put32(n);
    } else if (n <= kMaxRealSize) {
      put(250);
      put16(kMaxRealSize - n);
    } else if (n >= SIZE_MAX - 255) {
      put(252);
      put(0);
      put(static_cast<uint8_t>(SIZE_MAX - n));
    } else if (n >= (SIZE_MAX >> 1) + 1 && n <= (SIZE_MAX >> 1) + 256) {
      put(252);
      put(1);
      put(static_cast<uint8_t>(n - (SIZE_MAX >> 1) - 1));
    } else {
      check(n >= kHugeMin && n < kHugeMin + 65536, "size");
      put(252);
      put(2);
      put16(n - kHugeMin);
    }
    return *this;
  }
  Writer& count(size_t c) {
    if (c == 0) {
      put(0);
    } else if (c == 1) {
      put(32);
    } else if (c <= 17) {
      put(128);
      put(static_cast<uint8_t>(c - 2));
    } else if (c <= 1024) {
      put(200);
      put16(c);
    } else if (c == SIZE_MAX) {
      put(240);
      put(0);
    } else if (c == (SIZE_MAX >> 1) + 1) {
      put(240);
      put(1);
    } else {
      check(c == (size_t{1} << 32) + 1, "count");
      put(240);
      put(2);
    }
    return *this;
  }
  Writer& align(size_t a) {
    int log = (a & (a - 1)) == 0 && a != 0 ? __builtin_ctzll(a) : -1;
    if (log >= 0 && log <= 16) {
      put(0);
      put(static_cast<uint8_t>(log));
      return *this;
    }
    if (log >= 17) {
      put(232);
      put(static_cast<uint8_t>(log - 17));
      return *this;
    }
    for (size_t i = 0; i < kNumOddAligns; ++i) {
      if (kOddAligns[i] == a) {
        put(176);
        put(static_cast<uint8_t>(i));
        return *this;
      }
    }
    check(false, "alignment");
    return *this;
  }
  Writer& selection(size_t stride, size_t offset, bool reverse, size_t to) {
    check(stride >= 1 && stride <= 8 && offset < stride, "stride");
    put(static_cast<uint8_t>((stride - 1) | offset << 3 | (reverse ? 0x80 : 0)));
    put(static_cast<uint8_t>(to));
    return *this;
  }

  std::vector<uint8_t> out_;
};

}  // namespace pg_fuzz
