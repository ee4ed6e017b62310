// pg_frag: how much memory an allocator keeps resident for a given amount of live data.
//
//   pg_frag [N] [SEED]      (defaults: N = 2000000, SEED = 1)
//
// Phases, each followed by one line on stdout:
//   start  bookkeeping arrays mapped and touched, nothing allocated yet (the baseline)
//   alloc  N objects of random sizes 16..256 bytes allocated and fully written
//   free90 a random 90% of them freed, in random order
//   other  N/2 new objects of other sizes (uniform 8..512, so about half of them above 256 bytes)
//   end    every object freed
//
// Line format (key=value, space separated, one line per phase):
//   frag phase=alloc rss_kb=... hwm_kb=... base_kb=... live_bytes=... objects=... ms=...
// rss_kb and hwm_kb are VmRSS and VmHWM from /proc/self/status; base_kb is rss_kb at "start", so
// (rss_kb - base_kb) is what the allocator holds; live_bytes is the sum of the sizes requested and
// not yet freed; ms is the time the phase took.
//
// The program's own arrays are mmap'ed, not malloc'ed, so that they weigh the same under every
// allocator, and /proc is read with open/read into a stack buffer for the same reason.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state;

static uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// Uniform in [0, n).
static uint32_t rng_below(uint32_t n) {
  return (uint32_t)(((rng_next() >> 32) * n) >> 32);
}

// Value in kB of the field "name:" of /proc/self/status, or -1.
static long status_kb(const char* name) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  size_t len = strlen(name);
  for (char* line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, name, len) == 0 && line[len] == ':') return strtol(line + len + 1, NULL, 10);
  }
  return -1;
}

static void* map_array(size_t bytes) {
  void* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  memset(p, 0, bytes);  // resident from the start, so the baseline includes it
  return p;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long base_kb;
static double phase_start;

static void report(const char* phase, uint64_t live_bytes, uint64_t objects) {
  double t = now_ms();
  long rss = status_kb("VmRSS");
  if (base_kb == 0) base_kb = rss;
  printf("frag phase=%s rss_kb=%ld hwm_kb=%ld base_kb=%ld live_bytes=%llu objects=%llu ms=%.1f\n",
         phase, rss, status_kb("VmHWM"), base_kb, (unsigned long long)live_bytes,
         (unsigned long long)objects, t - phase_start);
  fflush(stdout);
  phase_start = now_ms();
}

static void* xmalloc(size_t n) {
  void* p = malloc(n);
  if (!p) {
    fprintf(stderr, "pg_frag: malloc(%zu) failed\n", n);
    exit(1);
  }
  memset(p, 0xA5, n);  // every byte written: what the program asked for is resident
  return p;
}

int main(int argc, char** argv) {
  size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
  rng_state = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1) * 0x9E3779B97F4A7C15ull + 1;
  if (n < 10) n = 10;

  // stdout's buffer is allocated on first use: do that before the baseline.
  printf("frag n=%zu\n", n);
  fflush(stdout);

  void** obj = map_array(n * sizeof(void*));
  uint16_t* size = map_array(n * sizeof(uint16_t));
  uint32_t* perm = map_array(n * sizeof(uint32_t));
  uint64_t live = 0, count = 0;

  phase_start = now_ms();
  report("start", 0, 0);

  for (size_t i = 0; i < n; ++i) {
    size[i] = (uint16_t)(16 + rng_below(256 - 16 + 1));
    obj[i] = xmalloc(size[i]);
    live += size[i];
  }
  count = n;
  report("alloc", live, count);

  for (size_t i = 0; i < n; ++i) perm[i] = (uint32_t)i;
  for (size_t i = n - 1; i > 0; --i) {
    uint32_t j = rng_below((uint32_t)(i + 1));
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  size_t nfree = n - n / 10;
  for (size_t k = 0; k < nfree; ++k) {
    size_t i = perm[k];
    free(obj[i]);
    obj[i] = NULL;
    live -= size[i];
  }
  count -= nfree;
  report("free90", live, count);

  // Refill half of the freed slots with objects of other sizes.
  for (size_t k = 0; k < n / 2 && k < nfree; ++k) {
    size_t i = perm[k];
    size[i] = (uint16_t)(8 + rng_below(512 - 8 + 1));
    obj[i] = xmalloc(size[i]);
    live += size[i];
    ++count;
  }
  report("other", live, count);

  for (size_t i = 0; i < n; ++i) {
    if (obj[i]) {
      free(obj[i]);
      live -= size[i];
    }
  }
  report("end", live, 0);
  return 0;
}
