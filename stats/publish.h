// Live statistics: every process under the preload publishes its heap figures in a shared-memory
// segment (stats/segment.h) that `poolguard stat PID` reads from outside.
//
// Nothing here runs on the malloc paths. The figures come from pg::take_snapshot() and
// pg::arena_views() (per-thread counters summed when asked), copied into the segment by one
// background thread that sleeps on a futex in the segment and wakes when a reader asks, or after a
// second. The thread is created from the preload constructor, never from malloc.
//
// fork(): the segment mapping is MADV_DONTFORK, so a child never sees its parent's. The child
// handler (pthread_atfork, registered after the core's, so it runs after the allocator's locks are
// released) creates the child's own segment and publisher thread at once: glibc's fork() has reset
// its internal locks (malloc, stdio, loader, thread stacks) before child handlers run, so this is
// what a program calling pthread_create() right after fork() does. The cost, one open, ftruncate,
// fallocate, mmap and clone per fork() child, is not paid by vfork(), posix_spawn() or system(),
// which run no atfork handlers. A child that execs leaves its segment to the new image (which
// replaces it when it runs under poolguard too) or, like one that calls _exit(), leaves it stale:
// readers see that the process no longer maps it, and `poolguard ls` removes it.
#pragma once

namespace pg {

// Creates this process's segment and its publisher thread. Called once, from the preload
// constructor, after the core is initialised. Does nothing when POOLGUARD_SEGMENT=off, in AT_SECURE
// (setuid) processes, or when /dev/shm is unusable: statistics are optional, and a failure here is
// silent.
void publish_start();

// Removes the segment's name (at exit, from the preload destructor). Only the process that created
// the segment removes it. The publisher thread keeps running until the process ends.
void publish_stop();

// Path of this process's segment, or nullptr when it publishes none. For tests.
const char* publish_path();

}  // namespace pg
