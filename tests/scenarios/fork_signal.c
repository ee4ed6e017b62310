// Scenario 3: fork() from a signal handler, in a single-threaded program (the only case glibc
// supports). An interval timer's SIGALRM handler forks (the child _exits, the handler reaps it)
// while the main loop mallocs and frees mixed sizes, so the handler lands inside malloc and free,
// pooled and large (glibc's own malloc). Variant "nested": the main loop forks too, so the
// handler also lands inside fork() itself, between its atfork handlers. A fork that waits for a
// lock the interrupted code holds hangs the process: the driver's timeout turns that into a
// failure.
//
// glibc takes its malloc locks in fork() only when the process has more than one thread: an
// allocator that adds a thread of its own makes this scenario hang in glibc's malloc.
#include <sys/time.h>

#include "scenario.h"

enum {
  kHandlerForks = 100,
  kChildStatus = 7,
  kIntervalUs = 3000,
  // The handler forks only after the main loop has made this many steps since its last fork: a
  // fork and wait can take longer than the interval (a busy machine, a process with many
  // mappings), and the main loop must not starve.
  kStepsPerFork = 8,
};

static volatile sig_atomic_t g_forks;         // forks done by the handler
static volatile sig_atomic_t g_in_fork;       // the main loop is inside fork()
static volatile sig_atomic_t g_nested;        // handler forks that interrupted the main fork()
static volatile sig_atomic_t g_handler_fail;  // first failure seen by the handler (reported later)
static volatile sig_atomic_t g_steps;         // the main loop's steps
static sig_atomic_t g_steps_at_fork;          // g_steps at the handler's last fork

static void set_timer(long us) {
  struct itimerval it = {{0, us}, {0, us}};
  SCEN_CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer: %m");
}

static void on_alarm(int sig) {
  (void)sig;
  if (g_steps - g_steps_at_fork < kStepsPerFork) return;
  g_steps_at_fork = g_steps;
  int saved = errno;
  if (g_in_fork) ++g_nested;
  pid_t pid = fork();
  if (pid == 0) _exit(kChildStatus);
  if (pid < 0) {
    if (!g_handler_fail) g_handler_fail = 1;
  } else {
    int status;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid || !WIFEXITED(status) || WEXITSTATUS(status) != kChildStatus) {
      if (!g_handler_fail) g_handler_fail = 2;
    }
  }
  if (++g_forks >= kHandlerForks) {
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);  // async-signal-safe; stops further signals
  }
  errno = saved;
}

// Mallocs and frees mixed sizes, with contents checked, until the handler has forked enough;
// with `fork_too`, also forks from the main loop. Returns the main loop's forks.
static int run(int fork_too, const char* variant) {
  enum { kSlots = 128 };
  void* slots[kSlots] = {0};
  size_t sizes[kSlots] = {0};
  uint64_t rng = 99;
  uint64_t tag = 0;
  int main_forks = 0;
  g_forks = 0;
  g_nested = 0;
  set_timer(kIntervalUs);
  double deadline = scen_now() + 20;
  while (g_forks < kHandlerForks) {
    SCEN_CHECK(scen_now() < deadline, "%s: only %d handler forks in 20 s", variant, (int)g_forks);
    int i = (int)(scen_rand(&rng) % kSlots);
    if (slots[i] != NULL) {
      size_t bad = scen_check(slots[i], sizes[i], (uint64_t)i + tag);
      SCEN_CHECK(bad == sizes[i], "%s: block of %zu bytes damaged at %zu", variant, sizes[i], bad);
      free(slots[i]);
    }
    sizes[i] = scen_mixed_size(&rng);
    slots[i] = malloc(sizes[i]);
    SCEN_CHECK(slots[i] != NULL, "%s: malloc(%zu) failed", variant, sizes[i]);
    scen_fill(slots[i], sizes[i], (uint64_t)i + tag);
    ++g_steps;
    if (fork_too && scen_rand(&rng) % 4 == 0) {
      g_in_fork = 1;
      pid_t pid = fork();
      if (pid == 0) _exit(0);
      g_in_fork = 0;
      SCEN_CHECK(pid > 0, "%s: fork: %m", variant);
      int status;
      pid_t r;
      while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
      }
      SCEN_CHECK(r == pid, "%s: waitpid: %m", variant);
      scen_expect_exit(status, 0, "main loop's child");
      ++main_forks;
    }
  }
  SCEN_CHECK(g_handler_fail == 0, "%s: the handler's %s failed", variant,
             g_handler_fail == 1 ? "fork" : "child");
  for (int i = 0; i < kSlots; ++i) free(slots[i]);
  return main_forks;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  SCEN_CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction: %m");

  run(0, "handler");
  scen_note("handler: %d forks from SIGALRM while the main loop allocated", (int)g_forks);

  // The handler must land in the main loop's fork() at least once: keep going a little while
  // until it has (it lands there in about a third of the signals).
  int main_forks = 0;
  int nested = 0;
  int handler_forks = 0;
  double until = scen_now() + 5;
  do {
    main_forks += run(1, "nested");
    nested += g_nested;
    handler_forks += g_forks;
  } while (nested < 5 && scen_now() < until);
  SCEN_CHECK(nested > 0, "nested: the handler never interrupted fork() (%d main forks)",
             main_forks);
  scen_note("nested: %d handler forks, %d of them during the main loop's %d forks", handler_forks,
            nested, main_forks);
  scen_note("ok");
  return 0;
}
