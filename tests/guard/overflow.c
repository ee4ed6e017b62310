// Heap buffer overflow: writes one byte past the end of a block (TIMES times, each time a new
// block, from the same call sites).
#include "bug.h"

__attribute__((noinline)) void write_past_end(char* p, size_t size) {
  p[size] = 'X';
}

int main(int argc, char** argv) {
  size_t size = size_arg(argc, argv);
  long times = argc == 3 ? atol(argv[2]) : 1;
  for (long i = 0; i < times; ++i) {
    char* p = make_block(size);
    write_past_end(p, size);
    free(p);
  }
  return survived();
}
