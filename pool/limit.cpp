// The heap limit of pool/limit.h (POOLGUARD_LIMIT): charging mapped memory, refusals and their
// records.
#include "pool/limit.h"

#include <errno.h>
#include <stdlib.h>

#include <atomic>

#include "base/log.h"
#include "base/options.h"
#include "base/stack.h"
#include "pool/config.h"
#include "pool/shared.h"

namespace pg {

uint64_t g_limit_bytes = 0;  // set once at init

namespace {

uint64_t& g_limit = g_limit_bytes;
uint64_t g_action = kOnLimitNull;
uint64_t g_warn_percents = 0;
// The figures live in the stats segment (pool/shared.h), updated atomically in place.
std::atomic_ref<uint64_t> figure(uint64_t& field) {
  return std::atomic_ref<uint64_t>(field);
}
std::atomic_ref<uint64_t> in_use() {
  return figure(shared_globals().limit_in_use);
}
std::atomic_ref<uint64_t> peak() {
  return figure(shared_globals().limit_peak);
}
std::atomic_ref<uint64_t> refused() {
  return figure(shared_globals().limit_refused);
}
std::atomic_ref<uint64_t> warnings() {
  return figure(shared_globals().limit_warnings);
}
// Bit i set: threshold i has fired and is disarmed until use falls back below it.
std::atomic<uint32_t> g_warn_fired{0};

void note_peak(uint64_t now) {
  uint64_t high = peak().load(std::memory_order_relaxed);
  while (now > high && !peak().compare_exchange_weak(high, now, std::memory_order_relaxed)) {
  }
}

void common_fields(TextBuffer<4096>& line, size_t request, uint64_t in_use) {
  line.str(",\"requested\":").u64(request);
  line.str(",\"in_use\":").u64(in_use);
  line.str(",\"limit\":").u64(g_limit);
  line.str(",\"peak\":").u64(peak().load(std::memory_order_relaxed));
}

// What makes two records repeats of each other (base/log.h): the stack that asked, FNV-1a over
// its return addresses; never zero.
uint64_t stack_key(const StackTrace& trace) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < trace.depth; ++i) {
    h ^= trace.pc[i];
    h *= 0x100000001b3ull;
  }
  return h | 1;
}

void log_exceeded(size_t request, uint64_t in_use) {
  StackTrace trace;
  capture_stack(&trace, 3);
  TextBuffer<4096> line;
  if (!log_begin(LogEvent::kLimitExceeded, line, stack_key(trace))) return;
  common_fields(line, request, in_use);
  const char* action = g_action == kOnLimitAbort  ? "abort"
                       : g_action == kOnLimitWarn ? "warn"
                                                  : "null";
  line.str(",\"action\":\"").str(action).chr('"');
  line.str(",\"stack\":");
  append_stack_json(line, trace);
  log_end(line);
}

// Fires the thresholds that `before -> after` crossed upwards, re-arms the ones crossed downwards.
void check_thresholds(uint64_t before, uint64_t after, size_t request) {
  for (int i = 0; i < 8; ++i) {
    int pct = option_percent(g_warn_percents, i);
    if (pct == 0) break;
    uint64_t mark = g_limit / 100 * static_cast<uint64_t>(pct) + g_limit % 100 * pct / 100;
    uint32_t bit = 1u << i;
    if (before < mark && after >= mark) {
      if (g_warn_fired.fetch_or(bit, std::memory_order_relaxed) & bit) continue;
      warnings().fetch_add(1, std::memory_order_relaxed);
      TextBuffer<4096> line;
      if (!log_begin(LogEvent::kLimitWarning, line)) continue;
      line.str(",\"percent\":").u64(static_cast<uint64_t>(pct));
      common_fields(line, request, after);
      StackTrace trace;
      capture_stack(&trace, 3);
      line.str(",\"stack\":");
      append_stack_json(line, trace);
      log_end(line);
    } else if (before >= mark && after < mark) {
      g_warn_fired.fetch_and(~bit, std::memory_order_relaxed);
    }
  }
}

__thread bool t_refused __attribute__((tls_model("initial-exec"))) = false;

bool charge(uint64_t bytes, size_t request, bool silent) {
  uint64_t before = in_use().load(std::memory_order_relaxed);
  for (;;) {
    uint64_t after = before + bytes;
    if (after > g_limit) {
      if (silent) return false;
      refused().fetch_add(1, std::memory_order_relaxed);
      log_exceeded(request, before);
      if (g_action == kOnLimitAbort) abort();
      if (g_action != kOnLimitWarn) {
        t_refused = true;
        return false;
      }
      after = in_use().fetch_add(bytes, std::memory_order_relaxed) + bytes;
      note_peak(after);
      return true;
    }
    if (in_use().compare_exchange_weak(before, after, std::memory_order_relaxed)) {
      note_peak(after);
      if (g_warn_percents) check_thresholds(before, after, request);
      return true;
    }
  }
}

// Saturates at zero: a block glibc made before poolguard was initialised (never charged) may be
// freed under the limit.
void release(uint64_t bytes) {
  uint64_t before = in_use().load(std::memory_order_relaxed);
  uint64_t after;
  do {
    after = before > bytes ? before - bytes : 0;
  } while (!in_use().compare_exchange_weak(before, after, std::memory_order_relaxed));
  if (g_warn_percents) check_thresholds(before, after, 0);
}

}  // namespace

void limit_init() {
  g_limit = options().LIMIT;
  shared_set(shared_globals().limit_bytes, g_limit);
  g_action = options().ON_LIMIT;
  g_warn_percents = options().LIMIT_WARN;
}

bool limit_charge_quiet(size_t bytes, size_t request) {
  return !limit_enabled() || charge(bytes, request, g_action != kOnLimitWarn);
}

bool limit_charge(size_t bytes, size_t request) {
  return !limit_enabled() || charge(bytes, request, false);
}

namespace {
std::atomic<uint64_t> g_seen_large_bytes{0};  // at the last limit_note_large
std::atomic<uint64_t> g_seen_peak{0};

void note_seen(uint64_t held) {
  uint64_t high = g_seen_peak.load(std::memory_order_relaxed);
  while (held > high && !g_seen_peak.compare_exchange_weak(high, held, std::memory_order_relaxed)) {
  }
}
}  // namespace

void limit_note_pools(uint64_t pool_bytes) {
  note_seen(pool_bytes + g_seen_large_bytes.load(std::memory_order_relaxed));
}

void limit_note_large(uint64_t large_bytes) {
  g_seen_large_bytes.store(large_bytes, std::memory_order_relaxed);
  // The pools' bytes now, from the figure the arenas keep (read relaxed, as readers do).
  note_seen(large_bytes +
            __atomic_load_n(&shared_globals().pools_in_use, __ATOMIC_RELAXED) * kPoolSize);
}

bool limit_take_refusal() {
  bool r = t_refused;
  t_refused = false;
  return r;
}

void limit_release(size_t bytes) {
  if (limit_enabled()) release(bytes);
}

void limit_counters(LimitCounters* out) {
  out->limit = g_limit;
  out->in_use = in_use().load(std::memory_order_relaxed);
  out->peak = peak().load(std::memory_order_relaxed);
  // With a limit every byte held is charged, and its peak is exact.
  out->held_peak = limit_enabled() ? out->peak : g_seen_peak.load(std::memory_order_relaxed);
  out->refused = refused().load(std::memory_order_relaxed);
  out->warnings = warnings().load(std::memory_order_relaxed);
}

}  // namespace pg
