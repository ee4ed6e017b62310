// Ten 14-byte blocks leaked through one pointer variable that is overwritten each time, as in
// issue 17 (one of the ten was once seen as reachable: a stale copy of its address in an
// unwritten slot of poolguard's own exit frames). tests/track/leak_ten_test.sh builds it at -O0
// and -O2 and expects all ten reported, in every variant:
//   loop     the loop in main, which then returns
//   helper   the loop in a function main called, whose frame is dead at exit
//   exit     the loop in a helper, then exit() from a function still on the stack
//   segments no leak; prints the bytes of poolguard's shared segments (the /SYSV mappings), which
//            the leak check must not scan
// Prints "done" (segments: the number).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void leak_ten(void) {
  void* volatile p = NULL;
  for (int i = 0; i < 10; i++) p = malloc(14);
  (void)p;
}

__attribute__((noinline)) void leak_ten_then_exit(void) {
  leak_ten();
  puts("done");
  exit(0);
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "loop";
  if (strcmp(mode, "loop") == 0) {
    void* p = NULL;
    for (int i = 0; i < 10; i++) p = malloc(14);
    // p's last value stays in main's frame until main returns: used, so that -O2 keeps the loop.
    puts(p != NULL ? "done" : "malloc failed");
  } else if (strcmp(mode, "helper") == 0) {
    leak_ten();
    puts("done");
  } else if (strcmp(mode, "exit") == 0) {
    leak_ten_then_exit();
  } else if (strcmp(mode, "segments") == 0) {
    FILE* f = fopen("/proc/self/maps", "r");
    if (f == NULL) return 3;
    char line[512];
    unsigned long total = 0, lo, hi;
    while (fgets(line, sizeof line, f) != NULL) {
      if (strstr(line, "/SYSV") != NULL && sscanf(line, "%lx-%lx", &lo, &hi) == 2) total += hi - lo;
    }
    fclose(f);
    printf("%lu\n", total);
  } else {
    return 2;
  }
  return 0;
}
