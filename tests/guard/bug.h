// Shared by the guard-zone bug programs: each allocates through make_block() (so that a report's
// allocation stack must name it), commits one kind of heap bug, and prints "survived" if it is
// still running afterwards (POOLGUARD_ON_ERROR=report).
//
//   PROGRAM SIZE [TIMES]   SIZE: bytes of the block (pooled sizes are <= 256); TIMES: how many
//                          times to commit the bug, from the same call sites (overflow.c only)
//
// Built with -g -O0 -rdynamic, so that dladdr names the functions in the reports.
#ifndef PG_GUARD_BUG_H
#define PG_GUARD_BUG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// One request before main: the guard's sampler starts its countdown on the first request of all,
// unsampled (front/alloc.cpp), so that with POOLGUARD_GUARD_SAMPLE=1 make_block's is the second
// and sampled. (libstdc++'s exception pool used to be that first request, until the preload
// stopped loading libstdc++ into C programs.)
__attribute__((constructor)) static void first_request(void) {
  free(malloc(1));
}

// Not static: -rdynamic exports it, so the report can name it.
__attribute__((noinline)) char* make_block(size_t size) {
  char* p = malloc(size);
  if (p == NULL) {
    perror("malloc");
    exit(2);
  }
  memset(p, 'a', size);
  return p;
}

static size_t size_arg(int argc, char** argv) {
  if (argc < 2 || argc > 3 || atol(argv[1]) <= 0) {
    fprintf(stderr, "usage: %s SIZE [TIMES]\n", argv[0]);
    exit(2);
  }
  return (size_t)atol(argv[1]);
}

// Keeps the compiler from proving an access dead.
volatile char sink;

static int survived(void) {
  printf("survived\n");
  fflush(stdout);
  return 0;
}

#endif
