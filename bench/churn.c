// N ops of an object churn, for instruction counts under callgrind (docs/BENCHMARKS.md, "Heap
// profile cost"): a working set of 100000 blocks, each op frees one at random and allocates a new
// one of a random size (60% 8..63 bytes, 35% 64..255, 4% 256..1023, 1% 1..8 KiB) and touches it.
//   pg_churn N
#include <stdint.h>
#include <stdlib.h>

static uint64_t g_state = 88172645463325252ull;

static inline uint64_t next(void) {
  g_state ^= g_state << 13;
  g_state ^= g_state >> 7;
  g_state ^= g_state << 17;
  return g_state;
}

static size_t pick_size(void) {
  uint64_t r = next() % 100;
  if (r < 60) return 8 + next() % 56;
  if (r < 95) return 64 + next() % 192;
  if (r < 99) return 256 + next() % 768;
  return 1024 + next() % 7168;
}

enum { kWorkingSet = 100000 };
static void* g_live[kWorkingSet];

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  for (int i = 0; i < kWorkingSet; i++) g_live[i] = malloc(pick_size());
  for (long k = 0; k < n; k++) {
    uint32_t i = (uint32_t)(next() % kWorkingSet);
    free(g_live[i]);
    g_live[i] = malloc(pick_size());
    *(volatile char*)g_live[i] = 1;
  }
  for (int i = 0; i < kWorkingSet; i++) free(g_live[i]);
  return 0;
}
