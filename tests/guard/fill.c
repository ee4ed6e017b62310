// POOLGUARD_GUARD_FILL: prints the first byte of a new malloc block and of a new calloc block
// ("cd 00" when new blocks are filled; calloc's are always zero).
#include <stdio.h>
#include <stdlib.h>

// One request before main, as in bug.h: the sampler's first request is never sampled, so that
// with POOLGUARD_GUARD_SAMPLE=1 it must not be one of the blocks looked at.
__attribute__((constructor)) static void first_request(void) {
  free(malloc(1));
}

int main(void) {
  for (int round = 0; round < 2; ++round) {  // the second round reuses quarantined memory
    volatile unsigned char* m = malloc(100);
    volatile unsigned char* c = calloc(10, 10);
    if (m == NULL || c == NULL) return 1;
    printf("%02x %02x\n", m[50], c[50]);
    m[50] = 0x11;
    c[50] = 0x22;
    free((void*)m);
    free((void*)c);
  }
  return 0;
}
