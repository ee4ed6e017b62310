// Stack capture (base/stack.h): the caller's return addresses through the unwinder, poolguard's
// own frames dropped by address range; frames named from the symbol tables for JSON.
#include "base/stack.h"

#include <dlfcn.h>
#include <link.h>
#include <sched.h>
#include <sys/auxv.h>

#include <atomic>

#include "base/os.h"
#include "base/symbolize.h"
#include "base/unwind.h"

// The ELF header of the module this file is linked into (defined by the linker).
extern "C" const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

namespace pg {

namespace {

// The address range of poolguard's own code, and whether that is the main program. Read from the
// ELF program headers of the module this file is linked into: no dladdr per frame.
struct SelfRange {
  uintptr_t lo = 0, hi = 0;
  bool in_main = false;
  bool ready = false;
};
SelfRange g_self;
std::atomic<int> g_self_state{0};  // 0: not computed, 1: being computed, 2: done

void find_self() {
  const ElfW(Ehdr)* eh = &__ehdr_start;
  uintptr_t base = reinterpret_cast<uintptr_t>(eh);
  const ElfW(Phdr)* ph = reinterpret_cast<const ElfW(Phdr)*>(base + eh->e_phoff);
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type != PT_LOAD) continue;
    if (ph[i].p_vaddr < lo) lo = ph[i].p_vaddr;
    if (ph[i].p_vaddr + ph[i].p_memsz > hi) hi = ph[i].p_vaddr + ph[i].p_memsz;
  }
  if (hi == 0) return;
  uintptr_t bias = base - (lo & ~uintptr_t{4095});
  g_self.lo = bias + lo;
  g_self.hi = bias + hi;
  uintptr_t main_phdr = getauxval(AT_PHDR);
  g_self.in_main = main_phdr >= g_self.lo && main_phdr < g_self.hi;
  g_self.ready = true;
}

// Computes g_self once, whichever thread captures first.
void ensure_self() {
  if (g_self_state.load(std::memory_order_acquire) == 2) return;
  int expected = 0;
  if (g_self_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    find_self();
    g_self_state.store(2, std::memory_order_release);
    return;
  }
  while (g_self_state.load(std::memory_order_acquire) != 2) sched_yield();
}

bool own_frame(uintptr_t pc) {
  return pc - g_self.lo < g_self.hi - g_self.lo;
}

__thread bool t_capturing __attribute__((tls_model("initial-exec"))) = false;

}  // namespace

// noinline: `skip` counts frames, this one first.
__attribute__((noinline)) int capture_frames(uintptr_t* out, int max, int skip) {
#if defined(__SANITIZE_THREAD__)
  // Under TSan, libunwind's per-thread cache crashes in its key destructor at thread exit (TSan's
  // thread state is gone by then): the TSan build of the core captures no stacks.
  (void)out, (void)max, (void)skip;
  return 0;
#endif
  if (t_capturing) return 0;
  t_capturing = true;
  ensure_self();
  constexpr int kSlack = 16;  // poolguard's own frames, dropped
  uintptr_t frames[kMaxFrames + kSlack];
  if (max > kMaxFrames) max = kMaxFrames;
  int n = unwind_here(frames, max + kSlack);
  int first = 0;
  if (g_self.ready && !g_self.in_main) {
    while (first < n && own_frame(frames[first])) ++first;
  } else {
    first = skip < n ? skip : n;
  }
  int depth = 0;
  for (int i = first; i < n && depth < max; ++i) out[depth++] = frames[i];
  t_capturing = false;
  return depth;
}

__attribute__((noinline)) void capture_stack(StackTrace* out, int skip) {
  out->depth = capture_frames(out->pc, kMaxFrames, skip + 1);
}

void append_stack_json(TextBuffer<4096>& out, const StackTrace& trace) {
  // Named from the modules' symbol tables, without addr2line: a limit record is written inside
  // malloc, maybe once per refused allocation, and `poolguard symbolize` adds the file:line.
  // Mapped, not on the stack: the caller may be deep in the program's stack.
  size_t bytes = static_cast<size_t>(trace.depth) * sizeof(SymFrame);
  auto* frames = trace.depth > 0 ? static_cast<SymFrame*>(os::map(bytes)) : nullptr;
  if (frames != nullptr) {
    uintptr_t lookup[kMaxFrames];
    // pc - 1: a return address may point just past the call, into the next function.
    for (int i = 0; i < trace.depth; ++i) lookup[i] = trace.pc[i] - 1;
    symbolize_self(lookup, static_cast<size_t>(trace.depth), frames, false);
  }
  out.chr('[');
  for (int i = 0; i < trace.depth; ++i) {
    if (i) out.chr(',');
    uintptr_t pc = trace.pc[i];
    out.str("{\"pc\":\"").hex(pc).chr('"');
    if (frames != nullptr) {
      const SymFrame& f = frames[i];
      if (f.function[0] != '\0') out.str(",\"fn\":").json_str(f.function);
      if (f.module[0] != '\0') {
        out.str(",\"module\":").json_str(f.module);
        out.str(",\"offset\":\"").hex(f.offset + 1).chr('"');
      }
    }
    out.chr('}');
  }
  out.chr(']');
  if (frames != nullptr) os::unmap(frames, bytes);
}

}  // namespace pg
