// The error reports of base/report.h: ErrorReport (counting, one report at a time, lines through
// write(2), frames named by dladdr, the closing line) and the pools' three reports written with it.
#include "base/report.h"

#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/format.h"
#include "base/log.h"
#include "base/os.h"

namespace pg {

namespace {
enum Count { kDoubleFrees, kInvalidFrees, kCorruptions, kNumCounts };
uint64_t g_early_counts[kNumCounts];
std::atomic<uint64_t*> g_counts[kNumCounts] = {&g_early_counts[0], &g_early_counts[1],
                                               &g_early_counts[2]};
std::atomic<int> g_error_mode{static_cast<int>(ErrorMode::kAbort)};

void count(Count k) {
  __atomic_fetch_add(g_counts[k].load(std::memory_order_acquire), 1, __ATOMIC_RELAXED);
}
}  // namespace

void report_set_counters(uint64_t* double_frees, uint64_t* invalid_frees, uint64_t* corruptions) {
  uint64_t* fields[kNumCounts] = {double_frees, invalid_frees, corruptions};
  for (int k = 0; k < kNumCounts; ++k) {
    uint64_t* old = g_counts[k].exchange(fields[k], std::memory_order_acq_rel);
    if (old != fields[k])
      __atomic_fetch_add(fields[k], __atomic_load_n(old, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  }
}

void report_set_mode(ErrorMode mode) {
  g_error_mode.store(static_cast<int>(mode), std::memory_order_relaxed);
}
ErrorMode error_mode() {
  return static_cast<ErrorMode>(g_error_mode.load(std::memory_order_relaxed));
}

namespace {

std::atomic<int> g_report_owner{0};  // thread id of the thread writing a report, or 0

}  // namespace

ErrorReport::ErrorReport(ErrorCount kind_count, const char* kind) {
  count(static_cast<Count>(kind_count));
  int tid = os::thread_id();
  int expected = 0;
  while (!g_report_owner.compare_exchange_weak(expected, tid, std::memory_order_acquire)) {
    if (expected == tid) {
      nested_ = true;
      break;
    }
    expected = 0;
    sched_yield();
  }
  line_.str("poolguard: ERROR: ")
      .str(kind)
      .str(" pid=")
      .u64(static_cast<uint64_t>(os::process_id()))
      .str(" tid=")
      .u64(static_cast<uint64_t>(tid))
      .str(": ");
}

ErrorReport::~ErrorReport() {
  if (!nested_) g_report_owner.store(0, std::memory_order_release);
}

void ErrorReport::end_line() {
  line_.chr('\n');
  if (out_.fd() >= 0) line_.flush(out_.fd());
  line_.clear();
}

void ErrorReport::stack(const char* title, int tid, const uintptr_t* pcs, int n, bool first_exact) {
  line_.str("  ").str(title);
  if (tid != 0) line_.str(" by thread ").u64(static_cast<uint64_t>(tid));
  line_.chr(':');
  end_line();
  if (n == 0) {
    line_.str("    (no stack)");
    end_line();
  }
  for (int k = 0; k < n; ++k) {
    uintptr_t pc = pcs[k];
    line_.str("    #").u64(static_cast<uint64_t>(k)).chr(' ').hex(pc);
    Dl_info info;
    // A return address may point just past the call, into the next function: look up pc - 1.
    bool exact = first_exact && k == 0;
    if (dladdr(reinterpret_cast<void*>(exact ? pc : pc - 1), &info) != 0) {
      if (info.dli_sname != nullptr) line_.str(" in ").str(info.dli_sname);
      if (info.dli_fname != nullptr) {
        line_.str(" (").str(info.dli_fname).chr('+');
        line_.hex(pc - reinterpret_cast<uintptr_t>(info.dli_fbase)).chr(')');
      }
    }
    end_line();
  }
}

[[gnu::noinline]] void ErrorReport::finish(bool fatal) {
  bool ends = fatal || error_mode() == ErrorMode::kAbort;
  line_.clear();
  if (!ends) {
    line_.str("poolguard: continuing (POOLGUARD_ON_ERROR=report); the block is left alone");
    end_line();
    return;
  }
  line_.str(fatal ? "poolguard: aborting (a faulting access cannot be resumed)"
                  : "poolguard: aborting (POOLGUARD_ON_ERROR=report to continue)");
  end_line();
  abort();
}

void report_double_free(const void* p, size_t block_size) {
  ErrorReport r(ErrorCount::kDoubleFree, "double-free");
  r.line()
      .str("free(")
      .ptr(p)
      .str(") of a block of ")
      .u64(block_size)
      .str(" bytes that is already free");
  r.end_line();
  r.finish(false);
}

void report_invalid_free(const void* p, const void* block, size_t block_size, const char* why) {
  ErrorReport r(ErrorCount::kInvalidFree, "invalid-free");
  r.line().str("free(").ptr(p).str("): ").str(why);
  if (block != nullptr) {
    r.line()
        .str(" (")
        .u64(static_cast<const char*>(p) - static_cast<const char*>(block))
        .str(" bytes into the block at ")
        .ptr(block)
        .str(" of ")
        .u64(block_size)
        .str(" bytes)");
  }
  r.end_line();
  r.finish(false);
}

void report_corruption(const void* where, size_t block_size, const char* what) {
  ErrorReport r(ErrorCount::kCorruption, "free-list-corruption");
  r.line()
      .str(what)
      .str(" at ")
      .ptr(where)
      .str(" in a pool of ")
      .u64(block_size)
      .str("-byte blocks (a write past the end of a block, or after free?)");
  r.end_line();
  r.finish(false);
}

void report_warning(const char* msg) {
  TextBuffer<512> line;
  line.str("poolguard: ").str(msg).chr('\n');
  int fd = log_stderr_fd();
  if (fd >= 0) line.flush(fd);
}

}  // namespace pg
