// Scenario 8: malloc_usable_size and the alignment contracts. For every size up to 4 KiB (every
// size class and the pool/large threshold) and a range of large sizes: usable size >= request,
// and every usable byte writable (programs such as Redis use the slack; the guard modes must not
// report it). memalign, posix_memalign, aligned_alloc, valloc and pvalloc with every power-of-two
// alignment from 1 to 64 KiB, and with invalid ones: posix_memalign returns EINVAL and leaves
// *memptr alone; aligned_alloc with a non-power-of-two alignment fails with EINVAL (C11 DR 460,
// as poolguard documents; glibc before 2.38 rounded the alignment up instead, which is accepted
// only without poolguard).
#include <malloc.h>

#include "scenario.h"

static void check_block(void* p, size_t n, size_t align, const char* how) {
  SCEN_CHECK(p != NULL, "%s(size %zu, alignment %zu) returned NULL: %m", how, n, align);
  SCEN_CHECK(align == 0 || (uintptr_t)p % align == 0, "%s(size %zu): %p not aligned to %zu", how, n,
             p, align);
  size_t usable = malloc_usable_size(p);
  SCEN_CHECK(usable >= n, "%s(size %zu): malloc_usable_size %zu", how, n, usable);
  // Every usable byte is the program's: write all, then read back (big blocks: memset, and every
  // 512th byte read back, to keep the run short).
  if (usable <= 65536) {
    scen_fill(p, usable, n);
    size_t bad = scen_check(p, usable, n);
    SCEN_CHECK(bad == usable, "%s(size %zu): usable byte %zu of %zu did not keep its value", how, n,
               bad, usable);
  } else {
    unsigned char* b = p;
    memset(b, 0x5a, usable);
    for (size_t i = 0; i < usable; i += 512) {
      SCEN_CHECK(b[i] == 0x5a, "%s(size %zu): usable byte %zu did not keep its value", how, n, i);
    }
    SCEN_CHECK(b[usable - 1] == 0x5a, "%s(size %zu): last usable byte did not keep its value", how,
               n);
  }
}

// The first byte of p[0..n) that is not zero, or n.
static size_t first_nonzero(const unsigned char* p, size_t n) {
  static const unsigned char zeros[4096];
  for (size_t i = 0; i < n; i += sizeof zeros) {
    size_t len = n - i < sizeof zeros ? n - i : sizeof zeros;
    if (memcmp(p + i, zeros, len) != 0) {
      while (p[i] == 0) ++i;
      return i;
    }
  }
  return n;
}

static void usable_sizes(void) {
  for (size_t n = 0; n <= 4096; ++n) {
    void* p = malloc(n);
    check_block(p, n, 16, "malloc");
    free(p);
  }
  // Large: steps that grow by a third, each also at +1 and -1, up past glibc's mmap threshold.
  for (size_t n = 4096; n <= ((size_t)3 << 20); n += n / 3) {
    for (size_t d = 0; d < 3; ++d) {
      size_t m = n + d - 1;
      void* p = malloc(m);
      check_block(p, m, 16, "malloc");
      free(p);
      p = calloc(m, 1);
      SCEN_CHECK(p != NULL, "calloc(%zu) failed", m);
      size_t nz = first_nonzero(p, m);
      SCEN_CHECK(nz == m, "calloc(%zu): byte %zu not zero", m, nz);
      check_block(p, m, 16, "calloc");
      free(p);
    }
  }
  // calloc of every pooled size, after the same sizes were dirtied and freed (reuse).
  for (size_t n = 1; n <= 600; ++n) {
    void* dirty = malloc(n);
    SCEN_CHECK(dirty != NULL, "malloc(%zu) failed", n);
    memset(dirty, 0xee, n);
    free(dirty);
    unsigned char* p = calloc(1, n);
    SCEN_CHECK(p != NULL, "calloc(1, %zu) failed", n);
    size_t nz = first_nonzero(p, n);
    SCEN_CHECK(nz == n, "calloc(1, %zu): byte %zu not zero", n, nz);
    free(p);
  }
  SCEN_CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) != 0");
}

static const size_t kSizes[] = {0, 1, 8, 100, 256, 257, 1000, 5000, 70000, 200000};
enum { kNumSizes = sizeof kSizes / sizeof *kSizes };

static void valid_alignments(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  for (size_t a = 1; a <= 65536; a *= 2) {
    for (int s = 0; s < kNumSizes; ++s) {
      size_t n = kSizes[s];
      void* p = memalign(a, n);
      check_block(p, n, a, "memalign");
      free(p);
      p = aligned_alloc(a, n);
      check_block(p, n, a, "aligned_alloc");
      free(p);
      void* q = (void*)&q;  // must be replaced on success, kept on failure
      int rc = posix_memalign(&q, a, n);
      if (a < sizeof(void*)) {
        SCEN_CHECK(rc == EINVAL, "posix_memalign(alignment %zu): %d, expected EINVAL", a, rc);
        SCEN_CHECK(q == (void*)&q, "posix_memalign(alignment %zu) changed *memptr on error", a);
      } else {
        SCEN_CHECK(rc == 0, "posix_memalign(%zu, %zu): %s", a, n, strerror(rc));
        check_block(q, n, a, "posix_memalign");
        free(q);
      }
    }
  }
  for (int s = 0; s < kNumSizes; ++s) {
    size_t n = kSizes[s];
    void* p = valloc(n);
    check_block(p, n, page, "valloc");
    free(p);
    p = pvalloc(n);
    check_block(p, n, page, "pvalloc");
    free(p);
  }
}

static void invalid_alignments(void) {
  static const size_t bad[] = {0, 3, 12, 24, 48, 100, 4095, 4097, 65535, 65537 * 2};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; ++i) {
    size_t a = bad[i];
    // posix_memalign: not a power of two (or 0) multiple of sizeof(void*) -> EINVAL, *memptr kept.
    void* q = (void*)&q;
    int rc = posix_memalign(&q, a, 64);
    SCEN_CHECK(rc == EINVAL, "posix_memalign(alignment %zu): %d, expected EINVAL", a, rc);
    SCEN_CHECK(q == (void*)&q, "posix_memalign(alignment %zu) changed *memptr on error", a);
    if (a == 0) continue;
    // memalign: glibc rounds a non-power-of-two alignment up to the next power of two.
    size_t pow2 = 1;
    while (pow2 < a) pow2 *= 2;
    void* p = memalign(a, 64);
    check_block(p, 64, pow2, "memalign");
    free(p);
    errno = 0;
    p = aligned_alloc(a, 64);
    if (p == NULL) {
      SCEN_CHECK(errno == EINVAL,
                 "aligned_alloc(alignment %zu): NULL with errno %d, expected EINVAL", a, errno);
    } else {
      SCEN_CHECK(!scen_under_poolguard(),
                 "aligned_alloc(alignment %zu) returned %p, expected NULL and EINVAL", a, p);
      check_block(p, 64, pow2, "aligned_alloc (glibc < 2.38)");
      free(p);
    }
  }
  // An alignment above SIZE_MAX/2+1 cannot be rounded up: EINVAL.
  errno = 0;
  volatile size_t huge_align = ((size_t)1 << 63) + 1;
  void* p = memalign(huge_align, 16);
  SCEN_CHECK(p == NULL && errno == EINVAL, "memalign(2^63+1, 16): %p, errno %d", p, errno);
}

int main(void) {
  usable_sizes();
  valid_alignments();
  invalid_alignments();
  scen_note("ok: usable sizes, alignments 1..65536, invalid alignments");
  return 0;
}
