// Randomized, time-bounded stress test of the malloc family, meant to run under an LD_PRELOAD
// allocator (and, as a control, without one).
//
//   pg_stress [SECONDS [SEED [THREADS]]]      defaults: 5 s, seed 1, 4 threads
//
// Worker threads do random malloc / calloc / realloc (growing and shrinking across the 256-byte
// small/large threshold and within it) / memalign / posix_memalign / aligned_alloc / valloc /
// free. Every block is filled with a pattern over its whole malloc_usable_size() (so an
// over-reported usable size corrupts a neighbour and is caught), and checked before every free
// and realloc; realloc must preserve the old contents. Blocks move between threads through a
// shared slot array (atomic exchange), so most frees are cross-thread. Workers live for a random
// fraction of a second and are replaced, so blocks outlive their allocating thread. Now and then
// a worker forks while the others keep allocating; the child checks the forking thread's own
// blocks, allocates and frees, and _exits 0; the parent checks the child's status (with a deadline
// to report a deadlock).
//
// Prints "stress ok" and exits 0, or prints what broke on stderr and exits 1.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
  kSlots = 4096,
  kMaxThreads = 64,
  kPrivate = 32,          // blocks a worker keeps to itself (checked by its fork children)
  kForkIntervalMs = 150,  // at most one fork per interval, over all threads
  kChildWaitSeconds = 30,
};

typedef struct {
  unsigned char* p;
  size_t n;       // requested size
  size_t usable;  // malloc_usable_size(p), all of it filled with the pattern
  uint32_t tag;
} Rec;

static _Atomic(Rec*) slots[kSlots];
static atomic_ullong total_ops;
static atomic_ullong total_forks;
static atomic_llong last_fork_ns;
static atomic_uint next_tag;

static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "stress: FAIL (pid %d): ", (int)getpid());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  _exit(1);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rnd(uint64_t* s) {  // xorshift64*
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ULL;
}

static unsigned char pattern(uint32_t tag, size_t i) {
  return (unsigned char)((tag * 0x9e3779b1u) >> 24 ^ i * 167 ^ (i >> 8));
}

static void fill(unsigned char* p, size_t n, uint32_t tag) {
  for (size_t i = 0; i < n; i++) p[i] = pattern(tag, i);
}

static void check_bytes(const unsigned char* p, size_t from, size_t to, uint32_t tag,
                        const char* when) {
  for (size_t i = from; i < to; i++) {
    if (p[i] != pattern(tag, i)) {
      fail("%s: block %p (tag %u) corrupted at byte %zu of %zu: 0x%02x, expected 0x%02x", when,
           (const void*)p, tag, i, to, p[i], pattern(tag, i));
    }
  }
}

static void check_rec(const Rec* r, const char* when) {
  size_t usable = malloc_usable_size(r->p);
  if (usable != r->usable) {
    fail("%s: malloc_usable_size(%p) changed from %zu to %zu", when, (void*)r->p, r->usable,
         usable);
  }
  check_bytes(r->p, 0, r->usable, r->tag, when);
}

// Sizes: mostly small (0..256), many right around the 256-byte threshold, some large, a few above
// glibc's mmap threshold.
static size_t pick_size(uint64_t* s) {
  uint64_t r = rnd(s);
  unsigned k = (unsigned)(r % 100);
  r >>= 8;
  if (k < 65) return r % 257;
  if (k < 82) return 224 + r % 64;
  if (k < 97) return 257 + r % 8192;
  if (k < 99) return 8192 + r % 65536;
  return 131072 + r % 400000;
}

// A size on the other side of 256 bytes from n half of the time, otherwise any size; never 0
// (realloc(p, 0) frees p, which is not what the caller wants here).
static size_t pick_realloc_size(uint64_t* s, size_t n) {
  uint64_t r = rnd(s);
  size_t m;
  if (r % 2 == 0) {
    m = n <= 256 ? 257 + (r >> 8) % 4096 : 1 + (r >> 8) % 256;
  } else if (r % 4 == 1) {
    m = n + 1 + (r >> 8) % 48;  // small growth, often within the same size class
  } else {
    m = pick_size(s);
  }
  return m == 0 ? 1 : m;
}

static const size_t kAlignments[] = {8, 16, 32, 64, 128, 256, 512, 4096};

// Allocates a block of a random size with a random member of the malloc family, checks what the
// API promises (alignment, zeroing), fills it. Never returns NULL.
static Rec* new_rec(uint64_t* s) {
  Rec* r = malloc(sizeof *r);
  if (r == NULL) fail("malloc(%zu) returned NULL", sizeof *r);
  size_t n = pick_size(s);
  size_t align = kAlignments[rnd(s) % (sizeof kAlignments / sizeof kAlignments[0])];
  unsigned kind = (unsigned)(rnd(s) % 16);
  unsigned char* p = NULL;
  const char* fn = "";
  int zeroed = 0;
  switch (kind) {
    case 0:
    case 1: {
      fn = "calloc";
      size_t elem = 1 + rnd(s) % 16;
      n = (n + elem - 1) / elem * elem;
      p = calloc(n / elem, elem);
      zeroed = 1;
      break;
    }
    case 2:
      fn = "realloc(NULL)";
      p = realloc(NULL, n);
      break;
    case 3:
      fn = "memalign";
      p = memalign(align, n);
      break;
    case 4: {
      fn = "posix_memalign";
      void* q = NULL;
      int rc = posix_memalign(&q, align, n);
      if (rc != 0) fail("posix_memalign(%zu, %zu) returned %d", align, n, rc);
      p = q;
      break;
    }
    case 5:
      fn = "aligned_alloc";
      p = aligned_alloc(align, n);
      break;
    case 6:
      if (rnd(s) % 8 == 0) {
        fn = "valloc";
        align = (size_t)sysconf(_SC_PAGESIZE);
        p = valloc(n);
        break;
      }
      // fall through
    default:
      fn = "malloc";
      align = 16;
      p = malloc(n);
      break;
  }
  if (p == NULL) fail("%s of %zu bytes (alignment %zu) returned NULL", fn, n, align);
  if (kind >= 3 && kind <= 6 && (uintptr_t)p % align != 0) {
    fail("%s(%zu, %zu) returned %p, misaligned", fn, align, n, (void*)p);
  }
  if ((uintptr_t)p % 16 != 0) fail("%s(%zu) returned %p, not 16-byte aligned", fn, n, (void*)p);
  if (zeroed) {
    for (size_t i = 0; i < n; i++) {
      if (p[i] != 0) fail("calloc block %p of %zu bytes: byte %zu is not zero", (void*)p, n, i);
    }
  }
  size_t usable = malloc_usable_size(p);
  if (usable < n) fail("%s(%zu): malloc_usable_size is only %zu", fn, n, usable);
  r->p = p;
  r->n = n;
  r->usable = usable;
  r->tag = atomic_fetch_add(&next_tag, 1);
  fill(p, usable, r->tag);
  return r;
}

static void free_rec(Rec* r, const char* when) {
  check_rec(r, when);
  free(r->p);
  free(r);
}

static void realloc_rec(Rec* r, uint64_t* s) {
  check_rec(r, "before realloc");
  size_t m = pick_realloc_size(s, r->n);
  unsigned char* q = realloc(r->p, m);
  if (q == NULL) fail("realloc(%p, %zu) returned NULL", (void*)r->p, m);
  size_t kept = m < r->n ? m : r->n;
  check_bytes(q, 0, kept, r->tag, "after realloc (contents not preserved)");
  size_t usable = malloc_usable_size(q);
  if (usable < m) fail("realloc(%zu): malloc_usable_size is only %zu", m, usable);
  r->p = q;
  r->n = m;
  r->usable = usable;
  r->tag = atomic_fetch_add(&next_tag, 1);
  fill(q, usable, r->tag);
}

// Puts r (may be NULL) in a random slot; frees what was there.
static void put_slot(Rec* r, uint64_t* s) {
  Rec* old = atomic_exchange(&slots[rnd(s) % kSlots], r);
  if (old != NULL) free_rec(old, "slot replaced");
}

static void wait_child(pid_t pid) {
  for (int waited_ms = 0;; waited_ms += 5) {
    int status;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail("fork child %d ended with status 0x%x", (int)pid, status);
      }
      return;
    }
    if (w < 0 && errno != EINTR) fail("waitpid: %s", strerror(errno));
    if (waited_ms >= kChildWaitSeconds * 1000) {
      kill(pid, SIGKILL);
      fail("fork child %d still running after %d s (deadlock after fork?)", (int)pid,
           kChildWaitSeconds);
    }
    nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
  }
}

// Runs in the child of a fork from a busy multithreaded parent: only this thread exists now.
static void child_work(Rec** priv, uint64_t* s) {
  for (int i = 0; i < kPrivate; i++) {
    if (priv[i] != NULL) free_rec(priv[i], "fork child, inherited block");
  }
  Rec* local[64] = {0};
  for (int i = 0; i < 4000; i++) {
    int k = (int)(rnd(s) % 64);
    if (local[k] != NULL) {
      if (rnd(s) % 3 == 0) {
        realloc_rec(local[k], s);
        continue;
      }
      free_rec(local[k], "fork child");
    }
    local[k] = new_rec(s);
  }
  for (int k = 0; k < 64; k++) {
    if (local[k] != NULL) free_rec(local[k], "fork child");
  }
  _exit(0);
}

static void maybe_fork(Rec** priv, uint64_t* s) {
  int64_t now = now_ns();
  long long last = atomic_load(&last_fork_ns);
  if (now - last < (int64_t)kForkIntervalMs * 1000000) return;
  if (!atomic_compare_exchange_strong(&last_fork_ns, &last, now)) return;
  pid_t pid = fork();
  if (pid < 0) fail("fork: %s", strerror(errno));
  if (pid == 0) child_work(priv, s);
  wait_child(pid);
  atomic_fetch_add(&total_forks, 1);
}

typedef struct {
  uint64_t seed;
  int64_t end_ns;
} WorkerArgs;

static void* worker(void* arg) {
  WorkerArgs* a = arg;
  uint64_t seed = a->seed;
  uint64_t* s = &seed;
  Rec* priv[kPrivate] = {0};
  unsigned long long ops = 0;
  for (;; ops++) {
    if (ops % 64 == 0 && now_ns() >= a->end_ns) break;
    unsigned op = (unsigned)(rnd(s) % 1000);
    if (op < 350) {  // new block into a slot (freeing whatever another thread left there)
      put_slot(new_rec(s), s);
    } else if (op < 550) {  // take a block, resize it, put it back
      Rec* r = atomic_exchange(&slots[rnd(s) % kSlots], NULL);
      if (r != NULL) {
        realloc_rec(r, s);
        put_slot(r, s);
      }
    } else if (op < 750) {  // take a block, free it
      Rec* r = atomic_exchange(&slots[rnd(s) % kSlots], NULL);
      if (r != NULL) free_rec(r, "taken from slot");
    } else if (op < 900) {  // short-lived local blocks, freed in a random order
      unsigned char* b[24];
      size_t n[24];
      for (int i = 0; i < 24; i++) {
        n[i] = rnd(s) % 257;
        b[i] = malloc(n[i]);
        if (b[i] == NULL) fail("malloc(%zu) returned NULL", n[i]);
        fill(b[i], n[i], (uint32_t)n[i]);  // tagged by size: survives the shuffle below
      }
      for (int i = 23; i > 0; i--) {
        int j = (int)(rnd(s) % (uint64_t)(i + 1));
        unsigned char* tb = b[i];
        size_t tn = n[i];
        b[i] = b[j];
        n[i] = n[j];
        b[j] = tb;
        n[j] = tn;
      }
      for (int i = 0; i < 24; i++) {
        check_bytes(b[i], 0, n[i], (uint32_t)n[i], "short-lived block");
        free(b[i]);
      }
    } else if (op < 998) {  // private blocks, kept across forks
      int k = (int)(rnd(s) % kPrivate);
      if (priv[k] != NULL) free_rec(priv[k], "private block");
      priv[k] = new_rec(s);
    } else {
      maybe_fork(priv, s);
    }
  }
  for (int k = 0; k < kPrivate; k++) {
    if (priv[k] != NULL) free_rec(priv[k], "private block at thread exit");
  }
  atomic_fetch_add(&total_ops, ops);
  return NULL;
}

// Edge cases of the API whose results C and POSIX fix (so glibc and an interposer must agree).
static void check_api_edges(void) {
  volatile size_t huge = SIZE_MAX;  // volatile: keep the compiler from folding or warning
  void* keep = (void*)&huge;
  void* q = keep;
  int rc = posix_memalign(&q, 24, 16);
  if (rc != EINVAL || q != keep)
    fail("posix_memalign(24): rc %d, *memptr changed: %d", rc, q != keep);
  rc = posix_memalign(&q, sizeof(void*) / 2, 16);
  if (rc != EINVAL || q != keep) fail("posix_memalign(%zu): rc %d", sizeof(void*) / 2, rc);
  errno = 0;
  if (malloc(huge) != NULL || errno != ENOMEM) fail("malloc(SIZE_MAX) did not fail with ENOMEM");
  errno = 0;
  if (calloc(huge / 2, 3) != NULL || errno != ENOMEM) fail("calloc overflow not detected");
  unsigned char* p = malloc(100);
  if (p == NULL) fail("malloc(100) returned NULL");
  fill(p, 100, 77);
  errno = 0;
  if (realloc(p, huge - 64) != NULL || errno != ENOMEM) fail("realloc(SIZE_MAX - 64) did not fail");
  check_bytes(p, 0, 100, 77, "block after a failed realloc");
  free(p);
  free(NULL);
}

int main(int argc, char** argv) {
  if (argc > 4) {
    fprintf(stderr, "usage: %s [SECONDS [SEED [THREADS]]]\n", argv[0]);
    return 2;
  }
  double seconds = argc > 1 ? atof(argv[1]) : 5.0;
  unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
  int nthreads = argc > 3 ? atoi(argv[3]) : 4;
  if (!(seconds > 0) || nthreads < 1 || nthreads > kMaxThreads) {
    fprintf(stderr, "usage: %s [SECONDS [SEED [THREADS]]] (SECONDS > 0, 1 <= THREADS <= %d)\n",
            argv[0], kMaxThreads);
    return 2;
  }

  check_api_edges();

  uint64_t main_seed = seed * 0x9e3779b97f4a7c15ULL + 1;
  int64_t deadline = now_ns() + (int64_t)(seconds * 1e9);
  pthread_t threads[kMaxThreads];
  WorkerArgs args[kMaxThreads];
  int alive[kMaxThreads];
  int lifetimes = 0;
  for (int i = 0; i < nthreads; i++) alive[i] = 0;
  // Keep nthreads workers running until the deadline, each for 50..800 ms.
  for (int i = 0, running = 0;; i = (i + 1) % nthreads) {
    if (alive[i]) {
      if (pthread_join(threads[i], NULL) != 0) fail("pthread_join");
      alive[i] = 0;
      running--;
    }
    int64_t now = now_ns();
    if (now < deadline) {
      int64_t life = (int64_t)(50 + rnd(&main_seed) % 750) * 1000000;
      args[i].seed = rnd(&main_seed) | 1;
      args[i].end_ns = now + life < deadline ? now + life : deadline;
      if (pthread_create(&threads[i], NULL, worker, &args[i]) != 0) fail("pthread_create");
      alive[i] = 1;
      running++;
      lifetimes++;
    } else if (running == 0) {
      break;
    }
  }

  for (int k = 0; k < kSlots; k++) {
    Rec* r = atomic_exchange(&slots[k], NULL);
    if (r != NULL) free_rec(r, "final drain");
  }
  fprintf(stderr, "stress: %llu ops by %d thread lifetimes (%d at a time), %llu forks, seed %llu\n",
          (unsigned long long)atomic_load(&total_ops), lifetimes, nthreads,
          (unsigned long long)atomic_load(&total_forks), seed);
  printf("stress ok\n");
  return 0;
}
