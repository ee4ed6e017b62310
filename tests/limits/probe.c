// Probes for memory the way sort(1) sizes its buffer: asks for a large block from one call site,
// again and again, halving nothing and giving up after N refusals. Under a limit below SIZE each
// request is refused from the same stack, so the limit log should fold the repeats into a count.
//   probe SIZE N  ->  "refused R"
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void* ask(size_t size) {
  void* p = malloc(size);
  __asm__ volatile("" ::"r"(p) : "memory");
  return p;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: probe SIZE N\n");
    return 2;
  }
  size_t size = strtoul(argv[1], NULL, 10);
  int n = atoi(argv[2]), refused = 0;
  for (int i = 0; i < n; i++) {
    void* p = ask(size);
    if (p == NULL) {
      refused++;
    } else {
      free(p);
    }
  }
  printf("refused %d\n", refused);
  return 0;
}
