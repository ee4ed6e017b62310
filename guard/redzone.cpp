// Redzone blocks: glibc memory (through the large path, so that POOLGUARD_LIMIT and the large-block
// counters see it) laid out as
//
//   raw                user                  user+size                     raw+raw_size
//   | left redzone ... | the bytes asked for | slack to 16, right redzone |
//
// The left redzone is 16 bytes plus whatever aligning `user` takes; the right one grows with the
// block (an eighth of it, 16 to 2048 bytes), because a loop that runs off the end of a big array
// tends to run further. Both hold kRedzoneByte; a changed byte is an overflow or underflow.
#include <cstring>

#include "guard/internal.h"
#include "large/large.h"

namespace pg::guard {

namespace {

constexpr size_t kLeft = 16;
constexpr size_t kMaxRight = 2048;
constexpr size_t kMaxSize = size_t{1} << 47;

size_t right_redzone(size_t size) {
  size_t r = align_up(size / 8, 16);
  if (r < 16) r = 16;
  return r > kMaxRight ? kMaxRight : r;
}

// Index of the first byte of p[0..n) that is not v, or n.
size_t first_not(const unsigned char* p, size_t n, unsigned char v) {
  size_t i = 0;
  uint64_t word = 0x0101010101010101ull * v;
  for (; i < n && (reinterpret_cast<uintptr_t>(p + i) & 7) != 0; ++i) {
    if (p[i] != v) return i;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != word) break;
  }
  for (; i < n; ++i) {
    if (p[i] != v) return i;
  }
  return n;
}

}  // namespace

uintptr_t find_other_byte(uintptr_t lo, uintptr_t hi, unsigned char v) {
  if (hi <= lo) return 0;
  size_t n = hi - lo;
  size_t i = first_not(reinterpret_cast<const unsigned char*>(lo), n, v);
  return i < n ? lo + i : 0;
}

void* redzone_alloc(size_t size, size_t alignment, bool zero, uint32_t stack, int tid,
                    uint32_t* index) {
  if (size > kMaxSize || alignment > kMaxSize) return nullptr;
  size_t total =
      kLeft + (alignment > 16 ? alignment - 16 : 0) + align_up(size, 16) + right_redzone(size);
  char* raw = static_cast<char*>(large_alloc(total, 16, zero, size));
  if (raw == nullptr) return nullptr;
  uintptr_t user = align_up(reinterpret_cast<uintptr_t>(raw) + kLeft, alignment);
  char* u = reinterpret_cast<char*>(user);
  memset(raw, kRedzoneByte, user - reinterpret_cast<uintptr_t>(raw));
  memset(u + size, kRedzoneByte, static_cast<size_t>(raw + total - (u + size)));
  uint32_t i;
  {
    LockGuard guard(guard_lock());
    i = record_new();
    if (i != 0 && !table_insert(user, i)) {
      record_release(i);
      i = 0;
    }
    if (i != 0) {
      Block* b = record(i);
      b->user = user;
      b->raw = reinterpret_cast<uintptr_t>(raw);
      b->size = size;
      b->raw_size = total;
      b->alloc_stack = stack;
      b->alloc_tid = tid;
      b->kind = kKindRedzone;
      b->align_log2 = static_cast<uint8_t>(__builtin_ctzll(alignment));
      b->state = kLive;
    }
  }
  if (i == 0) {
    large_free(raw);
    return nullptr;
  }
  *index = i;
  return u;
}

uintptr_t redzone_damage(const Block& b) {
  if (uintptr_t d = find_other_byte(b.raw, b.user, kRedzoneByte)) return d;
  return find_other_byte(b.user + b.size, b.raw + b.raw_size, kRedzoneByte);
}

uintptr_t freed_damage(const Block& b) {
  return find_other_byte(b.user, b.user + b.size, kFreedByte);
}

void redzone_fill_freed(const Block& b) {
  memset(reinterpret_cast<void*>(b.user), kFreedByte, b.size);
}

void redzone_release(const Block& b) {
  large_free(reinterpret_cast<void*>(b.raw));
}

}  // namespace pg::guard
