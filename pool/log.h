// Structured log records: one line each, `poolguard: EVENT {json}`, written with write(2) from a
// stack buffer (never malloc), to stderr or to the file POOLGUARD_LOG names (%p -> pid).
// Records of each event kind are rate-limited: the first kBurst go out, then at most one per
// second; each written record says how many of its kind were suppressed since the last one.
#pragma once

#include <cstdint>

#include "pool/format.h"

namespace pg {

enum class LogEvent : int { kLimitExceeded = 0, kLimitWarning = 1, kCount };

// Starts a record of `event` in `line` (the "{" and the common fields: time, pid, thread,
// suppressed). Returns false when the rate limit drops this record (it is then only counted).
bool log_begin(LogEvent event, TextBuffer<4096>& line);
// Ends the record ("}\n") and writes it.
void log_end(TextBuffer<4096>& line);

const char* log_event_name(LogEvent event);

// Where records and guard reports go: fd 2, or the POOLGUARD_LOG file (opened on first use, and
// again in a forked child). Async-signal-safe: at most an open(2).
int log_output_fd();

// At exit: for each kind with records suppressed since its last one, writes
// `poolguard: log-suppressed {"event":"...","count":N}` so that no count is lost.
void log_flush_suppressed();

}  // namespace pg
