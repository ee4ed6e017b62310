// Error reports. Each kind of error has one function here; each writes one clear line on stderr
// (or the log) with write(2) only, counts the error, and then aborts or returns, as the error mode
// says (pg::set_error_mode, POOLGUARD_ON_ERROR). When it returns, the caller must leave the bad
// block alone (leak it) rather than touch the heap's state with it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pg {

// What an error does after its report: abort the process (the default) or leave the bad block
// alone and go on (POOLGUARD_ON_ERROR=report).
enum class ErrorMode : int { kAbort = 0, kReport = 1 };
void report_set_mode(ErrorMode mode);
ErrorMode error_mode();

// Where the error counts go: three u64 figures of the stats segment, set once it is up
// (initialisation). Errors counted before then are carried over.
void report_set_counters(uint64_t* double_frees, uint64_t* invalid_frees, uint64_t* corruptions);

// Counts one error of each kind (report_set_counters).
void count_double_free();
void count_invalid_free();
void count_corruption();

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
