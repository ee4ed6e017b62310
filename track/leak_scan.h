// The reachability scan behind POOLGUARD_LEAKS: which tracked blocks can the program still reach?
//
// Like LeakSanitizer, conservatively: every aligned 8-byte word of the roots that holds an address
// inside a live block (its first byte up to its end, interior pointers included) makes that block
// reachable, and reachable blocks are scanned in turn. Roots are
//   - every readable and writable mapping of the process (data and bss of the program and its
//     libraries, anonymous memory, glibc's heaps), except the tracked blocks themselves (they are
//     scanned only once reached), the `exclude` ranges (poolguard's own metadata) and thread
//     stacks, which are scanned from the stack pointer up only;
//   - the registers and stacks of every thread: the other threads are stopped with a signal for the
//     length of the scan (their registers come from the signal context); a thread that does not
//     answer in time has its whole stack mapping scanned instead (counted in ScanStats). The
//     scanning thread's stack is scanned from a `top` taken where poolguard's own code starts
//     (call_with_stack_top below): the frames of the check itself, and whatever stale words their
//     unwritten slots still hold, are never roots; its callers' registers are.
// Blocks left unreached are leaks: `direct` when no other leaked block points to them, `indirect`
// when one does. In a leaked cycle with no way in, one block (the lowest address) is direct and
// the rest indirect, so every cycle shows up once as a direct leak.
//
// Memory: nothing here allocates through malloc (work arrays are mmap'ed and unmapped after).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg::leak {

enum BlockState : uint8_t {
  kUnreached = 0,  // input value
  kReachable = 1,  // reachable from the roots
  kDirect = 2,     // leaked, pointed to by no other leaked block
  kIndirect = 3,   // leaked, pointed to by another leaked block
};

// One live block. The caller fills start, size and stack, with state kUnreached.
struct ScanBlock {
  uintptr_t start;
  uint64_t size;   // bytes of the block: all of them are scanned and may be pointed into
  uint32_t stack;  // caller's tag (a stack depot id); not used by the scan
  uint8_t state;   // BlockState, set by leak_scan
  uint8_t pad[3];
};

struct Range {
  uintptr_t lo, hi;  // [lo, hi)
};

struct ScanStats {
  uint64_t root_bytes;         // bytes of roots scanned
  uint64_t heap_bytes;         // bytes of reachable blocks scanned
  uint32_t threads;            // threads of the process (the caller included)
  uint32_t threads_stopped;    // other threads stopped and their registers scanned
  uint32_t threads_unstopped;  // other threads that did not answer: whole stack mapping scanned
  uint32_t regions;            // root regions scanned
};

// Classifies blocks[0..n), which must be sorted by start and must not overlap. Returns false
// (states untouched) when the scan cannot be done: /proc/self/maps unreadable or work memory
// refused. The caller must keep every block alive and unchanged during the call (it holds the
// allocator's tracking lock, so no other thread frees or allocates a tracked block meanwhile:
// the other threads are stopped anyway).
// The calling thread's stack is scanned from `top` up (a value call_with_stack_top() passed to
// a function that is still running), nothing below it.
bool leak_scan(ScanBlock* blocks, size_t n, const Range* exclude, size_t n_exclude,
               ScanStats* stats, uintptr_t top);

// The same, with the calling thread's stack scanned from the caller's frame up.
bool leak_scan(ScanBlock* blocks, size_t n, const Range* exclude, size_t n_exclude,
               ScanStats* stats);

// Calls fn(ctx, top) and returns what it returns. Every callee-saved register of the caller is
// stored in memory at or above `top`, and the rest of that memory is the caller's frames: a scan
// of the stack from `top` up reads everything the caller and its callers keep (caller-saved
// registers hold nothing live across a call), and nothing of fn's frames, below `top`. On
// x86-64 the words at and above `top` are written by this function alone (a zero, the registers,
// the return address); elsewhere it is a C frame that spills the registers, whose padding may
// hold a stale word.
int call_with_stack_top(int (*fn)(void* ctx, uintptr_t top), void* ctx);

}  // namespace pg::leak
