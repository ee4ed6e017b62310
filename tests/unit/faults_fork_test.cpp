// fork() while another thread is in the middle of updating its heap's pool lists. The stop points
// of base/fault.h hold that thread there, deterministically, while the test forks: the child must
// be able to free every block the held thread had handed out, without an error report, and go on
// allocating. (Found by CPython's test_threading, whose threads exit and fork at the same time: a
// child abandoned a heap caught between the two steps of unset_current and later reported a live
// block's free as "pool not in use".)
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "base/fault.h"
#include "front/alloc.h"
#include "test_util.h"

namespace pg::test {
namespace {

constexpr size_t kSize = 48;
constexpr size_t kMaxBlocks = 4096;  // more than a pool of kSize holds

std::atomic<bool> g_held{false};     // the worker is at the stop point
std::atomic<bool> g_release{false};  // ... and may go on
thread_local bool t_stop_here = false;
void* g_blocks[kMaxBlocks];
std::atomic<size_t> g_count{0};

void sleep_briefly() {
  timespec ts{0, 100 * 1000};
  nanosleep(&ts, nullptr);
}

void hold_here() {
  if (!t_stop_here) return;
  t_stop_here = false;
  g_held.store(true);
  while (!g_release.load()) sleep_briefly();
}

// Allocates blocks of one class until its current pool runs out: the slow path then drops that
// pool's extra count (unset_current), where hold_here() stops the thread.
void* worker(void*) {
  t_stop_here = true;
  for (size_t i = 0; i < kMaxBlocks && t_stop_here; ++i) {
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
  fault::set_point_hook_for_testing(fault::Point::kUnsetCurrent, hold_here);
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, worker, nullptr), 0);
  for (int i = 0; i < 100000 && !g_held.load(); ++i) sleep_briefly();
  ASSERT_TRUE(g_held.load()) << "the worker never reached the stop point";
  ASSERT_GT(g_count.load(), 10u);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) child();
  int status = 0;
  for (int i = 0; i < 300000; ++i) {  // 30 s
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (i == 299999) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << "the child hung";
    }
    sleep_briefly();
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status << " (signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
      << ")";

  g_release.store(true);
  pthread_join(t, nullptr);
  fault::set_point_hook_for_testing(fault::Point::kUnsetCurrent, nullptr);
  free_all_blocks();
}

}  // namespace
}  // namespace pg::test
