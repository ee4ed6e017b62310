// Error reports, the one way poolguard tells of a heap error: the pools' double frees, invalid
// frees and corrupted free lists (one function each below) and the guard's findings
// (guard/report.cpp) are all written through ErrorReport: counted, one report at a time, on
// stderr or the log with write(2) only (no malloc: some are written from the SIGSEGV handler),
// then abort or go on as the error mode says (pg::set_error_mode, POOLGUARD_ON_ERROR). When a
// report returns, the caller must leave the bad block alone (leak it) rather than touch the
// heap's state with it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/format.h"
#include "base/log.h"
#include "base/os.h"

namespace pg {

struct SymFrame;  // base/symbolize.h

// What an error does after its report: abort the process (the default) or leave the bad block
// alone and go on (POOLGUARD_ON_ERROR=report).
enum class ErrorMode : int { kAbort = 0, kReport = 1 };
void report_set_mode(ErrorMode mode);
ErrorMode error_mode();

// Where the error counts go: three u64 figures of the stats segment, set once it is up
// (initialisation). Errors counted before then are carried over.
void report_set_counters(uint64_t* double_frees, uint64_t* invalid_frees, uint64_t* corruptions);

// The error figures of the stats segment: every report counts in one of them.
enum class ErrorCount : int { kDoubleFree, kInvalidFree, kCorruption };

// One error report being written. The constructor counts the error, waits for any other thread's
// report to end (re-entrant for the writing thread: a fault while reporting) and starts the first
// line with "poolguard: ERROR: <kind> pid=P tid=T: "; the caller completes line() and writes it
// and further lines with end_line() and stack(); finish() writes the closing line and aborts,
// unless the error mode says to go on and the error is not `fatal` (a faulting access).
class ErrorReport {
 public:
  using Line = TextBuffer<1024>;
  ErrorReport(ErrorCount count, const char* kind);
  ~ErrorReport();
  ErrorReport(const ErrorReport&) = delete;
  ErrorReport& operator=(const ErrorReport&) = delete;

  Line& line() { return line_; }
  // Writes line() and a newline, and clears it.
  void end_line();
  // "  <title>[ by thread T]:" and one line per frame, "    #k 0x.. in fn (module+0xoff) file:line"
  // (base/symbolize.h's append_frame); "(no stack)" when n is 0. The first frame is exact (a
  // faulting instruction) when first_exact, else every frame is a return address. Frames are
  // named by addr2line, checked against the modules' symbol tables, unless raw_frames().
  void stack(const char* title, int tid, const uintptr_t* pcs, int n, bool first_exact);
  // For a report written in a signal handler, where no child process may be started: frames are
  // named from the modules' symbol tables only (no file:line), and modules() lists each module
  // with its build-id, for `poolguard symbolize` to add the lines afterwards.
  void raw_frames();
  // "  modules: ..." and one line per module the stacks named, "    /path build-id HEX" (only
  // after raw_frames()).
  void modules();
  // The closing line; aborts unless the error mode is report and !fatal.
  void finish(bool fatal);

 private:
  os::SavedErrno keep_errno_;  // reported from free(), which leaves errno alone
  LogOutput out_;
  Line line_;
  bool nested_ = false;
  // raw_frames(): the modules seen, for modules(), in memory mapped on demand (a signal handler's
  // stack may be a small alternate one).
  struct Module {
    uintptr_t pc;  // one address in it
    char path[256];
  };
  static constexpr int kModules = 15;
  void note_module(const SymFrame& f);
  // Names lookup[0..n) into frames[0..n) with addr2line, reusing the frames earlier reports named
  // (lookup[] is overwritten).
  void name_frames(uintptr_t* lookup, int n, SymFrame* frames);
  Module* modules_ = nullptr;
  int nmodules_ = 0;
  bool raw_ = false;
};

// free() of a block that is already free. `block_size` is the size class or large size.
void report_double_free(const void* p, size_t block_size);
// free() of a pointer that is not the start of a live block poolguard handed out: an interior
// pointer (`block` is the block it falls in, or null), or an address in the pools' range that is
// not a block at all.
void report_invalid_free(const void* p, const void* block, size_t block_size, const char* why);
// A free-list link that does not decode to a block of its pool: something wrote into a free block
// (a heap overflow from the block before it, or a use after free).
void report_corruption(const void* where, size_t block_size, const char* what);

// Writes "poolguard: " + msg + "\n" on stderr. For warnings such as a malformed option.
void report_warning(const char* msg);

}  // namespace pg
