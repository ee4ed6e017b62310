// Symbolization of code addresses: function, module+offset, and file:line where debug info exists.
//
// Three sources, best first:
//   addr2line   (binutils) run as a child process over each module, with the offsets as
//               arguments; it reads .symtab and DWARF, so static functions and file:line are
//               named when the module has them. The child gets a clean environment (no
//               LD_PRELOAD, no POOLGUARD_*), so it never runs under poolguard itself.
//   the module's symbol table (base/elf_symbols.h), read from its file: a name without a
//               file:line is printed only when a symbol covers the address; it also names
//               static functions when no child may run (a signal handler, a limit record).
//   dladdr      exported symbols only (glibc checks that their size covers the address).
//
// Memory: nothing here allocates through malloc. Results go into caller-provided arrays; text is
// read through a pipe into a buffer mapped with mmap. Usable inside the preloaded library (error
// and leak reports) and from tools (the profile of another process, `poolguard symbolize`).
// Without addr2line, only system calls and dladdr are used: usable in the SIGSEGV handler.
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
// addr2line runs as possible. `use_addr2line` false: dladdr and the symbol tables only (no child
// process, no file:line).
void symbolize_self(const uintptr_t* pcs, size_t n, SymFrame* out, bool use_addr2line);

// Runs addr2line on `module` for offsets[0..n) and fills function / file_line of out[0..n)
// (leaving fields it cannot improve untouched), then keeps only the names the module's symbol
// table confirms (see symbolize_self). false when addr2line could not be run.
// For tools symbolizing another process: they map pcs to (module, offset) from /proc/PID/maps.
bool symbolize_module(const char* module, const uint64_t* offsets, size_t n, SymFrame* out);

// Appends a frame as every stack poolguard prints it: "0xPC in fn (module+0xOFF) file:line", the
// name and file:line only when known, "0xPC" alone for code in no module. `shown` is the pc to
// print (a return address, when f was named at the byte before it: pass f.pc + 1); the offset
// printed is shown's. Never "??".
template <typename Buffer>
void append_frame(Buffer& out, const SymFrame& f, uintptr_t shown) {
  out.hex(shown);
  if (f.function[0] != '\0') out.str(" in ").str(f.function);
  if (f.module[0] != '\0')
    out.str(" (").str(f.module).chr('+').hex(f.offset + (shown - f.pc)).chr(')');
  if (f.file_line[0] != '\0') out.chr(' ').str(f.file_line);
}

}  // namespace pg
