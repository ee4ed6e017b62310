/* pg_stats_hold: holds a known set of blocks so that the stats tests can read them from outside
 * with `poolguard stat`. Driven through stdin, one command per line; answers each on stdout:
 *
 *   (start)     -> "ready PID"
 *   alloc       -> "allocated"   1000 x 24 bytes, 500 x 200 bytes, 10 x 50000 bytes, kept live
 *   free        -> "freed"       all of them
 *   fork        -> "child PID"   a child that holds the same blocks until SIGTERM (then exit(0)),
 *                                or 60 s at most
 *   exit        -> (exits 0)     also on end of input
 *
 * Between commands it allocates nothing: commands are read with read(2) into a static buffer and
 * answers are written with write(2), so the live blocks are exactly the ones above plus what the
 * C runtime held before "ready". */
#define _POSIX_C_SOURCE 200809L /* sigtimedwait */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

enum { kSmall = 1000, kMid = 500, kBig = 10 };
static void* small_blocks[kSmall];
static void* mid_blocks[kMid];
static void* big_blocks[kBig];

/* One line of stdin into buf (without the newline); 0 at end of input. */
static int read_line(char* buf, size_t size) {
  size_t len = 0;
  for (;;) {
    char c;
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n <= 0) return len > 0;
    if (c == '\n') break;
    if (len + 1 < size) buf[len++] = c;
  }
  buf[len] = '\0';
  return 1;
}

static void* take(size_t size, int fill) {
  void* p = malloc(size);
  if (p == NULL) {
    say("malloc failed\n");
    exit(4);
  }
  memset(p, fill, size); /* used, so the compiler cannot drop the allocation */
  return p;
}

static void allocate(void) {
  for (int i = 0; i < kSmall; ++i) small_blocks[i] = take(24, i);
  for (int i = 0; i < kMid; ++i) mid_blocks[i] = take(200, i);
  for (int i = 0; i < kBig; ++i) big_blocks[i] = take(50000, i);
}

static void release(void) {
  for (int i = 0; i < kSmall; ++i) free(small_blocks[i]);
  for (int i = 0; i < kMid; ++i) free(mid_blocks[i]);
  for (int i = 0; i < kBig; ++i) free(big_blocks[i]);
}

int main(void) {
  static char line[256];
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, NULL); /* the forked child waits for it with sigtimedwait */
  say_number("ready", (long)getpid());
  while (read_line(line, sizeof line)) {
    if (strcmp(line, "alloc") == 0) {
      allocate();
      say("allocated\n");
    } else if (strcmp(line, "free") == 0) {
      release();
      say("freed\n");
    } else if (strcmp(line, "fork") == 0) {
      pid_t child = fork();
      if (child < 0) {
        say("fork failed\n");
        return 5;
      }
      if (child == 0) {
        /* The child keeps the inherited blocks and leaves through exit(), so that poolguard's exit
         * hook runs, when the test sends SIGTERM (blocked in the parent before the fork). */
        struct timespec limit = {60, 0};
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigtimedwait(&term, NULL, &limit);
        exit(0);
      }
      say_number("child", (long)child);
    } else if (strcmp(line, "exit") == 0) {
      break;
    } else {
      say("unknown command\n");
    }
  }
  return 0;
}
