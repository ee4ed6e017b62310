// The leak report at exit (POOLGUARD_LEAKS=1): which tracked blocks are still live, which of them
// the program can no longer reach (track/leak_scan.h), grouped by allocation stack, largest first,
// with symbolized frames (base/symbolize.h). Written to the log (POOLGUARD_LOG, stderr by
// default):
//
//   poolguard: direct leak of 400 bytes in 4 blocks, allocated from:
//       #0 0x5581c2a01169 in leak_direct (/path/prog+0x1169) leaks.c:21
//       ...
//   poolguard: indirect leak of ...
//   poolguard: reachable at exit: 12 blocks, 3456 bytes (still pointed to; not leaks). Largest:
//       ...
//   poolguard: leak-summary {"pid":..,"direct":{"blocks":4,"bytes":400,"stacks":1},...}
//
// Direct leaks come first, then indirect ones, each by bytes; at most kLeakGroupsShown groups of
// each are printed in full, the rest are counted in the summary.
#pragma once

#include <cstdint>

namespace pg {

inline constexpr int kLeakGroupsShown = 30;

// Keeps a duplicate of stderr for the report when POOLGUARD_LEAKS is on: programs such as
// coreutils close fd 2 in an atexit handler, before the report is written. From the preload
// constructor.

// Runs the check when POOLGUARD_LEAKS is on. Returns the exit status the process must end with
// (POOLGUARD_LEAKS_EXIT_CODE when something leaked), or 0 to keep its own. The calling thread's
// stack is scanned from `top` up: the exit hook runs inside leak::call_with_stack_top
// (track/leak_scan.h), so that none of its own frames is a root.
int leak_check_at_exit(uintptr_t top);

}  // namespace pg
