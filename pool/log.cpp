#include "pool/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "pool/lock.h"
#include "pool/options.h"
#include "pool/os.h"

namespace pg {

namespace {

constexpr int kBurst = 10;
constexpr int64_t kIntervalNs = 1000000000;

struct RateState {
  std::atomic<int64_t> written{0};
  std::atomic<int64_t> last_ns{0};
  std::atomic<uint64_t> suppressed{0};
};
RateState g_rate[static_cast<int>(LogEvent::kCount)];

SpinLock g_log_lock;  // serialises opening the file and writing lines
int g_log_fd = -1;
int g_log_pid = 0;

int64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

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
  int64_t ns = now_ns(CLOCK_REALTIME);
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

// The destination: fd 2, or the log file (opened on first use, again after a fork).
int log_fd() {
  const char* path = option_string(options().LOG);
  if (path == nullptr || strcmp(path, "stderr") == 0) return STDERR_FILENO;
  int pid = os::process_id();
  if (g_log_fd >= 0 && g_log_pid == pid) return g_log_fd;
  char name[512];
  size_t n = 0;
  for (const char* p = path; *p && n + 24 < sizeof name; ++p) {
    if (p[0] == '%' && p[1] == 'p') {
      TextBuffer<24> num;
      num.u64(static_cast<uint64_t>(pid));
      for (size_t i = 0; i < num.size(); ++i) name[n++] = num.data()[i];
      ++p;
    } else {
      name[n++] = *p;
    }
  }
  name[n] = '\0';
  if (g_log_fd >= 0) close(g_log_fd);  // the parent's file, inherited across fork
  g_log_fd = open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  g_log_pid = pid;
  return g_log_fd >= 0 ? g_log_fd : STDERR_FILENO;
}

}  // namespace

int log_output_fd() {
  return log_fd();
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

bool log_begin(LogEvent event, TextBuffer<4096>& line) {
  RateState& r = g_rate[static_cast<int>(event)];
  int64_t now = now_ns(CLOCK_MONOTONIC);
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
  line.flush(log_fd());
}

}  // namespace pg
