// Stack walking, the one way poolguard does it: through libunwind (it reads the unwind tables, so
// programs built without frame pointers are walked too), made safe for the program it runs in.
//
// Two hazards come with libunwind, and this file guards against both:
//  - Descriptors. libunwind checks that memory is readable by writing a byte of it into a pipe
//    it opens on first use, at the lowest free descriptor numbers, and reading it back. A program
//    that closes every descriptor it did not open (closefrom) and opens its own files gets those
//    numbers: libunwind would then write into the program's files and read from them. So the
//    first walk is made where the pipe's numbers are known in advance (the free descriptors
//    below 100 are held open meanwhile, so that the pipe goes above, out of the way of programs
//    that expect their first file to be descriptor 3; checked afterwards to be one non-blocking
//    close-on-exec pipe). The program's own calls that close or replace descriptors (close,
//    close_range, closefrom, dup2, dup3: front/descriptors.h) tell unwind_descriptors_closing()
//    first; once they touch the pipe, stacks are no longer walked (unwind_available() says so): a
//    report without stacks, never a write into the program's files. For closes made by raw
//    system calls, every 1024th walk also checks that both descriptors are still that pipe
//    (fstat and fcntl: a check before every walk would cost more than the walk).
//  - fork(). libunwind takes its own mutex (its global cache); a thread inside a walk when
//    another thread forks would leave the child's copy locked forever. Walks pass a gate that the
//    fork handler closes after taking poolguard's locks, waiting for the walks in flight (not for
//    one its own thread was interrupted in, by the signal handler that forks).
//
// Both walks keep errno (they run inside malloc and free) and are async-signal-safe as far as
// libunwind's local unwinding is.
#pragma once

#include <cstdint>

namespace pg {

// The return addresses of the caller's stack, innermost first, into out[0..max); how many (0
// when stacks cannot be walked safely now). The first entries are the callers inside poolguard:
// the caller drops them.
int unwind_here(uintptr_t* out, int max);
// The stack of a signal's context (a ucontext_t*), the interrupted instruction first.
int unwind_context(const void* ucontext, uintptr_t* out, int max);
// False once stacks can no longer be walked safely (the program closed libunwind's descriptors).
bool unwind_available();
// The program is about to close or replace descriptors lo..hi (inclusive): if libunwind's pipe is
// among them, stacks are no longer walked, in this process only (a vfork child closing
// descriptors before exec leaves its parent walking). Async-signal-safe.
void unwind_descriptors_closing(unsigned lo, unsigned hi);

// fork support: the gate closes after every lock is taken, and opens when the outermost fork
// (base/lock.h, t_fork_depth) is over, in the parent and in the child.
void unwind_close_for_fork();
void unwind_open_after_fork();

}  // namespace pg
