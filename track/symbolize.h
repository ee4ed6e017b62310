// Symbolization of code addresses: function, module+offset, and file:line where debug info exists.
//
// Two sources, best first:
//   addr2line   (binutils) run as a child process over each module, with the offsets as
//               arguments; it reads .symtab and DWARF, so static functions and file:line are
//               named when the module has them. The child gets a clean environment (no
//               LD_PRELOAD, no POOLGUARD_*), so it never runs under poolguard itself.
//   dladdr      exported symbols only; used when addr2line is missing or says "??".
//
// Memory: nothing here allocates through malloc. Results go into caller-provided arrays; text is
// read through a pipe into a buffer mapped with mmap. Usable inside the preloaded library at exit
// (leak reports) and from tools (the profile of another process).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

// One symbolized frame. Strings are NUL-terminated and truncated to fit; empty when unknown.
struct SymFrame {
  uintptr_t pc;         // the address asked about
  uint64_t offset;      // pc relative to the module's load base (what addr2line -e MODULE takes)
  char function[160];   // demangled function name ("" when unknown)
  char module[256];     // path of the module holding pc ("" when none)
  char file_line[192];  // "path/file.c:123" ("" when there is no line information)
};

// Symbolizes n addresses of this process (dladdr for the module, then addr2line per module).
// out[0..n) are filled, in the same order. Addresses in the same module are batched into as few
// addr2line runs as possible. `use_addr2line` false: dladdr only (no child process).
void symbolize_self(const uintptr_t* pcs, size_t n, SymFrame* out, bool use_addr2line);

// Runs addr2line on `module` for offsets[0..n) and fills function / file_line of out[0..n)
// (leaving fields it cannot improve untouched). false when addr2line could not be run.
// For tools symbolizing another process: they map pcs to (module, offset) from /proc/PID/maps.
bool symbolize_module(const char* module, const uint64_t* offsets, size_t n, SymFrame* out);

}  // namespace pg
