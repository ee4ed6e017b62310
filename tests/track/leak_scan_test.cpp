// Unit tests of the reachability scan (track/leak_scan.h), without LD_PRELOAD.
//
// The "blocks" are slices of one mapping made for the whole suite, never of the heap, so that the
// test decides every pointer to them. Each test takes fresh addresses (the arena is never
// reused), so a stale copy of an earlier test's pointer, left in some dead stack frame, cannot
// reach the blocks of a later test. Block addresses are computed and stored only in noinline
// helpers, and the scan runs after wipe_stack() has zeroed the dead frames below it, so the test
// bodies hold no copy of an address they mean to be unreachable. Every test that makes a
// reference removes it before it ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>

#include "track/leak_scan.h"

namespace pg::leak {
namespace {

constexpr size_t kArenaBytes = size_t{16} << 20;
constexpr uintptr_t kKey = 0x5a5a5a5a5a5a5a5aull;  // pointers hidden from the scan: p ^ kKey

char* g_arena = nullptr;
size_t g_arena_used = 0;

// Roots the tests write into (the test binary's .bss is a root region). Volatile: never read by
// the program, its stores would otherwise be optimised away.
volatile uintptr_t g_ref = 0;
uintptr_t g_excluded[4] = {};

__attribute__((noinline)) void wipe_stack() {
  char buf[64 << 10];
  memset(buf, 0, sizeof buf);
  asm volatile("" : : "r"(buf) : "memory");
}

// Runs the scan from a frame that holds no block address, over a zeroed stack below it.
__attribute__((noinline)) ScanStats run_scan(ScanBlock* blocks, size_t n,
                                             const Range* exclude = nullptr, size_t n_exclude = 0) {
  wipe_stack();
  ScanStats st{};
  EXPECT_TRUE(leak_scan(blocks, n, exclude, n_exclude, &st));
  return st;
}

class LeakScanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (g_arena != nullptr) return;
    void* p = mmap(nullptr, kArenaBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    g_arena = static_cast<char*>(p);
    g_arena_used = 4096;  // the arena's own address (in g_arena) points into no block
  }

  void TearDown() override {
    if (blocks_ != nullptr) munmap(blocks_, array_bytes_);
  }

  // `count` fresh blocks of `size` bytes, `gap` bytes apart, in address order; all zero.
  __attribute__((noinline)) void make(size_t count, size_t size = 256, size_t gap = 256) {
    array_bytes_ = (count * sizeof(ScanBlock) + 4095) & ~size_t{4095};
    void* a =
        mmap(nullptr, array_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(a, MAP_FAILED);
    blocks_ = static_cast<ScanBlock*>(a);
    n_ = count;
    size_t need = count * (size + gap) + 4096;
    ASSERT_LE(g_arena_used + need, kArenaBytes) << "enlarge kArenaBytes";
    char* next = g_arena + g_arena_used;
    for (size_t i = 0; i < count; ++i) {
      blocks_[i].start = reinterpret_cast<uintptr_t>(next);
      blocks_[i].size = size;
      blocks_[i].stack = static_cast<uint32_t>(i);
      blocks_[i].state = kUnreached;
      next += size + gap;
    }
    g_arena_used += need;
  }

  // Block `from` holds, in its word `slot`, a pointer `offset` bytes into block `to`.
  __attribute__((noinline)) void link(size_t from, size_t to, size_t slot = 0, size_t offset = 0) {
    reinterpret_cast<uintptr_t*>(blocks_[from].start)[slot] = blocks_[to].start + offset;
  }
  __attribute__((noinline)) void unlink_all() {
    for (size_t i = 0; i < n_; ++i) memset(reinterpret_cast<void*>(blocks_[i].start), 0, 16);
  }
  __attribute__((noinline)) void set_global(size_t i, size_t offset = 0) {
    g_ref = blocks_[i].start + offset;
  }
  __attribute__((noinline)) uintptr_t hidden(size_t i) const { return blocks_[i].start ^ kKey; }
  // *where = the address of block i (computed here, so that the test body never holds it).
  __attribute__((noinline)) void put(void* where, size_t i) {
    *static_cast<uintptr_t*>(where) = blocks_[i].start;
  }

  ScanStats scan(const Range* exclude = nullptr, size_t n_exclude = 0) {
    for (size_t i = 0; i < n_; ++i) blocks_[i].state = kUnreached;
    return run_scan(blocks_, n_, exclude, n_exclude);
  }
  int state(size_t i) const { return blocks_[i].state; }

  ScanBlock* blocks_ = nullptr;
  size_t n_ = 0;
  size_t array_bytes_ = 0;
};

// ---- roots ----

TEST_F(LeakScanTest, UnreferencedBlockIsDirect) {
  make(3);
  scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kDirect);
  EXPECT_EQ(state(2), kDirect);
}

TEST_F(LeakScanTest, GlobalReferenceIsReachable) {
  make(2);
  set_global(1);
  scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kReachable);
  g_ref = 0;
  scan();
  EXPECT_EQ(state(1), kDirect);
}

TEST_F(LeakScanTest, InteriorPointersCount) {
  make(3, 256);
  set_global(0, 100);
  scan();
  EXPECT_EQ(state(0), kReachable);
  set_global(1, 255);  // last byte
  scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kReachable);
  set_global(2, 256);  // one past the end: no block there (the gap)
  scan();
  EXPECT_EQ(state(2), kDirect);
  g_ref = 0;
}

__attribute__((noinline)) ScanStats scan_with_local(ScanBlock* blocks, size_t n, uintptr_t key) {
  uintptr_t local = blocks[0].start ^ key;  // only this frame, below the caller, holds it
  local ^= key;
  asm volatile("" : : "r"(&local) : "memory");
  ScanStats st = run_scan(blocks, n);
  asm volatile("" : : "r"(&local) : "memory");
  local = 0;
  asm volatile("" : : "r"(&local) : "memory");
  return st;
}

TEST_F(LeakScanTest, LocalOnCurrentStackIsReachable) {
  make(2);
  scan_with_local(blocks_, n_, kKey);
  EXPECT_EQ(state(0), kReachable);
  EXPECT_EQ(state(1), kDirect);
  scan();
  EXPECT_EQ(state(0), kDirect);
}

// Below the `top` that call_with_stack_top() hands out, the calling thread's stack is not a root:
// a block address in a frame there (poolguard's own exit frames, in the report) hides no leak.
struct BelowTop {
  ScanBlock* blocks;
  size_t n;
  uintptr_t key;
};

__attribute__((noinline)) int scan_with_address_below_top(void* ctx, uintptr_t top) {
  const BelowTop* b = static_cast<const BelowTop*>(ctx);
  volatile uintptr_t below = b->blocks[0].start ^ b->key;
  below = below ^ b->key;  // the address itself, in this frame, below `top`
  EXPECT_LT(reinterpret_cast<uintptr_t>(&below), top);
  ScanStats st{};
  EXPECT_TRUE(leak_scan(b->blocks, b->n, nullptr, 0, &st, top));
  below = 0;
  return 0;
}

TEST_F(LeakScanTest, FramesBelowTheTopAreNotRoots) {
  make(2);
  BelowTop ctx{blocks_, n_, kKey};
  wipe_stack();
  call_with_stack_top(scan_with_address_below_top, &ctx);
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kDirect);
}

#if defined(__x86_64__)
// The caller's callee-saved registers are roots: call_with_stack_top() stores them above `top`.
__attribute__((noinline)) int scan_from_top(void* ctx, uintptr_t top) {
  const BelowTop* b = static_cast<const BelowTop*>(ctx);
  wipe_stack();
  ScanStats st{};
  EXPECT_TRUE(leak_scan(b->blocks, b->n, nullptr, 0, &st, top));
  return 0;
}

__attribute__((noinline)) void scan_with_r12(BelowTop* ctx, uintptr_t hidden_address) {
  register uintptr_t reg asm("r12") = hidden_address;  // the address only there, not in memory
  asm volatile("xorq %[key], %%r12" : "+r"(reg) : [key] "r"(ctx->key));
  call_with_stack_top(scan_from_top, ctx);
  asm volatile("xorq %%r12, %%r12" : "+r"(reg));
}

TEST_F(LeakScanTest, CallerCalleeSavedRegisterIsARoot) {
  make(2);
  BelowTop ctx{blocks_, n_, kKey};
  wipe_stack();
  scan_with_r12(&ctx, hidden(1));
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kReachable);
}
#endif

TEST_F(LeakScanTest, ReachableFromReachableBlockIsReachable) {
  make(5);
  set_global(0);
  link(0, 1);
  link(1, 2, 3);  // another word of the block
  link(2, 3, 5, 17);
  ScanStats st = scan();
  EXPECT_EQ(state(0), kReachable);
  EXPECT_EQ(state(1), kReachable);
  EXPECT_EQ(state(2), kReachable);
  EXPECT_EQ(state(3), kReachable);
  EXPECT_EQ(state(4), kDirect);
  EXPECT_EQ(st.heap_bytes, 4u * 256);
  g_ref = 0;
  unlink_all();
}

TEST_F(LeakScanTest, ExcludedRangesAreNotRoots) {
  make(2);
  put(&g_excluded[1], 0);
  Range ex{reinterpret_cast<uintptr_t>(&g_excluded[0]),
           reinterpret_cast<uintptr_t>(&g_excluded[4])};
  scan(&ex, 1);
  EXPECT_EQ(state(0), kDirect);
  scan();  // the same pointer counts without the exclusion
  EXPECT_EQ(state(0), kReachable);
  g_excluded[1] = 0;
}

TEST_F(LeakScanTest, BlockArrayIsNotARoot) {
  // blocks_[i].start points at every block; the array lives in a writable mapping.
  make(4);
  scan();
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(state(i), kDirect) << i;
}

TEST_F(LeakScanTest, SharedMappingIsARoot) {
  make(1);
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  put(static_cast<uintptr_t*>(p) + 7, 0);
  scan();
  EXPECT_EQ(state(0), kReachable);
  munmap(p, 4096);
}

TEST_F(LeakScanTest, UnreadableOrReadOnlyMemoryIsNotARoot) {
  make(2);
  void* p = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* words = static_cast<uintptr_t*>(p);
  put(&words[0], 0);
  put(&words[512], 1);
  mprotect(p, 4096, PROT_NONE);
  mprotect(static_cast<char*>(p) + 4096, 4096, PROT_READ);
  scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kDirect);
  munmap(p, 8192);
}

TEST_F(LeakScanTest, PoolguardStatsSegmentIsNotARoot) {
  make(1);
  char path[64];
  snprintf(path, sizeof path, "/dev/shm/poolguard.leakscantest.%d", getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) GTEST_SKIP() << "no /dev/shm";
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  unlink(path);
  ASSERT_NE(p, MAP_FAILED);
  put(static_cast<uintptr_t*>(p) + 3, 0);
  scan();
  EXPECT_EQ(state(0), kDirect);
  munmap(p, 4096);
}

TEST_F(LeakScanTest, FileMappingPastEndOfFileDoesNotFault) {
  make(1);
  char path[] = "/tmp/pg_leak_scan_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  // Three pages over a one-page file: touching the last two raises SIGBUS.
  void* p = mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  ASSERT_NE(p, MAP_FAILED);
  put(static_cast<uintptr_t*>(p) + 9, 0);
  scan();
  EXPECT_EQ(state(0), kReachable);
  static_cast<uintptr_t*>(p)[9] = 0;
  munmap(p, 3 * 4096);
}

// Makes process_vm_readv fail with EPERM in this process, as some seccomp profiles do.
bool refuse_process_vm_readv() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_readv, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

// Without process_vm_readv the roots are read in place: a file mapping only up to the end of its
// file (which must still have its name: the scan stats it). In a child process, which gets the
// seccomp filter.
TEST_F(LeakScanTest, ReadsInPlaceWhenProcessVmReadvIsRefused) {
  make(3);
  char path[] = "/tmp/pg_leak_scan_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  void* p = mmap(nullptr, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  ASSERT_NE(p, MAP_FAILED);
  put(static_cast<uintptr_t*>(p) + 9, 0);
  set_global(1);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!refuse_process_vm_readv()) _exit(2);
    uintptr_t src = 1, dst = 0;
    iovec local{&dst, sizeof dst}, remote{&src, sizeof src};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != -1) _exit(3);
    wipe_stack();
    ScanStats st{};
    if (!leak_scan(blocks_, n_, nullptr, 0, &st)) _exit(4);
    int bad = (state(0) != kReachable) | (state(1) != kReachable) << 1 |
              (state(2) != kDirect) << 2 | (st.root_bytes == 0) << 3;
    _exit(bad == 0 ? 0 : 10 + bad);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  g_ref = 0;
  munmap(p, 3 * 4096);
  unlink(path);
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "seccomp filters not allowed here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---- classification of the leaked blocks ----

TEST_F(LeakScanTest, ReferencedOnlyByLeakedBlockIsIndirect) {
  make(3);
  link(0, 1);
  scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kIndirect);
  EXPECT_EQ(state(2), kDirect);
  unlink_all();
}

TEST_F(LeakScanTest, ChainInBothAddressOrders) {
  make(6);
  link(0, 1);  // up: 0 -> 1 -> 2
  link(1, 2);
  link(5, 4);  // down: 5 -> 4 -> 3
  link(4, 3);
  scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kIndirect);
  EXPECT_EQ(state(2), kIndirect);
  EXPECT_EQ(state(5), kDirect);
  EXPECT_EQ(state(4), kIndirect);
  EXPECT_EQ(state(3), kIndirect);
  unlink_all();
}

TEST_F(LeakScanTest, CycleIsOneDirectRestIndirect) {
  make(5);
  link(1, 3);  // 1 <-> 3
  link(3, 1);
  link(4, 2);  // 4 -> 2 -> 0 -> 4
  link(2, 0);
  link(0, 4);
  scan();
  EXPECT_EQ(state(1), kDirect);  // the lowest of its cycle
  EXPECT_EQ(state(3), kIndirect);
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(2), kIndirect);
  EXPECT_EQ(state(4), kIndirect);
  unlink_all();
}

TEST_F(LeakScanTest, EntryIntoCycleIsTheDirectOne) {
  make(6);
  link(5, 1);  // 5 -> 1 <-> 2, entry above the cycle
  link(1, 2);
  link(2, 1);
  link(0, 3);  // 0 -> 3 <-> 4, entry below it
  link(3, 4);
  link(4, 3);
  scan();
  EXPECT_EQ(state(5), kDirect);
  EXPECT_EQ(state(1), kIndirect);
  EXPECT_EQ(state(2), kIndirect);
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(3), kIndirect);
  EXPECT_EQ(state(4), kIndirect);
  unlink_all();
}

TEST_F(LeakScanTest, SelfReferenceStaysDirect) {
  make(2);
  link(0, 0, 1);
  link(1, 0);  // and 1 -> 0
  scan();
  EXPECT_EQ(state(1), kDirect);
  EXPECT_EQ(state(0), kIndirect);
  unlink_all();
}

TEST_F(LeakScanTest, LeakedBlockPointingIntoReachableOneStaysDirect) {
  make(2);
  set_global(1);
  link(0, 1);
  scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kReachable);
  g_ref = 0;
  unlink_all();
}

// A long list, both reachable and leaked: no recursion, and the classification is linear.
TEST_F(LeakScanTest, LongListsInBothAddressOrders) {
  constexpr size_t kCount = 200000;
  make(kCount, 16, 16);
  for (size_t i = 0; i + 1 < kCount; ++i) link(i + 1, i);  // from the top down
  set_global(kCount - 1);
  ScanStats st = scan();
  size_t reachable = 0;
  for (size_t i = 0; i < kCount; ++i) reachable += state(i) == kReachable;
  EXPECT_EQ(reachable, kCount);
  EXPECT_EQ(st.heap_bytes, kCount * 16);
  g_ref = 0;
  scan();
  EXPECT_EQ(state(kCount - 1), kDirect);
  size_t indirect = 0;
  for (size_t i = 0; i < kCount; ++i) indirect += state(i) == kIndirect;
  EXPECT_EQ(indirect, kCount - 1);
  unlink_all();
}

TEST_F(LeakScanTest, StatsAreFilled) {
  make(1);
  ScanStats st = scan();
  EXPECT_GE(st.threads, 1u);
  EXPECT_GT(st.regions, 0u);
  EXPECT_GT(st.root_bytes, 0u);
  EXPECT_EQ(st.heap_bytes, 0u);
  EXPECT_EQ(st.threads, 1 + st.threads_stopped + st.threads_unstopped);
}

TEST_F(LeakScanTest, NoBlocks) {
  ScanStats st{};
  EXPECT_TRUE(leak_scan(nullptr, 0, nullptr, 0, &st));
  EXPECT_TRUE(leak_scan(nullptr, 0, nullptr, 0, nullptr));
}

// ---- other threads ----

thread_local volatile uintptr_t t_ref = 0;  // volatile: see g_ref

// A thread that holds a block's address in a local of its stack, or in a thread_local, and
// nowhere else, until told to end. kBlocking also blocks every signal, so the scan cannot stop it.
class Holder {
 public:
  enum How { kStack, kBlocking, kThreadLocal };
  Holder(uintptr_t hidden, How how) : hidden_(hidden), how_(how) {
    thread_ = std::thread([this] {
      hold();
      wipe_stack();  // the dead frames of hold(), and of the stop handler's signal frame
    });
    std::unique_lock<std::mutex> lk(m_);
    cv_.wait(lk, [this] { return ready_; });
  }
  ~Holder() { finish(); }
  int tid() const { return tid_.load(); }
  void finish() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lk(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  __attribute__((noinline)) void hold() {
    tid_ = gettid();
    if (how_ == kBlocking) {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, nullptr);
    }
    uintptr_t local = how_ == kThreadLocal ? 0 : hidden_ ^ kKey;
    asm volatile("" : : "r"(&local) : "memory");
    if (how_ == kThreadLocal) t_ref = hidden_ ^ kKey;
    {
      std::unique_lock<std::mutex> lk(m_);
      ready_ = true;
      cv_.notify_all();
      cv_.wait(lk, [this] { return done_; });
    }
    local = 0;
    asm volatile("" : : "r"(&local) : "memory");
    t_ref = 0;
  }

  uintptr_t hidden_;
  How how_;
  std::atomic<int> tid_{0};
  std::mutex m_;
  std::condition_variable cv_;
  bool ready_ = false;
  bool done_ = false;
  std::thread thread_;
};

TEST_F(LeakScanTest, OtherThreadStackIsARoot) {
  make(2);
  {
    Holder h(hidden(1), Holder::kStack);
    ScanStats st = scan();
    EXPECT_EQ(state(0), kDirect);
    EXPECT_EQ(state(1), kReachable);
    EXPECT_GE(st.threads, 2u);
    EXPECT_GE(st.threads_stopped, 1u);
  }
  scan();
  EXPECT_EQ(state(1), kDirect);
}

TEST_F(LeakScanTest, OtherThreadThreadLocalIsARoot) {
  make(2);
  {
    Holder h(hidden(0), Holder::kThreadLocal);
    ScanStats st = scan();
    EXPECT_EQ(state(0), kReachable);
    EXPECT_EQ(state(1), kDirect);
    EXPECT_GE(st.threads_stopped, 1u);
  }
  scan();
  EXPECT_EQ(state(0), kDirect);
}

TEST_F(LeakScanTest, ThreadBlockingSignalsIsScannedWhole) {
  make(2);
  {
    Holder h(hidden(0), Holder::kBlocking);
    ScanStats st = scan();
    EXPECT_EQ(state(0), kReachable);
    EXPECT_EQ(state(1), kDirect);
    EXPECT_GE(st.threads_unstopped, 1u);
  }
  scan();
  EXPECT_EQ(state(0), kDirect);
}

// A thread that cannot answer in time (here: held in a ptrace stop by a child process) has its
// whole stack scanned. The stop handler stays installed while the signal is pending; when the
// thread runs again it handles the stale signal and returns at once (its scan is over), and the
// next scan puts the old action back.
TEST_F(LeakScanTest, LateAnswerDoesNotBlockTheThread) {
  make(2);
  int sig = SIGRTMAX - 3;
  struct sigaction before {
  }, during{}, after{};
  ASSERT_EQ(sigaction(sig, nullptr, &before), 0);
  Holder h(hidden(1), Holder::kStack);
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  int tid = h.tid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c = 'n';
    int status;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0 &&
        waitpid(tid, &status, __WALL) == tid) {
      c = 'y';
    }
    if (write(from_child[1], &c, 1) != 1 || c != 'y') _exit(1);
    if (read(to_child[0], &c, 1) != 1) _exit(2);
    _exit(ptrace(PTRACE_DETACH, tid, 0, 0) == 0 ? 0 : 3);
  }
  char c = 0;
  ASSERT_EQ(read(from_child[0], &c, 1), 1);
  if (c != 'y') {
    waitpid(pid, nullptr, 0);
    prctl(PR_SET_PTRACER, 0, 0, 0, 0);
    GTEST_SKIP() << "cannot ptrace a thread here";
  }
  ScanStats st = scan();
  EXPECT_EQ(state(1), kReachable);  // its whole stack
  EXPECT_GE(st.threads_unstopped, 1u);
  ASSERT_EQ(sigaction(sig, nullptr, &during), 0);
  EXPECT_NE(during.sa_flags & SA_SIGINFO, 0) << "the handler must stay while a signal is pending";

  ASSERT_EQ(write(to_child[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  prctl(PR_SET_PTRACER, 0, 0, 0, 0);
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) close(fd);

  st = scan();  // the thread runs again: it answers this one
  EXPECT_EQ(state(1), kReachable);
  EXPECT_GE(st.threads_stopped, 1u);
  ASSERT_EQ(sigaction(sig, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
  EXPECT_EQ(after.sa_flags & SA_SIGINFO, before.sa_flags & SA_SIGINFO);
  h.finish();  // would hang if the late signal had left the thread waiting
}

TEST_F(LeakScanTest, ManyThreadsRepeatedly) {
  constexpr size_t kThreads = 8;
  make(kThreads + 1);
  {
    Holder* holders[kThreads];
    for (size_t i = 0; i < kThreads; ++i) holders[i] = new Holder(hidden(i), Holder::kStack);
    for (int round = 0; round < 10; ++round) {
      ScanStats st = scan();
      for (size_t i = 0; i < kThreads; ++i) EXPECT_EQ(state(i), kReachable) << round << " " << i;
      EXPECT_EQ(state(kThreads), kDirect) << round;
      EXPECT_GE(st.threads_stopped, kThreads) << round;
    }
    for (size_t i = 0; i < kThreads; ++i) delete holders[i];
  }
  scan();
  for (size_t i = 0; i < kThreads; ++i) EXPECT_EQ(state(i), kDirect) << i;
}

#if defined(__x86_64__)
uintptr_t g_spin_hidden = 0;
int g_spinning = 0;
int g_spin_stop = 0;

// Keeps a block's address in r12 only, until g_spin_stop: never in memory.
__attribute__((noinline)) void spin_with_register() {
  asm volatile(
      "movq %[hidden], %%r12\n\t"
      "xorq %[key], %%r12\n\t"
      "movl $1, %[spinning]\n\t"
      "1:\n\t"
      "pause\n\t"
      "cmpl $0, %[stop]\n\t"
      "je 1b\n\t"
      "xorl %%r12d, %%r12d\n\t"
      : [spinning] "=m"(g_spinning)
      : [hidden] "m"(g_spin_hidden), [key] "r"(kKey), [stop] "m"(g_spin_stop)
      : "r12", "memory", "cc");
}

TEST_F(LeakScanTest, OtherThreadRegisterIsARoot) {
  make(2);
  g_spin_hidden = hidden(1);
  __atomic_store_n(&g_spinning, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&g_spin_stop, 0, __ATOMIC_SEQ_CST);
  std::thread t([] {
    spin_with_register();
    wipe_stack();  // the signal frame below the loop held r12
  });
  while (__atomic_load_n(&g_spinning, __ATOMIC_ACQUIRE) == 0) sched_yield();
  ScanStats st = scan();
  EXPECT_EQ(state(0), kDirect);
  EXPECT_EQ(state(1), kReachable);
  EXPECT_GE(st.threads_stopped, 1u);
  __atomic_store_n(&g_spin_stop, 1, __ATOMIC_SEQ_CST);
  t.join();
  g_spin_hidden = 0;
  scan();
  EXPECT_EQ(state(1), kDirect);
}
#endif

// Threads busy in glibc's malloc while they are stopped: the scan takes no lock of theirs.
TEST_F(LeakScanTest, ThreadsInsideMalloc) {
  make(1);
  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  std::thread busy[2];
  for (auto& t : busy) {
    t = std::thread([&stop, &running] {
      running.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {
        void* volatile p = malloc(100);
        free(p);
      }
    });
  }
  // A thread blocks every signal until glibc's start routine has set it up: wait for them to run.
  while (running.load() < 2) sched_yield();
  for (int round = 0; round < 20; ++round) {
    ScanStats st = scan();
    EXPECT_EQ(state(0), kDirect);
    EXPECT_GE(st.threads_stopped, 2u);
  }
  stop = true;
  for (auto& t : busy) t.join();
}

// Two threads scan at once: the one waiting for the other's scan is stopped by it meanwhile.
TEST_F(LeakScanTest, ConcurrentScans) {
  make(2);
  ScanBlock* other = blocks_ + 1;  // the second thread scans the second block alone
  std::atomic<bool> go{false};
  bool other_ok = true;
  std::thread t([&] {
    while (!go.load()) sched_yield();
    for (int i = 0; i < 10; ++i) {
      ScanStats st{};
      other_ok = leak_scan(other, 1, nullptr, 0, &st) && other_ok;
    }
  });
  go = true;
  for (int i = 0; i < 10; ++i) {
    ScanStats st{};
    blocks_[0].state = kUnreached;
    EXPECT_TRUE(leak_scan(blocks_, 1, nullptr, 0, &st));
  }
  t.join();
  EXPECT_TRUE(other_ok);
  EXPECT_EQ(state(0), kDirect);
}

// The stop signal's previous action is put back after the scan, and still runs.
int g_app_signals = 0;
void app_handler(int) {
  ++g_app_signals;
}

TEST_F(LeakScanTest, PreviousSignalActionIsRestored) {
  make(1);
  int sig = SIGRTMAX - 3;
  struct sigaction mine {
  }, old{}, now{};
  mine.sa_handler = app_handler;
  sigemptyset(&mine.sa_mask);
  ASSERT_EQ(sigaction(sig, &mine, &old), 0);
  {
    Holder h(hidden(0), Holder::kStack);  // someone to stop
    ScanStats st = scan();
    EXPECT_GE(st.threads_stopped, 1u);
  }
  ASSERT_EQ(sigaction(sig, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, app_handler);
  raise(sig);
  EXPECT_EQ(g_app_signals, 1);
  sigaction(sig, &old, nullptr);
}

}  // namespace
}  // namespace pg::leak
