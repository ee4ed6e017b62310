// The error reports of base/report.h: ErrorReport (counting, one report at a time, lines through
// write(2), frames named by base/symbolize.h, the closing line) and the pools' three reports
// written with it.
#include "base/report.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>

#include "base/format.h"
#include "base/log.h"
#include "base/os.h"
#include "base/symbolize.h"

namespace pg {

namespace {
enum Count { kDoubleFrees, kInvalidFrees, kCorruptions, kNumCounts };
uint64_t g_early_counts[kNumCounts];
std::atomic<uint64_t*> g_counts[kNumCounts] = {&g_early_counts[0], &g_early_counts[1],
                                               &g_early_counts[2]};
std::atomic<int> g_error_mode{static_cast<int>(ErrorMode::kAbort)};

void count(Count k) {
  __atomic_fetch_add(g_counts[k].load(std::memory_order_acquire), 1, __ATOMIC_RELAXED);
}
}  // namespace

void report_set_counters(uint64_t* double_frees, uint64_t* invalid_frees, uint64_t* corruptions) {
  uint64_t* fields[kNumCounts] = {double_frees, invalid_frees, corruptions};
  for (int k = 0; k < kNumCounts; ++k) {
    uint64_t* old = g_counts[k].exchange(fields[k], std::memory_order_acq_rel);
    if (old != fields[k])
      __atomic_fetch_add(fields[k], __atomic_load_n(old, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
  }
}

void report_set_mode(ErrorMode mode) {
  g_error_mode.store(static_cast<int>(mode), std::memory_order_relaxed);
}
ErrorMode error_mode() {
  return static_cast<ErrorMode>(g_error_mode.load(std::memory_order_relaxed));
}

namespace {

std::atomic<int> g_report_owner{0};  // thread id of the thread writing a report, or 0

constexpr size_t kMaxBuildId = 64;  // bytes: SHA-1 ids have 20, some linkers write longer ones

// The GNU build-id of the loaded module holding pc, read from its notes in memory (what ran, even
// if the file has been replaced since), as hex into buf.
bool loaded_build_id(uintptr_t pc, char* buf, size_t cap) {
  Dl_info info;
  struct link_map* map = nullptr;
  if (dladdr1(reinterpret_cast<void*>(pc), &info, reinterpret_cast<void**>(&map),
              RTLD_DL_LINKMAP) == 0 ||
      info.dli_fbase == nullptr || map == nullptr) {
    return false;
  }
  const auto* eh = static_cast<const ElfW(Ehdr)*>(info.dli_fbase);
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return false;
  const auto* ph = reinterpret_cast<const ElfW(Phdr)*>(reinterpret_cast<uintptr_t>(info.dli_fbase) +
                                                       eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type != PT_NOTE) continue;
    uintptr_t at = map->l_addr + ph[i].p_vaddr, end = at + ph[i].p_memsz;
    while (end - at >= sizeof(ElfW(Nhdr))) {
      const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(at);
      uintptr_t name = at + sizeof *note;
      uintptr_t desc = name + ((note->n_namesz + 3u) & ~3u);
      uintptr_t next = desc + ((note->n_descsz + 3u) & ~3u);
      if (next > end) break;
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
          memcmp(reinterpret_cast<const void*>(name), "GNU", 4) == 0 &&
          note->n_descsz <= kMaxBuildId && 2 * note->n_descsz < cap) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(desc);
        for (uint32_t b = 0; b < note->n_descsz; ++b) {
          buf[2 * b] = "0123456789abcdef"[bytes[b] >> 4];
          buf[2 * b + 1] = "0123456789abcdef"[bytes[b] & 15];
        }
        buf[2 * note->n_descsz] = '\0';
        return true;
      }
      at = next;
    }
  }
  return false;
}

// Frames named for earlier reports, by address: a program going on after errors
// (POOLGUARD_ON_ERROR=report) reports the same call sites again and again, and the three stacks of
// one report share their outer frames, while each addr2line run over a module with large debug
// information (libc's) takes a good part of a second. Used only by the thread that owns the
// report (g_report_owner), never by a nested or raw one; mapped on first use.
class FrameCache {
 public:
  // Copies the cached frame of pc into *out; false when there is none, or when the module that
  // held pc then is not the one loaded there now (dlclose, then another module at that address).
  bool find(uintptr_t pc, SymFrame* out) {
    if (entries_ == nullptr || pc == 0) return false;
    Entry& e = entries_[slot(pc)];
    if (e.frame.pc != pc || e.base != module_base(pc)) return false;
    *out = e.frame;
    return true;
  }
  void add(const SymFrame& f) {
    if (entries_ == nullptr) {
      entries_ = static_cast<Entry*>(os::map(sizeof(Entry) * kEntries));
      if (entries_ == nullptr) return;
    }
    Entry& e = entries_[slot(f.pc)];  // a collision replaces the older frame
    e.frame = f;
    e.base = module_base(f.pc);
  }

 private:
  struct Entry {
    SymFrame frame;
    uintptr_t base;  // load address of the module holding frame.pc when it was named
  };
  static constexpr size_t kEntries = 512;
  static size_t slot(uintptr_t pc) { return (pc * 0x9e3779b97f4a7c15u) >> 55; }  // 9 bits
  static uintptr_t module_base(uintptr_t pc) {
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(pc), &info) == 0) return 0;
    return reinterpret_cast<uintptr_t>(info.dli_fbase);
  }
  Entry* entries_ = nullptr;
};
static_assert(512 == 1u << (64 - 55), "FrameCache::slot covers its entries");

FrameCache g_frame_cache;

}  // namespace

ErrorReport::ErrorReport(ErrorCount kind_count, const char* kind) {
  count(static_cast<Count>(kind_count));
  int tid = os::thread_id();
  int expected = 0;
  while (!g_report_owner.compare_exchange_weak(expected, tid, std::memory_order_acquire)) {
    if (expected == tid) {
      nested_ = true;
      break;
    }
    expected = 0;
    sched_yield();
  }
  line_.str("poolguard: ERROR: ")
      .str(kind)
      .str(" pid=")
      .u64(static_cast<uint64_t>(os::process_id()))
      .str(" tid=")
      .u64(static_cast<uint64_t>(tid))
      .str(": ");
}

ErrorReport::~ErrorReport() {
  if (modules_ != nullptr) os::unmap(modules_, sizeof(Module) * kModules);
  if (!nested_) g_report_owner.store(0, std::memory_order_release);
}

void ErrorReport::end_line() {
  line_.chr('\n');
  if (out_.fd() >= 0) line_.flush(out_.fd());
  line_.clear();
}

void ErrorReport::name_frames(uintptr_t* lookup, int n, SymFrame* frames) {
  // Only the frames no earlier report named go to symbolize_self, packed at the front of lookup[]
  // (frames[k].pc stays 0 for them until they are named).
  int misses = 0;
  for (int k = 0; k < n; ++k) {
    uintptr_t pc = lookup[k];
    if (!g_frame_cache.find(pc, &frames[k])) frames[k].pc = 0, lookup[misses++] = pc;
  }
  if (misses == 0) return;
  size_t bytes = static_cast<size_t>(misses) * sizeof(SymFrame);
  auto* named = static_cast<SymFrame*>(os::map(bytes));
  if (named == nullptr) {
    for (int k = 0, m = 0; k < n; ++k) {
      if (frames[k].pc == 0) symbolize_self(&lookup[m++], 1, &frames[k], true);
    }
    return;
  }
  symbolize_self(lookup, static_cast<size_t>(misses), named, true);
  for (int k = 0, m = 0; k < n; ++k) {
    if (frames[k].pc != 0) continue;
    frames[k] = named[m++];
    g_frame_cache.add(frames[k]);
  }
  os::unmap(named, bytes);
}

void ErrorReport::stack(const char* title, int tid, const uintptr_t* pcs, int n, bool first_exact) {
  line_.str("  ").str(title);
  if (tid != 0) line_.str(" by thread ").u64(static_cast<uint64_t>(tid));
  line_.chr(':');
  end_line();
  if (n == 0) {
    line_.str("    (no stack)");
    end_line();
    return;
  }
  // Mapped, not on the stack: a signal handler may run on a small alternate stack.
  size_t bytes = static_cast<size_t>(n) * (sizeof(SymFrame) + sizeof(uintptr_t));
  void* work = os::map(bytes);
  if (work == nullptr) {
    for (int k = 0; k < n; ++k) {
      line_.str("    #").u64(static_cast<uint64_t>(k)).chr(' ').hex(pcs[k]);
      end_line();
    }
    return;
  }
  auto* frames = static_cast<SymFrame*>(work);
  auto* lookup = reinterpret_cast<uintptr_t*>(frames + n);
  // A return address may point just past the call, into the next line or function: name the
  // byte before it, the call itself.
  for (int k = 0; k < n; ++k) lookup[k] = first_exact && k == 0 ? pcs[k] : pcs[k] - 1;
  if (raw_ || nested_) {
    symbolize_self(lookup, static_cast<size_t>(n), frames, !raw_);
  } else {
    name_frames(lookup, n, frames);
  }
  for (int k = 0; k < n; ++k) {
    line_.str("    #").u64(static_cast<uint64_t>(k)).chr(' ');
    append_frame(line_, frames[k], pcs[k]);
    end_line();
    if (raw_ && frames[k].module[0] != '\0') note_module(frames[k]);
  }
  os::unmap(work, bytes);
}

void ErrorReport::raw_frames() {
  raw_ = true;
  if (modules_ == nullptr) {
    void* p = os::map(sizeof(Module) * kModules);
    modules_ = static_cast<Module*>(p);
  }
}

void ErrorReport::note_module(const SymFrame& f) {
  if (modules_ == nullptr) return;
  for (int i = 0; i < nmodules_; ++i) {
    if (strcmp(modules_[i].path, f.module) == 0) return;
  }
  if (nmodules_ == kModules) return;
  Module& m = modules_[nmodules_++];
  m.pc = f.pc;
  size_t len = strlen(f.module);
  if (len >= sizeof m.path) len = sizeof m.path - 1;
  memcpy(m.path, f.module, len);
  m.path[len] = '\0';
}

void ErrorReport::modules() {
  if (!raw_ || nmodules_ == 0) return;
  line_.str("  modules (`poolguard symbolize` on this report adds the file:line of each frame):");
  end_line();
  for (int i = 0; i < nmodules_; ++i) {
    line_.str("    ").str(modules_[i].path);
    char id[2 * kMaxBuildId + 1];
    if (loaded_build_id(modules_[i].pc, id, sizeof id)) line_.str(" build-id ").str(id);
    end_line();
  }
}

[[gnu::noinline]] void ErrorReport::finish(bool fatal) {
  bool ends = fatal || error_mode() == ErrorMode::kAbort;
  line_.clear();
  if (!ends) {
    line_.str("poolguard: continuing (POOLGUARD_ON_ERROR=report); the block is left alone");
    end_line();
    return;
  }
  line_.str(fatal ? "poolguard: aborting (a faulting access cannot be resumed)"
                  : "poolguard: aborting (POOLGUARD_ON_ERROR=report to continue)");
  end_line();
  abort();
}

void report_double_free(const void* p, size_t block_size) {
  ErrorReport r(ErrorCount::kDoubleFree, "double-free");
  r.line()
      .str("free(")
      .ptr(p)
      .str(") of a block of ")
      .u64(block_size)
      .str(" bytes that is already free");
  r.end_line();
  r.finish(false);
}

void report_invalid_free(const void* p, const void* block, size_t block_size, const char* why) {
  ErrorReport r(ErrorCount::kInvalidFree, "invalid-free");
  r.line().str("free(").ptr(p).str("): ").str(why);
  if (block != nullptr) {
    r.line()
        .str(" (")
        .u64(static_cast<const char*>(p) - static_cast<const char*>(block))
        .str(" bytes into the block at ")
        .ptr(block)
        .str(" of ")
        .u64(block_size)
        .str(" bytes)");
  }
  r.end_line();
  r.finish(false);
}

void report_corruption(const void* where, size_t block_size, const char* what) {
  ErrorReport r(ErrorCount::kCorruption, "free-list-corruption");
  r.line()
      .str(what)
      .str(" at ")
      .ptr(where)
      .str(" in a pool of ")
      .u64(block_size)
      .str("-byte blocks (a write past the end of a block, or after free?)");
  r.end_line();
  r.finish(false);
}

void report_warning(const char* msg) {
  TextBuffer<512> line;
  line.str("poolguard: ").str(msg).chr('\n');
  int fd = log_stderr_fd();
  if (fd >= 0) line.flush(fd);
}

}  // namespace pg
