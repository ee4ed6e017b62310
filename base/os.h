// The platform layer: every system call the allocator makes goes through here. Nothing in this file
// allocates through malloc, and everything except env lookups is safe in a signal handler.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg::os {

// Size of a page (4096 on x86_64; read once from the aux vector).
size_t page_size();

// Maps `size` bytes of fresh, zeroed, read-write anonymous memory. nullptr on failure.
// `noreserve` asks the kernel not to charge swap (MAP_NORESERVE); strict overcommit ignores it.
void* map(size_t size, bool noreserve = false);
// Maps `size` bytes aligned to `alignment` (a power of two >= page size). nullptr on failure.
void* map_aligned(size_t size, size_t alignment, bool noreserve = false);
// Reserves `size` bytes of address space aligned to `alignment`, inaccessible (PROT_NONE) and not
// charged to the commit limit. nullptr on failure.
void* reserve_aligned(size_t size, size_t alignment);
// Makes [p, p+size) inside a reservation read-write. Returns false if the kernel refused.
bool commit(void* p, size_t size);
// Unmaps a range made by map/map_aligned (whole pages). Returns false if the kernel refused.
bool unmap(void* p, size_t size);
// Gives the physical pages of [p, p+size) back to the OS; the range stays mapped and reads as zero.
void decommit(void* p, size_t size);
// Makes whole pages [p, p+size) of a range from reserve_aligned inaccessible (PROT_NONE). With
// `release`, they are replaced by a fresh mapping: their memory goes back to the OS (they read as
// zero when made accessible again), and the mapping, unlike the reservation, is not
// MAP_NORESERVE, so the kernel never merges it with the reservation's pages around it. Without,
// they keep their contents, which is cheaper when they are soon reused. Returns false if the
// kernel refused (with `release`: if the pages may still hold their contents).
bool protect_none(void* p, size_t size, bool release);
// vm.max_map_count (the kernel's limit on mappings per process), or 65530 if unreadable.
size_t max_map_count();

// Writes all of buf to fd, retrying on EINTR and short writes. Async-signal-safe.
void write_all(int fd, const char* buf, size_t len);

// A close-on-exec duplicate of fd numbered at least `min_fd`, or -1.
int dup_cloexec(int fd, int min_fd);
// Identity of the file fd refers to (device and inode). false if fd is not open.
bool file_id(int fd, uint64_t* dev, uint64_t* ino);
// open(path, flags, mode) for writing where another user may plant a symbolic link (/tmp): a
// link is followed only when it belongs to the effective user or to root (such as /dev/stderr);
// through a link the target is never created, and with O_TRUNC only a regular file of the
// effective user's is truncated (EPERM for another's). -1 with errno ELOOP for another user's
// link. Async-signal-safe.
int open_without_foreign_link(const char* path, int flags, unsigned mode);
// Maps the regular file at `path` read-only and private; its size in *size (release it with
// unmap(p, *size)). nullptr if it cannot be opened, is not a regular file, or is empty.
const void* map_file(const char* path, size_t* size);

// Looks `name` up by walking environ (no allocation). nullptr if unset, if environ is not set up
// yet, or if the process is AT_SECURE (setuid/setgid): such processes ignore the environment.
const char* env(const char* name);
// The environment (environ), or nullptr in AT_SECURE processes and before it is set up.
char** environment();
bool secure_mode();

// 64 random bits from the kernel (getrandom, or AT_RANDOM if that fails). Never zero.
uint64_t random64();
// The process's secret for encodings that are not per pool (large-block headers): random64(),
// drawn once, the same for every caller (and in a fork child).
uint64_t secret();

// Keeps errno across its scope: free() must not change it (POSIX 2024, glibc >= 2.33), yet its
// slow paths make system calls (madvise, mprotect, mmap, write) that may fail.
class SavedErrno {
 public:
  SavedErrno();
  ~SavedErrno();
  SavedErrno(const SavedErrno&) = delete;
  SavedErrno& operator=(const SavedErrno&) = delete;

 private:
  int saved_;
};

// Kernel thread id of the caller.
int thread_id();
int process_id();

// Current RLIMIT_AS soft limit, or SIZE_MAX when unlimited.
size_t address_space_limit();

// Signal chaining, for poolguard's handlers (the guard's SIGSEGV, the leak scan's stop signal):
// runs the handler `previous` names for a signal that is not poolguard's, and returns true; false
// when `previous` is the default action or ignore (the caller decides what that means for its
// signal). `previous` is a struct sigaction. Async-signal-safe.
bool call_previous_handler(const void* previous, int sig, void* info, void* context);
// Puts the default action of `sig` back. Async-signal-safe.
void restore_default_action(int sig);

}  // namespace pg::os
