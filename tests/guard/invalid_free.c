// Invalid free: frees a pointer 16 bytes into a block (an interior pointer).
#include "bug.h"

__attribute__((noinline)) void free_interior(char* p) {
  free(p + 16);
}

int main(int argc, char** argv) {
  size_t size = size_arg(argc, argv);
  char* p = make_block(size);
  free_interior(p);
  return survived();
}
