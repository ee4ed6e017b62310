// Scenario 1: fork() while other threads allocate and free. Two threads churn blocks of mixed
// sizes (pooled, large, above glibc's mmap threshold) and trade blocks with each other (frees
// from the thread that did not allocate); meanwhile the main thread forks repeatedly. Each child
// checks and frees blocks it inherited, allocates and frees on its own and in a new thread, and
// exits 0; the parent checks every child's status with a deadline (a child stuck on a lock that
// was held at fork time shows up as "hung").
#include <pthread.h>
#include <stdatomic.h>

#include "scenario.h"

enum {
  kWorkers = 2,
  kSlots = 64,     // blocks each worker keeps live
  kMinForks = 15,  // then up to kMaxForks, for up to kSeconds
  kMaxForks = 50,
  kSeconds = 2,
  kInherited = 100,  // main-thread blocks each child checks and frees
};

struct Block {
  void* p;
  size_t n;
  uint64_t tag;
};

static atomic_int g_stop;
static struct Block g_slots[kWorkers][kSlots];
static _Atomic(struct Block*) g_trade;  // one block in transit between workers
static struct Block g_inherited[kInherited];

static struct Block* new_block(uint64_t* rng, uint64_t tag) {
  struct Block* b = malloc(sizeof *b);
  SCEN_CHECK(b != NULL, "malloc(%zu) failed", sizeof *b);
  b->n = scen_mixed_size(rng);
  b->p = malloc(b->n);
  SCEN_CHECK(b->p != NULL, "malloc(%zu) failed", b->n);
  b->tag = tag;
  scen_fill(b->p, b->n, tag);
  return b;
}

static void check_and_free(void* p, size_t n, uint64_t tag, const char* where) {
  size_t bad = scen_check(p, n, tag);
  SCEN_CHECK(bad == n, "%s: block %p of %zu bytes damaged at offset %zu", where, p, n, bad);
  free(p);
}

static void* worker(void* arg) {
  int id = (int)(intptr_t)arg;
  uint64_t rng = 0x9e3779b97f4a7c15u * (uint64_t)(id + 1);
  uint64_t tag = (uint64_t)id << 32;
  struct Block* slots = g_slots[id];
  while (!atomic_load(&g_stop)) {
    int i = (int)(scen_rand(&rng) % kSlots);
    if (slots[i].p != NULL) check_and_free(slots[i].p, slots[i].n, slots[i].tag, "worker");
    slots[i].n = scen_mixed_size(&rng);
    slots[i].tag = ++tag;
    slots[i].p = malloc(slots[i].n);
    SCEN_CHECK(slots[i].p != NULL, "malloc(%zu) failed", slots[i].n);
    scen_fill(slots[i].p, slots[i].n, slots[i].tag);
    if (scen_rand(&rng) % 8 == 0) {
      // Hand a block to whichever worker comes next; free the one found there (remote free).
      struct Block* b = atomic_exchange(&g_trade, new_block(&rng, ++tag));
      if (b != NULL) {
        check_and_free(b->p, b->n, b->tag, "traded");
        free(b);
      }
    }
  }
  return NULL;
}

static void* child_thread(void* arg) {
  uint64_t rng = (uint64_t)(intptr_t)arg;
  for (int i = 0; i < 200; ++i) {
    size_t n = scen_mixed_size(&rng);
    void* p = malloc(n);
    SCEN_CHECK(p != NULL, "child thread: malloc(%zu) failed", n);
    scen_fill(p, n, (uint64_t)i);
    check_and_free(p, n, (uint64_t)i, "child thread");
  }
  return NULL;
}

// In the child: the parent's other threads are gone, possibly in the middle of malloc or free.
static void child(int round) {
  for (int i = 0; i < kInherited; ++i) {
    check_and_free(g_inherited[i].p, g_inherited[i].n, g_inherited[i].tag, "inherited");
  }
  uint64_t rng = 12345u + (uint64_t)round;
  void* keep[50];
  size_t sizes[50];
  for (int i = 0; i < 50; ++i) {
    sizes[i] = scen_mixed_size(&rng);
    keep[i] = malloc(sizes[i]);
    SCEN_CHECK(keep[i] != NULL, "child: malloc(%zu) failed", sizes[i]);
    scen_fill(keep[i], sizes[i], (uint64_t)i);
  }
  pthread_t t;
  int rc = pthread_create(&t, NULL, child_thread, (void*)(intptr_t)(round + 1));
  SCEN_CHECK(rc == 0, "child: pthread_create: %s", strerror(rc));
  pthread_join(t, NULL);
  for (int i = 0; i < 50; ++i) check_and_free(keep[i], sizes[i], (uint64_t)i, "child");
  _exit(0);
}

int main(void) {
  uint64_t rng = 42;
  for (int i = 0; i < kInherited; ++i) {
    g_inherited[i].n = scen_mixed_size(&rng);
    g_inherited[i].p = malloc(g_inherited[i].n);
    SCEN_CHECK(g_inherited[i].p != NULL, "malloc(%zu) failed", g_inherited[i].n);
    g_inherited[i].tag = 1000000u + (uint64_t)i;
    scen_fill(g_inherited[i].p, g_inherited[i].n, g_inherited[i].tag);
  }
  pthread_t threads[kWorkers];
  for (int i = 0; i < kWorkers; ++i) {
    int rc = pthread_create(&threads[i], NULL, worker, (void*)(intptr_t)i);
    SCEN_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
  }
  double start = scen_now();
  int round = 0;
  for (; scen_more(round, kMinForks, kMaxForks, start, kSeconds); ++round) {
    // A little work between forks, so that each fork finds the workers somewhere else.
    for (int i = 0; i < 50; ++i) free(malloc(scen_mixed_size(&rng)));
    pid_t pid = fork();
    SCEN_CHECK(pid >= 0, "fork: %m");
    if (pid == 0) child(round);
    char what[64];
    snprintf(what, sizeof what, "child %d", round);
    scen_expect_exit(scen_wait_child(pid, 60, what), 0, what);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kWorkers; ++i) pthread_join(threads[i], NULL);
  for (int w = 0; w < kWorkers; ++w) {
    for (int i = 0; i < kSlots; ++i) {
      if (g_slots[w][i].p != NULL) {
        check_and_free(g_slots[w][i].p, g_slots[w][i].n, g_slots[w][i].tag, "end");
      }
    }
  }
  struct Block* b = atomic_exchange(&g_trade, NULL);
  if (b != NULL) {
    check_and_free(b->p, b->n, b->tag, "end");
    free(b);
  }
  for (int i = 0; i < kInherited; ++i) {
    check_and_free(g_inherited[i].p, g_inherited[i].n, g_inherited[i].tag, "end");
  }
  scen_note("ok: %d forks while %d threads allocated and freed", round, kWorkers);
  return 0;
}
