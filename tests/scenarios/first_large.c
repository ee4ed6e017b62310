// Scenario: the first large blocks of a process come from several threads at once. Under an
// interposer glibc's own malloc may never have been called when the program starts threads, and
// glibc initialises it on its first call without a lock (it counts on that call coming before any
// second thread, as it does without an interposer): two threads in it at once were both attached
// to glibc's main arena, and the second to exit aborted ("malloc assertion failure in
// __malloc_arena_thread_freeres"). The race is once per process, so the program runs itself
// kRounds times (exec, not fork: a forked child inherits glibc's state); each round lines up
// kThreads threads at a barrier, each then allocates large blocks (some above glibc's mmap
// threshold), checks and frees them, and exits.
#include <pthread.h>

#include "scenario.h"

enum { kRounds = 40, kThreads = 8, kBlocks = 4 };

static pthread_barrier_t g_start;

static void* worker(void* arg) {
  uint64_t tag = (uint64_t)(intptr_t)arg;
  pthread_barrier_wait(&g_start);
  void* p[kBlocks];
  size_t n[kBlocks];
  for (int i = 0; i < kBlocks; i++) {
    n[i] = i == kBlocks - 1 ? 200000 : 1000 + 3000 * (size_t)i;
    p[i] = malloc(n[i]);
    SCEN_CHECK(p[i] != NULL, "malloc(%zu) failed", n[i]);
    scen_fill(p[i], n[i], tag * 16 + (uint64_t)i);
  }
  for (int i = 0; i < kBlocks; i++) {
    size_t bad = scen_check(p[i], n[i], tag * 16 + (uint64_t)i);
    SCEN_CHECK(bad == n[i], "block of %zu bytes damaged at offset %zu", n[i], bad);
    free(p[i]);
  }
  return NULL;
}

static void one_round(void) {
  pthread_t t[kThreads];
  SCEN_CHECK(pthread_barrier_init(&g_start, NULL, kThreads) == 0, "pthread_barrier_init");
  for (int i = 0; i < kThreads; i++) {
    int e = pthread_create(&t[i], NULL, worker, (void*)(intptr_t)(i + 1));
    errno = e;
    SCEN_CHECK(e == 0, "pthread_create: %m");
  }
  for (int i = 0; i < kThreads; i++) SCEN_CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "round") == 0) {
    one_round();
    return 0;
  }
  double start = scen_now();
  int rounds = 0;
  for (; scen_more(rounds, kRounds / 4, kRounds, start, 10); rounds++) {
    pid_t pid = fork();
    SCEN_CHECK(pid >= 0, "fork: %m");
    if (pid == 0) {
      execl("/proc/self/exe", argv[0], "round", (char*)NULL);
      SCEN_FAIL("exec /proc/self/exe: %m");
    }
    scen_expect_exit(scen_wait_child(pid, 60, "a round"), 0, "a round");
  }
  scen_note("%d rounds of %d threads whose first blocks are large", rounds, kThreads);
  return 0;
}
