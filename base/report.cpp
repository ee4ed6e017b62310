// The error reports of base/report.h: one line per error through write(2), counted, then abort or
// go on as POOLGUARD_ON_ERROR says.
#include "base/report.h"

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

void count_double_free() {
  count(kDoubleFrees);
}
void count_invalid_free() {
  count(kInvalidFrees);
}
void count_corruption() {
  count(kCorruptions);
}

void report_set_mode(ErrorMode mode) {
  g_error_mode.store(static_cast<int>(mode), std::memory_order_relaxed);
}
ErrorMode error_mode() {
  return static_cast<ErrorMode>(g_error_mode.load(std::memory_order_relaxed));
}

namespace {

[[gnu::noinline]] void finish(TextBuffer<512>& line) {
  os::SavedErrno keep;  // reported from free(), which leaves errno alone
  bool fatal = error_mode() == ErrorMode::kAbort;
  line.str(fatal ? " (aborting; POOLGUARD_ON_ERROR=report to continue)\n"
                 : " (block left alone)\n");
  {
    LogOutput out;
    if (out.fd() >= 0) line.flush(out.fd());
  }
  if (fatal) abort();
}

void head(TextBuffer<512>& line, const char* kind) {
  line.str("poolguard: ERROR: ")
      .str(kind)
      .str(" pid=")
      .u64(os::process_id())
      .str(" tid=")
      .u64(os::thread_id());
}

}  // namespace

void report_double_free(const void* p, size_t block_size) {
  count_double_free();
  TextBuffer<512> line;
  head(line, "double-free");
  line.str(": free(")
      .ptr(p)
      .str(") of a block of ")
      .u64(block_size)
      .str(" bytes that is already free");
  finish(line);
}

void report_invalid_free(const void* p, const void* block, size_t block_size, const char* why) {
  count_invalid_free();
  TextBuffer<512> line;
  head(line, "invalid-free");
  line.str(": free(").ptr(p).str("): ").str(why);
  if (block != nullptr) {
    line.str(" (")
        .u64(static_cast<const char*>(p) - static_cast<const char*>(block))
        .str(" bytes into the block at ")
        .ptr(block)
        .str(" of ")
        .u64(block_size)
        .str(" bytes)");
  }
  finish(line);
}

void report_corruption(const void* where, size_t block_size, const char* what) {
  count_corruption();
  TextBuffer<512> line;
  head(line, "free-list-corruption");
  line.str(": ")
      .str(what)
      .str(" at ")
      .ptr(where)
      .str(" in a pool of ")
      .u64(block_size)
      .str("-byte blocks (a write past the end of a block, or after free?)");
  finish(line);
}

void report_warning(const char* msg) {
  TextBuffer<512> line;
  line.str("poolguard: ").str(msg).chr('\n');
  int fd = log_stderr_fd();
  if (fd >= 0) line.flush(fd);
}

}  // namespace pg
