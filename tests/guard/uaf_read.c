// Use after free (read): reads the middle of a block after freeing it, and prints the byte it saw
// (redzone mode cannot see reads; it shows the freed-memory fill, 0xdd).
#include "bug.h"

__attribute__((noinline)) char read_after_free(const char* p, size_t size) {
  return p[size / 2];
}

int main(int argc, char** argv) {
  size_t size = size_arg(argc, argv);
  char* p = make_block(size);
  free(p);
  sink = read_after_free(p, size);
  printf("read %02x\n", (unsigned)(unsigned char)sink);
  return survived();
}
