// Holds known amounts from two call sites, for the sampled profile's test
// (tests/track/profile_test.sh):
//   hold_small  48 MiB in blocks of 16..256 bytes (the pools' sizes, sampled by the countdown)
//   hold_large  24 MiB in blocks of 1000..4000 bytes (the medium tier and the large path: each
//               request sampled on its own)
//   hold_deep   8 MiB in 4096-byte blocks, 40 calls deep (its stack is cut to 32 frames)
// with a churn of short-lived 100-byte blocks in between (they must not show up as live).
// Prints "ready PID" and waits until stdin closes (or a signal ends it).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) void* hold_small(size_t n) {
  void* p = malloc(n);
  memset(p, 1, n);
  return p;
}

__attribute__((noinline)) void* hold_large(size_t n) {
  void* p = malloc(n);
  memset(p, 2, n);
  return p;
}

// 8 MiB allocated 40 calls deep: deeper than the 32 frames a stack keeps, so its outer frames
// (main's) are lost, and the profile shows it under a "[truncated ...]" root.
__attribute__((noinline)) void* hold_deep(size_t n) {
  void* p = malloc(n);
  memset(p, 3, n);
  return p;
}

static void* g_kept[1 << 22];
static size_t g_n;

__attribute__((noinline)) void go_deep(int depth) {
  if (depth > 0) {
    go_deep(depth - 1);
    asm volatile("" ::: "memory");  // no tail call: every level keeps its frame
    return;
  }
  for (int i = 0; i < 2048; ++i) g_kept[g_n++] = hold_deep(4096);
}

int main(void) {
  uint32_t x = 12345;
  size_t small = 0, large = 0;
  while (small < (48u << 20)) {
    x = x * 1103515245u + 12345u;
    size_t s = 16 + (x >> 8) % 241;
    g_kept[g_n++] = hold_small(s);
    small += s;
    free(malloc(100));
  }
  while (large < (24u << 20)) {
    x = x * 1103515245u + 12345u;
    size_t s = 1000 + (x >> 8) % 3001;
    g_kept[g_n++] = hold_large(s);
    large += s;
  }
  go_deep(40);
  printf("ready %d %zu %zu\n", (int)getpid(), small, large);
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}
