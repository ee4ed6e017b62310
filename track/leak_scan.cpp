// The conservative reachability scan of POOLGUARD_LEAKS (what it decides: track/leak_scan.h).
//
// One call goes through five steps, and allocates nothing through malloc (the allocator is
// running, and its locks may be held by the threads this code stops):
//   1. Stop the world. /proc/self/task lists the threads; every other thread is sent a real-time
//      signal (SIGRTMAX-3) whose handler copies its registers and stack pointer into the thread's
//      slot and then waits on a futex until step 5. A thread that blocks the signal, or does not
//      answer within 200 ms, runs on: nothing marks its stack, which is then scanned whole like
//      any other writable mapping.
//   2. Read /proc/self/maps (after the stop, so that the stopped threads cannot change it) into
//      the root regions: the mappings both readable and writable, less the kernel's pages
//      ([vvar], [vdso], [vsyscall]) and poolguard's own statistics segments.
//   3. Mark. Every aligned word of the roots (the regions less the blocks, less the skips below,
//      and the saved registers) that points into an unreached block makes it reachable and pushes
//      it on the mark stack; blocks are popped and scanned in turn until the stack is empty.
//   4. Classify what is left, one flood per leaked block (classify() below).
//   5. Release the threads and unmap the work memory.
//
// Work memory is mmap'ed, unmapped before returning, and never a root: it holds copies of root
// memory, saved registers and block indices, which would otherwise make every block reachable.
//   slots    one ThreadSlot per other thread, sorted by tid (the handler binary-searches it);
//   bounce   root memory is read through this buffer with process_vm_readv(), so that a page that
//            cannot be read (a file mapping past the end of its file raises SIGBUS; device
//            mappings, or memory a running thread just unmapped, may refuse) costs an error code
//            instead of a signal. Where process_vm_readv is refused (seccomp) roots are read in
//            place, file mappings only up to the end of their file, device files not at all;
//   maps     the text of /proc/self/maps, and the root regions parsed from it;
//   stacks   the stack pointer of each thread whose stack is scanned from its sp up;
//   skips    sorted, disjoint ranges never scanned as roots: the caller's `exclude`, the block
//            array itself (it holds the address of every block), the work memory, and the part
//            of each of those stacks below its stack pointer (dead frames hold stale pointers);
//   stack    the mark stack: block indices. A block is pushed only when its state changes from
//            kUnreached (to kReachable while marking, to kDirect or kIndirect while classifying),
//            so n entries always suffice and it never grows; it is mapped MAP_NORESERVE, so only
//            the part used costs memory.
#include "track/leak_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/lock.h"
#include "base/maps.h"
#include "base/os.h"

// The scan reads words that a sanitizer would call races (other threads' memory) or poisoned
// (redzones in the roots); they are only compared with block bounds.
#define PG_LEAK_NO_SANITIZE __attribute__((no_sanitize("address", "thread", "undefined")))

namespace pg::leak {

namespace {

constexpr uintptr_t kWord = sizeof(uintptr_t);
constexpr size_t kNone = ~size_t{0};
// Below a stopped thread's sp, the x86-64 ABI lets a leaf function keep data (the red zone).
constexpr uintptr_t kRedZone = 128;
constexpr int64_t kStopTimeoutNs = 200 * 1000 * 1000;
constexpr int64_t kWaitSliceNs = 10 * 1000 * 1000;
constexpr size_t kBounceBytes = size_t{64} << 10;
constexpr size_t kRegWords = 64;
// The high half of the sival_ptr our signals carry; the low half is the scan's generation.
constexpr uintptr_t kSignalTag = 0x70676c6b;  // "pglk"
constexpr size_t kMaxWork = 12;
// The frames of the scan itself, below the scanning thread's stack pointer (a bound used only
// when another thread's stack pointer lies just below ours, in the same mapping).
constexpr uintptr_t kOwnFrames = uintptr_t{64} << 10;

uintptr_t align_up(uintptr_t v, uintptr_t a) {
  return (v + a - 1) & ~(a - 1);
}
uintptr_t align_down(uintptr_t v, uintptr_t a) {
  return v & ~(a - 1);
}

// ---- Stopping the other threads ----

// What the scanner did with a thread (ThreadSlot::state).
enum SlotState : uint32_t {
  kToSignal = 0,
  kSent,       // signalled, waiting for its answer
  kStopped,    // answered in time: registers and sp in the slot
  kLate,       // signalled, no answer in time: stack scanned whole
  kBlocked,    // blocks the signal (SigBlk in its status): not signalled, stack scanned whole
  kGone,       // exited since it was listed
  kUnstopped,  // the signal could not be sent: stack scanned whole
};

// One other thread. The scanner fills tid and state before the stop; the thread's handler fills
// sp, nwords and words, then sets `arrived` (release). The slots are read by the scanner only
// after it saw `arrived`, and unmapped only once no handler is inside (g_inside).
struct ThreadSlot {
  int32_t tid;
  uint32_t state;
  uint32_t arrived;  // 0, then 1 (atomic)
  uint32_t nwords;
  uintptr_t sp;
  uintptr_t words[kRegWords];  // general registers, and on x86-64 the SSE registers
};

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

// The scanner's own state, under g_scan_lock.
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
SpinLock g_scan_lock;  // one scan at a time

long futex(uint32_t* word, int op, uint32_t value, const timespec* timeout) {
  return syscall(SYS_futex, word, op, value, timeout, nullptr, 0);
}

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
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
  const struct sigaction& prev = g_previous;
  if ((prev.sa_flags & SA_SIGINFO) != 0) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler == SIG_IGN) return;
  if (prev.sa_handler != SIG_DFL) {
    prev.sa_handler(sig);
    return;
  }
  // The default action of a real-time signal ends the process: put it back and send the signal
  // again; it is delivered when this handler returns.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
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

// ---- Work memory ----

// The mappings made for one scan: they are unmapped at the end and excluded from the roots.
struct Work {
  Range ranges[kMaxWork];
  size_t count = 0;

  void* map(size_t bytes, bool noreserve = false) {
    if (count == kMaxWork) return nullptr;
    bytes = align_up(bytes == 0 ? 1 : bytes, os::page_size());
    void* p = os::map(bytes, noreserve);
    if (p == nullptr) return nullptr;
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    ranges[count++] = Range{a, a + bytes};
    return p;
  }
  // Unmaps one mapping made by map() (only before /proc/self/maps is read: the roots come from
  // that snapshot, so nothing it lists may disappear afterwards).
  void unmap(void* p) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    for (size_t i = 0; i < count; ++i) {
      if (ranges[i].lo != a) continue;
      os::unmap(p, ranges[i].hi - ranges[i].lo);
      ranges[i] = ranges[--count];
      return;
    }
  }
  void release_all() {
    for (size_t i = 0; i < count; ++i) {
      os::unmap(reinterpret_cast<void*>(ranges[i].lo), ranges[i].hi - ranges[i].lo);
    }
    count = 0;
  }
};

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

// The other threads of one scan.
struct World {
  ThreadSlot* slots = nullptr;
  size_t count = 0;
  uint32_t gen = 0;
  int sig = 0;
};

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
  int64_t deadline = now_ns() + kStopTimeoutNs;
  for (;;) {
    uint32_t arrived = __atomic_load_n(&g_arrived, __ATOMIC_ACQUIRE);
    if (arrived >= sent) break;
    int64_t left = deadline - now_ns();
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

// ---- The root regions ----

struct Region {
  uintptr_t lo, hi;
  uint64_t offset;   // in the mapped file
  const char* path;  // into the maps text, not NUL-terminated ("" for anonymous memory)
  size_t path_len;
};

// Reads all of /proc/self/maps into a fresh mapping. The kernel produces the text mapping by
// mapping, read by read, and the buffer is one of those mappings: a buffer that turns out too
// small is replaced and the whole file read again, so that the text comes from one pass during
// which no mapping of ours moved.
bool read_maps(Work* work, char** text, size_t* len) {
  for (size_t cap = size_t{256} << 10; cap <= size_t{1} << 30; cap *= 4) {
    char* buf = static_cast<char*>(work->map(cap, true));
    if (buf == nullptr) return false;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      work->unmap(buf);
      return false;
    }
    size_t have = 0;
    bool ok = true;
    while (have < cap) {
      ssize_t got = read(fd, buf + have, cap - have);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) ok = false;
      if (got <= 0) break;
      have += static_cast<size_t>(got);
    }
    close(fd);
    if (!ok) {
      work->unmap(buf);
      return false;
    }
    if (have < cap) {
      *text = buf;
      *len = have;
      return true;
    }
    work->unmap(buf);
  }
  return false;
}

// Whether a mapping is a root: both readable and writable, and neither the kernel's pages nor our
// statistics segments.
bool to_region(const maps::Mapping& m, Region* r) {
  if (!m.readable() || !m.writable() || m.start >= m.end) return false;
  r->lo = m.start;
  r->hi = m.end;
  r->offset = m.offset;
  r->path = m.path;
  r->path_len = m.path_len;
  if (m.path_starts_with("[vvar") || m.path_starts_with("[vdso") ||
      m.path_starts_with("[vsyscall")) {
    return false;
  }
  return !m.path_starts_with("/dev/shm/poolguard.");
}

// Parses the maps text into regions (in address order, as the kernel lists them).
size_t parse_maps(const char* text, size_t len, Region* out, size_t cap) {
  size_t n = 0;
  const char* end = text + len;
  maps::Mapping m;
  for (const char* p = text; n < cap && maps::next_in_text(&p, end, &m);) {
    if (to_region(m, &out[n])) ++n;
  }
  return n;
}

// For roots read in place (process_vm_readv refused): how far a mapping can be read without a
// fault. Pages wholly past the end of a mapped file raise SIGBUS, and device memory is not ours
// to read, so file mappings are read up to the end of their file (when it can still be found),
// device files not at all (/dev/zero is anonymous memory).
uintptr_t direct_end(const Region& r) {
  if (r.path_len == 0 || r.path[0] != '/') return r.hi;
  static constexpr char kDeleted[] = " (deleted)";
  size_t dl = sizeof kDeleted - 1;
  if (r.path_len >= dl && memcmp(r.path + r.path_len - dl, kDeleted, dl) == 0) return r.lo;
  char path[512];
  if (r.path_len >= sizeof path) return r.lo;
  memcpy(path, r.path, r.path_len);
  path[r.path_len] = '\0';
  if (strcmp(path, "/dev/zero") == 0) return r.hi;
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return r.lo;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size <= r.offset) return r.lo;
  uint64_t readable = align_up(size - r.offset, os::page_size());
  return readable < r.hi - r.lo ? r.lo + readable : r.hi;
}

// Sorts ranges by start and merges those that overlap or touch; drops empty ones. Returns the
// new count.
size_t merge_ranges(Range* r, size_t n) {
  std::sort(r, r + n, [](const Range& a, const Range& b) { return a.lo < b.lo; });
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (r[i].lo >= r[i].hi) continue;
    if (out > 0 && r[i].lo <= r[out - 1].hi) {
      if (r[i].hi > r[out - 1].hi) r[out - 1].hi = r[i].hi;
    } else {
      r[out++] = r[i];
    }
  }
  return out;
}

// Index of the first range in sorted, disjoint r[0..n) that ends after `a` (n when none).
size_t first_range_after(const Range* r, size_t n, uintptr_t a) {
  return static_cast<size_t>(
      std::upper_bound(r, r + n, a, [](uintptr_t v, const Range& x) { return v < x.hi; }) - r);
}

// One end past a block: a pointer to a block of size 0 counts only at its start.
uintptr_t block_end(const ScanBlock& b) {
  return b.start + (b.size == 0 ? 1 : b.size);
}

// Index of the first block that ends after `a` (n when none).
size_t first_block_after(const ScanBlock* blocks, size_t n, uintptr_t a) {
  return static_cast<size_t>(
      std::upper_bound(blocks, blocks + n, a,
                       [](uintptr_t v, const ScanBlock& b) { return v < block_end(b); }) -
      blocks);
}

// ---- Marking ----

struct Scanner {
  ScanBlock* blocks;
  size_t n;
  uintptr_t lo, hi;  // from the first block's start to the last one's end
  size_t* stack;     // the mark stack (n entries)
  size_t top = 0;
  const Range* skips;
  size_t nskips;
  char* bounce;
  bool direct;  // read roots in place (process_vm_readv refused)
  int pid;
  ScanStats* st;

  // The block holding address w, or kNone. Blocks are sorted and disjoint: binary search for
  // the last one starting at or below w.
  size_t find(uintptr_t w) const {
    if (w - lo >= hi - lo) return kNone;
    size_t a = 0, b = n;
    while (a < b) {
      size_t mid = a + (b - a) / 2;
      if (blocks[mid].start <= w) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    if (a == 0) return kNone;
    const ScanBlock& blk = blocks[a - 1];
    return w - blk.start < block_end(blk) - blk.start ? a - 1 : kNone;
  }

  // Marking: an unreached block that `w` points into becomes reachable and waits on the stack.
  void mark(uintptr_t w) {
    size_t i = find(w);
    if (i == kNone || blocks[i].state != kUnreached) return;
    blocks[i].state = kReachable;
    stack[top++] = i;
  }

  PG_LEAK_NO_SANITIZE void mark_words(const uintptr_t* p, size_t count) {
    for (size_t k = 0; k < count; ++k) mark(p[k]);
  }

  // The aligned words wholly inside [a, b) (memory the caller guarantees: blocks, saved
  // registers).
  static bool word_span(uintptr_t a, uintptr_t b, const uintptr_t** p, size_t* count) {
    uintptr_t first = align_up(a, kWord), last = align_down(b, kWord);
    if (first >= last || b < a) return false;
    *p = reinterpret_cast<const uintptr_t*>(first);
    *count = (last - first) / kWord;
    return true;
  }

  // Scans root memory [a, b), which the maps snapshot shows readable. Through the bounce buffer
  // unless `direct`: a page that cannot be read is skipped.
  void scan_root(uintptr_t a, uintptr_t b) {
    a = align_up(a, kWord);
    b = align_down(b, kWord);
    if (a >= b) return;
    if (direct) {
      mark_words(reinterpret_cast<const uintptr_t*>(a), (b - a) / kWord);
      st->root_bytes += b - a;
      return;
    }
    while (a < b) {
      size_t len = b - a < kBounceBytes ? b - a : kBounceBytes;
      iovec local{bounce, len};
      iovec remote{reinterpret_cast<void*>(a), len};
      ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
      if (got < 0 && errno == EINTR) continue;
      size_t whole = got > 0 ? align_down(static_cast<size_t>(got), kWord) : 0;
      if (whole == 0) {
        a = align_up(a + 1, os::page_size());  // unreadable page: skip it
        continue;
      }
      mark_words(reinterpret_cast<const uintptr_t*>(bounce), whole / kWord);
      st->root_bytes += whole;
      a += whole;
    }
  }

  // Scans [a, b) less the blocks in it.
  void scan_between_blocks(uintptr_t a, uintptr_t b) {
    for (size_t k = first_block_after(blocks, n, a); a < b; ++k) {
      if (k == n || blocks[k].start >= b) {
        scan_root(a, b);
        return;
      }
      if (blocks[k].start > a) scan_root(a, blocks[k].start);
      uintptr_t e = block_end(blocks[k]);
      if (e > a) a = e;
    }
  }

  // Scans one root region less the skips and the blocks in it.
  void scan_region(uintptr_t a, uintptr_t b) {
    for (size_t k = first_range_after(skips, nskips, a); a < b; ++k) {
      if (k == nskips || skips[k].lo >= b) {
        scan_between_blocks(a, b);
        return;
      }
      if (skips[k].lo > a) scan_between_blocks(a, skips[k].lo);
      if (skips[k].hi > a) a = skips[k].hi;
    }
  }

  // Pops and scans reached blocks until the stack is empty.
  void drain() {
    while (top > 0) {
      const ScanBlock& b = blocks[stack[--top]];
      const uintptr_t* p;
      size_t count;
      if (!word_span(b.start, b.start + b.size, &p, &count)) continue;
      mark_words(p, count);
      st->heap_bytes += count * kWord;
    }
  }

  // Step 4. Every block still unreached is leaked. Walking them in address order, each one not
  // yet classified becomes `direct` and is flooded: every unreached block it reaches (but itself)
  // becomes `indirect` and is flooded in turn; a `direct` block met on the way becomes
  // `indirect` without being flooded again (its flood already covered what it reaches), and an
  // `indirect` one is never expanded twice. Each block is pushed at most once, so this is
  // O(blocks + pointers). A chain D->E gives D direct and E indirect whatever their order; a
  // cycle with no way in keeps its lowest block direct; D->A<->B gives D direct.
  PG_LEAK_NO_SANITIZE void classify() {
    for (size_t root = 0; root < n; ++root) {
      if (blocks[root].state != kUnreached) continue;
      blocks[root].state = kDirect;
      stack[top++] = root;
      while (top > 0) {
        const ScanBlock& b = blocks[stack[--top]];
        const uintptr_t* p;
        size_t count;
        if (!word_span(b.start, b.start + b.size, &p, &count)) continue;
        for (size_t k = 0; k < count; ++k) {
          size_t i = find(p[k]);
          if (i == kNone || i == root) continue;
          if (blocks[i].state == kUnreached) {
            blocks[i].state = kIndirect;
            stack[top++] = i;
          } else if (blocks[i].state == kDirect) {
            blocks[i].state = kIndirect;
          }
        }
      }
    }
  }
};

// A stack whose part below the stack pointer is not scanned.
struct StackTop {
  uintptr_t sp;
  uintptr_t red_zone;
  bool current;  // the scanning thread: its own frames are below sp, so always skipped
};

// Steps 2 to 4, with the world stopped. false (states untouched) when /proc/self/maps cannot be
// read or memory is refused.
bool scan_stopped(Work* work, const World& w, ScanBlock* blocks, size_t n, const Range* exclude,
                  size_t n_exclude, uintptr_t my_sp, ScanStats* st) {
  char* bounce = static_cast<char*>(work->map(kBounceBytes));
  if (bounce == nullptr) return false;
  // Is process_vm_readv allowed here (seccomp may refuse it)?
  int pid = os::process_id();
  uintptr_t probe_src = 1, probe_dst = 0;
  iovec pl{&probe_dst, sizeof probe_dst}, pr{&probe_src, sizeof probe_src};
  bool direct = process_vm_readv(pid, &pl, 1, &pr, 1, 0) != sizeof probe_dst || probe_dst != 1;

  char* text;
  size_t len;
  if (!read_maps(work, &text, &len)) return false;
  // From here on nothing of ours is unmapped until the end: the snapshot must stay true.
  size_t lines = 1;
  for (size_t i = 0; i < len; ++i) lines += text[i] == '\n';
  auto* regions = static_cast<Region*>(work->map(lines * sizeof(Region)));
  size_t nstacks_cap = w.count + 1;
  auto* stacks = static_cast<StackTop*>(work->map(nstacks_cap * sizeof(StackTop)));
  size_t skips_cap = n_exclude + 1 + kMaxWork + nstacks_cap;
  auto* skips = static_cast<Range*>(work->map(skips_cap * sizeof(Range)));
  auto* stack = static_cast<size_t*>(work->map(n * sizeof(size_t), true));
  if (regions == nullptr || stacks == nullptr || skips == nullptr || stack == nullptr) {
    return false;
  }
  size_t nregions = parse_maps(text, len, regions, lines);

  // The skips that are not stacks: the caller's, the block array, the work memory (all of it:
  // what was mapped after the snapshot is not in it anyway).
  size_t nskips = 0;
  for (size_t i = 0; i < n_exclude; ++i) skips[nskips++] = exclude[i];
  uintptr_t array = reinterpret_cast<uintptr_t>(blocks);
  skips[nskips++] = Range{array, array + n * sizeof(ScanBlock)};
  for (size_t i = 0; i < work->count; ++i) skips[nskips++] = work->ranges[i];
  nskips = merge_ranges(skips, nskips);

  // The stacks scanned from their stack pointer up: ours, and those of the stopped threads.
  size_t nstacks = 0;
  stacks[nstacks++] = StackTop{my_sp, 0, true};
  for (size_t i = 0; i < w.count; ++i) {
    if (w.slots[i].state == kStopped) stacks[nstacks++] = StackTop{w.slots[i].sp, kRedZone, false};
  }
  std::sort(stacks, stacks + nstacks,
            [](const StackTop& a, const StackTop& b) { return a.sp < b.sp; });

  uintptr_t lo = blocks[0].start, hi = block_end(blocks[n - 1]);
  Scanner s{blocks, n, lo, hi, stack, 0, skips, nskips, bounce, direct, pid, st};

  // Below each stack pointer, the skip runs down to the bottom of its stretch of free root
  // memory: the start of its region, or the end of the block or skip just below. A stack
  // pointer inside a block (a stack allocated with malloc) makes the rest of that block a root.
  // When another thread's stack pointer lies in the same stretch, the stacks share a mapping
  // and nothing is skipped for the upper one, since its skip would hide the lower one's live
  // frames; but the scanning thread always skips the frames of the scan (kOwnFrames).
  size_t nstack_skips = 0;
  Range* stack_skips = skips + nskips;
  for (size_t k = 0; k < nstacks; ++k) {
    const StackTop& t = stacks[k];
    uintptr_t from = t.sp - t.red_zone;
    auto r = std::upper_bound(regions, regions + nregions, t.sp,
                              [](uintptr_t v, const Region& x) { return v < x.lo; });
    if (r == regions || t.sp >= (r - 1)->hi) continue;  // not in a root region
    uintptr_t floor = (r - 1)->lo;
    size_t b = first_block_after(blocks, n, t.sp);
    if (b < n && blocks[b].start <= t.sp) {
      uintptr_t e = block_end(blocks[b]);
      s.scan_root(from > blocks[b].start ? from : blocks[b].start, e);
      ++st->regions;
      continue;
    }
    if (b > 0 && block_end(blocks[b - 1]) > floor) floor = block_end(blocks[b - 1]);
    size_t x = first_range_after(skips, nskips, t.sp);
    if (x < nskips && skips[x].lo <= t.sp) continue;  // inside a skip: nothing to do
    if (x > 0 && skips[x - 1].hi > floor) floor = skips[x - 1].hi;
    if (k > 0 && stacks[k - 1].sp >= floor) {
      if (!t.current) continue;
      if (t.sp > kOwnFrames && t.sp - kOwnFrames > floor) floor = t.sp - kOwnFrames;
    }
    if (from > floor && from <= t.sp) stack_skips[nstack_skips++] = Range{floor, from};
  }
  nskips = merge_ranges(skips, nskips + nstack_skips);
  s.nskips = nskips;

  // Step 3: the roots, then what they reach.
  for (size_t i = 0; i < nregions; ++i) {
    const Region& r = regions[i];
    uintptr_t end = direct ? direct_end(r) : r.hi;
    if (end <= r.lo) continue;
    s.scan_region(r.lo, end);
    ++st->regions;
  }
  for (size_t i = 0; i < w.count; ++i) {
    const ThreadSlot& t = w.slots[i];
    if (t.state != kStopped) continue;
    s.mark_words(t.words, t.nwords);
    st->root_bytes += t.nwords * kWord;
  }
  s.drain();

  s.classify();
  return true;
}

bool scan_impl(ScanBlock* blocks, size_t n, const Range* exclude, size_t n_exclude,
               ScanStats* stats, uintptr_t my_sp) {
  ScanStats st{};
  if (n == 0) {
    st.threads = 1;
    if (stats != nullptr) *stats = st;
    return true;
  }
  LockGuard lock(g_scan_lock);
  Work work;
  World world;
  bool ok = stop_world(&work, &world, &st);
  if (ok) ok = scan_stopped(&work, world, blocks, n, exclude, n_exclude, my_sp, &st);
  resume_world(&world);
  work.release_all();
  if (ok && stats != nullptr) *stats = st;
  return ok;
}

}  // namespace

// The scanning thread's registers and stack. __builtin_unwind_init makes this frame save every
// callee-saved register, so that whatever the callers keep in them is in memory at or above the
// stack pointer read here; caller-saved registers hold nothing live across the call. The frames
// of the scan itself are below that stack pointer and never scanned: they hold block addresses.
__attribute__((noinline)) bool leak_scan(ScanBlock* blocks, size_t n, const Range* exclude,
                                         size_t n_exclude, ScanStats* stats) {
  __builtin_unwind_init();
  uintptr_t sp;
#if defined(__x86_64__)
  asm volatile("mov %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
  asm volatile("mov %0, sp" : "=r"(sp));
#else
  sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
#endif
  bool ok = scan_impl(blocks, n, exclude, n_exclude, stats, sp);
  asm volatile("" ::: "memory");  // no tail call: this frame must outlive the scan
  return ok;
}

}  // namespace pg::leak
