// Scenario 6: a program that lowers RLIMIT_AS while it runs. With the soft limit at its current
// address-space size plus 256 MiB, a 50 MiB block and a few threads must work as under glibc (an
// allocator whose own reservation counts against the limit must not eat that room: before
// 82c0936 poolguard's 64 GiB reservation did). Lowered further, thread creation must fail
// cleanly with EAGAIN and a huge malloc must return NULL with ENOMEM, while small and large
// allocations still work; with the limit restored, everything works again. In between, a fixed
// cap of 1 GiB (far above what the program itself uses) must work too.
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>

#include "scenario.h"

#define MiB ((size_t)1 << 20)

// VmSize from /proc/self/status, in bytes (read with read(2): nothing allocated meanwhile).
static size_t vm_size(void) {
  char buf[8192];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  SCEN_CHECK(fd >= 0, "open(/proc/self/status): %m");
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  SCEN_CHECK(n > 0, "read(/proc/self/status): %m");
  buf[n] = '\0';
  const char* v = strstr(buf, "\nVmSize:");
  SCEN_CHECK(v != NULL, "no VmSize in /proc/self/status");
  return (size_t)strtoull(v + 8, NULL, 10) * 1024;
}

static void set_soft_limit(rlim_t soft, const char* why) {
  struct rlimit rl;
  SCEN_CHECK(getrlimit(RLIMIT_AS, &rl) == 0, "getrlimit: %m");
  rl.rlim_cur = soft;
  SCEN_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS, %llu) (%s): %m",
             (unsigned long long)soft, why);
}

static void* thread_main(void* arg) {
  uint64_t rng = (uint64_t)(intptr_t)arg;
  for (int i = 0; i < 2000; ++i) {
    size_t n = scen_mixed_size(&rng);
    void* p = malloc(n);
    SCEN_CHECK(p != NULL, "thread: malloc(%zu) failed under the limit", n);
    scen_fill(p, n, (uint64_t)i);
    SCEN_CHECK(scen_check(p, n, (uint64_t)i) == n, "thread: block damaged");
    free(p);
  }
  return (void*)1;
}

static void run_threads(int count, const char* when) {
  pthread_t t[8];
  for (int i = 0; i < count; ++i) {
    int rc = pthread_create(&t[i], NULL, thread_main, (void*)(intptr_t)(i + 1));
    SCEN_CHECK(rc == 0, "%s: pthread_create %d: %s", when, i, strerror(rc));
  }
  for (int i = 0; i < count; ++i) {
    void* result = NULL;
    SCEN_CHECK(pthread_join(t[i], &result) == 0 && result == (void*)1, "%s: thread %d failed", when,
               i);
  }
}

// Allocates, touches and frees a block of `bytes`.
static void big_block(size_t bytes, const char* when) {
  unsigned char* p = malloc(bytes);
  SCEN_CHECK(p != NULL, "%s: malloc(%zu MiB) failed: %m (VmSize %zu MiB)", when, bytes / MiB,
             vm_size() / MiB);
  for (size_t i = 0; i < bytes; i += 4096) p[i] = (unsigned char)i;
  p[bytes - 1] = 1;
  free(p);
}

static void small_and_large(const char* when) {
  for (size_t n = 1; n <= 70000; n = n * 3 + 1) {
    void* p = malloc(n);
    SCEN_CHECK(p != NULL, "%s: malloc(%zu) failed", when, n);
    memset(p, 1, n);
    free(p);
  }
}

int main(void) {
  struct rlimit original;
  SCEN_CHECK(getrlimit(RLIMIT_AS, &original) == 0, "getrlimit: %m");
  small_and_large("start");

  size_t base = vm_size();
  set_soft_limit(base + 256 * MiB, "VmSize + 256 MiB");
  big_block(50 * MiB, "VmSize + 256 MiB");
  run_threads(4, "VmSize + 256 MiB");
  small_and_large("VmSize + 256 MiB");
  scen_note("limit VmSize + 256 MiB (%zu MiB): a 50 MiB block and 4 threads",
            (base + 256 * MiB) / MiB);

  // A fixed cap of 1 GiB, as programs and test suites set for themselves: far more than this
  // program needs (under glibc its address space is a few hundred MiB at most, mostly thread
  // stacks and glibc's per-thread heaps), so everything must still work. An allocator that keeps
  // a reservation of many GiB has to give it back.
  size_t cap = 1024 * MiB;
  SCEN_CHECK(vm_size() + 400 * MiB < cap || scen_under_poolguard(),
             "without poolguard VmSize is already %zu MiB: the 1 GiB cap is too tight",
             vm_size() / MiB);
  set_soft_limit(cap, "1 GiB");
  big_block(50 * MiB, "1 GiB");
  run_threads(4, "1 GiB");
  small_and_large("1 GiB");
  scen_note("limit 1 GiB: a 50 MiB block and 4 threads (VmSize now %zu MiB)", vm_size() / MiB);

  // Now a limit with a few MiB of room: a thread with a 16 MiB stack cannot get it (bigger than
  // the stacks glibc cached from the threads above, so a new mapping is needed). An allocator may
  // give address space back when the limit falls (poolguard trims its reservation to a quarter
  // of it): lower the limit until the room left is really 4 MiB.
  size_t tight = 0;
  for (int i = 0; i < 20; ++i) {
    size_t now = vm_size();
    if (tight != 0 && now + 4 * MiB >= tight) break;
    tight = now + 4 * MiB;
    set_soft_limit(tight, "VmSize + 4 MiB");
  }
  SCEN_CHECK(vm_size() + 4 * MiB >= tight, "VmSize still falling after 20 lower limits");
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 16 * MiB);
  pthread_t t;
  int rc = pthread_create(&t, &attr, thread_main, (void*)1);
  if (rc == 0) {
    pthread_join(t, NULL);
    SCEN_FAIL("pthread_create with a 16 MiB stack succeeded with 4 MiB of address space left");
  }
  SCEN_CHECK(rc == EAGAIN, "pthread_create: %s, expected EAGAIN", strerror(rc));
  pthread_attr_destroy(&attr);
  volatile size_t huge = 1024 * MiB;
  errno = 0;
  void* p = malloc(huge);
  SCEN_CHECK(p == NULL, "malloc(1 GiB) succeeded with 4 MiB of address space left");
  SCEN_CHECK(errno == ENOMEM, "malloc(1 GiB) failed with errno %d (%s), expected ENOMEM", errno,
             strerror(errno));
  small_and_large("VmSize + 4 MiB");
  scen_note("limit VmSize + 4 MiB: pthread_create EAGAIN, malloc(1 GiB) ENOMEM, small blocks ok");

  set_soft_limit(original.rlim_cur, "restored");
  run_threads(2, "restored");
  big_block(50 * MiB, "restored");
  scen_note("ok");
  return 0;
}
