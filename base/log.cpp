// The log of base/log.h: where records go (POOLGUARD_LOG or stderr), opened per record under
// the descriptor rules written there.
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "base/clock.h"
#include "base/lock.h"
#include "base/options.h"
#include "base/os.h"

namespace pg {

namespace {

constexpr int kBurst = 10;
constexpr int64_t kIntervalNs = 1000000000;

struct RateState {
  std::atomic<int64_t> written{0};
  std::atomic<int64_t> last_ns{0};
  std::atomic<uint64_t> suppressed{0};
  // The repeat key of the last record written, and when: a record with the same key within
  // kIntervalNs is folded (log_begin). Read and written relaxed: two threads racing may both
  // write a repeat, never lose a record that is not one.
  std::atomic<uint64_t> last_key{0};
  std::atomic<int64_t> last_key_ns{0};
};
RateState g_rate[static_cast<int>(LogEvent::kCount)];

SpinLock g_log_lock;  // serialises writing records, so that their lines never interleave

// UTC calendar date of a count of days since 1970-01-01 (Howard Hinnant's civil_from_days).
void civil_from_days(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = static_cast<unsigned>(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

void two(TextBuffer<4096>& b, unsigned v) {
  b.chr(static_cast<char>('0' + v / 10)).chr(static_cast<char>('0' + v % 10));
}

// ISO 8601 UTC time with milliseconds: 2026-11-25T09:00:07.123Z
void append_time(TextBuffer<4096>& b) {
  int64_t ns = clock_ns(CLOCK_REALTIME);
  int64_t secs = ns / 1000000000;
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  b.chr('"').i64(y).chr('-');
  two(b, m);
  b.chr('-');
  two(b, d);
  b.chr('T');
  two(b, static_cast<unsigned>(rem / 3600));
  b.chr(':');
  two(b, static_cast<unsigned>(rem / 60 % 60));
  b.chr(':');
  two(b, static_cast<unsigned>(rem % 60));
  unsigned ms = static_cast<unsigned>(ns / 1000000 % 1000);
  b.chr('.').chr(static_cast<char>('0' + ms / 100)).chr(static_cast<char>('0' + ms / 10 % 10));
  b.chr(static_cast<char>('0' + ms % 10)).str("Z\"");
}

// ---- Where output goes ----------------------------------------------------------------------
//
// poolguard writes only to descriptors it has checked at the moment it writes, since a program
// may close any descriptor and open its own file under the same number (closefrom(3) and a data
// file, seen in the field):
//  - POOLGUARD_LOG=PATH is opened for each record or report and closed after it, never cached,
//    with O_NOFOLLOW; a regular file must belong to the effective user and have a single link,
//    anything else (a device, a FIFO) must belong to that user or to root, and a symbolic link is
//    followed only when it belongs to one of them (an attacker's link in /tmp is not). A path
//    that cannot be used sends the output to stderr, and says so once.
//  - stderr is fd 2 while it is open for writing: whatever the program has made its stderr, as
//    for any library's diagnostics (a program that redirects fd 2 with dup2 gets them there). When
//    fd 2 is closed, output goes to the duplicate of the start-up stderr that log_prepare() may
//    have made, if it still refers to that file (same device and inode), else nowhere. Output at
//    exit (the summary, the leak report) prefers that duplicate: programs close or redirect stderr
//    in their own exit handlers, and the user who started the program is watching the original.

struct StderrId {
  bool known = false;
  uint64_t dev = 0, ino = 0;
  int dup_fd = -1;  // a close-on-exec duplicate, or -1
};
StderrId g_stderr;
std::atomic<bool> g_log_fallback_said{false};

bool same_file(int fd, uint64_t dev, uint64_t ino) {
  uint64_t d, i;
  return os::file_id(fd, &d, &i) && d == dev && i == ino;
}

bool writable(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_ACCMODE) != O_RDONLY;
}

// The start-up stderr's duplicate, while it still refers to that file; else -1.
int stderr_duplicate() {
  if (!g_stderr.known || g_stderr.dup_fd < 0) return -1;
  return same_file(g_stderr.dup_fd, g_stderr.dev, g_stderr.ino) ? g_stderr.dup_fd : -1;
}

// The log path with %p replaced by the pid, in name[size]. False when it does not fit.
bool expand_log_path(const char* path, char* name, size_t size) {
  size_t n = 0;
  for (const char* p = path; *p; ++p) {
    if (p[0] == '%' && p[1] == 'p') {
      TextBuffer<24> num;
      num.u64(static_cast<uint64_t>(os::process_id()));
      if (n + num.size() >= size) return false;
      for (size_t i = 0; i < num.size(); ++i) name[n++] = num.data()[i];
      ++p;
    } else {
      if (n + 1 >= size) return false;
      name[n++] = *p;
    }
  }
  name[n] = '\0';
  return true;
}

// Says once, on stderr, that POOLGUARD_LOG cannot be used.
void say_log_fallback(const char* path, const char* why) {
  if (g_log_fallback_said.exchange(true, std::memory_order_relaxed)) return;
  int fd = log_stderr_fd();
  if (fd < 0) return;
  TextBuffer<768> line;
  line.str("poolguard: POOLGUARD_LOG=").json_str(path).str(" cannot be used (").str(why);
  line.str("); writing to stderr instead\n");
  line.flush(fd);
}

}  // namespace

void log_prepare(bool keep_duplicate) {
  if (!keep_duplicate || g_stderr.known) return;
  uint64_t dev, ino;
  if (!writable(STDERR_FILENO) || !os::file_id(STDERR_FILENO, &dev, &ino)) return;
  g_stderr.dup_fd = os::dup_cloexec(STDERR_FILENO, 100);
  g_stderr.dev = dev;
  g_stderr.ino = ino;
  g_stderr.known = g_stderr.dup_fd >= 0;
}

int log_stderr_fd() {
  int saved = errno;
  int fd = writable(STDERR_FILENO) ? STDERR_FILENO : stderr_duplicate();
  errno = saved;
  return fd;
}

int log_exit_fd() {
  int saved = errno;
  int fd = stderr_duplicate();
  errno = saved;
  return fd >= 0 ? fd : log_stderr_fd();
}

int log_open_file(const char* path, const char** why) {
  char name[512];
  if (!expand_log_path(path, name, sizeof name)) {
    *why = "path too long";
    return -1;
  }
  uid_t me = geteuid();
  int fd = os::open_without_foreign_link(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
                                         0600);
  if (fd < 0) {
    *why = errno == ELOOP ? "a symbolic link that belongs to another user"
           : errno == EACCES || errno == EPERM || errno == EROFS ? "permission denied"
           : errno == ENOENT || errno == ENOTDIR                 ? "no such directory"
                                                                 : "cannot open it";
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    *why = "cannot stat it";
    return -1;
  }
  if (S_ISREG(st.st_mode) ? st.st_uid != me : st.st_uid != me && st.st_uid != 0) {
    close(fd);
    *why = "it belongs to another user";
    return -1;
  }
  if (S_ISREG(st.st_mode) && st.st_nlink != 1) {
    close(fd);
    *why = "a file with more than one link";
    return -1;
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    *why = "a directory";
    return -1;
  }
  return fd;
}

LogOutput::LogOutput(bool at_exit) {
  const char* path = option_string(options().LOG);
  if (path != nullptr && strcmp(path, "stderr") != 0) {
    const char* why = nullptr;
    int saved = errno;
    fd_ = log_open_file(path, &why);
    errno = saved;
    if (fd_ >= 0) {
      owned_ = true;
      return;
    }
    say_log_fallback(path, why);
  }
  fd_ = at_exit ? log_exit_fd() : log_stderr_fd();
}

LogOutput::~LogOutput() {
  if (owned_) close(fd_);
}

void log_lock_for_fork() {
  g_log_lock.lock_for_fork();
}

void log_unlock_after_fork() {
  g_log_lock.unlock_after_fork();
}

const char* log_event_name(LogEvent event) {
  switch (event) {
    case LogEvent::kLimitExceeded:
      return "limit-exceeded";
    case LogEvent::kLimitWarning:
      return "limit-warning";
    default:
      return "event";
  }
}

bool log_begin(LogEvent event, TextBuffer<4096>& line, uint64_t repeat_key) {
  RateState& r = g_rate[static_cast<int>(event)];
  int64_t now = monotonic_ns();
  if (repeat_key != 0 && r.last_key.load(std::memory_order_relaxed) == repeat_key &&
      now - r.last_key_ns.load(std::memory_order_relaxed) < kIntervalNs) {
    r.suppressed.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (r.written.load(std::memory_order_relaxed) >= kBurst) {
    int64_t last = r.last_ns.load(std::memory_order_relaxed);
    if (now - last < kIntervalNs || !r.last_ns.compare_exchange_strong(last, now)) {
      r.suppressed.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } else {
    r.last_ns.store(now, std::memory_order_relaxed);
  }
  r.written.fetch_add(1, std::memory_order_relaxed);
  r.last_key.store(repeat_key, std::memory_order_relaxed);
  r.last_key_ns.store(now, std::memory_order_relaxed);
  uint64_t suppressed = r.suppressed.exchange(0, std::memory_order_relaxed);
  line.str("poolguard: ").str(log_event_name(event)).str(" {\"time\":");
  append_time(line);
  line.str(",\"pid\":").u64(static_cast<uint64_t>(os::process_id()));
  line.str(",\"thread\":").u64(static_cast<uint64_t>(os::thread_id()));
  line.str(",\"suppressed\":").u64(suppressed);
  return true;
}

void log_flush_suppressed() {
  for (int i = 0; i < static_cast<int>(LogEvent::kCount); ++i) {
    uint64_t n = g_rate[i].suppressed.exchange(0, std::memory_order_relaxed);
    if (n == 0) continue;
    TextBuffer<4096> line;
    line.str("poolguard: log-suppressed {\"event\":\"")
        .str(log_event_name(static_cast<LogEvent>(i)));
    line.str("\",\"pid\":").u64(static_cast<uint64_t>(os::process_id())).str(",\"count\":").u64(n);
    log_end(line);
  }
}

void log_end(TextBuffer<4096>& line) {
  line.str("}\n");
  LockGuard guard(g_log_lock);
  LogOutput out;
  if (out.fd() >= 0) {
    line.flush(out.fd());
  } else {
    line.clear();
  }
}

}  // namespace pg
