// The platform layer of base/os.h: every system call the allocator makes, each with its
// fault-injection check in the test flavour.
#include "base/os.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

// Test builds (pgcore_faults) ask an injection plan before each memory system call, and a refused
// call fails as the kernel's refusal would (errno ENOMEM). Elsewhere PG_REFUSED is the constant
// false: the compiler drops the test and every call below is what it would be without it.
#include "base/align.h"

#if defined(POOLGUARD_FAULT_INJECTION)
#include "base/fault.h"
#define PG_REFUSED(call) (::pg::fault::refused(::pg::fault::Call::call))
#else
#define PG_REFUSED(call) false
#endif

extern char** environ;

namespace pg::os {

size_t page_size() {
  static size_t cached = 0;
  if (cached == 0) {
    unsigned long v = getauxval(AT_PAGESZ);
    cached = v ? v : 4096;
  }
  return cached;
}

namespace {
// map() without the injection plan, for map_aligned, which has a plan of its own.
inline void* map_fresh(size_t size, bool noreserve) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
}  // namespace

void* map(size_t size, bool noreserve) {
  if (PG_REFUSED(kMap)) return nullptr;
  return map_fresh(size, noreserve);
}

// The aligned [aligned, aligned + size) of a mapping of `span` = size + alignment bytes at raw:
// the rest, before and after, is unmapped.
void* trim_to_aligned(char* raw, size_t span, size_t size, size_t alignment) {
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = align_up(start, alignment);
  size_t head = aligned - start;
  size_t tail = span - head - size;
  if (head) munmap(raw, head);
  if (tail) munmap(reinterpret_cast<char*>(aligned) + size, tail);
  return reinterpret_cast<void*>(aligned);
}

void* map_aligned(size_t size, size_t alignment, bool noreserve) {
  // Over-map by `alignment`, then trim both ends so that exactly [aligned, aligned+size) remains.
  size_t span = size + alignment;
  if (span < size) return nullptr;
  if (PG_REFUSED(kMapAligned)) return nullptr;
  char* raw = static_cast<char*>(map_fresh(span, noreserve));
  if (raw == nullptr) return nullptr;
  return trim_to_aligned(raw, span, size, alignment);
}

void* reserve_aligned(size_t size, size_t alignment) {
  size_t span = size + alignment;
  if (span < size) return nullptr;
  if (PG_REFUSED(kReserve)) return nullptr;
  void* raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  return trim_to_aligned(static_cast<char*>(raw), span, size, alignment);
}

bool commit(void* p, size_t size) {
  if (PG_REFUSED(kCommit)) return false;
  return mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
}

bool unmap(void* p, size_t size) {
  if (PG_REFUSED(kUnmap)) return false;
  return munmap(p, size) == 0;
}

void decommit(void* p, size_t size) {
  // MADV_DONTNEED frees the pages at once (RSS drops now, unlike MADV_FREE) and later reads see
  // zeroes, which the pool code relies on (a released pool's header reads as "not a pool").
  if (PG_REFUSED(kDecommit)) return;
  madvise(p, size, MADV_DONTNEED);
}

bool protect_none(void* p, size_t size, bool release) {
  if (!release) return !PG_REFUSED(kProtect) && mprotect(p, size, PROT_NONE) == 0;
  // One call: MAP_FIXED drops the old pages and their memory.
  if (!PG_REFUSED(kProtect)) {
    void* q = mmap(p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (q != MAP_FAILED) return true;
  }
  // Out of mappings: at least give the memory back and make the pages inaccessible. Both must
  // have happened for `true`: callers take it to mean the pages will read as zero.
  bool released = !PG_REFUSED(kDecommit) && madvise(p, size, MADV_DONTNEED) == 0;
  return !PG_REFUSED(kProtect) && mprotect(p, size, PROT_NONE) == 0 && released;
}

size_t max_map_count() {
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 65530;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  size_t v = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
    v = v * 10 + static_cast<size_t>(buf[i] - '0');
  }
  return v ? v : 65530;
}

void write_all(int fd, const char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= static_cast<size_t>(n);
  }
}

int dup_cloexec(int fd, int min_fd) {
  return fcntl(fd, F_DUPFD_CLOEXEC, min_fd);
}

bool file_id(int fd, uint64_t* dev, uint64_t* ino) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

int open_without_foreign_link(const char* path, int flags, unsigned mode) {
  int fd = open(path, flags | O_NOFOLLOW, mode);
  if (fd >= 0 || errno != ELOOP) return fd;
  struct stat ls;
  uid_t me = geteuid();
  if (lstat(path, &ls) != 0 || !S_ISLNK(ls.st_mode) || (ls.st_uid != me && ls.st_uid != 0)) {
    errno = ELOOP;
    return -1;
  }
  // The link may be swapped between lstat and open where others can write the directory: what
  // it reaches is truncated only when it is a regular file of ours.
  fd = open(path, flags & ~(O_NOFOLLOW | O_CREAT | O_TRUNC));
  if (fd < 0 || (flags & O_TRUNC) == 0) return fd;
  struct stat st;
  int error = 0;
  if (fstat(fd, &st) != 0) {
    error = errno;
  } else if (S_ISREG(st.st_mode) && st.st_uid != me) {
    error = EPERM;
  } else if (S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0) {
    error = errno;
  }
  if (error == 0) return fd;
  close(fd);
  errno = error;
  return -1;
}

const void* map_file(const char* path, size_t* size) {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer. Not a FIFO nor a device is
  // mapped: reading one could block or read what is not a file's contents.
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return nullptr;
  struct stat st;
  void* p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  }
  close(fd);
  if (p == MAP_FAILED) return nullptr;
  *size = static_cast<size_t>(st.st_size);
  return p;
}

bool secure_mode() {
  return getauxval(AT_SECURE) != 0;
}

char** environment() {
  return secure_mode() ? nullptr : environ;
}

const char* env(const char* name) {
  if (secure_mode() || environ == nullptr) return nullptr;
  size_t n = strlen(name);
  for (char** e = environ; *e != nullptr; ++e) {
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  }
  return nullptr;
}

uint64_t random64() {
  uint64_t v = 0;
  int saved = errno;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof v)) {
    // AT_RANDOM: 16 random bytes the kernel gave the process at exec. Mix in the address of a
    // local and the time stamp counter so that two calls differ.
    const unsigned char* r = reinterpret_cast<const unsigned char*>(getauxval(AT_RANDOM));
    if (r != nullptr) memcpy(&v, r, sizeof v);
    v ^= reinterpret_cast<uintptr_t>(&v) * 0x9E3779B97F4A7C15ull;
#if defined(__x86_64__)
    v ^= __builtin_ia32_rdtsc();
#endif
  }
  errno = saved;
  return v ? v : 0x5DEECE66Dull;
}

namespace {
std::atomic<uint64_t> g_secret{0};
}

uint64_t secret() {
  uint64_t s = g_secret.load(std::memory_order_relaxed);
  if (__builtin_expect(s != 0, 1)) return s;
  uint64_t fresh = random64();
  if (g_secret.compare_exchange_strong(s, fresh, std::memory_order_relaxed)) return fresh;
  return s;  // another thread set it first
}

SavedErrno::SavedErrno() : saved_(errno) {}
SavedErrno::~SavedErrno() {
  errno = saved_;
}

int thread_id() {
  return static_cast<int>(syscall(SYS_gettid));
}
int process_id() {
  return static_cast<int>(getpid());
}

size_t address_space_limit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  return static_cast<size_t>(rl.rlim_cur);
}

bool call_previous_handler(const void* previous, int sig, void* info, void* context) {
  const struct sigaction& prev = *static_cast<const struct sigaction*>(previous);
  // sa_handler and sa_sigaction share storage: null is SIG_DFL either way.
  if ((prev.sa_flags & SA_SIGINFO) != 0) {
    if (prev.sa_sigaction == nullptr) return false;
    prev.sa_sigaction(sig, static_cast<siginfo_t*>(info), context);
    return true;
  }
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) return false;
  prev.sa_handler(sig);
  return true;
}

void restore_default_action(int sig) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
}

}  // namespace pg::os
