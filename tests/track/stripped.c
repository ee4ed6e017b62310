// A leak from a static function that lies right after a small exported one: once the binary is
// stripped (strip --strip-all keeps only .dynsym), addr2line names the frame after the exported
// function, whose symbol does not cover it. The leak report must print module+offset instead.
#include <stdlib.h>
#include <string.h>

// Exported (-rdynamic), tiny, and placed just before leak_here() (-O0 keeps source order).
__attribute__((noinline)) int tiny_exported(int x) {
  return x + 1;
}

// Static: in .symtab only, gone from the stripped copy. Drops its pointers (leaks.c's way).
static __attribute__((noinline)) void leak_here(void) {
  volatile char pad[64];  // a body well past tiny_exported's few bytes
  for (int i = 0; i < 64; ++i) pad[i] = (char)i;
  for (int i = 0; i < 4; ++i) {
    char* p = malloc(1000);
    memset(p, pad[i], 1000);
  }
}

int main(void) {
  leak_here();
  return tiny_exported(-1);
}
