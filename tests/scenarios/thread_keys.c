// Scenario 4: thread exit with many pthread keys whose destructors allocate. 64 keys (glibc keeps
// keys 32 and up in second-level arrays that it callocs on first use and frees after the
// destructors have run, so thread exit itself calls calloc and free); each destructor checks and
// frees its block, allocates and frees small and large blocks, and on the first pass sets a new
// value, so that glibc runs the destructors a second time. The allocator's own thread-exit hook
// runs somewhere among them (pthread keys are destroyed in key order). Each thread also holds a
// block above 256 bytes. A few hundred rounds of create/join; every block is accounted for.
#include <pthread.h>
#include <stdatomic.h>

#include "scenario.h"

enum {
  kKeys = 64,
  kMinRounds = 20,  // then up to kMaxRounds, for up to kSeconds
  kMaxRounds = 300,
  kSeconds = 3,
  kThreadsPerRound = 2,
};

static pthread_key_t g_keys[kKeys];
static atomic_long g_live;         // blocks allocated by the threads and not yet freed
static atomic_long g_destructors;  // destructor calls

struct Value {
  int key;
  int pass;
  size_t n;
  unsigned char data[];
};

static struct Value* make_value(int key, int pass, size_t n) {
  struct Value* v = malloc(sizeof *v + n);
  SCEN_CHECK(v != NULL, "malloc(%zu) failed", sizeof *v + n);
  v->key = key;
  v->pass = pass;
  v->n = n;
  scen_fill(v->data, n, (uint64_t)key * 3 + (uint64_t)pass);
  atomic_fetch_add(&g_live, 1);
  return v;
}

static void free_value(struct Value* v, int key) {
  SCEN_CHECK(v->key == key, "key %d's destructor got key %d's value", key, v->key);
  size_t bad = scen_check(v->data, v->n, (uint64_t)key * 3 + (uint64_t)v->pass);
  SCEN_CHECK(bad == v->n, "key %d: value of %zu bytes damaged at %zu", key, v->n, bad);
  free(v);
  atomic_fetch_sub(&g_live, 1);
}

static void destroy(void* arg) {
  struct Value* v = arg;
  int key = v->key;
  int pass = v->pass;
  atomic_fetch_add(&g_destructors, 1);
  free_value(v, key);
  // Allocation during destruction: small and large, freed at once...
  static const size_t sizes[] = {40, 2000};
  for (int i = 0; i < 2; ++i) {
    size_t n = sizes[i];
    unsigned char* p = calloc(1, n);
    SCEN_CHECK(p != NULL, "destructor: calloc(%zu) failed", n);
    p[n - 1] = 1;
    free(p);
  }
  // ...and, on the first pass, a new value (small or large) for this key: glibc calls the
  // destructors again for keys that have a value after a pass.
  if (pass == 0) {
    pthread_setspecific(g_keys[key], make_value(key, 1, key % 2 ? 40 : 600));
  }
}

static void* thread_main(void* arg) {
  uint64_t rng = (uint64_t)(intptr_t)arg;
  void* big = malloc(3000);  // above 256 bytes: glibc's heap, with per-thread statistics
  SCEN_CHECK(big != NULL, "malloc(3000) failed");
  scen_fill(big, 3000, 5);
  for (int k = 0; k < kKeys; ++k) {
    size_t n = scen_rand(&rng) % 3 == 0 ? 300 + (size_t)k * 10 : 8 + (size_t)k;
    int rc = pthread_setspecific(g_keys[k], make_value(k, 0, n));
    SCEN_CHECK(rc == 0, "pthread_setspecific(key %d): %s", k, strerror(rc));
  }
  SCEN_CHECK(scen_check(big, 3000, 5) == 3000, "3000-byte block damaged");
  free(big);
  return NULL;
}

int main(void) {
  for (int k = 0; k < kKeys; ++k) {
    int rc = pthread_key_create(&g_keys[k], destroy);
    SCEN_CHECK(rc == 0, "pthread_key_create(%d): %s", k, strerror(rc));
  }
  double start = scen_now();
  int round = 0;
  for (; scen_more(round, kMinRounds, kMaxRounds, start, kSeconds); ++round) {
    pthread_t t[kThreadsPerRound];
    for (int i = 0; i < kThreadsPerRound; ++i) {
      int rc = pthread_create(&t[i], NULL, thread_main, (void*)(intptr_t)(round * 7 + i + 1));
      SCEN_CHECK(rc == 0, "round %d: pthread_create: %s", round, strerror(rc));
    }
    for (int i = 0; i < kThreadsPerRound; ++i) {
      int rc = pthread_join(t[i], NULL);
      SCEN_CHECK(rc == 0, "round %d: pthread_join: %s", round, strerror(rc));
    }
  }
  long expected = (long)round * kThreadsPerRound * kKeys * 2;
  SCEN_CHECK(atomic_load(&g_destructors) == expected, "%ld destructor calls, expected %ld",
             atomic_load(&g_destructors), expected);
  SCEN_CHECK(atomic_load(&g_live) == 0, "%ld blocks never freed by the destructors",
             atomic_load(&g_live));
  for (int k = 0; k < kKeys; ++k) pthread_key_delete(g_keys[k]);
  scen_note("ok: %d threads exited through %d key destructors each (two passes)",
            round * kThreadsPerRound, kKeys);
  return 0;
}
