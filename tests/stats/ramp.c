/* pg_stats_ramp: a program whose heap follows a known course over time, for `poolguard record`
 * (record_test.py). It writes one line on stdout at each point the test may wait for, with
 * write(2) (stdio would allocate its buffer), and allocates nothing but the blocks below.
 *
 *   ramp STATUS     grows in 5 steps 0.1 s apart to 20000 x 64 bytes, 500 x 4000 bytes and
 *                   8 x 1 MiB ("holding PID"), holds them 1 s, frees them ("freed"), waits
 *                   0.3 s and exits with STATUS
 *   fork            asks for 128 MiB once (refused under a limit of 64M), holds 100 x 64 bytes and
 *                   forks a child that does the course of `ramp 0` ("child PID"); exits 0 after
 *                   the child
 *   limit           under POOLGUARD_LIMIT=1M: allocates 64 KiB blocks until 3 are refused,
 *                   holds 0.5 s, then is refused 2 more and exits at once ("refused 5")
 *   hold            grows as `ramp`, then sleeps 30 s ("holding PID"): for signals
 *   spike           holds 20000 x 64 bytes ("holding PID"), waits 0.5 s, then within a few
 *                   milliseconds takes 100000 x 64 bytes and 64 x 1 MiB more and frees them
 *                   ("spiked"), waits 0.5 s and exits 0: a peak between samples
 *   bugs            under POOLGUARD_GUARD=redzone and POOLGUARD_ON_ERROR=report: writes one byte
 *                   past a 24-byte block and frees it (a guard report), waits 0.3 s, frees
 *                   another block twice (a double free), waits 0.3 s ("bugs 2") and exits 0
 *
 * The growth goes through grow_phase(), which the heap profile must name at the peak: built with
 * -O0 and kept out of line. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "say.h"

enum { kSmall = 20000, kMedium = 500, kLarge = 8, kSteps = 5 };
enum { kSmallSize = 64, kMediumSize = 4000, kLargeSize = 1 << 20 };

static void* small_blocks[kSmall];
static void* medium_blocks[kMedium];
static void* large_blocks[kLarge];

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void* take(size_t size) {
  void* p = malloc(size);
  if (p == NULL) {
    say("malloc failed\n");
    exit(4);
  }
  memset(p, 1, size); /* used, so the compiler cannot drop the allocation */
  return p;
}

/* One step of the growth: a fifth of each kind of block. */
__attribute__((noinline)) static void grow_phase(int step) {
  for (int i = step * kSmall / kSteps; i < (step + 1) * kSmall / kSteps; ++i) {
    small_blocks[i] = take(kSmallSize);
  }
  for (int i = step * kMedium / kSteps; i < (step + 1) * kMedium / kSteps; ++i) {
    medium_blocks[i] = take(kMediumSize);
  }
  for (int i = step * kLarge / kSteps; i < (step + 1) * kLarge / kSteps; ++i) {
    large_blocks[i] = take(kLargeSize);
  }
}

static void grow(void) {
  for (int step = 0; step < kSteps; ++step) {
    grow_phase(step);
    pause_ms(100);
  }
}

static void release(void) {
  for (int i = 0; i < kSmall; ++i) free(small_blocks[i]);
  for (int i = 0; i < kMedium; ++i) free(medium_blocks[i]);
  for (int i = 0; i < kLarge; ++i) free(large_blocks[i]);
}

static int course(int status) {
  grow();
  say_number("holding", (long)getpid());
  pause_ms(1000);
  release();
  say("freed\n");
  pause_ms(300);
  return status;
}

/* Allocations the limit refuses: kept until exit, counted. */
static int refuse(int want, void** kept, int* n_kept, int cap) {
  int refused = 0;
  while (refused < want) {
    void* p = malloc(64 << 10);
    if (p == NULL) {
      ++refused;
    } else if (*n_kept < cap) {
      kept[(*n_kept)++] = p;
    }
  }
  return refused;
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "ramp") == 0 && argc > 2) return course(atoi(argv[2]));
  if (strcmp(mode, "fork") == 0) {
    void* mine[100];
    if (malloc((size_t)128 << 20) != NULL) say("128 MiB served\n");
    for (int i = 0; i < 100; ++i) mine[i] = take(kSmallSize);
    pid_t child = fork();
    if (child < 0) return 5;
    if (child == 0) _exit(course(0));
    say_number("child", (long)child);
    int status;
    while (waitpid(child, &status, 0) < 0) {
    }
    pause_ms(300);
    for (int i = 0; i < 100; ++i) free(mine[i]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 6;
  }
  if (strcmp(mode, "limit") == 0) {
    static void* kept[64];
    int n_kept = 0;
    int refused = refuse(3, kept, &n_kept, 64);
    say("refused 3\n");
    pause_ms(500);
    refused += refuse(2, kept, &n_kept, 64);
    say_number("refused", refused);
    return 0;
  }
  if (strcmp(mode, "hold") == 0) {
    grow();
    say_number("holding", (long)getpid());
    pause_ms(30000);
    return 0;
  }
  if (strcmp(mode, "spike") == 0) {
    enum { kSpikeSmall = 100000, kSpikeLarge = 64 };
    static void* spike_small[kSpikeSmall];
    static void* spike_large[kSpikeLarge];
    for (int i = 0; i < kSmall; ++i) small_blocks[i] = take(kSmallSize);
    say_number("holding", (long)getpid());
    pause_ms(500);
    for (int i = 0; i < kSpikeSmall; ++i) spike_small[i] = take(kSmallSize);
    for (int i = 0; i < kSpikeLarge; ++i) spike_large[i] = take(kLargeSize);
    for (int i = 0; i < kSpikeSmall; ++i) free(spike_small[i]);
    for (int i = 0; i < kSpikeLarge; ++i) free(spike_large[i]);
    say("spiked\n");
    pause_ms(500);
    for (int i = 0; i < kSmall; ++i) free(small_blocks[i]);
    return 0;
  }
  if (strcmp(mode, "bugs") == 0) {
    char* volatile p = malloc(24);
    p[24] = 'X';
    free(p);
    pause_ms(300);
    char* volatile q = malloc(40);
    free(q);
    free(q);
    pause_ms(300);
    say("bugs 2\n");
    return 0;
  }
  say("usage: pg_stats_ramp (ramp STATUS | fork | limit | hold | spike | bugs)\n");
  return 2;
}
