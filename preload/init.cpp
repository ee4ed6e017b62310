// Start-up and exit of the preloaded library: initialise early (the core also initialises lazily
// on the first allocation, which may come first; the statistics segment is set up there,
// pool/shared.h), and at exit check the guard zones, report leaks and print the summary if asked.
#include <stdio.h>
#include <unistd.h>

#include <cstdint>

#include "base/log.h"
#include "base/options.h"
#include "front/init.h"
#include "guard/guard.h"
#include "stats/summary.h"
#include "track/leak_report.h"
#include "track/leak_scan.h"
#include "track/tracker.h"

namespace {

__attribute__((constructor(101))) void poolguard_start() {
  pg::ensure_init();
  // Output at exit (the summary, the leak report) must still reach stderr if the program closes it.
  pg::log_prepare(pg::options().STATS == pg::kStatsExit || pg::tracking_all());
}

// The exit work. Runs below `top` (poolguard_stop): the leak scan reads this thread's stack from
// there up, so no frame of poolguard's is a root, only the callers' (_dl_fini, exit, and the
// program's frames that called exit).
int stop_below(void*, uintptr_t top) {
  pg::guard_check_all();  // guard modes: every live and quarantined block's redzones and fill
  int status = pg::leak_check_at_exit(top);  // POOLGUARD_LEAKS
  pg::log_flush_suppressed();
  if (pg::options().STATS == pg::kStatsExit) pg::write_exit_summary();
  if (status != 0) {
    // POOLGUARD_LEAKS_EXIT_CODE: end here with that status. stdio has not been flushed yet (exit()
    // does it after the destructors), so flush it first.
    fflush(nullptr);
    _exit(status);
  }
  return 0;
}

// Runs from _dl_fini, after the program's atexit handlers and static destructors.
__attribute__((destructor(101))) void poolguard_stop() {
  pg::leak::call_with_stack_top(stop_below, nullptr);
}

}  // namespace
