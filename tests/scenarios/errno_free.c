// Scenario 7: free() never changes errno (POSIX.1-2024 requires it; glibc has since 2.33), and
// neither does free(NULL). Checked for every kind of block (pooled, large, mmap'ed, over-aligned),
// for frees that give pools, arenas or glibc's heap back to the OS, for frees from another thread
// and after the allocating thread exited. Then the same with the kernel's map count
// (vm.max_map_count) exhausted: in the guard modes free() changes page protections and unmaps, and
// those calls fail with ENOMEM there; the failure must not leak out through errno (nor crash).
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>

#include "scenario.h"

static const int kSentinels[] = {0, 4242, EILSEQ};

// free(p) with errno set to each sentinel in turn (by the running count): errno must survive.
static int g_frees;
static void checked_free(void* p, const char* what) {
  int sentinel = kSentinels[g_frees++ % 3];
  errno = sentinel;
  free(p);
  int after = errno;
  SCEN_CHECK(after == sentinel, "free(%s %p) changed errno from %d to %d (%s)", what, p, sentinel,
             after, strerror(after));
}

static void* must(void* p, const char* what) {
  SCEN_CHECK(p != NULL, "%s failed: %m", what);
  return p;
}

static void every_kind_of_block(void) {
  static const size_t sizes[] = {0, 1, 16, 100, 255, 256, 257, 1000, 4096, 70000, 300000, 3 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; ++i) {
    size_t n = sizes[i];
    checked_free(must(malloc(n), "malloc"), "malloc'ed");
    checked_free(must(calloc(1, n), "calloc"), "calloc'ed");
    checked_free(must(realloc(must(malloc(8), "malloc"), n + 1), "realloc"), "realloc'ed");
    checked_free(must(memalign(64, n), "memalign"), "memalign'ed");
    checked_free(must(aligned_alloc(4096, n), "aligned_alloc"), "aligned_alloc'ed");
    checked_free(must(valloc(n), "valloc"), "valloc'ed");
    void* p = NULL;
    SCEN_CHECK(posix_memalign(&p, 1024, n) == 0, "posix_memalign(1024, %zu) failed", n);
    checked_free(p, "posix_memalign'ed");
  }
  for (int i = 0; i < 100; ++i) checked_free(NULL, "NULL");
}

// Enough blocks for many pools and a few arenas, freed in an order that empties whole pools and
// arenas (returned to the OS with madvise), and enough large bytes that glibc's heap is trimmed.
static void frees_that_release_memory(void) {
  enum { kSmall = 40000, kLarge = 300 };
  static void* small[kSmall];
  static void* large[kLarge];
  for (int i = 0; i < kSmall; ++i) small[i] = must(malloc(16 + (size_t)(i % 4) * 64), "malloc");
  for (int i = 0; i < kLarge; ++i) large[i] = must(malloc(64 * 1024), "malloc(64 KiB)");
  for (int i = 0; i < kSmall; i += 2) checked_free(small[i], "pooled");
  for (int i = 1; i < kSmall; i += 2) checked_free(small[i], "pooled");
  for (int i = 0; i < kLarge; ++i) checked_free(large[i], "large");
}

// Blocks allocated by a thread: half freed by main while it runs, half after it has exited.
enum { kThreadBlocks = 2000 };
static void* g_thread_blocks[kThreadBlocks];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_stage;

static void* allocating_thread(void* arg) {
  (void)arg;
  uint64_t rng = 5;
  for (int i = 0; i < kThreadBlocks; ++i) {
    g_thread_blocks[i] = must(malloc(scen_mixed_size(&rng)), "thread malloc");
  }
  pthread_mutex_lock(&g_mu);
  g_stage = 1;
  pthread_cond_broadcast(&g_cv);
  while (g_stage != 2) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static void frees_of_other_threads(void) {
  pthread_t t;
  SCEN_CHECK(pthread_create(&t, NULL, allocating_thread, NULL) == 0, "pthread_create failed");
  pthread_mutex_lock(&g_mu);
  while (g_stage != 1) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < kThreadBlocks; i += 2) checked_free(g_thread_blocks[i], "remote");
  pthread_mutex_lock(&g_mu);
  g_stage = 2;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  pthread_join(t, NULL);
  for (int i = 1; i < kThreadBlocks; i += 2) checked_free(g_thread_blocks[i], "orphaned");
}

// ---- The map count exhausted ----------------------------------------------------------------

static long read_long_file(const char* path) {
  char buf[64];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

static size_t g_page;
static char* g_region;  // PROT_READ pages; every other one made PROT_NONE to split it
static size_t g_region_pages;
static size_t g_next_split;  // the next odd page to protect

// Splits one more page off (two more map entries); false when the kernel refuses (ENOMEM).
static int split_one(void) {
  if (g_next_split >= g_region_pages - 1) return 0;
  if (mprotect(g_region + g_next_split * g_page, g_page, PROT_NONE) != 0) {
    SCEN_CHECK(errno == ENOMEM, "mprotect: %m, expected ENOMEM at the map count limit");
    return 0;
  }
  g_next_split += 2;
  return 1;
}

// Undoes the last split (the entries merge again).
static void unsplit_one(void) {
  g_next_split -= 2;
  SCEN_CHECK(mprotect(g_region + g_next_split * g_page, g_page, PROT_READ) == 0,
             "mprotect back: %m");
}

static void exhausted_map_count(void) {
  long limit = read_long_file("/proc/sys/vm/max_map_count");
  if (limit <= 0) {
    scen_note("map count: /proc/sys/vm/max_map_count unreadable: skipped");
    return;
  }
  if (limit > 1000000) {
    scen_note("map count: vm.max_map_count=%ld is too high to reach quickly: skipped", limit);
    return;
  }
  // Blocks made while there is room and freed at the limit. In page mode a freed block's pages
  // are replaced or reprotected; for a block that does not fill its span (over-aligned, or in a
  // reused bigger span) that splits a mapping, which the kernel refuses at the limit.
  enum { kEarly = 120 };
  static void* early[kEarly];
  for (int i = 0; i < kEarly; ++i) {
    size_t n = 20000 + (size_t)i * 1000;
    early[i] = must(i % 2 ? memalign(65536, n) : malloc(n), "allocation before the limit");
  }
  g_page = (size_t)sysconf(_SC_PAGESIZE);
  g_region_pages = 2 * (size_t)limit + 64;
  g_region = mmap(NULL, g_region_pages * g_page, PROT_READ,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  SCEN_CHECK(g_region != MAP_FAILED, "mmap of %zu pages: %m", g_region_pages);
  g_next_split = 1;
  // Measure the first splits; skip if reaching the limit would take more than a few seconds.
  double start = scen_now();
  int splits = 0;
  while (splits < 2000 && split_one()) ++splits;
  double per_split = (scen_now() - start) / (splits > 0 ? splits : 1);
  if (per_split * (double)limit / 2 > 5.0) {
    munmap(g_region, g_region_pages * g_page);
    for (int i = 0; i < kEarly; ++i) free(early[i]);
    scen_note("map count: %.1f us per mapping, %ld mappings would take too long: skipped",
              per_split * 1e6, limit);
    return;
  }
  while (split_one()) ++splits;
  // At the limit: make room for a few hundred entries, then allocate while there is room.
  for (int i = 0; i < 150; ++i) unsplit_one();
  enum { kBlocks = 400 };
  static void* blocks[kBlocks];
  int got = 0, refused = 0;
  uint64_t rng = 77;
  for (int i = 0; i < kBlocks; ++i) {
    errno = 0;
    blocks[i] = malloc(i % 2 ? 24 + (size_t)(i % 200) : scen_mixed_size(&rng));
    if (blocks[i] != NULL) {
      ++got;
    } else {
      SCEN_CHECK(errno == ENOMEM, "malloc failed with errno %d, expected ENOMEM", errno);
      ++refused;
    }
  }
  // Exhaust what is left, then free everything: changing the protection of a freed block (or
  // unmapping one leaving the quarantine) now needs a map entry the kernel refuses.
  while (split_one()) {
  }
  for (int i = 0; i < kEarly; ++i) checked_free(early[i], "block from before the limit");
  for (int i = 0; i < kBlocks; ++i) {
    if (blocks[i] != NULL) checked_free(blocks[i], "block at the map count limit");
  }
  checked_free(NULL, "NULL at the map count limit");
  // More allocations and frees while still at the limit: a refusal is fine, a crash is not.
  for (int i = 0; i < 200; ++i) {
    errno = 0;
    void* p = malloc(scen_mixed_size(&rng));
    if (p == NULL) {
      SCEN_CHECK(errno == ENOMEM, "malloc failed with errno %d, expected ENOMEM", errno);
      ++refused;
      continue;
    }
    checked_free(p, "block allocated at the limit");
  }
  SCEN_CHECK(munmap(g_region, g_region_pages * g_page) == 0, "munmap: %m");
  // Room again: everything works.
  for (int i = 0; i < 1000; ++i)
    checked_free(must(malloc(scen_mixed_size(&rng)), "malloc"), "after");
  scen_note(
      "map count: limit %ld reached with %d splits; %d blocks allocated, %d refused, "
      "all freed with errno intact",
      limit, splits, got, refused);
}

int main(void) {
  // First, while the guard modes still have room for new page-guarded blocks (the frees below
  // leave tens of thousands of spans behind).
  exhausted_map_count();
  every_kind_of_block();
  frees_that_release_memory();
  frees_of_other_threads();
  scen_note("ok: %d frees, errno unchanged by each", g_frees);
  return 0;
}
