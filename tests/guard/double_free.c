// Double free: frees the same block twice.
#include "bug.h"

__attribute__((noinline)) void free_twice(char* p) {
  free(p);
  free(p);
}

int main(int argc, char** argv) {
  size_t size = size_arg(argc, argv);
  char* p = make_block(size);
  free_twice(p);
  return survived();
}
