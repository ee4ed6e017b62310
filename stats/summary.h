// The exit summary (POOLGUARD_STATS=exit): one line that is a JSON object, then a table per size
// class, written on stderr with write(2) and no allocation.
#pragma once

namespace pg {

void write_summary(int fd);

// Programs may close stderr before poolguard's exit hook runs (coreutils do, in an atexit
// handler). summary_prepare() keeps a close-on-exec duplicate of stderr as it is at start-up;
// write_exit_summary() writes there if it still refers to the same file, else to fd 2.
void summary_prepare();
void write_exit_summary();

}  // namespace pg
