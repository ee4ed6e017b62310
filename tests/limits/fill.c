// Allocates blocks of SIZE bytes (touching them) until malloc refuses or TOTAL bytes are held,
// with THREADS threads at once, then prints what it got:
//   fill SIZE TOTAL THREADS   ->  "held BYTES blocks N refused R enomem E"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t size, total;
static atomic_size_t held, blocks, refused, enomem;

static void* worker(void* arg) {
  (void)arg;
  for (;;) {
    if (atomic_load(&held) + size > total) return NULL;
    errno = 0;
    void* p = malloc(size);
    if (p == NULL) {
      atomic_fetch_add(&refused, 1);
      if (errno == ENOMEM) atomic_fetch_add(&enomem, 1);
      return NULL;  // keep what we hold: the test reads the totals
    }
    memset(p, 0x5a, size);
    atomic_fetch_add(&held, size);
    atomic_fetch_add(&blocks, 1);
  }
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: fill SIZE TOTAL THREADS\n");
    return 2;
  }
  size = strtoul(argv[1], NULL, 10);
  total = strtoul(argv[2], NULL, 10);
  int threads = atoi(argv[3]);
  pthread_t t[64];
  if (threads < 1 || threads > 64) return 2;
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  printf("held %zu blocks %zu refused %zu enomem %zu\n", atomic_load(&held), atomic_load(&blocks),
         atomic_load(&refused), atomic_load(&enomem));
  return 0;
}
