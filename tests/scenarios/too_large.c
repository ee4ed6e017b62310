// Scenario 10: requests too large to satisfy. Sizes near SIZE_MAX (where adding a header or
// rounding up wraps around), PTRDIFF_MAX + 1 (glibc refuses anything above PTRDIFF_MAX), calloc
// products that overflow, huge aligned requests, pvalloc rounding that wraps, and realloc and
// reallocarray to huge sizes: each returns NULL with ENOMEM (EINVAL where the contract says so),
// nothing crashes, and the old block of a failed realloc is intact and still usable.
#include <malloc.h>
#include <stddef.h>

#include "scenario.h"

// GCC cannot know that a realloc that returned NULL left its block alone: using the block after
// a failed realloc is this scenario's point.
#pragma GCC diagnostic ignored "-Wuse-after-free"

// Sizes the compiler cannot see (it would fold a constant huge malloc to NULL).
static volatile size_t g_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 4096,
    SIZE_MAX - (1u << 20),
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX - 4095,
    (size_t)1 << 62,
    (size_t)1 << 52,  // 4 PiB: beyond any address space, not beyond size_t
};
enum { kNumSizes = sizeof g_sizes / sizeof *g_sizes };

static void expect_null(void* p, int err, const char* call, size_t n) {
  int e = errno;
  SCEN_CHECK(p == NULL, "%s(%#zx) returned %p", call, n, p);
  SCEN_CHECK(e == err, "%s(%#zx): errno %d (%s), expected %d (%s)", call, n, e, strerror(e), err,
             strerror(err));
}

// A block with known contents, checked after each failed resize of it.
static unsigned char* make(size_t n, size_t align) {
  unsigned char* p = align ? memalign(align, n) : malloc(n);
  SCEN_CHECK(p != NULL, "allocation of %zu bytes failed", n);
  scen_fill(p, n, n + align);
  return p;
}

static void check_intact(unsigned char* p, size_t n, size_t align, const char* after) {
  size_t bad = scen_check(p, n, n + align);
  SCEN_CHECK(bad == n, "block of %zu bytes damaged at %zu after %s", n, bad, after);
  SCEN_CHECK(malloc_usable_size(p) >= n, "usable size of the kept block shrank after %s", after);
}

int main(void) {
  for (int i = 0; i < kNumSizes; ++i) {
    size_t n = g_sizes[i];
    errno = 0;
    expect_null(malloc(n), ENOMEM, "malloc", n);
    errno = 0;
    expect_null(calloc(n, 1), ENOMEM, "calloc(n, 1)", n);
    errno = 0;
    expect_null(calloc(1, n), ENOMEM, "calloc(1, n)", n);
    errno = 0;
    expect_null(memalign(64, n), ENOMEM, "memalign(64)", n);
    errno = 0;
    expect_null(aligned_alloc(4096, n), ENOMEM, "aligned_alloc(4096)", n);
    errno = 0;
    expect_null(valloc(n), ENOMEM, "valloc", n);
    errno = 0;
    expect_null(pvalloc(n), ENOMEM, "pvalloc", n);
    void* q = (void*)&q;
    int rc = posix_memalign(&q, 256, n);
    SCEN_CHECK(rc == ENOMEM, "posix_memalign(256, %#zx): %d, expected ENOMEM", n, rc);
    SCEN_CHECK(q == (void*)&q, "posix_memalign(256, %#zx) changed *memptr on failure", n);
  }
  // calloc products that overflow size_t.
  static volatile size_t factors[][2] = {{SIZE_MAX / 2 + 1, 2},
                                         {(size_t)1 << 33, (size_t)1 << 33},
                                         {SIZE_MAX, SIZE_MAX},
                                         {3, SIZE_MAX / 3 + 1}};
  for (size_t i = 0; i < sizeof factors / sizeof *factors; ++i) {
    errno = 0;
    void* p = calloc(factors[i][0], factors[i][1]);
    SCEN_CHECK(p == NULL && errno == ENOMEM, "calloc(%#zx, %#zx): %p, errno %d", factors[i][0],
               factors[i][1], p, errno);
  }
  // realloc and reallocarray of pooled, large, mmap'ed and over-aligned blocks to huge sizes.
  static const size_t kept[][2] = {{24, 0},     {256, 0},    {5000, 0},
                                   {300000, 0}, {100, 4096}, {5000, 64}};
  for (size_t k = 0; k < sizeof kept / sizeof *kept; ++k) {
    size_t n = kept[k][0], align = kept[k][1];
    unsigned char* p = make(n, align);
    for (int i = 0; i < kNumSizes; ++i) {
      errno = 0;
      expect_null(realloc(p, g_sizes[i]), ENOMEM, "realloc", g_sizes[i]);
      check_intact(p, n, align, "a failed realloc");
      errno = 0;
      expect_null(reallocarray(p, g_sizes[i], 1), ENOMEM, "reallocarray(p, n, 1)", g_sizes[i]);
      check_intact(p, n, align, "a failed reallocarray");
    }
    volatile size_t half = SIZE_MAX / 2 + 1;
    errno = 0;
    expect_null(reallocarray(p, half, 2), ENOMEM, "reallocarray(p, SIZE_MAX/2+1, 2)", half);
    check_intact(p, n, align, "an overflowing reallocarray");
    // Still an ordinary block: it grows, and is freed.
    unsigned char* q = realloc(p, n + 1000);
    SCEN_CHECK(q != NULL, "realloc(%zu -> %zu) after the failures failed", n, n + 1000);
    check_intact(q, n, align, "growing");
    free(q);
  }
  // Alignments beyond any size: a huge power of two is ENOMEM, one that cannot be rounded up to a
  // power of two is EINVAL.
  volatile size_t a62 = (size_t)1 << 62, a63plus = ((size_t)1 << 63) + 1;
  errno = 0;
  expect_null(memalign(a62, 16), ENOMEM, "memalign(2^62, 16): size", 16);
  errno = 0;
  expect_null(memalign(a63plus, 16), EINVAL, "memalign(2^63+1, 16): size", 16);
  void* q = (void*)&q;
  int rc = posix_memalign(&q, a62, 16);
  SCEN_CHECK(rc == ENOMEM && q == (void*)&q, "posix_memalign(2^62, 16): %d, *memptr %s", rc,
             q == (void*)&q ? "kept" : "changed");
  // Ordinary work afterwards.
  for (size_t n = 1; n < 1000000; n = n * 5 + 3) {
    void* p = malloc(n);
    SCEN_CHECK(p != NULL, "malloc(%zu) failed after the huge requests", n);
    memset(p, 7, n);
    free(p);
  }
  scen_note("ok: %d huge sizes refused by every allocation call, old blocks intact", kNumSizes);
  return 0;
}
