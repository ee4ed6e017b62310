// Scenario 9: realloc growth and shrink. Contents survive growth from 1 byte to several MiB (every
// pooled size class, the pool/large threshold, glibc's heap and its mmap'ed chunks) and the way
// back down, for blocks from malloc and from memalign (over-aligned blocks carry a header);
// realloc(NULL, n) is malloc; realloc(p, 0) frees and returns NULL (glibc's behaviour: the
// leak-mode run checks that the block was freed); reallocarray overflow returns NULL with ENOMEM
// and leaves the old block intact; a block allocated by one thread is resized by another.
#include <malloc.h>
#include <pthread.h>

#include "scenario.h"

#define MiB ((size_t)1 << 20)

// The next size on the way up: every size up to 300 bytes, then about 1/6 more each step.
static size_t grow(size_t n) {
  return n < 300 ? n + 1 : n + n / 6 + 13;
}

// Writes the pattern of `tag` into [from, to) of p (bytes before `from` are kept from before).
static void extend(unsigned char* p, size_t from, size_t to, uint64_t tag) {
  for (size_t i = from; i < to; ++i) p[i] = scen_byte(tag, i);
}

static void up_and_down(unsigned char* p, size_t start, uint64_t tag, const char* what) {
  size_t n = start;
  extend(p, 0, n, tag);
  while (n < 3 * MiB) {
    size_t m = grow(n);
    unsigned char* q = realloc(p, m);
    SCEN_CHECK(q != NULL, "%s: realloc(%zu -> %zu) failed", what, n, m);
    size_t bad = scen_check(q, n, tag);
    SCEN_CHECK(bad == n, "%s: realloc(%zu -> %zu) lost byte %zu", what, n, m, bad);
    SCEN_CHECK(malloc_usable_size(q) >= m, "%s: usable size %zu < %zu", what, malloc_usable_size(q),
               m);
    extend(q, n, m, tag);
    p = q;
    n = m;
  }
  while (n > 1) {
    size_t m = n > 300 ? n - n / 6 - 13 : n - 1;
    unsigned char* q = realloc(p, m);
    SCEN_CHECK(q != NULL, "%s: realloc(%zu -> %zu) failed", what, n, m);
    size_t bad = scen_check(q, m, tag);
    SCEN_CHECK(bad == m, "%s: realloc(%zu -> %zu) lost byte %zu", what, n, m, bad);
    p = q;
    n = m;
  }
  SCEN_CHECK(p[0] == scen_byte(tag, 0), "%s: the last byte lost", what);
  free(p);
}

// Back and forth across one boundary many times (same class, next class, pool <-> large).
static void across(size_t a, size_t b) {
  unsigned char* p = malloc(a);
  SCEN_CHECK(p != NULL, "malloc(%zu) failed", a);
  extend(p, 0, a, a);
  for (int i = 0; i < 50; ++i) {
    size_t to = i % 2 ? a : b;
    size_t keep = a < b ? a : b;
    unsigned char* q = realloc(p, to);
    SCEN_CHECK(q != NULL, "realloc(-> %zu) failed", to);
    size_t bad = scen_check(q, keep, a);
    SCEN_CHECK(bad == keep, "realloc %zu <-> %zu: byte %zu lost", a, b, bad);
    extend(q, keep, to, a);
    p = q;
  }
  free(p);
}

static unsigned char* g_handoff;

static void* resize_elsewhere(void* arg) {
  (void)arg;
  unsigned char* q = realloc(g_handoff, 100000);
  SCEN_CHECK(q != NULL, "realloc in another thread failed");
  SCEN_CHECK(scen_check(q, 200, 9) == 200, "realloc in another thread lost bytes");
  extend(q, 200, 100000, 9);
  g_handoff = q;
  return NULL;
}

int main(void) {
  // realloc(NULL, n) is malloc(n).
  unsigned char* p = realloc(NULL, 1);
  SCEN_CHECK(p != NULL, "realloc(NULL, 1) failed");
  up_and_down(p, 1, 1, "malloc'ed");
  p = realloc(NULL, 0);
  SCEN_CHECK(p != NULL, "realloc(NULL, 0) returned NULL");
  free(p);

  for (size_t align = 32; align <= 8192; align *= 16) {
    p = memalign(align, 10);
    SCEN_CHECK(p != NULL, "memalign(%zu, 10) failed", align);
    up_and_down(p, 10, align, "memalign'ed");
  }
  static const size_t edges[][2] = {{1, 16},     {16, 17},       {100, 112},
                                    {240, 256},  {256, 257},     {200, 300},
                                    {255, 4000}, {4000, 200000}, {16, 200000}};
  for (size_t i = 0; i < sizeof edges / sizeof *edges; ++i) across(edges[i][0], edges[i][1]);

  // realloc(p, 0): glibc frees p and returns NULL.
  for (size_t n = 1; n <= 300000; n *= 7) {
    p = malloc(n);
    SCEN_CHECK(p != NULL, "malloc(%zu) failed", n);
    void* q = realloc(p, 0);
    SCEN_CHECK(q == NULL, "realloc(p of %zu bytes, 0) returned %p, expected NULL (p freed)", n, q);
  }

  // reallocarray: a product that overflows fails with ENOMEM, the old block untouched.
  p = malloc(300);
  SCEN_CHECK(p != NULL, "malloc(300) failed");
  extend(p, 0, 300, 3);
  volatile size_t many = SIZE_MAX / 2;
  errno = 0;
  void* q = reallocarray(p, many, 3);
  SCEN_CHECK(q == NULL && errno == ENOMEM, "reallocarray(p, SIZE_MAX/2, 3): %p, errno %d", q,
             errno);
  SCEN_CHECK(scen_check(p, 300, 3) == 300, "reallocarray overflow damaged the old block");
  q = reallocarray(p, 1000, 3);
  SCEN_CHECK(q != NULL, "reallocarray(p, 1000, 3) failed");
  SCEN_CHECK(scen_check(q, 300, 3) == 300, "reallocarray lost bytes");
  free(q);

  // Resized by a thread that did not allocate it.
  g_handoff = malloc(200);
  SCEN_CHECK(g_handoff != NULL, "malloc(200) failed");
  extend(g_handoff, 0, 200, 9);
  pthread_t t;
  SCEN_CHECK(pthread_create(&t, NULL, resize_elsewhere, NULL) == 0, "pthread_create failed");
  pthread_join(t, NULL);
  SCEN_CHECK(scen_check(g_handoff, 100000, 9) == 100000, "block resized elsewhere damaged");
  free(g_handoff);
  scen_note("ok: growth to 3 MiB and back, boundaries, realloc(p, 0), reallocarray overflow");
  return 0;
}
