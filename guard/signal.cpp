// The SIGSEGV handler of page mode and sampling. A fault on an address of the page region is a bad
// access to a guarded block: the page map names the block, its layout says whether the address
// was before it (underflow), after it (overflow) or inside a freed block (use after free). The
// handler reports it and aborts: the faulting instruction cannot be resumed, whatever
// POOLGUARD_ON_ERROR says. Any other SIGSEGV is not poolguard's: it goes to the handler that was
// installed before (or to the default action, which then kills the process as it would have).
//
// Everything here is async-signal-safe except dladdr in the report (glibc's takes the loader
// lock; a fault inside the loader is not a heap bug).
#include <signal.h>
#include <ucontext.h>

#include "base/os.h"
#include "guard/internal.h"

namespace pg::guard {

namespace {

struct sigaction g_previous;
__thread bool t_in_handler __attribute__((tls_model("initial-exec"))) = false;

Access access_of(const void* context) {
#if defined(__x86_64__)
  // The page-fault error code: bit 1 set for a write.
  const ucontext_t* uc = static_cast<const ucontext_t*>(context);
  return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0 ? Access::kWrite : Access::kRead;
#else
  (void)context;
  return Access::kUnknown;
#endif
}

[[noreturn]] void report_fault(uintptr_t a, void* context) {
  Finding f{};
  f.addr = a;
  f.access = access_of(context);
  f.fault_context = context;
  Block copy{};
  uint32_t i = region_record(a);
  if (i == 0) {
    f.kind = ErrorKind::kOverflow;
    f.what = "a fault in poolguard's guard region, far from any block";
    report_finding(f, true);
  }
  copy = *record(i);  // no lock: the state may be changing, the record stays readable
  f.block = &copy;
  size_t page = os::page_size();
  uintptr_t trail = copy.raw + copy.raw_size - page;
  uintptr_t data = align_down(copy.user, page);
  uint8_t state = __atomic_load_n(&record(i)->state, __ATOMIC_ACQUIRE);
  if (state == kLive && a >= trail) {
    f.kind = ErrorKind::kOverflow;
    f.what = "a fault on the guard page after the block";
  } else if (state == kLive && a < data) {
    f.kind = ErrorKind::kUnderflow;
    f.what = "a fault on a guard page before the block";
  } else {
    f.kind = ErrorKind::kUseAfterFree;
    f.what = state == kLive ? "a fault inside a live block (was it being freed?)"
                            : "a fault on the inaccessible pages of a freed block";
  }
  if (state == kLive) {
    // The block's own bytes are readable: show its end (overflow) or its start (underflow).
    f.dump_lo = data;
    f.dump_hi = trail;
  }
  report_finding(f, true);
  __builtin_unreachable();
}

// Hands a fault that is not ours to whoever would have had it.
void pass_on(int sig, siginfo_t* info, void* context) {
  if (os::call_previous_handler(&g_previous, sig, info, context)) return;
  // Default action (or ignore, which a real fault cannot honour): restore it; returning re-runs
  // the faulting instruction, which then ends the process as if poolguard had never been there.
  // A SIGSEGV sent with kill() is sent again.
  os::restore_default_action(sig);
  if (info->si_code <= 0) raise(sig);
}

void on_segv(int sig, siginfo_t* info, void* context) {
  uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  if (info->si_code > 0 && !t_in_handler && in_region(a)) {
    t_in_handler = true;
    report_fault(a, context);
  }
  pass_on(sig, info, context);
}

}  // namespace

void signal_install() {
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous);
}

}  // namespace pg::guard
