// Scenario 5: thread-exit destructors that allocate and free. Each thread constructs C++
// thread_local objects holding small, large and over-aligned blocks, registers a raw
// __cxa_thread_atexit destructor among them, and sets a pthread key. At exit glibc runs the
// thread_local destructors (last constructed first; one of them constructs another thread_local,
// which then runs too), then the pthread key destructors, among which is the allocator's own
// thread-exit hook. Every destructor checks its blocks, frees them, and allocates and frees more
// (small, large, aligned). Each thread checks the order in which its destructors ran; the main
// thread's thread_locals are destroyed by exit().
#include <pthread.h>
#include <stdlib.h>

#include <atomic>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "scenario.h"

extern "C" int __cxa_thread_atexit(void (*dtor)(void*), void* obj, void* dso_symbol) noexcept;
extern "C" void* __dso_handle;

namespace {

constexpr int kMinRounds = 20;  // then up to kMaxRounds, for up to kSeconds
constexpr int kMaxRounds = 150;
constexpr double kSeconds = 3;
constexpr int kThreadsPerRound = 3;

std::atomic<int> g_threads_checked{0};
std::atomic<long> g_live{0};  // blocks the destructors still have to free
pthread_key_t g_key;

// What ran, in order, in this thread (trivially destructible: registers no destructor itself).
thread_local char t_log[16];
thread_local int t_nlog;

void log_event(char c) {
  if (t_nlog < static_cast<int>(sizeof t_log) - 1) t_log[t_nlog++] = c;
}

struct alignas(256) Aligned {
  unsigned char bytes[1000];
};

// Allocation while a destructor runs: new/delete, std::string and std::vector growth, aligned
// new, aligned_alloc and posix_memalign, pooled and large.
void churn_in_destructor() {
  std::string s;
  for (int i = 0; i < 50; ++i) s += "0123456789abcdef0123456789";
  std::vector<std::string> v;
  for (int i = 0; i < 40; ++i) v.emplace_back(static_cast<size_t>(i * 37), 'a' + i % 26);
  auto* a = new Aligned;
  SCEN_CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0, "aligned new: %p", static_cast<void*>(a));
  a->bytes[999] = 1;
  delete a;
  void* p = aligned_alloc(4096, 5000);
  SCEN_CHECK(p != nullptr && reinterpret_cast<uintptr_t>(p) % 4096 == 0, "aligned_alloc: %p", p);
  free(p);
  void* q = nullptr;
  SCEN_CHECK(posix_memalign(&q, 64, 100) == 0, "posix_memalign failed");
  free(q);
}

// A thread_local that owns a small, a large and an over-aligned block, checked at destruction.
struct Holder {
  explicit Holder(char name) : name(name) {
    small = static_cast<unsigned char*>(malloc(48));
    large = static_cast<unsigned char*>(malloc(6000));
    aligned = new Aligned;
    SCEN_CHECK(small != nullptr && large != nullptr, "Holder %c: malloc failed", name);
    scen_fill(small, 48, static_cast<uint64_t>(name));
    scen_fill(large, 6000, static_cast<uint64_t>(name) + 1);
    scen_fill(aligned->bytes, sizeof aligned->bytes, static_cast<uint64_t>(name) + 2);
    g_live += 3;
  }
  ~Holder() {
    log_event(name);
    size_t bad = scen_check(small, 48, static_cast<uint64_t>(name));
    SCEN_CHECK(bad == 48, "Holder %c: small block damaged at %zu", name, bad);
    bad = scen_check(large, 6000, static_cast<uint64_t>(name) + 1);
    SCEN_CHECK(bad == 6000, "Holder %c: large block damaged at %zu", name, bad);
    bad = scen_check(aligned->bytes, sizeof aligned->bytes, static_cast<uint64_t>(name) + 2);
    SCEN_CHECK(bad == sizeof aligned->bytes, "Holder %c: aligned block damaged at %zu", name, bad);
    free(small);
    free(large);
    delete aligned;
    g_live -= 3;
    churn_in_destructor();
  }
  char name;
  unsigned char* small;
  unsigned char* large;
  Aligned* aligned;
};

// Function-scope thread_locals, constructed (and their destructors registered) where first
// used: namespace-scope ones would all be constructed together on the first use of any.
Holder& holder_a() {
  thread_local Holder h('A');
  return h;
}
Holder& holder_b() {
  thread_local Holder h('B');
  return h;
}
Holder& holder_d() {  // first used by C's destructor: constructed during thread exit
  thread_local Holder h('D');
  return h;
}

// C's destructor constructs D (glibc then runs D's destructor next) and sets the pthread key,
// whose destructor runs after every thread_local destructor.
struct Outer {
  Outer() : holder('C') {}
  ~Outer() {
    holder_d().name = 'D';  // first use: constructs and registers D now
    auto* block = static_cast<unsigned char*>(malloc(700));
    SCEN_CHECK(block != nullptr, "malloc(700) failed");
    scen_fill(block, 700, 77);
    ++g_live;
    pthread_setspecific(g_key, block);
  }
  Holder holder;
};
Outer& outer_c() {
  thread_local Outer o;
  return o;
}

// A destructor registered by hand, between A's and B's (runs between them, in reverse).
void raw_destructor(void* arg) {
  log_event('X');
  auto* block = static_cast<unsigned char*>(arg);
  size_t bad = scen_check(block, 333, 33);
  SCEN_CHECK(bad == 333, "raw destructor: block damaged at %zu", bad);
  free(block);
  --g_live;
  churn_in_destructor();
}

// The pthread key's destructor: after every thread_local destructor of the thread.
void key_destructor(void* arg) {
  log_event('K');
  auto* block = static_cast<unsigned char*>(arg);
  size_t bad = scen_check(block, 700, 77);
  SCEN_CHECK(bad == 700, "key destructor: block damaged at %zu", bad);
  free(block);
  --g_live;
  churn_in_destructor();
  t_log[t_nlog] = '\0';
  // C's holder is destroyed after C's body, before D is: C, D, B, X, A, then the key.
  SCEN_CHECK(strcmp(t_log, "CDBXAK") == 0, "destructors ran in the order %s, expected CDBXAK",
             t_log);
  ++g_threads_checked;
}

void thread_body(int seed) {
  holder_a().name = 'A';
  auto* block = static_cast<unsigned char*>(malloc(333));
  SCEN_CHECK(block != nullptr, "malloc(333) failed");
  scen_fill(block, 333, 33);
  ++g_live;
  SCEN_CHECK(__cxa_thread_atexit(raw_destructor, block, &__dso_handle) == 0,
             "__cxa_thread_atexit failed");
  holder_b().name = 'B';
  outer_c().holder.name = 'C';
  // Some ordinary work, so that the thread's heap holds blocks of several classes.
  std::vector<std::string> words;
  for (int i = 0; i < 200; ++i)
    words.push_back(std::string(static_cast<size_t>(seed + i) % 300, 'w'));
}

}  // namespace

int main() {
  SCEN_CHECK(pthread_key_create(&g_key, key_destructor) == 0, "pthread_key_create failed");
  double start = scen_now();
  int round = 0;
  for (; scen_more(round, kMinRounds, kMaxRounds, start, kSeconds); ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreadsPerRound; ++i) threads.emplace_back(thread_body, round * 3 + i);
    for (auto& t : threads) t.join();
  }
  int expected = round * kThreadsPerRound;
  SCEN_CHECK(g_threads_checked == expected, "%d threads checked their destructors, expected %d",
             g_threads_checked.load(), expected);
  SCEN_CHECK(g_live == 0, "%ld blocks left by the destructors", g_live.load());
  // The main thread's own thread_locals: destroyed by exit(), after main returns.
  holder_a().name = 'A';
  holder_b().name = 'B';
  scen_note("ok: %d threads ran their thread_local, __cxa_thread_atexit and key destructors",
            expected);
  return 0;
}
