// The one parser of /proc/PID/maps: a line into its fields, and a reader that goes through the file
// line by line. Allocation-free (no malloc, no exceptions; raw open/read/close into the caller's
// buffer), so the allocator itself uses it (the leak scan), as do the readers in stats/ and tools/.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg::maps {

// One mapping, as a line of /proc/PID/maps tells it:
//   start-end perms offset major:minor inode   path
// `path` points into the text parsed (not a copy): [path, path + path_len), "" for anonymous
// memory; kernel names ("[heap]", "[stack]", "[vdso]") and " (deleted)" suffixes are kept as is.
struct Mapping {
  uintptr_t start = 0, end = 0;  // [start, end)
  char perms[5] = {};            // "rw-p", NUL-terminated
  uint64_t offset = 0;           // in the mapped file
  uint64_t inode = 0;            // of the mapped file; a System V segment's id (0: anonymous)
  const char* path = "";
  size_t path_len = 0;

  bool readable() const { return perms[0] == 'r'; }
  bool writable() const { return perms[1] == 'w'; }
  // Whether the path starts with `prefix` / contains `needle`.
  bool path_starts_with(const char* prefix) const;
  bool path_contains(const char* needle) const;
};

// Parses the line [p, end) (without its '\n'). false when it is not a maps line (the fields up to
// the inode must be there); *m is then unspecified.
bool parse_line(const char* p, const char* end, Mapping* m);

// Splits the next line off the text [*p, end) and parses it, skipping lines that do not parse;
// advances *p past it. false when the text is used up. For a whole file read at once (the leak
// scan reads /proc/self/maps in one pass, as a snapshot).
bool next_in_text(const char** p, const char* end, Mapping* m);

// Reads /proc/PID/maps (pid 0: /proc/self/maps) line by line into a buffer the caller provides,
// with read(2). A line longer than the buffer (a path of thousands of bytes) is skipped. Each
// mapping's path is NUL-terminated in the buffer and valid until the next call to next().
class Reader {
 public:
  Reader(char* buf, size_t cap) : buf_(buf), cap_(cap) {}
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Opens the file. false (errno set) when it cannot be opened.
  bool open(int pid);
  // The next mapping; false at the end of the file or on a read error.
  bool next(Mapping* m);

 private:
  char* buf_;
  size_t cap_;
  size_t begin_ = 0, len_ = 0;  // the unparsed bytes: buf_[begin_, len_)
  int fd_ = -1;
  bool eof_ = false;
};

// Calls keep_going(mapping) for each mapping of /proc/PID/maps (pid 0: this process) until it
// returns false, reading through a buffer on the stack (lines longer than 8 KiB are skipped).
// false when the file cannot be opened.
template <typename F>
bool for_each(int pid, F&& keep_going) {
  char buf[8192];
  Reader reader(buf, sizeof buf);
  if (!reader.open(pid)) return false;
  Mapping m;
  while (reader.next(&m) && keep_going(static_cast<const Mapping&>(m))) {
  }
  return true;
}

}  // namespace pg::maps
