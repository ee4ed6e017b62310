// The fault-injection plans of base/fault.h: one per kind of platform memory call, consulted by
// base/os.cpp. Built into pgcore_faults only. Atomics only: it runs inside malloc, on any thread.
#include "base/fault.h"

#include <errno.h>

#include <atomic>

namespace pg::fault {

namespace {

enum Mode : uint8_t { kNever = 0, kNth, kAfter, kRandom };

struct Plan {
  std::atomic<uint8_t> mode{kNever};
  std::atomic<uint64_t> n{0};          // kNth: the call that fails; kAfter: calls that succeed
  std::atomic<uint64_t> threshold{0};  // kRandom: a call fails when its hash is below this
  std::atomic<uint64_t> seed{0};
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> refusals{0};
};

Plan g_plans[kNumCalls];

Plan& plan(Call call) {
  return g_plans[static_cast<size_t>(call)];
}

// splitmix64's finaliser: a call's number and the seed give an independent-looking 64-bit value.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Installs a plan: off first, so that a call racing with the change sees either the old plan or
// the whole new one with its counters restarted.
void set(Call call, Mode mode, uint64_t n, uint64_t threshold, uint64_t seed) {
  Plan& p = plan(call);
  p.mode.store(kNever, std::memory_order_release);
  p.n.store(n, std::memory_order_relaxed);
  p.threshold.store(threshold, std::memory_order_relaxed);
  p.seed.store(seed, std::memory_order_relaxed);
  p.calls.store(0, std::memory_order_relaxed);
  p.refusals.store(0, std::memory_order_relaxed);
  p.mode.store(mode, std::memory_order_release);
}

}  // namespace

bool refused(Call call) {
  Plan& p = plan(call);
  uint8_t mode = p.mode.load(std::memory_order_acquire);
  uint64_t k = p.calls.fetch_add(1, std::memory_order_relaxed) + 1;  // this call's number
  bool fail;
  switch (mode) {
    case kNth:
      fail = k == p.n.load(std::memory_order_relaxed);
      break;
    case kAfter:
      fail = k > p.n.load(std::memory_order_relaxed);
      break;
    case kRandom:
      fail = mix(p.seed.load(std::memory_order_relaxed) ^ mix(k)) <
             p.threshold.load(std::memory_order_relaxed);
      break;
    default:
      fail = false;
      break;
  }
  if (!fail) return false;
  p.refusals.fetch_add(1, std::memory_order_relaxed);
  errno = ENOMEM;
  return true;
}

void fail_nth_for_testing(Call call, uint64_t n) {
  set(call, kNth, n, 0, 0);
}

void fail_after_for_testing(Call call, uint64_t n) {
  set(call, kAfter, n, 0, 0);
}

void fail_randomly_for_testing(Call call, double p, uint64_t seed) {
  // p as a fraction of 2^64 (below 1: the product fits); p >= 1 is every call.
  if (p >= 1) return set(call, kAfter, 0, 0, seed);
  set(call, kRandom, 0, p <= 0 ? 0 : static_cast<uint64_t>(p * 0x1p64), seed);
}

void clear_for_testing(Call call) {
  set(call, kNever, 0, 0, 0);
}

void clear_all_for_testing() {
  for (size_t i = 0; i < kNumCalls; ++i) clear_for_testing(static_cast<Call>(i));
}

uint64_t calls_for_testing(Call call) {
  return plan(call).calls.load(std::memory_order_relaxed);
}

uint64_t refusals_for_testing(Call call) {
  return plan(call).refusals.load(std::memory_order_relaxed);
}

const char* call_name_for_testing(Call call) {
  switch (call) {
    case Call::kMap:
      return "map";
    case Call::kMapAligned:
      return "map_aligned";
    case Call::kReserve:
      return "reserve_aligned";
    case Call::kCommit:
      return "commit";
    case Call::kUnmap:
      return "unmap";
    case Call::kDecommit:
      return "decommit";
    case Call::kProtect:
      return "protect_none";
  }
  return "?";
}

namespace {
std::atomic<void (*)()> g_point_hooks[kNumPoints];
}  // namespace

void reached(Point point) {
  if (void (*hook)() = g_point_hooks[static_cast<size_t>(point)].load(std::memory_order_acquire)) {
    hook();
  }
}

void set_point_hook_for_testing(Point point, void (*hook)()) {
  g_point_hooks[static_cast<size_t>(point)].store(hook, std::memory_order_release);
}

}  // namespace pg::fault
