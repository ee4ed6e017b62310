// The allocator's one kind of lock: a small spin-then-yield lock that never allocates and has no
// constructor to run (it works before any initialiser). Used only off the fast path.
//
// The lock word holds its owner (the thread's pthread_t), 0 when free, so that the fork handlers
// can tell a lock held by the forking thread itself from one held by another thread.
//
// fork(): the atfork "prepare" handler (front/init.cpp) takes every lock, in one fixed order, so
// that the child never inherits a lock held by a thread that does not exist there. Two cases need
// care:
//  - While the forking thread holds them, its own allocations (from atfork handlers of other
//    libraries that run after ours) must not deadlock, so lock() lets that one thread through:
//    `g_fork_owner` names it.
//  - fork() may run in a signal handler that interrupted this same thread inside a critical
//    section, or inside fork() itself. A lock the forking thread already holds is then left as it
//    is (lock_for_fork() skips it, and the matching unlock_after_fork() does not release it): the
//    interrupted code releases it when the handler returns, in the parent as in the child.
//    Handlers nest that way, so each lock records the fork depth (t_fork_depth) that took it.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>

namespace pg {

// The thread running the fork handlers while they hold every lock, or 0.
extern std::atomic<pthread_t> g_fork_owner;
// How many fork() calls of this thread are between their prepare and parent/child handlers (more
// than one only when a signal handler forks during a fork).
extern __thread int t_fork_depth __attribute__((tls_model("initial-exec")));

class SpinLock {
 public:
  void lock() {
    pthread_t self = pthread_self();
    if (g_fork_owner.load(std::memory_order_relaxed) == self) return;
    acquire(self);
  }
  void unlock() {
    if (g_fork_owner.load(std::memory_order_relaxed) == pthread_self()) return;
    owner_.store(0, std::memory_order_release);
  }
  // One attempt; true if the lock is now held (release it with unlock_raw()). For work that can
  // be skipped.
  bool try_lock() {
    pthread_t expected = 0;
    return owner_.compare_exchange_strong(expected, pthread_self(), std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  // Releases a lock taken with try_lock() (unlock() would not while the caller runs the fork
  // handlers).
  void unlock_raw() { owner_.store(0, std::memory_order_release); }
  bool held_by_caller() const { return owner_.load(std::memory_order_relaxed) == pthread_self(); }

  // fork support (see the top of this file). Takes the lock unless the calling thread holds it.
  void lock_for_fork() {
    if (held_by_caller()) return;
    acquire(pthread_self());
    fork_depth_ = t_fork_depth;
  }
  // Releases the lock if lock_for_fork() at the current depth took it.
  void unlock_after_fork() {
    if (fork_depth_ != t_fork_depth || !held_by_caller()) return;
    fork_depth_ = 0;
    owner_.store(0, std::memory_order_release);
  }

 private:
  void acquire(pthread_t self) {
    for (int spins = 0;; ++spins) {
      pthread_t expected = 0;
      if (owner_.compare_exchange_weak(expected, self, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      while (owner_.load(std::memory_order_relaxed) != 0) {
        if (++spins > 64) {
          sched_yield();
          spins = 0;
        } else {
#if defined(__x86_64__)
          __builtin_ia32_pause();
#endif
        }
      }
    }
  }

  std::atomic<pthread_t> owner_{0};
  int fork_depth_ = 0;  // t_fork_depth of the fork handler holding the lock; 0: none
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
