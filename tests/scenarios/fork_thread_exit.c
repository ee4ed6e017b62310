// Scenario 12: fork() while other threads start, allocate, hand blocks over and exit, and while
// other threads fork too (CPython's test_threading.test_reinit_tls_after_fork does this). A fork
// can find another thread anywhere in the allocator: in a slow path moving pools between its
// lists, or giving its pools up as it exits. Blocks are kept in a shared registry whose lock the
// program holds across fork (pthread_atfork), so the child knows exactly which blocks are live:
// it checks and frees all of them, runs threads of its own (which reuse the dead threads' heap
// slots), and exits 0. Any block the allocator lost or handed out twice shows up as damage, an
// invalid-free report, or a crash.
#include <pthread.h>
#include <stdatomic.h>

#include "scenario.h"

enum {
  kSlots = 512,   // registry of live blocks
  kChurners = 3,  // threads that keep starting short-lived threads
  kForkers = 2,   // threads that keep forking
  kMinForks = 8,  // per forker, then up to kMaxForks for up to kSeconds
  kMaxForks = 150,
  kSeconds = 2,
  kBlocksPerLife = 40,  // allocations of each short-lived thread
};

struct Block {
  void* p;
  size_t n;
  uint64_t tag;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct Block g_reg[kSlots];
static atomic_int g_stop;
static atomic_long g_forks;

static void check_block(const struct Block* b, const char* where) {
  size_t bad = scen_check(b->p, b->n, b->tag);
  SCEN_CHECK(bad == b->n, "%s: block %p of %zu bytes damaged at offset %zu", where, b->p, b->n,
             bad);
}

// Puts a new block in slot i, freeing (after checking) the one there: usually a block some other
// thread allocated, so most frees here are cross-thread frees.
static void replace(int i, size_t n, uint64_t tag) {
  void* p = malloc(n);
  SCEN_CHECK(p != NULL, "malloc(%zu) failed", n);
  scen_fill(p, n, tag);
  pthread_mutex_lock(&g_lock);
  struct Block old = g_reg[i];
  g_reg[i].p = p;
  g_reg[i].n = n;
  g_reg[i].tag = tag;
  pthread_mutex_unlock(&g_lock);
  if (old.p != NULL) {
    check_block(&old, "replaced");
    free(old.p);
  }
}

static void* short_life(void* arg) {
  uint64_t rng = (uint64_t)(intptr_t)arg * 0x9e3779b97f4a7c15u + 1;
  void* mine[kBlocksPerLife];
  for (int i = 0; i < kBlocksPerLife; ++i) {
    // Private blocks, some freed now, the rest at exit: pools the thread gives up as it leaves.
    mine[i] = malloc(1 + scen_rand(&rng) % 300);
    SCEN_CHECK(mine[i] != NULL, "malloc failed");
    if (i % 3 == 0) {
      free(mine[i]);
      mine[i] = NULL;
    }
    int slot = (int)(scen_rand(&rng) % kSlots);
    replace(slot, scen_mixed_size(&rng), scen_rand(&rng));
  }
  for (int i = 0; i < kBlocksPerLife; ++i) free(mine[i]);
  return NULL;
}

static void* churner(void* arg) {
  long id = (long)(intptr_t)arg;
  for (long n = 0; !atomic_load(&g_stop); ++n) {
    pthread_t t;
    int rc = pthread_create(&t, NULL, short_life, (void*)(intptr_t)(id * 1000003 + n));
    SCEN_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
    pthread_join(t, NULL);
  }
  return NULL;
}

static void* child_thread(void* arg) {
  uint64_t rng = (uint64_t)(intptr_t)arg;
  for (int i = 0; i < 100; ++i) replace((int)(scen_rand(&rng) % kSlots), scen_mixed_size(&rng), i);
  return NULL;
}

static void child(void) {
  // The registry lock was held across the fork by this thread (the atfork handlers).
  for (int i = 0; i < kSlots; ++i) {
    if (g_reg[i].p != NULL) check_block(&g_reg[i], "inherited");
  }
  // Threads of the child: they attach heaps, most likely the dead threads' recycled ones.
  pthread_t t[2];
  for (int i = 0; i < 2; ++i) {
    int rc = pthread_create(&t[i], NULL, child_thread, (void*)(intptr_t)(i + 7));
    SCEN_CHECK(rc == 0, "child: pthread_create: %s", strerror(rc));
  }
  for (int i = 0; i < 2; ++i) pthread_join(t[i], NULL);
  for (int i = 0; i < kSlots; ++i) {
    if (g_reg[i].p != NULL) {
      check_block(&g_reg[i], "child");
      free(g_reg[i].p);
      g_reg[i].p = NULL;
    }
  }
  // And the child's own heap goes on working.
  uint64_t rng = 99;
  for (int i = 0; i < 1000; ++i) free(malloc(scen_mixed_size(&rng)));
  _exit(0);
}

static void* forker(void* arg) {
  long id = (long)(intptr_t)arg;
  double start = scen_now();
  uint64_t rng = (uint64_t)id + 5;
  for (long round = 0; scen_more(round, kMinForks, kMaxForks, start, kSeconds); ++round) {
    for (int i = 0; i < 20; ++i) replace((int)(scen_rand(&rng) % kSlots), scen_mixed_size(&rng), i);
    pid_t pid = fork();
    SCEN_CHECK(pid >= 0, "fork: %m");
    if (pid == 0) child();
    char what[64];
    snprintf(what, sizeof what, "child %ld of forker %ld", round, id);
    scen_expect_exit(scen_wait_child(pid, 60, what), 0, what);
    atomic_fetch_add(&g_forks, 1);
  }
  return NULL;
}

static void lock_registry(void) {
  pthread_mutex_lock(&g_lock);
}
static void unlock_registry(void) {
  pthread_mutex_unlock(&g_lock);
}

int main(void) {
  pthread_atfork(lock_registry, unlock_registry, unlock_registry);
  pthread_t churners[kChurners], forkers[kForkers];
  for (int i = 0; i < kChurners; ++i) {
    int rc = pthread_create(&churners[i], NULL, churner, (void*)(intptr_t)i);
    SCEN_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
  }
  for (int i = 0; i < kForkers; ++i) {
    int rc = pthread_create(&forkers[i], NULL, forker, (void*)(intptr_t)i);
    SCEN_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
  }
  for (int i = 0; i < kForkers; ++i) pthread_join(forkers[i], NULL);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < kChurners; ++i) pthread_join(churners[i], NULL);
  for (int i = 0; i < kSlots; ++i) {
    if (g_reg[i].p != NULL) {
      check_block(&g_reg[i], "end");
      free(g_reg[i].p);
    }
  }
  scen_note("ok: %ld forks while %d threads kept starting and exiting threads",
            atomic_load(&g_forks), kChurners);
  return 0;
}
