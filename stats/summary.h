// The exit summary (POOLGUARD_STATS=exit): one line that is a JSON object, then a table per size
// class, written on stderr with write(2) and no allocation.
#pragma once

namespace pg {

void write_summary(int fd);

// Programs may close stderr before poolguard's exit hook runs (coreutils do, in an atexit
// handler), and may have opened a file of their own as fd 2 since. write_exit_summary() writes to
// the start-up stderr only, through log_stderr_fd() (base/log.h), or not at all.
void write_exit_summary();

}  // namespace pg
