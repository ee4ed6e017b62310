// Shared by the scenario programs (tests/scenarios/*.c, *.cpp): failure reporting, waiting for
// children with a deadline, and the little helpers several scenarios need. Header-only, C and C++.
//
// Failures print one line, "SCENARIO: FAIL (pid N) file:line: message", and end the process with
// status 1. The line is formatted on the stack and written with write(2), without malloc or stdio,
// so that it works in a forked child, in a signal handler and when the allocator is the suspect.
#ifndef PG_SCENARIO_H
#define PG_SCENARIO_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

// The program's name (glibc sets it from argv[0] before main runs).
static inline const char* scen_name(void) {
  return program_invocation_short_name;
}

static inline void scen_write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

// Prints "NAME: FAIL (pid N) FILE:LINE: message" on stderr and ends the process with status 1
// (_exit: no atexit handlers, no stdio flush, no allocator exit hooks that could hang or report).
__attribute__((noreturn, format(printf, 3, 4))) static inline void scen_fail_at(const char* file,
                                                                                int line,
                                                                                const char* fmt,
                                                                                ...) {
  int saved = errno;
  char buf[1024];
  const char* base = strrchr(file, '/');
  int n = snprintf(buf, sizeof buf, "%s: FAIL (pid %d) %s:%d: ", scen_name(), (int)getpid(),
                   base != NULL ? base + 1 : file, line);
  if (n < 0 || n >= (int)sizeof buf) n = 0;
  va_list ap;
  va_start(ap, fmt);
  errno = saved;  // so that %m in the message names the caller's errno
  int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += m;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  scen_write_all(2, buf, (size_t)n);
  _exit(1);
}

#define SCEN_FAIL(...) scen_fail_at(__FILE__, __LINE__, __VA_ARGS__)
// Fails with the message unless cond holds.
#define SCEN_CHECK(cond, ...)                                   \
  do {                                                          \
    if (!(cond)) scen_fail_at(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

// One informational line on stdout, flushed at once (a later _exit or hang must not lose it).
__attribute__((format(printf, 1, 2))) static inline void scen_note(const char* fmt, ...) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%s: ", scen_name());
  if (n < 0 || n >= (int)sizeof buf) n = 0;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += m;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  fflush(stdout);
  scen_write_all(1, buf, (size_t)n);
}

// Whether the process runs with poolguard preloaded (the driver sets LD_PRELOAD to its path).
// Only for contracts where poolguard documents a stricter behaviour than this glibc.
static inline int scen_under_poolguard(void) {
  const char* p = getenv("LD_PRELOAD");
  return p != NULL && strstr(p, "poolguard") != NULL;
}

static inline double scen_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// xorshift64: cheap, deterministic random numbers.
static inline uint64_t scen_rand(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// A byte pattern that depends on the block's tag and the offset, so that a block overwritten by
// another block's contents (handed out twice) or moved without its contents is told apart.
static inline unsigned char scen_byte(uint64_t tag, size_t i) {
  return (unsigned char)((tag * 131u) ^ (i * 7u) ^ (i >> 8));
}

static inline void scen_fill(void* p, size_t n, uint64_t tag) {
  unsigned char* b = (unsigned char*)p;
  for (size_t i = 0; i < n; ++i) b[i] = scen_byte(tag, i);
}

// The offset of the first byte of p[0..n) that does not hold the pattern of tag, or n.
static inline size_t scen_check(const void* p, size_t n, uint64_t tag) {
  const unsigned char* b = (const unsigned char*)p;
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != scen_byte(tag, i)) return i;
  }
  return n;
}

// Repeated work bounded by count and by time: true while fewer than `min` rounds are done, or
// fewer than `max` rounds and less than `seconds` since `start` (scen_now()). Fast modes do all
// `max` rounds; the slow ones (page guards cost system calls and page faults per block, more on a
// busy machine) stop earlier but always do `min`, which still exercises the case.
static inline int scen_more(long done, long min, long max, double start, double seconds) {
  return done < min || (done < max && scen_now() - start < seconds);
}

// Waits for child pid up to `seconds` and returns its wait status. The scenarios wait longer than
// the driver's timeout, so that under the driver a hang is reported with every process's stacks;
// the deadline here is for runs by hand. A child still running then
// is reported as hung (most likely a lock inherited held across fork) and killed, and the
// scenario fails naming `what`. Set SCENARIO_KEEP_HUNG=1 to leave it running for gdb instead.
static inline int scen_wait_child(pid_t pid, double seconds, const char* what) {
  double deadline = scen_now() + seconds;
  long pause_ns = 20 * 1000;
  for (;;) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) SCEN_FAIL("waitpid(%d) for %s: %m", (int)pid, what);
    if (r == 0 && scen_now() > deadline) {
      if (getenv("SCENARIO_KEEP_HUNG") == NULL) kill(pid, SIGKILL);
      SCEN_FAIL("%s (pid %d) still running after %.0f s: hung", what, (int)pid, seconds);
    }
    if (r == 0) {
      // Short sleeps first (most children are done within a millisecond), up to 10 ms.
      struct timespec ts = {0, pause_ns};
      nanosleep(&ts, NULL);
      if (pause_ns < 10 * 1000 * 1000) pause_ns *= 2;
    }
  }
}

// Fails unless a wait status says "exited with `code`".
static inline void scen_expect_exit(int status, int code, const char* what) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == code) return;
  if (WIFSIGNALED(status)) {
    SCEN_FAIL("%s killed by signal %d (%s), expected exit status %d", what, WTERMSIG(status),
              strsignal(WTERMSIG(status)), code);
  }
  SCEN_FAIL("%s exited with status %d, expected %d", what, WEXITSTATUS(status), code);
}

// The next request size of a deterministic mix (state *s): half pooled (1-256 bytes, every
// class), the rest large from glibc's heap, either side of the pool/large threshold (256 bytes),
// and now and then above glibc's mmap threshold (128 KiB).
static inline size_t scen_mixed_size(uint64_t* s) {
  uint64_t r = scen_rand(s);
  switch (r % 8) {
    case 0:
    case 1:
    case 2:
    case 3:
      return 1 + (size_t)(r >> 8) % 256;  // pooled
    case 4:
    case 5:
      return 257 + (size_t)(r >> 8) % 3840;  // large, glibc's heap
    case 6:
      return 4096 + (size_t)(r >> 8) % 60000;
    default:
      return (r >> 8) % 16 == 0 ? 140000 + (size_t)(r >> 12) % 60000  // glibc's mmap threshold
                                : 200 + (size_t)(r >> 8) % 120;       // either side of 256
  }
}

#ifdef __cplusplus
}
#endif

#endif
