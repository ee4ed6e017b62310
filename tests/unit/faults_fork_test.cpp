// fork() while another thread is held in the middle of an update, at a stop point of base/fault.h,
// deterministically: the child must not inherit the update half done, nor a lock held by a thread
// it does not have.
//  - A heap's pool lists: the child must be able to free every block the held thread had handed
//    out, without an error report, and go on allocating. (Found by CPython's test_threading, whose
//    threads exit and fork at the same time: a child abandoned a heap caught between the two steps
//    of unset_current and later reported a live block's free as "pool not in use".)
//  - The stack depot: a child forked while another thread added a stack to it must still record
//    stacks. (The fork handler once took the depot's lock only with the guard on: a child in
//    profile mode hung at its first new stack.)
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "base/depot.h"
#include "base/fault.h"
#include "front/alloc.h"
#include "test_util.h"

namespace pg::test {
namespace {

constexpr size_t kSize = 48;
constexpr size_t kMaxBlocks = 4096;  // more than a pool of kSize holds

// A stop point's hand-shake: the thread that armed it (its thread_local flag) waits there.
struct Stop {
  std::atomic<bool> held{false};     // the thread is at the stop point
  std::atomic<bool> release{false};  // ... and may go on
};
Stop g_heap_stop, g_depot_stop;
thread_local bool t_stop_in_heap = false;
thread_local bool t_stop_in_depot = false;
void* g_blocks[kMaxBlocks];
std::atomic<size_t> g_count{0};

void sleep_briefly() {
  timespec ts{0, 100 * 1000};
  nanosleep(&ts, nullptr);
}

// Waits for the child, 30 s at most (then kills it: a hang), and expects it to exit with 0.
void expect_child_exits_0(pid_t pid) {
  int status = 0;
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (waitpid(pid, &status, WNOHANG) != pid) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= 30) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "the child hung";
      break;
    }
    sleep_briefly();
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status << " (signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
      << ")";
}

void wait_at(Stop* stop, bool* armed) {
  if (!*armed) return;
  *armed = false;
  stop->held.store(true);
  while (!stop->release.load()) sleep_briefly();
}
void hold_in_heap() {
  wait_at(&g_heap_stop, &t_stop_in_heap);
}
void hold_in_depot() {
  wait_at(&g_depot_stop, &t_stop_in_depot);
}

// Allocates blocks of one class until its current pool runs out: the slow path then drops that
// pool's extra count (unset_current), where hold_in_heap() stops the thread.
void* worker(void*) {
  t_stop_in_heap = true;
  for (size_t i = 0; i < kMaxBlocks && t_stop_in_heap; ++i) {
    void* p = malloc_impl(kSize);
    if (p == nullptr) break;
    memset(p, 0x5a, kSize);
    g_blocks[i] = p;
    g_count.store(i + 1);
  }
  return nullptr;
}

void free_all_blocks() {
  size_t n = g_count.load();
  for (size_t i = 0; i < n; ++i) free_impl(g_blocks[i]);
}

// In the child: the worker is gone. Its blocks are the child's now.
[[noreturn]] void child() {
  size_t n = g_count.load();
  for (size_t i = 0; i < n; ++i) {
    if (!all_bytes(g_blocks[i], kSize, 0x5a)) _exit(3);
  }
  free_all_blocks();
  // The heap goes on working, with blocks of the same class and others.
  for (int round = 0; round < 3; ++round) {
    void* keep[2000];
    for (size_t i = 0; i < 2000; ++i) {
      keep[i] = malloc_impl(kSize + (i % 5) * 16);
      if (keep[i] == nullptr) _exit(4);
      memset(keep[i], static_cast<int>(i), kSize);
    }
    for (size_t i = 0; i < 2000; ++i) free_impl(keep[i]);
  }
  _exit(0);
}

TEST(FaultsFork, ChildFreesTheBlocksOfAHeapCaughtMidUpdate) {
  fault::set_point_hook_for_testing(fault::Point::kUnsetCurrent, hold_in_heap);
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, worker, nullptr), 0);
  for (int i = 0; i < 100000 && !g_heap_stop.held.load(); ++i) sleep_briefly();
  ASSERT_TRUE(g_heap_stop.held.load()) << "the worker never reached the stop point";
  ASSERT_GT(g_count.load(), 10u);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) child();
  expect_child_exits_0(pid);

  g_heap_stop.release.store(true);
  pthread_join(t, nullptr);
  fault::set_point_hook_for_testing(fault::Point::kUnsetCurrent, nullptr);
  free_all_blocks();
}

// ---- A thread inside the stack depot at the fork ----

// Adds a stack no one else records (so that it is not found without the lock), held at the stop
// point with the depot's lock taken.
void* depot_worker(void*) {
  t_stop_in_depot = true;
  const uintptr_t pcs[3] = {0x1000, 0x2000, 0x3000};
  return reinterpret_cast<void*>(static_cast<uintptr_t>(depot_put(pcs, 3)));
}

// Lets the held worker go on once the fork is under way: the fork handler waits for the lock.
void* release_depot_later(void*) {
  timespec ts{0, 200 * 1000 * 1000};
  nanosleep(&ts, nullptr);
  g_depot_stop.release.store(true);
  return nullptr;
}

TEST(FaultsFork, ChildRecordsStacksAfterAForkWhileAnotherThreadAddedOne) {
  free_impl(malloc_impl(16));  // the core is set up, its fork handlers installed
  fault::set_point_hook_for_testing(fault::Point::kDepotInsert, hold_in_depot);
  pthread_t worker, releaser;
  ASSERT_EQ(pthread_create(&worker, nullptr, depot_worker, nullptr), 0);
  for (int i = 0; i < 100000 && !g_depot_stop.held.load(); ++i) sleep_briefly();
  ASSERT_TRUE(g_depot_stop.held.load()) << "the worker never reached the stop point";
  ASSERT_EQ(pthread_create(&releaser, nullptr, release_depot_later, nullptr), 0);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const uintptr_t pcs[3] = {0x4000, 0x5000, 0x6000};
    uint32_t id = depot_put(pcs, 3);
    uintptr_t back[3] = {};
    _exit(id != 0 && depot_get(id, back, 3) == 3 && back[2] == 0x6000 ? 0 : 5);
  }
  expect_child_exits_0(pid);

  g_depot_stop.release.store(true);
  void* worker_id = nullptr;
  pthread_join(worker, &worker_id);
  pthread_join(releaser, nullptr);
  fault::set_point_hook_for_testing(fault::Point::kDepotInsert, nullptr);
  EXPECT_NE(worker_id, nullptr) << "the worker's stack was not recorded";
}

}  // namespace
}  // namespace pg::test
