// Heap buffer underflow: writes the byte just before the start of a block.
#include "bug.h"

__attribute__((noinline)) void write_before_start(char* p) {
  p[-1] = 'X';
}

int main(int argc, char** argv) {
  size_t size = size_arg(argc, argv);
  char* p = make_block(size);
  write_before_start(p);
  free(p);
  return survived();
}
