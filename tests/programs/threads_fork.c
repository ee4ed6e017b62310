// Threads, cross-thread frees, thread exit and fork under an interposed allocator.
//
// Phase 1 (pass): each thread allocates small and large blocks, fills them with a pattern and
//   sends them through a queue to the next thread, which checks and frees them. Threads finish at
//   different times, so some blocks are freed after the thread that allocated them is gone.
// Phase 2 (orphans): threads allocate blocks and exit; new threads check and free them.
// Phase 3 (fork): while threads keep allocating, the main thread forks several times. Each child
//   checks and frees blocks inherited from the parent, allocates on its own and in two new
//   threads, and exits 0. The parent waits (with a deadline, to report a deadlock) and checks.
//
// Prints one deterministic summary line: the same with and without an LD_PRELOAD allocator.
#define _GNU_SOURCE
#include <errno.h>
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
  kThreads = 4,
  kPassPerThread = 20000,  // blocks each thread sends to the next one
  kOrphansPerThread = 5000,
  kInherited = 2000,  // parent blocks checked by each fork child
  kForks = 6,
  kChildWaitSeconds = 60,
};

static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "threads_fork: FAIL (pid %d): ", (int)getpid());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  _exit(1);
}

static uint64_t next_random(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// Mostly small requests (1..256 bytes), one in 16 large (up to ~40 KiB), one in 512 above
// glibc's mmap threshold.
static size_t pick_size(uint64_t* s) {
  uint64_t r = next_random(s);
  if (r % 512 == 0) return 150000 + r % 100000;
  if (r % 16 == 0) return 257 + r % 40000;
  return 1 + r % 256;
}

static unsigned char pattern(uint32_t tag, size_t i) {
  return (unsigned char)(tag * 2654435761u + i * 131 + (i >> 9));
}

static void fill(unsigned char* p, size_t n, uint32_t tag) {
  for (size_t i = 0; i < n; i++) p[i] = pattern(tag, i);
}

static void check(const unsigned char* p, size_t n, uint32_t tag, const char* where) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != pattern(tag, i)) {
      fail("%s: block %p of %zu bytes (tag %u) corrupted at byte %zu: 0x%02x, expected 0x%02x",
           where, (const void*)p, n, tag, i, p[i], pattern(tag, i));
    }
  }
}

static void* xmalloc(size_t n) {
  void* p = malloc(n);
  if (p == NULL) fail("malloc(%zu) returned NULL", n);
  return p;
}

// ---- Phase 1: blocks passed through per-thread queues -------------------------------------------

typedef struct Msg {
  struct Msg* next;
  unsigned char* block;
  size_t size;
  uint32_t tag;
} Msg;

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t ready;
  Msg* head;
  Msg* tail;
} Queue;

typedef struct {
  int id;
  uint64_t received_bytes;
  uint64_t received_tags;
} PassArgs;

static Queue queues[kThreads];

static void queue_push(Queue* q, Msg* m) {
  m->next = NULL;
  pthread_mutex_lock(&q->lock);
  if (q->tail) {
    q->tail->next = m;
  } else {
    q->head = m;
  }
  q->tail = m;
  pthread_cond_signal(&q->ready);
  pthread_mutex_unlock(&q->lock);
}

// Takes the whole list; waits for one when wait is set.
static Msg* queue_take_all(Queue* q, int wait) {
  pthread_mutex_lock(&q->lock);
  while (wait && q->head == NULL) pthread_cond_wait(&q->ready, &q->lock);
  Msg* m = q->head;
  q->head = q->tail = NULL;
  pthread_mutex_unlock(&q->lock);
  return m;
}

static int consume(PassArgs* a, Msg* m) {
  int n = 0;
  while (m != NULL) {
    Msg* next = m->next;
    check(m->block, m->size, m->tag, "pass");
    a->received_bytes += m->size;
    a->received_tags += m->tag;
    free(m->block);
    free(m);
    m = next;
    n++;
  }
  return n;
}

static void* pass_thread(void* arg) {
  PassArgs* a = arg;
  uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(a->id + 1);
  Queue* out = &queues[(a->id + 1) % kThreads];
  Queue* in = &queues[a->id];
  int received = 0;
  // Thread k sends a little more slowly than thread k-1, so finishing times differ.
  for (int i = 0; i < kPassPerThread; i++) {
    Msg* m = xmalloc(sizeof *m);
    m->size = pick_size(&seed);
    m->tag = (uint32_t)(a->id * kPassPerThread + i);
    m->block = xmalloc(m->size);
    fill(m->block, m->size, m->tag);
    queue_push(out, m);
    if (i % (8 + a->id) == 0) received += consume(a, queue_take_all(in, 0));
  }
  while (received < kPassPerThread) received += consume(a, queue_take_all(in, 1));
  if (received != kPassPerThread) fail("thread %d received %d blocks", a->id, received);
  return NULL;
}

// ---- Phase 2: blocks outliving the thread that allocated them -----------------------------------

typedef struct {
  unsigned char* block;
  size_t size;
} Orphan;

static Orphan orphans[kThreads][kOrphansPerThread];

static void* orphan_maker(void* arg) {
  int id = (int)(intptr_t)arg;
  uint64_t seed = 0xdeadbeefULL + (uint64_t)id;
  for (int i = 0; i < kOrphansPerThread; i++) {
    size_t n = pick_size(&seed);
    orphans[id][i].block = xmalloc(n);
    orphans[id][i].size = n;
    fill(orphans[id][i].block, n, (uint32_t)(id * kOrphansPerThread + i));
  }
  return NULL;  // exits with all its blocks alive
}

static void* orphan_freer(void* arg) {
  int owner = ((int)(intptr_t)arg + 1) % kThreads;
  for (int i = 0; i < kOrphansPerThread; i++) {
    Orphan* o = &orphans[owner][i];
    check(o->block, o->size, (uint32_t)(owner * kOrphansPerThread + i), "orphan");
    free(o->block);
    o->block = NULL;
  }
  return NULL;
}

// ---- Phase 3: fork while other threads allocate -------------------------------------------------

static atomic_int churn_stop;

static void* churn_thread(void* arg) {
  uint64_t seed = 0x1234567ULL + (uint64_t)(intptr_t)arg;
  enum { kBatch = 64 };
  unsigned char* blocks[kBatch];
  size_t sizes[kBatch];
  uint32_t tag = 0;
  while (!atomic_load(&churn_stop)) {
    for (int i = 0; i < kBatch; i++) {
      sizes[i] = pick_size(&seed);
      blocks[i] = xmalloc(sizes[i]);
      fill(blocks[i], sizes[i], tag + (uint32_t)i);
    }
    for (int i = 0; i < kBatch; i += 2) {  // grow or shrink every other block across 256 bytes
      size_t n = sizes[i] <= 256 ? sizes[i] + 300 : 1 + sizes[i] % 200;
      size_t keep = n < sizes[i] ? n : sizes[i];
      unsigned char* p = realloc(blocks[i], n);
      if (p == NULL) fail("realloc(%zu) returned NULL", n);
      check(p, keep, tag + (uint32_t)i, "churn realloc");
      fill(p, n, tag + (uint32_t)i);
      blocks[i] = p;
      sizes[i] = n;
    }
    for (int i = kBatch - 1; i >= 0; i--) {
      check(blocks[i], sizes[i], tag + (uint32_t)i, "churn");
      free(blocks[i]);
    }
    tag += kBatch;
  }
  return NULL;
}

static void* child_thread(void* arg) {
  uint64_t seed = 42 + (uint64_t)(intptr_t)arg;
  for (int i = 0; i < 2000; i++) {
    size_t n = pick_size(&seed);
    unsigned char* p = xmalloc(n);
    fill(p, n, (uint32_t)i);
    check(p, n, (uint32_t)i, "child thread");
    free(p);
  }
  return NULL;
}

static void child_main(Orphan* inherited, int fork_index) {
  // The parent's blocks are ours now (copy-on-write): check them, free half.
  for (int i = 0; i < kInherited; i++) {
    check(inherited[i].block, inherited[i].size, (uint32_t)(1000000 + i), "inherited");
    if (i % 2 == fork_index % 2) free(inherited[i].block);
  }
  uint64_t seed = 7 + (uint64_t)fork_index;
  unsigned char* keep[512];
  for (int i = 0; i < 512; i++) {
    keep[i] = xmalloc(pick_size(&seed) % 257 + 1);
    memset(keep[i], i & 0xff, 1);
  }
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    if (pthread_create(&t[i], NULL, child_thread, (void*)(intptr_t)i) != 0) {
      fail("pthread_create in fork child");
    }
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 512; i++) {
    if (keep[i][0] != (unsigned char)(i & 0xff)) fail("child block %d corrupted", i);
    free(keep[i]);
  }
  exit(0);  // exit, not _exit: an allocator's exit-time work must also run in a forked child
}

static void wait_child(pid_t pid) {
  for (int waited_ms = 0;; waited_ms += 10) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fail("fork child %d ended with status 0x%x (%s %d)", (int)pid, status,
             WIFSIGNALED(status) ? "signal" : "exit code",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      }
      return;
    }
    if (r < 0 && errno != EINTR) fail("waitpid: %s", strerror(errno));
    if (waited_ms >= kChildWaitSeconds * 1000) {
      kill(pid, SIGKILL);
      fail("fork child %d still running after %d s (deadlock after fork?)", (int)pid,
           kChildWaitSeconds);
    }
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
}

int main(void) {
  pthread_t t[kThreads];

  // Phase 1.
  PassArgs pass[kThreads];
  for (int i = 0; i < kThreads; i++) {
    pthread_mutex_init(&queues[i].lock, NULL);
    pthread_cond_init(&queues[i].ready, NULL);
    pass[i] = (PassArgs){.id = i};
    if (pthread_create(&t[i], NULL, pass_thread, &pass[i]) != 0) fail("pthread_create");
  }
  uint64_t pass_bytes = 0, pass_tags = 0;
  for (int i = 0; i < kThreads; i++) {
    pthread_join(t[i], NULL);
    pass_bytes += pass[i].received_bytes;
    pass_tags += pass[i].received_tags;
  }

  // Phase 2: every maker is joined (gone) before any freer starts.
  for (int i = 0; i < kThreads; i++) {
    if (pthread_create(&t[i], NULL, orphan_maker, (void*)(intptr_t)i) != 0) fail("pthread_create");
  }
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  uint64_t orphan_bytes = 0;
  for (int i = 0; i < kThreads; i++) {
    for (int k = 0; k < kOrphansPerThread; k++) orphan_bytes += orphans[i][k].size;
  }
  for (int i = 0; i < kThreads; i++) {
    if (pthread_create(&t[i], NULL, orphan_freer, (void*)(intptr_t)i) != 0) fail("pthread_create");
  }
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);

  // Phase 3.
  Orphan* inherited = xmalloc(kInherited * sizeof *inherited);
  uint64_t seed = 99;
  for (int i = 0; i < kInherited; i++) {
    inherited[i].size = pick_size(&seed);
    inherited[i].block = xmalloc(inherited[i].size);
    fill(inherited[i].block, inherited[i].size, (uint32_t)(1000000 + i));
  }
  for (int i = 0; i < kThreads; i++) {
    if (pthread_create(&t[i], NULL, churn_thread, (void*)(intptr_t)i) != 0) fail("pthread_create");
  }
  for (int f = 0; f < kForks; f++) {
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);  // let the churn threads run
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) fail("fork: %s", strerror(errno));
    if (pid == 0) child_main(inherited, f);
    wait_child(pid);
  }
  atomic_store(&churn_stop, 1);
  for (int i = 0; i < kThreads; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < kInherited; i++) {
    check(inherited[i].block, inherited[i].size, (uint32_t)(1000000 + i), "parent after fork");
    free(inherited[i].block);
  }
  free(inherited);

  printf(
      "threads_fork: threads=%d passed=%d bytes=%llu tagsum=%llu orphans=%d orphan_bytes=%llu "
      "forks=%d ok\n",
      kThreads, kThreads * kPassPerThread, (unsigned long long)pass_bytes,
      (unsigned long long)pass_tags, kThreads * kOrphansPerThread, (unsigned long long)orphan_bytes,
      kForks);
  return 0;
}
