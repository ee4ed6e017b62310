// Use after free (write): writes into the middle of a block after freeing it.
#include "bug.h"

__attribute__((noinline)) void write_after_free(char* p, size_t size) {
  p[size / 2] = 'X';
}

int main(int argc, char** argv) {
  size_t size = size_arg(argc, argv);
  char* p = make_block(size);
  free(p);
  write_after_free(p, size);
  return survived();
}
