// Stopping the world (track/stop_world.h): the stop signal's handler, the threads' listing and
// status, and the state shared between the scanner and the handlers.
#include "track/stop_world.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/clock.h"
#include "base/os.h"

namespace pg::leak {

namespace {

constexpr uintptr_t kWord = sizeof(uintptr_t);
constexpr int64_t kStopTimeoutNs = 200 * 1000 * 1000;
constexpr int64_t kWaitSliceNs = 10 * 1000 * 1000;
// The high half of the sival_ptr our signals carry; the low half is the scan's generation.
constexpr uintptr_t kSignalTag = 0x70676c6b;  // "pglk"

// Shared between the scanner and the handlers, accessed with __atomic builtins.
//   g_gen       generation of the scan stopping threads now; 0 between scans. A handler whose
//               signal carries another generation (it arrived after its scan gave up on it, or
//               after the scan ended) returns at once. Also the futex the stopped threads wait on.
//   g_inside    handlers between their look at g_gen and their last use of g_slots: the scanner
//               unmaps the slots only once it has set g_gen to 0 and seen g_inside at 0.
//   g_arrived   threads that answered this generation (a futex the scanner waits on).
uint32_t g_gen = 0;
uint32_t g_inside = 0;
uint32_t g_arrived = 0;
ThreadSlot* g_slots = nullptr;
size_t g_nslots = 0;

// The scanner's own state (one stop at a time: leak_scan's scan lock).
//   g_previous   the action our handler replaced, put back at the end of a scan unless a stop
//                signal may still be pending: it would then meet that action, and the default
//                one of a real-time signal ends the process. Until then our handler stays
//                installed, passes signals that are not ours on to g_previous, and returns at
//                once from ours (their generation is over).
//   g_suspects   threads sent a stop signal that they did not answer (one that blocked it just
//                after its status was read, one exiting: glibc blocks signals there). Each scan
//                drops those that have exited or no longer have it pending (SigPnd); when none
//                is left the action is put back. More than fit: the handler stays for good.
constexpr size_t kMaxSuspects = 256;
struct sigaction g_previous;
int g_installed_signal = 0;  // the signal our handler was installed on, 0 when none
int32_t g_suspects[kMaxSuspects];
size_t g_nsuspects = 0;
bool g_suspects_overflowed = false;
uint32_t g_last_gen = 0;

long futex(uint32_t* word, int op, uint32_t value, const timespec* timeout) {
  return syscall(SYS_futex, word, op, value, timeout, nullptr, 0);
}

bool is_ours(const siginfo_t* info) {
  if (info->si_code != SI_QUEUE || info->si_pid != os::process_id()) return false;
  uintptr_t v = reinterpret_cast<uintptr_t>(info->si_value.sival_ptr);
  return (v >> 32) == kSignalTag;
}

ThreadSlot* find_slot(ThreadSlot* slots, size_t n, int32_t tid) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (slots[mid].tid < tid) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < n && slots[lo].tid == tid ? &slots[lo] : nullptr;
}

// Copies the interrupted thread's registers into its slot.
void save_context(const void* context, ThreadSlot* slot) {
  const ucontext_t* uc = static_cast<const ucontext_t*>(context);
  uint32_t n = 0;
#if defined(__x86_64__)
  for (int i = 0; i < NGREG && n < kRegWords; ++i) {
    slot->words[n++] = static_cast<uintptr_t>(uc->uc_mcontext.gregs[i]);
  }
  // Compilers copy pointers through SSE registers (struct copies, memcpy inlined).
  if (uc->uc_mcontext.fpregs != nullptr) {
    for (int i = 0; i < 16 && n + 2 <= kRegWords; ++i) {
      const uint32_t* e = uc->uc_mcontext.fpregs->_xmm[i].element;
      slot->words[n++] = uintptr_t{e[0]} | uintptr_t{e[1]} << 32;
      slot->words[n++] = uintptr_t{e[2]} | uintptr_t{e[3]} << 32;
    }
  }
  slot->sp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  for (int i = 0; i < 31; ++i) slot->words[n++] = uc->uc_mcontext.regs[i];
  slot->words[n++] = uc->uc_mcontext.sp;
  slot->sp = uc->uc_mcontext.sp;
#else
  // Elsewhere: the machine context as raw words, and the handler's own frame as the stack
  // pointer (lower than the interrupted one, so the signal frame is scanned too).
  const unsigned char* raw = reinterpret_cast<const unsigned char*>(&uc->uc_mcontext);
  for (size_t off = 0; off + kWord <= sizeof uc->uc_mcontext && n < kRegWords; off += kWord) {
    uintptr_t w;
    for (size_t b = 0; b < kWord; ++b) reinterpret_cast<unsigned char*>(&w)[b] = raw[off + b];
    slot->words[n++] = w;
  }
  slot->sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
#endif
  slot->nwords = n;
}

// Hands a signal that is not ours to the action it would have had without us.
void pass_on(int sig, siginfo_t* info, void* context) {
  if (os::call_previous_handler(&g_previous, sig, info, context)) return;
  if ((g_previous.sa_flags & SA_SIGINFO) == 0 && g_previous.sa_handler == SIG_IGN) return;
  // The default action of a real-time signal ends the process: put it back and send the signal
  // again; it is delivered when this handler returns.
  os::restore_default_action(sig);
  raise(sig);
}

// The stop handler. Async-signal-safe: atomics and raw system calls only, errno kept.
void on_stop_signal(int sig, siginfo_t* info, void* context) {
  if (!is_ours(info)) {
    pass_on(sig, info, context);
    return;
  }
  int saved_errno = errno;
  uint32_t gen = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(info->si_value.sival_ptr));
  __atomic_fetch_add(&g_inside, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&g_gen, __ATOMIC_SEQ_CST) == gen) {
    ThreadSlot* slots = __atomic_load_n(&g_slots, __ATOMIC_RELAXED);
    size_t n = __atomic_load_n(&g_nslots, __ATOMIC_RELAXED);
    ThreadSlot* slot = find_slot(slots, n, os::thread_id());
    if (slot != nullptr && __atomic_load_n(&slot->arrived, __ATOMIC_RELAXED) == 0) {
      save_context(context, slot);
      __atomic_store_n(&slot->arrived, 1, __ATOMIC_RELEASE);
      __atomic_fetch_add(&g_arrived, 1, __ATOMIC_RELEASE);
      futex(&g_arrived, FUTEX_WAKE_PRIVATE, 1, nullptr);
      // Stopped: wait for the scanner to end this generation.
      while (__atomic_load_n(&g_gen, __ATOMIC_ACQUIRE) == gen) {
        futex(&g_gen, FUTEX_WAIT_PRIVATE, gen, nullptr);
      }
    }
  }
  __atomic_fetch_sub(&g_inside, 1, __ATOMIC_RELEASE);
  errno = saved_errno;
}

// ---- Listing the threads ----

int32_t parse_decimal(const char* s) {
  int32_t v = 0;
  if (*s == '\0') return -1;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

// Lists the tids of /proc/self/task, except `self`, into a slot array grown as needed. false
// only when memory is refused; a directory that cannot be read lists what it could (maybe
// nothing: the other threads then run on, and their stacks are scanned whole).
bool list_threads(Work* work, int32_t self, ThreadSlot** slots, size_t* count) {
  size_t cap = 64;
  ThreadSlot* s = static_cast<ThreadSlot*>(work->map(cap * sizeof(ThreadSlot)));
  *slots = s;
  *count = 0;
  if (s == nullptr) return false;
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return true;
  size_t n = 0;
  bool ok = true;
  alignas(8) char buf[4096];
  while (ok) {
    long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (long off = 0; off < got;) {
      const struct dirent64* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      int32_t tid = parse_decimal(d->d_name);
      if (tid <= 0 || tid == self) continue;
      if (n == cap) {
        auto* bigger = static_cast<ThreadSlot*>(work->map(2 * cap * sizeof(ThreadSlot)));
        if (bigger == nullptr) {
          ok = false;
          break;
        }
        memcpy(bigger, s, n * sizeof(ThreadSlot));
        work->unmap(s);
        s = bigger;
        cap *= 2;
      }
      s[n++].tid = tid;
    }
  }
  close(fd);
  *slots = s;
  *count = n;
  return ok;
}

// Whether bit sig-1 of the hexadecimal mask after `key` in a status text is set.
bool mask_has(const char* text, const char* key, int sig) {
  const char* p = strstr(text, key);
  if (p == nullptr) return false;
  p += strlen(key);
  while (*p == ' ' || *p == '\t') ++p;
  uint64_t bits = 0;
  for (;; ++p) {
    char c = *p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) break;
    bits = bits << 4 | static_cast<uint64_t>(d);
  }
  return sig <= 64 && ((bits >> (sig - 1)) & 1) != 0;
}

// Reads /proc/self/task/TID/status. false when the thread is gone (no such file, or a zombie);
// *blocked says whether `sig` is in the thread's blocked set (SigBlk), *pending whether one is
// pending for it (SigPnd, its own queue, where tgkill puts them). A file that cannot be read
// otherwise says nothing sure: the thread is taken as there, not blocking, with one pending.
bool thread_status(int32_t tid, int sig, bool* blocked, bool* pending) {
  *blocked = false;
  *pending = true;
  char path[64] = "/proc/self/task/";
  size_t len = strlen(path);
  char digits[16];
  int nd = 0;
  for (uint32_t v = static_cast<uint32_t>(tid); v != 0 || nd == 0; v /= 10) {
    digits[nd++] = static_cast<char>('0' + v % 10);
  }
  while (nd > 0) path[len++] = digits[--nd];
  memcpy(path + len, "/status", 8);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT && errno != ESRCH;
  char buf[4096];
  size_t have = 0;
  for (;;) {
    ssize_t got = read(fd, buf + have, sizeof buf - 1 - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += static_cast<size_t>(got);
    if (have == sizeof buf - 1) break;
  }
  close(fd);
  buf[have] = '\0';
  const char* state = strstr(buf, "\nState:");
  if (state != nullptr) {
    state += 7;
    while (*state == ' ' || *state == '\t') ++state;
    if (*state == 'Z' || *state == 'X') return false;
  }
  *blocked = mask_has(buf, "\nSigBlk:", sig);
  *pending = mask_has(buf, "\nSigPnd:", sig);
  return true;
}

}  // namespace

// Step 1. Stops every thread it can; fills threads, threads_stopped and threads_unstopped.
// false only when memory is refused (nothing is stopped then).
bool stop_world(Work* work, World* w, ScanStats* st) {
  int32_t self = os::thread_id();
  if (!list_threads(work, self, &w->slots, &w->count)) return false;
  w->sig = SIGRTMAX - 3;
  uint32_t to_send = 0;
  for (size_t i = 0; i < w->count; ++i) {
    ThreadSlot& s = w->slots[i];
    bool blocked, pending;
    if (!thread_status(s.tid, w->sig, &blocked, &pending)) {
      s.state = kGone;
    } else if (blocked) {
      s.state = kBlocked;
    } else {
      s.state = kToSignal;
      ++to_send;
    }
  }
  std::sort(w->slots, w->slots + w->count,
            [](const ThreadSlot& a, const ThreadSlot& b) { return a.tid < b.tid; });

  // Is our handler still the one installed? (The program may have replaced it since.)
  struct sigaction current {};
  bool ours = g_installed_signal == w->sig && sigaction(w->sig, nullptr, &current) == 0 &&
              (current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == on_stop_signal;
  if (to_send > 0 && !ours) {
    struct sigaction sa {};
    sa.sa_sigaction = on_stop_signal;
    // SA_RESTART: the system calls the signal interrupts go on afterwards. Every signal blocked
    // while stopped: the thread runs no code of its own until the scan is over.
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(w->sig, &sa, &g_previous) == 0) {
      g_installed_signal = w->sig;
    } else {
      to_send = 0;
    }
  }

  w->gen = ++g_last_gen;
  if (w->gen == 0) w->gen = ++g_last_gen;
  __atomic_store_n(&g_slots, w->slots, __ATOMIC_RELAXED);
  __atomic_store_n(&g_nslots, w->count, __ATOMIC_RELAXED);
  __atomic_store_n(&g_arrived, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&g_gen, w->gen, __ATOMIC_SEQ_CST);

  int pid = os::process_id();
  uint32_t sent = 0;
  for (size_t i = 0; i < w->count && to_send > 0; ++i) {
    ThreadSlot& s = w->slots[i];
    if (s.state != kToSignal) continue;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = w->sig;
    si.si_code = SI_QUEUE;
    si.si_pid = pid;
    si.si_uid = getuid();
    si.si_value.sival_ptr = reinterpret_cast<void*>(kSignalTag << 32 | w->gen);
    long rc;
    do {
      rc = syscall(SYS_rt_tgsigqueueinfo, pid, s.tid, w->sig, &si);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      s.state = kSent;
      ++sent;
    } else {
      s.state = errno == ESRCH ? kGone : kUnstopped;
    }
  }

  // Wait for the answers, at most kStopTimeoutNs in all.
  int64_t deadline = monotonic_ns() + kStopTimeoutNs;
  for (;;) {
    uint32_t arrived = __atomic_load_n(&g_arrived, __ATOMIC_ACQUIRE);
    if (arrived >= sent) break;
    int64_t left = deadline - monotonic_ns();
    if (left <= 0) break;
    if (left > kWaitSliceNs) left = kWaitSliceNs;
    timespec ts{0, static_cast<long>(left)};
    futex(&g_arrived, FUTEX_WAIT_PRIVATE, arrived, &ts);
  }

  st->threads = 1;
  for (size_t i = 0; i < w->count; ++i) {
    ThreadSlot& s = w->slots[i];
    if (s.state == kGone) continue;
    ++st->threads;
    if (s.state == kSent && __atomic_load_n(&s.arrived, __ATOMIC_ACQUIRE) != 0) {
      s.state = kStopped;
      ++st->threads_stopped;
    } else {
      // A thread that answers later waits for the end of the scan anyway, but its registers
      // are not used: its whole stack is scanned like that of a thread that never answered.
      if (s.state == kSent) s.state = kLate;
      ++st->threads_unstopped;
    }
  }
  return true;
}

// Step 5. Lets the stopped threads go; afterwards no handler touches the slots.
void resume_world(World* w) {
  if (w->gen == 0) return;
  __atomic_store_n(&g_gen, 0, __ATOMIC_SEQ_CST);
  futex(&g_gen, FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr);
  while (__atomic_load_n(&g_inside, __ATOMIC_SEQ_CST) != 0) sched_yield();
  __atomic_store_n(&g_slots, nullptr, __ATOMIC_RELAXED);
  __atomic_store_n(&g_nslots, 0, __ATOMIC_RELAXED);
  if (g_installed_signal == 0) return;

  // Put the old action back unless one of our signals may still be pending (g_suspects).
  for (size_t i = 0; i < w->count; ++i) {
    if (w->slots[i].state != kLate) continue;
    if (g_nsuspects == kMaxSuspects) {
      g_suspects_overflowed = true;
      break;
    }
    g_suspects[g_nsuspects++] = w->slots[i].tid;
  }
  size_t kept = 0;
  for (size_t i = 0; i < g_nsuspects; ++i) {
    bool blocked, pending;
    if (thread_status(g_suspects[i], g_installed_signal, &blocked, &pending) && pending) {
      g_suspects[kept++] = g_suspects[i];
    }
  }
  g_nsuspects = kept;
  if (g_nsuspects == 0 && !g_suspects_overflowed) {
    // Only if ours is still there: the program may have installed its own since.
    struct sigaction current {};
    if (sigaction(g_installed_signal, nullptr, &current) == 0 &&
        (current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == on_stop_signal) {
      sigaction(g_installed_signal, &g_previous, nullptr);
    }
    g_installed_signal = 0;
  }
}

}  // namespace pg::leak
