// Stopping the world for the leak scan: every other thread of the process is sent a real-time
// signal whose handler saves its registers and stack pointer and waits until the scan is over.
// Async-signal-safe where it runs in the handler; allocates nothing through malloc.
#pragma once

#include <cstddef>
#include <cstdint>

#include "track/leak_scan.h"
#include "track/scan_work.h"

namespace pg::leak {

constexpr size_t kRegWords = 64;

// What the scanner did with a thread (ThreadSlot::state).
enum SlotState : uint32_t {
  kToSignal = 0,
  kSent,       // signalled, waiting for its answer
  kStopped,    // answered in time: registers and sp in the slot
  kLate,       // signalled, no answer in time: stack scanned whole
  kBlocked,    // blocks the signal (SigBlk in its status): not signalled, stack scanned whole
  kGone,       // exited since it was listed
  kUnstopped,  // the signal could not be sent: stack scanned whole
};

// One other thread. The scanner fills tid and state before the stop; the thread's handler fills
// sp, nwords and words, then sets `arrived` (release). The slots are read by the scanner only
// after it saw `arrived`, and unmapped only once no handler is inside (g_inside).
struct ThreadSlot {
  int32_t tid;
  uint32_t state;
  uint32_t arrived;  // 0, then 1 (atomic)
  uint32_t nwords;
  uintptr_t sp;
  uintptr_t words[kRegWords];  // general registers, and on x86-64 the SSE registers
};

// The other threads of one scan.
struct World {
  ThreadSlot* slots = nullptr;
  size_t count = 0;
  uint32_t gen = 0;
  int sig = 0;
};

// Step 1 of the scan (track/leak_scan.cpp). Lists the other threads (/proc/self/task) into slots
// mapped from `work`, signals every one that does not block the signal, and waits up to 200 ms
// for their answers. Fills threads, threads_stopped and threads_unstopped of *st. false only when
// memory is refused (nothing is stopped then). One stop at a time: the caller serializes
// stop_world ... resume_world (leak_scan holds its scan lock).
bool stop_world(Work* work, World* w, ScanStats* st);

// Step 5. Lets the stopped threads go; afterwards no handler touches the slots (they may be
// unmapped). Puts the signal's previous action back unless a stop signal may still be pending.
void resume_world(World* w);

}  // namespace pg::leak
