// Live statistics: every process under the preload publishes its heap figures in a shared-memory
// segment (stats/segment.h) that `poolguard stat PID` reads from outside.
//
// Nothing here runs on the malloc paths. The figures come from pg::take_snapshot() and
// pg::arena_views() (per-thread counters summed when asked), copied into the segment by one
// background thread that sleeps on a futex in the segment and wakes when a reader asks, or after a
// second. The thread is created from the preload constructor, never from malloc.
//
// Lazily: the thread creates the segment only after the process has lived 0.1 s. Most processes
// that end without running exit hooks (fork() children that exec or _exit, commands that a
// preloaded `env` or shell execs without the preload) are short-lived, so they never create a
// segment and leave none behind; the processes that do live long enough to be watched publish.
//
// fork(): the segment mapping is MADV_DONTFORK, so a child never sees its parent's. The child
// handler (pthread_atfork, registered after the core's, so it runs after the allocator's locks are
// released) starts the child's own publisher thread at once: glibc's fork() has reset its
// internal locks (malloc, stdio, loader, thread stacks) before child handlers run, so this is what
// a program calling pthread_create() right after fork() does. A flag set there for a lazy start
// would need a later hook off the malloc path, and there is none. vfork(), posix_spawn() and
// system() run no atfork handlers and cost nothing. A child that lives past 0.1 s and then execs
// leaves its segment to the new image (which replaces it when it runs under poolguard too) or,
// like one that calls _exit(), leaves it stale: readers see that the process no longer maps it,
// and `poolguard ls` removes it.
#pragma once

namespace pg {

// Starts this process's publisher thread, which creates the segment 0.1 s later. Called once,
// from the preload constructor, after the core is initialised. Does nothing when
// POOLGUARD_SEGMENT=off or in AT_SECURE (setuid) processes; when /dev/shm is unusable the thread
// ends quietly: statistics are optional.
void publish_start();

// Removes the segment's name (at exit, from the preload destructor), or keeps the publisher thread
// from creating it. Only the process that started the publisher does this. The thread keeps
// running until the process ends.
void publish_stop();

// Path of this process's segment, or nullptr when it publishes none (yet). For tests.
const char* publish_path();

}  // namespace pg
