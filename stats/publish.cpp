// The writer side of the stats segment. See stats/publish.h for the design and stats/segment.h for
// the layout and the reader protocol.
//
// Memory safety inside the preload: nothing here calls malloc except pthread_create (which may, and
// then gets poolguard's own, outside any allocator lock). Text is formatted into stack buffers.
//
// The shared-memory and futex calls live in this file rather than in pool/os.*: only the stats
// layer needs them, and each is wrapped once below with its contract.
#include "stats/publish.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <string_view>

#include "guard/guard.h"
#include "pool/config.h"
#include "pool/format.h"
#include "pool/introspect.h"
#include "pool/limit.h"
#include "pool/options.h"
#include "pool/os.h"
#include "stats/profile_publish.h"
#include "stats/profile_segment.h"
#include "stats/segment.h"
#include "stats/seqlock.h"
#include "stats/shm_file.h"

namespace pg {

namespace {

using stats::Segment;
using stats::SegmentArena;
using stats::SegmentClass;

// The option table's value lists, to check at compile time which index means "on".
#define POOLGUARD_OPTION(kind, name, def, values, doc) \
  [[maybe_unused]] constexpr std::string_view k##name##Values = values;
#include "pool/options.inc"
#undef POOLGUARD_OPTION
static_assert(kSEGMENTValues.starts_with("on|"), "POOLGUARD_SEGMENT: index 0 must mean on");
constexpr uint64_t kSegmentOn = 0;

static_assert(kNumClasses <= stats::kSegmentMaxClasses);
static_assert(kPoolsPerArena == stats::kSegmentPoolsPerArena);

// --- Platform calls for the segment --------------------------------------------------------------

// FUTEX_WAIT on a shared (not private) word: sleeps while *word == expected, at most `timeout`.
// Returns when woken, on timeout, on a signal, or at once if *word != expected.
void futex_wait(uint32_t* word, uint32_t expected, const timespec* timeout) {
  syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout, nullptr, 0);
}
// Wakes up to `n` waiters on a shared word.
void futex_wake(uint32_t* word, int n) {
  syscall(SYS_futex, word, FUTEX_WAKE, n, nullptr, nullptr, 0);
}

// Reads up to size-1 bytes of a /proc file into buf, NUL-terminated. Returns the length, or -1.
ssize_t read_small_file(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < size) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  close(fd);
  buf[len] = '\0';
  return static_cast<ssize_t>(len);
}

uint64_t parse_u64(const char*& p) {
  uint64_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  return v;
}

// Start time of this process in clock ticks after boot: field 22 of /proc/self/stat, counted
// after the last ')' (the command name may hold spaces and parentheses). 0 if unreadable.
uint64_t process_start_time() {
  char buf[1024];
  if (read_small_file("/proc/self/stat", buf, sizeof buf) <= 0) return 0;
  const char* p = strrchr(buf, ')');
  if (p == nullptr) return 0;
  // After ") " comes field 3; field 22 follows 19 more spaces.
  for (int field = 2; field < 22 && *p; ++p) {
    if (*p == ' ') ++field;
  }
  return parse_u64(p);
}

// Resident set size in bytes: the second field of /proc/self/statm, in pages. 0 if unreadable.
uint64_t process_rss() {
  char buf[128];
  if (read_small_file("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
  const char* p = buf;
  parse_u64(p);
  if (*p != ' ') return 0;
  ++p;
  return parse_u64(p) * os::page_size();
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// --- The segment of this process
// --------------------------------------------------------------------

// Arena entries are backed in /dev/shm in steps of this many (about 17 KiB).
constexpr size_t kArenaChunk = 64;

// Everything about this process's publication. Written by publish_start() and by the fork child
// handler, each time before the publisher thread that reads it exists; after that only the
// publisher thread touches `growth`.
struct Publisher {
  Segment* seg = nullptr;
  int pid = 0;                 // the process that created `seg`
  char path[48] = {};          // /dev/shm/poolguard.<pid>
  ShmId id;                    // identity of the file, to grow it through its name safely
  ShmGrowth growth;            // arena entries with memory allocated in /dev/shm
  ArenaView* views = nullptr;  // scratch for arena_views() (kSegmentMaxArenas entries)
  uint32_t served = 0;         // the last request value published
};

Publisher g_pub;
bool g_enabled = false;  // publish_start() started a publisher (inherited by fork children)
int g_owner = 0;         // the process whose publisher g_pub belongs to

// Where this process's publication stands. The publisher thread moves it from kPending to
// kCreating to kPublished; the exit hook moves it to kStopped from any state, and whoever sees
// the other's move removes the file, so that a process exiting while its segment is being created
// leaves nothing behind.
enum PublishState : int { kPending, kCreating, kPublished, kStopped };
std::atomic<int> g_state{kPending};
std::atomic<bool> g_creation_over{false};  // the thread left kCreating (for the exit hook)

// A process publishes only once it has lived this long: the many processes that exit or exec
// right away (a shell's commands, fork() children that exec or _exit) never create a segment,
// and so never leave a stale one behind when they end without running exit hooks.
constexpr timespec kPublishDelay{0, 100 * 1000 * 1000};

void make_path(Publisher& p) {
  TextBuffer<sizeof p.path> b;
  b.str(stats::kSegmentPathPrefix).u64(static_cast<uint64_t>(p.pid));
  memcpy(p.path, b.data(), b.size());
  p.path[b.size() < sizeof p.path ? b.size() : sizeof p.path - 1] = '\0';
}

// Creates /dev/shm/poolguard.<pid> for the calling process and maps it, the header and the first
// kArenaChunk arena entries backed (stats/shm_file.h: this user's leftover replaced, another
// user's file left alone and nothing published).
bool create_segment(Publisher& p) {
  p.seg = nullptr;
  p.pid = getpid();
  p.growth = ShmGrowth{};
  p.served = 0;
  make_path(p);
  void* mem = shm_create(p.path, sizeof(Segment), stats::segment_bytes_for(kArenaChunk), &p.id);
  if (mem == nullptr) return false;
  p.growth.backed = kArenaChunk;

  Segment* s = static_cast<Segment*>(mem);
  s->size = sizeof(Segment);
  s->version = stats::kSegmentVersion;
  s->pid = p.pid;
  s->uid = geteuid();
  s->start_time = process_start_time();
  char comm[sizeof s->comm + 1];
  ssize_t n = read_small_file("/proc/self/comm", comm, sizeof comm);
  for (ssize_t i = 0; i < n && i < static_cast<ssize_t>(sizeof s->comm) && comm[i] != '\n'; ++i) {
    s->comm[i] = comm[i];
  }
  s->num_classes = kNumClasses;
  s->small_max = kSmallMax;
  s->pool_size = kPoolSize;
  s->pool_header = kPoolLead;
  s->arena_size = kArenaSize;
  s->max_arenas = stats::kSegmentMaxArenas;
  s->arenas_backed = p.growth.backed;
  __atomic_store_n(&s->magic, stats::kSegmentMagic, __ATOMIC_RELEASE);
  p.seg = s;
  return true;
}

void remove_segment(Publisher& p) {
  if (p.seg == nullptr) return;
  munmap(p.seg, sizeof(Segment));
  unlink(p.path);
  p.seg = nullptr;
}

// pid from a name "poolguard.<digits>" or "poolguard.<digits>.profile" in /dev/shm; 0 if the
// name is neither.
int segment_pid(const char* name) {
  const char* prefix = stats::kSegmentPathPrefix + sizeof "/dev/shm/" - 1;
  size_t len = strlen(prefix);
  if (strncmp(name, prefix, len) != 0 || name[len] == '\0') return 0;
  uint64_t pid = 0;
  const char* end = name + strlen(name);
  size_t suffix = strlen(stats::kProfileSuffix);
  if (static_cast<size_t>(end - name) > len + suffix &&
      strcmp(end - suffix, stats::kProfileSuffix) == 0) {
    end -= suffix;
  }
  for (const char* c = name + len; c < end; ++c) {
    if (*c < '0' || *c > '9' || pid > INT_MAX / 10) return 0;
    pid = pid * 10 + static_cast<uint64_t>(*c - '0');
  }
  return pid <= INT_MAX ? static_cast<int>(pid) : 0;
}

// Removes the segments that processes of this user left when they ended without exit hooks
// (_exit after publishing, a fatal signal), so that they do not pile up in /dev/shm between runs
// of `poolguard ls`. Runs once per process, in the publisher thread, once its own segment is in
// place. A file is removed only if it is a regular file of this user named after a pid that no
// longer exists (kill(pid, 0) fails with ESRCH), and is still the same file just before.
void sweep_stale_segments(int self) {
  int dir = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buf[4096];
  uid_t me = geteuid();
  int budget = 4096;  // directory entries looked at, at most
  long n;
  while (budget > 0 && (n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n && budget > 0; --budget) {
      const struct dirent64* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      int pid = segment_pid(d->d_name);
      if (pid <= 0 || pid == self) continue;
      struct stat st, again;
      if (fstatat(dir, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
          st.st_uid != me) {
        continue;
      }
      if (kill(pid, 0) == 0 || errno != ESRCH) continue;
      if (fstatat(dir, d->d_name, &again, AT_SYMLINK_NOFOLLOW) == 0 && again.st_dev == st.st_dev &&
          again.st_ino == st.st_ino) {
        unlinkat(dir, d->d_name, 0);
      }
    }
  }
  close(dir);
}

// At exit, for a process that has not published: a file named after its pid can only be a
// leftover of this process's previous image (it published, then exec'd this program) or of a
// dead process that had the same pid. Removed if it is this user's.
void remove_leftover(const char* path) {
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) unlink(path);
}

// Takes the figures and writes them into the segment under the seqlock, then tells readers that
// the request `req` has been served.
void publish(Publisher& p, uint32_t req) {
  Snapshot snap;
  take_snapshot(&snap);
  size_t total = arena_views(p.views, stats::kSegmentMaxArenas);
  size_t listed = total < stats::kSegmentMaxArenas ? total : stats::kSegmentMaxArenas;
  if (!shm_ensure_backed(p.path, p.id, &p.growth, listed, kArenaChunk, stats::kSegmentMaxArenas,
                         stats::segment_bytes_for)) {
    listed = p.growth.backed;  // the map is cut to what is backed
  }
  uint64_t rss = process_rss();
  LimitCounters lim;
  limit_counters(&lim);
  GuardCounters guard;
  guard_counters(&guard);

  Segment* s = p.seg;
  uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
  seq_begin(&s->seq, seq + 1);

  s->publish_time_ns = now_ns();
  s->small_allocs = snap.small_allocs;
  s->small_frees = snap.small_frees;
  s->large_allocs = snap.large_allocs;
  s->large_frees = snap.large_frees;
  s->large_live_bytes = snap.large_live_bytes;
  s->arenas_mapped = snap.arenas_mapped;
  s->arenas_in_use = snap.arenas_in_use;
  s->arenas_released = snap.arenas_released;
  s->reserved_bytes = snap.reserved_bytes;
  s->fallback_arenas = snap.fallback_arenas;
  s->pools_in_use = snap.pools_in_use;
  s->pools_purged = snap.pools_purged;
  s->peak_small_bytes = snap.peak_small_bytes;
  s->rss_bytes = rss;
  s->limit_bytes = lim.limit;
  s->limit_in_use = lim.in_use;
  s->limit_peak = lim.peak;
  s->limit_refused = lim.refused;
  s->guard_events = guard.errors;
  s->threads = snap.heaps_created;
  s->double_frees = snap.double_frees;
  s->invalid_frees = snap.invalid_frees;
  s->corruptions = snap.corruptions;
  for (size_t c = 0; c < kNumClasses; ++c) {
    const ClassSnapshot& in = snap.classes[c];
    SegmentClass& out = s->classes[c];
    out.block_size = in.block_size;
    out.allocs = in.allocs;
    out.frees = in.frees;
    out.live_blocks = in.live_blocks;
    out.requested_bytes = in.requested_bytes;
    out.held_bytes = in.live_blocks * in.block_size;
    out.pools = in.pools;
    out.free_blocks = in.free_blocks;
  }
  for (size_t a = 0; a < listed; ++a) {
    const ArenaView& in = p.views[a];
    SegmentArena& out = s->arenas[a];
    out.base = in.base;
    for (size_t k = 0; k < kPoolsPerArena; ++k) {
      out.pools[k].state = static_cast<uint8_t>(in.pools[k].state);
      out.pools[k].cls = in.pools[k].cls;
      out.pools[k].used = in.pools[k].used;
    }
  }
  s->arenas_total = total;
  s->arenas_listed = listed;
  s->arenas_backed = p.growth.backed;

  seq_end(&s->seq, seq + 2);
  // The profile (when the tracker is on) at the same moment, so that a reader whose request is
  // answered below finds it fresh too.
  profile_segment_publish();
  __atomic_store_n(&s->publications, s->publications + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&s->published, req, __ATOMIC_RELEASE);
  if (req != p.served) futex_wake(&s->published, INT_MAX);
  p.served = req;
}

// The publisher thread: publishes, then sleeps until a reader bumps `request` or a second passes.
void* publisher_main(void* arg) {
  prctl(PR_SET_NAME, "poolguard-stats", 0, 0, 0);
  Publisher& p = *static_cast<Publisher*>(arg);
  timespec delay = kPublishDelay;
  while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {
  }
  int state = kPending;
  if (!g_state.compare_exchange_strong(state, kCreating)) return nullptr;  // exiting already
  bool created = create_segment(p);
  state = kCreating;
  bool kept = g_state.compare_exchange_strong(state, created ? kPublished : kStopped);
  if (created && !kept) remove_segment(p);  // the process started exiting meanwhile
  g_creation_over.store(true);
  if (!created || !kept) return nullptr;
  profile_segment_create(p.pid);
  sweep_stale_segments(p.pid);
  for (;;) {
    uint32_t req = __atomic_load_n(&p.seg->request, __ATOMIC_ACQUIRE);
    publish(p, req);
    timespec refresh{1, 0};
    futex_wait(&p.seg->request, req, &refresh);
  }
  return nullptr;
}

// Starts the publisher thread: detached, a small stack, every signal blocked (a process-directed
// signal must never be delivered to poolguard's thread instead of the program's).
bool start_thread(Publisher& p) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, publisher_main, &p);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  return rc == 0;
}

// fork() child: the parent's segment is not mapped here (MADV_DONTFORK) and its thread does not
// exist; start a publisher for the child's pid (see stats/publish.h for why this is done here).
void after_fork_child() {
  if (!g_enabled || g_state.load() == kStopped) return;  // no publisher, or the parent is exiting
  g_pub.seg = nullptr;
  g_owner = getpid();
  g_creation_over.store(false);
  g_state.store(kPending);
  if (!start_thread(g_pub)) g_state.store(kStopped);
}

}  // namespace

void publish_start() {
  static bool once = false;
  if (once) return;
  once = true;
  if (options().SEGMENT != kSegmentOn || os::secure_mode()) return;
  g_pub.views = static_cast<ArenaView*>(os::map(stats::kSegmentMaxArenas * sizeof(ArenaView)));
  if (g_pub.views == nullptr) return;
  g_owner = getpid();
  if (!start_thread(g_pub)) return;
  g_enabled = true;
  pthread_atfork(nullptr, nullptr, after_fork_child);
}

void publish_stop() {
  // Only the process whose publisher this is: the child of a raw clone() runs the same exit hooks
  // with a copy of this state and no atfork handler.
  if (!g_enabled || g_owner != getpid()) return;
  int was = g_state.exchange(kStopped);
  char profile[64];
  profile_segment_path(g_owner, profile, sizeof profile);
  if (was == kPublished) {
    unlink(g_pub.path);
    unlink(profile);
  } else if (was == kPending) {
    Publisher mine;
    mine.pid = g_owner;
    make_path(mine);
    remove_leftover(mine.path);
    remove_leftover(profile);
  } else if (was == kCreating) {
    // The thread is creating the segment and will remove it when it sees kStopped; give it a
    // moment (bounded) before the process ends and takes the thread with it.
    for (int i = 0; i < 1000 && !g_creation_over.load(); ++i) {
      timespec ms{0, 1000 * 1000};
      nanosleep(&ms, nullptr);
    }
  }
}

const char* publish_path() {
  return g_enabled && g_owner == getpid() && g_state.load() == kPublished ? g_pub.path : nullptr;
}

}  // namespace pg
