// The allocator's one kind of lock: a small spin-then-yield lock that never allocates and has no
// constructor to run (it works before any initialiser). Used only off the fast path.
//
// fork(): the atfork "prepare" handler takes every lock, so that the child never inherits a lock
// held by a thread that does not exist there. While the forking thread holds them, its own
// allocations (from atfork handlers of other libraries that run after ours) must not deadlock, so
// lock() lets that one thread through: `g_fork_owner` names it.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <atomic>

namespace pg {

extern std::atomic<pthread_t> g_fork_owner;

class SpinLock {
 public:
  void lock() {
    if (g_fork_owner.load(std::memory_order_relaxed) == pthread_self()) return;
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) {
          sched_yield();
          spins = 0;
        } else {
          __builtin_ia32_pause();
        }
      }
    }
  }
  void unlock() {
    if (g_fork_owner.load(std::memory_order_relaxed) == pthread_self()) return;
    locked_.store(false, std::memory_order_release);
  }
  // One attempt; true if the lock is now held. For work that can be skipped.
  bool try_lock() { return !locked_.exchange(true, std::memory_order_acquire); }
  // fork support: raw acquire/release, bypassing the fork-owner pass.
  void force_lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) sched_yield();
  }
  void force_unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

class LockGuard {
 public:
  explicit LockGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  SpinLock& l_;
};

}  // namespace pg
