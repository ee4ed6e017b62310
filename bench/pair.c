// pg_pair: N malloc(SIZE)/free pairs after a warm-up, nothing else.
//
//   pg_pair [N] [SIZE] [baseline]      (defaults: N = 1000000, SIZE = 32)
//
// scripts/callgrind.sh runs it under callgrind with N and 2N: the difference of the two
// instruction totals divided by N is the cost of one pair (start-up and warm-up cancel out). That
// figure includes this loop and the two calls. With "baseline" as the third argument the loop calls
// two empty functions of this program instead of malloc and free, which measures that overhead.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Stores through a volatile pointer keep every malloc observable.
static void* volatile sink;

static char dummy_block[64];
__attribute__((noinline)) static void* dummy_malloc(size_t n) {
  __asm__ volatile("" : : "r"(n) : "memory");
  return dummy_block;
}
__attribute__((noinline)) static void dummy_free(void* p) {
  __asm__ volatile("" : : "r"(p) : "memory");
}

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  size_t size = argc > 2 ? (size_t)atol(argv[2]) : 32;
  int baseline = argc > 3 && strcmp(argv[3], "baseline") == 0;
  // Through volatile function pointers so that the baseline cannot be inlined away; the malloc
  // loop calls through the same kind of indirection (the PLT).
  void* (*volatile do_malloc)(size_t) = baseline ? dummy_malloc : malloc;
  void (*volatile do_free)(void*) = baseline ? dummy_free : free;
  void* (*m)(size_t) = do_malloc;
  void (*f)(void*) = do_free;

  // Warm-up: first-call initialisation, thread cache set-up, first pool carved.
  for (int i = 0; i < 1000; ++i) {
    void* p = m(size);
    sink = p;
    f(p);
  }
  for (long i = 0; i < n; ++i) {
    void* p = m(size);
    sink = p;
    f(p);
  }
  return 0;
}
