// Allocation workloads for measuring the guard modes (scripts/guard_bench.sh).
//
//   pg_guard_churn pair N [SIZE]     N malloc(SIZE)/free pairs (default SIZE 32), for instruction
//                                    counts under callgrind: run it with N and 2N, the difference
//                                    over N is the cost of one pair
//   pg_guard_churn churn N [LIVE]    object churn: LIVE objects (default 20000) live at a time;
//                                    each of N steps frees a random one and allocates a new one of
//                                    a random size (mostly 16..128 bytes, some up to 512, one in
//                                    64 up to 8 KiB), writing its first and last bytes
//
// Prints a checksum, so the work cannot be optimised away. Deterministic (fixed seed).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* volatile sink;

static uint64_t next(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static size_t pick_size(uint64_t* s) {
  uint64_t r = next(s);
  if (r % 64 == 0) return 513 + r % 7680;
  if (r % 8 == 0) return 129 + r % 384;
  return 16 + r % 113;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s pair N [SIZE] | churn N [LIVE]\n", argv[0]);
    return 2;
  }
  long n = atol(argv[2]);
  if (strcmp(argv[1], "pair") == 0) {
    size_t size = argc > 3 ? (size_t)atol(argv[3]) : 32;
    for (int i = 0; i < 1000; ++i) {  // warm-up: first-call initialisation, first pool
      void* p = malloc(size);
      sink = p;
      free(p);
    }
    for (long i = 0; i < n; ++i) {
      void* p = malloc(size);
      sink = p;
      free(p);
    }
    printf("pairs %ld\n", n);
    return 0;
  }
  if (strcmp(argv[1], "churn") != 0) return 2;
  long live = argc > 3 ? atol(argv[3]) : 20000;
  if (live < 1) return 2;
  unsigned char** slots = calloc((size_t)live, sizeof *slots);
  size_t* sizes = calloc((size_t)live, sizeof *sizes);
  if (slots == NULL || sizes == NULL) return 1;
  uint64_t seed = 0x9e3779b97f4a7c15ull, sum = 0;
  for (long i = 0; i < n; ++i) {
    long k = (long)(next(&seed) % (uint64_t)live);
    if (slots[k] != NULL) {
      sum += slots[k][0] + slots[k][sizes[k] - 1];
      free(slots[k]);
    }
    size_t size = pick_size(&seed);
    unsigned char* p = malloc(size);
    if (p == NULL) return 1;
    p[0] = (unsigned char)i;
    p[size - 1] = (unsigned char)(i >> 8);
    slots[k] = p;
    sizes[k] = size;
  }
  for (long k = 0; k < live; ++k) free(slots[k]);
  free(slots);
  free(sizes);
  printf("churn %ld checksum %llu\n", n, (unsigned long long)sum);
  return 0;
}
