// Structured log records: one line each, `poolguard: EVENT {json}`, written with write(2) from a
// stack buffer (never malloc), to stderr or to the file POOLGUARD_LOG names (%p -> pid).
// Records of each event kind are rate-limited: the first kBurst go out, then at most one per
// second; each written record says how many of its kind were suppressed since the last one.
#pragma once

#include <cstdint>

#include "base/format.h"

namespace pg {

enum class LogEvent : int { kLimitExceeded = 0, kLimitWarning = 1, kCount };

// Starts a record of `event` in `line` (the "{" and the common fields: time, pid, thread,
// suppressed). Returns false when the rate limit drops this record (it is then only counted):
// past the first kBurst records of the kind, at most one a second; and a repeat, a record with the
// same nonzero `repeat_key` (a hash of its stack) as the last one written of its kind within the
// last second, is folded into that count whatever the burst (a program probing for memory asks
// again and again from one place: its records say nothing new).
bool log_begin(LogEvent event, TextBuffer<4096>& line, uint64_t repeat_key = 0);
// Ends the record ("}\n") and writes it.
void log_end(TextBuffer<4096>& line);

const char* log_event_name(LogEvent event);

// Where records and reports go, verified when taken (log.cpp has the rules): the POOLGUARD_LOG
// file, opened now and closed when this goes out of scope, or stderr as it was at start-up. fd()
// is -1 when there is nowhere safe to write: the output is then dropped. Async-signal-safe.
class LogOutput {
 public:
  // at_exit: output at exit, whose stderr is log_exit_fd().
  explicit LogOutput(bool at_exit = false);
  ~LogOutput();
  LogOutput(const LogOutput&) = delete;
  LogOutput& operator=(const LogOutput&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool owned_ = false;
};

// With keep_duplicate, keeps a close-on-exec duplicate of stderr as it is now (numbered 100 or
// above), so that output reaches it after the program closes fd 2. Called at start-up when there
// will be output at exit; idempotent.
void log_prepare(bool keep_duplicate);
// fd 2 while it is open for writing, else the start-up stderr's duplicate while it still refers
// to that file, else -1 (log.cpp has the reasons).
int log_stderr_fd();
// For output at exit: the duplicate first, then as log_stderr_fd().
int log_exit_fd();
// Opens POOLGUARD_LOG's PATH (%p: the pid) for appending, safely (log.cpp); -1 with *why set.
int log_open_file(const char* path, const char** why);

void log_lock_for_fork();
void log_unlock_after_fork();

// At exit: for each kind with records suppressed since its last one, writes
// `poolguard: log-suppressed {"event":"...","count":N}` so that no count is lost.
void log_flush_suppressed();

}  // namespace pg
