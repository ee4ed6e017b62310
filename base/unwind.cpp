// The stack walks of base/unwind.h.
#include "base/unwind.h"

// Local unwinding only: the _UL* entry points, which need no address-space machinery.
#define UNW_LOCAL_ONLY
#include <fcntl.h>
#include <libunwind.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "base/clock.h"
#include "base/lock.h"
#include "base/os.h"

namespace pg {

namespace {

// ---- libunwind's descriptors ----

enum PipeState : int {
  kUnprobed,  // libunwind not used yet
  kProbing,   // the first walk is under way (one thread makes it)
  kVerified,  // its pipe is at g_pipe.fd, identity g_pipe.dev/ino
  kUnsafe,    // its descriptors are not (or no longer) its pipe: no walks
};
std::atomic<int> g_pipe_state{kUnprobed};
struct PipeId {
  int fd[2] = {-1, -1};
  uint64_t dev = 0, ino = 0;
};
PipeId g_pipe;
bool is_our_pipe_end(int fd, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) return false;
  int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
  if (fl < 0 || (fl & O_NONBLOCK) == 0 || fdfl < 0 || (fdfl & FD_CLOEXEC) == 0) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

// A child of vfork (posix_spawn's, CPython's subprocess) shares this memory, the state above
// included, but has a descriptor table of its own: its closing the pipe's numbers (closefrom
// before exec) says nothing of the parent's pipe. g_pipe_pid is the process whose table holds the
// pipe (set when verified, and anew in a fork child, which gets a copy of it); a close in another
// process sharing the memory marks only that process (g_closer_pid) as unable to walk.
std::atomic<int> g_pipe_pid{0};
std::atomic<int> g_closer_pid{0};

// Walks since the last full check of the pipe (pipe_safe).
std::atomic<uint32_t> g_walks_unchecked{0};
constexpr uint32_t kCheckEvery = 1024;

// True when libunwind's descriptors are still its pipe: known to be unless a close reported by
// unwind_descriptors_closing() took them, checked with system calls every kCheckEvery walks.
bool pipe_safe() {
  int state = g_pipe_state.load(std::memory_order_acquire);
  if (state == kVerified) {
    if (g_walks_unchecked.fetch_add(1, std::memory_order_relaxed) % kCheckEvery != 0) return true;
    uint64_t d0, i0, d1, i1;
    if (is_our_pipe_end(g_pipe.fd[0], &d0, &i0) && is_our_pipe_end(g_pipe.fd[1], &d1, &i1) &&
        d0 == g_pipe.dev && i0 == g_pipe.ino && d1 == g_pipe.dev && i1 == g_pipe.ino) {
      return true;
    }
    g_pipe_state.store(kUnsafe, std::memory_order_release);
    return false;
  }
  return false;
}

// How long a walk waits for another thread's first walk to be over (guarded()).
constexpr int64_t kProbeWaitNs = 200 * 1000 * 1000;

// Descriptors below this are left to the program: libunwind's pipe is placed at or above it.
constexpr int kPipeFloor = 100;

// The first walk: under kProbing (the caller won the race to it). pipe2 takes the two lowest free
// descriptors. So that these are not the low numbers programs expect their own open() to return
// (a test suite that checks which number its first file gets would see 5 instead of 3), every
// free descriptor below kPipeFloor (or half the descriptor limit, if that is lower) is held open
// for the moment of the walk; the two lowest free ones above are then where the pipe goes,
// which is checked afterwards: they must be one pipe.
int first_walk(void** frames, int max) {
  int floor = kPipeFloor;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur / 2 < static_cast<rlim_t>(floor)) {
    floor = static_cast<int>(rl.rlim_cur / 2);
  }
  int held[kPipeFloor];
  int nheld = 0;
  int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int a = -1, b = -1;
  if (probe >= 0) {
    // Fill the free numbers from the bottom until one at or above the floor comes up: that one
    // and the next free one are the pipe's.
    int fd = probe;
    while (fd >= 0 && fd < floor && nheld < kPipeFloor) {
      held[nheld++] = fd;
      fd = fcntl(probe, F_DUPFD_CLOEXEC, 0);
    }
    a = fd;  // open now: probe itself, or the last duplicate
    b = a >= 0 ? fcntl(a, F_DUPFD_CLOEXEC, 0) : -1;
    if (b >= 0) close(b);
    if (a >= 0) close(a);
  }
  int n = unw_backtrace(frames, max);
  for (int i = 0; i < nheld; ++i) close(held[i]);
  uint64_t d0, i0, d1, i1;
  if (a >= 0 && b >= 0 && is_our_pipe_end(a, &d0, &i0) && is_our_pipe_end(b, &d1, &i1) &&
      d0 == d1 && i0 == i1) {
    g_pipe.fd[0] = a;
    g_pipe.fd[1] = b;
    g_pipe.dev = d0;
    g_pipe.ino = i0;
    g_pipe_pid.store(os::process_id(), std::memory_order_relaxed);
    g_pipe_state.store(kVerified, std::memory_order_release);
    return n;
  }
  // Not where expected (another thread opened descriptors meanwhile, or libunwind was used before
  // us): its descriptors are unknown, so it is not used again.
  g_pipe_state.store(kUnsafe, std::memory_order_release);
  return n;
}

// ---- The fork gate ----

std::atomic<int> g_inflight{0};
std::atomic<bool> g_closed{false};
__thread int t_walking __attribute__((tls_model("initial-exec"))) = 0;

// Enters a walk; false when the gate is closed by this thread itself (a fork handler's own
// allocation: no walk then).
bool enter() {
  for (;;) {
    while (g_closed.load(std::memory_order_acquire)) {
      // This thread is the one forking (an allocation between its fork handlers), or was
      // interrupted inside a walk by the handler that forks: no walk, rather than wait for itself.
      if (t_walking > 0 || g_fork_owner.load(std::memory_order_relaxed) == pthread_self()) {
        return false;
      }
      sched_yield();
    }
    // t_walking counts this thread's part of g_inflight, and is raised before it and lowered
    // after it: a handler that forks between the two sees at least this thread's part, so that
    // it never waits for its own thread (it once did, interrupted just after the add: a hang).
    // The price is that in those two windows it may wait for one walk of another thread too few.
    ++t_walking;
    g_inflight.fetch_add(1, std::memory_order_acq_rel);
    if (!g_closed.load(std::memory_order_acquire)) return true;
    g_inflight.fetch_sub(1, std::memory_order_acq_rel);
    --t_walking;
  }
}

void leave() {
  g_inflight.fetch_sub(1, std::memory_order_acq_rel);
  --t_walking;
}

// The walk proper, with both guards.
template <typename Walk>
int guarded(uintptr_t* out, int max, Walk walk) {
  os::SavedErrno keep;  // libunwind's pipe and fstat may set it; we run inside malloc and free
  if (g_pipe_state.load(std::memory_order_acquire) == kUnsafe) return 0;
  int closer = g_closer_pid.load(std::memory_order_acquire);
  if (closer != 0 && closer == os::process_id()) return 0;  // a vfork child that closed them
  if (!enter()) return 0;
  int n = 0;
  int expected = kUnprobed;
  if (g_pipe_state.load(std::memory_order_acquire) == kUnprobed &&
      g_pipe_state.compare_exchange_strong(expected, kProbing, std::memory_order_acq_rel)) {
    // The first walk of all is a plain one (unw_backtrace), whichever kind was asked for: it
    // opens libunwind's pipe where we can see it. Then the one asked for, if it was not that.
    void* frames[64];
    first_walk(frames, 64);
  } else if (g_pipe_state.load(std::memory_order_acquire) == kProbing && t_walking == 1) {
    // Another thread is making the first walk of all: wait for it rather than return no stack
    // (threads of a program often report at once, at a limit, and the first record would name
    // none). A while at most: that thread may be waiting for a lock this one holds. Not in a
    // walk interrupted by a signal handler (t_walking > 1): that may be the first walk itself.
    int64_t deadline = monotonic_ns() + kProbeWaitNs;
    while (g_pipe_state.load(std::memory_order_acquire) == kProbing && monotonic_ns() < deadline) {
      sched_yield();
    }
  }
  if (pipe_safe()) n = walk(out, max);
  leave();
  return n;
}

}  // namespace

int unwind_here(uintptr_t* out, int max) {
  return guarded(out, max, [](uintptr_t* o, int m) {
    void* frames[128];
    if (m > 128) m = 128;
    int n = unw_backtrace(frames, m);
    for (int i = 0; i < n; ++i) o[i] = reinterpret_cast<uintptr_t>(frames[i]);
    return n;
  });
}

void unwind_descriptors_closing(unsigned lo, unsigned hi) {
  if (g_pipe_state.load(std::memory_order_acquire) != kVerified) return;
  for (int fd : g_pipe.fd) {
    if (fd >= 0 && static_cast<unsigned>(fd) >= lo && static_cast<unsigned>(fd) <= hi) {
      int self = os::process_id();
      if (self != g_pipe_pid.load(std::memory_order_relaxed)) {
        g_closer_pid.store(self, std::memory_order_release);  // its own table: not ours
        return;
      }
      g_pipe_state.store(kUnsafe, std::memory_order_release);
      // A walk already past its check may still use the pipe: let it finish before the
      // descriptor goes (unless this thread is inside one itself, interrupted by a handler).
      while (g_inflight.load(std::memory_order_acquire) > t_walking) sched_yield();
      return;
    }
  }
}

bool unwind_available() {
  return g_pipe_state.load(std::memory_order_acquire) != kUnsafe;
}

int unwind_context(const void* ucontext, uintptr_t* out, int max) {
  return guarded(out, max, [ucontext](uintptr_t* o, int m) {
    unw_cursor_t cursor;
    unw_context_t* uc = static_cast<unw_context_t*>(const_cast<void*>(ucontext));
    if (unw_init_local2(&cursor, uc, UNW_INIT_SIGNAL_FRAME) != 0) return 0;
    int n = 0;
    while (n < m) {
      unw_word_t ip = 0;
      if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
      o[n++] = static_cast<uintptr_t>(ip);
      if (unw_step(&cursor) <= 0) break;
    }
    return n;
  });
}

void unwind_close_for_fork() {
  g_closed.store(true, std::memory_order_release);
  // Walks in flight finish (they hold none of poolguard's locks, which the forking thread holds
  // now); one this thread was interrupted in by the handler that forks cannot, and is not waited
  // for: it goes on where it was, in the parent and in the child alike.
  while (g_inflight.load(std::memory_order_acquire) > t_walking) sched_yield();
}

void unwind_open_after_fork() {
  // In the child, its copy of the pipe is its own from now on (in the parent nothing changes).
  if (g_pipe_pid.load(std::memory_order_relaxed) != 0) {
    g_pipe_pid.store(os::process_id(), std::memory_order_relaxed);
  }
  g_closed.store(false, std::memory_order_release);
}

}  // namespace pg
