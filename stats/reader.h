// The reader side of the stats segment (stats/segment.h), for tools: find a process's segment,
// check that the caller may read it and that it is what it claims to be, ask the process for
// fresh figures and copy them consistently. Ordinary C++ (it allocates): never linked into the
// preloaded library.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "stats/segment.h"

namespace pg::stats {

// What /proc says about a process.
struct ProcessInfo {
  int pid = 0;
  int tgid = 0;             // the process a thread id belongs to (== pid for a process)
  uint32_t euid = 0;        // effective user id
  std::string comm;         // command name (/proc/PID/comm)
  uint64_t start_time = 0;  // clock ticks after boot (/proc/PID/stat field 22)
};
// Reads /proc/PID/status and /proc/PID/stat. false if there is no such process (or /proc hides it).
bool read_process(int pid, ProcessInfo* out);

// Whether the process `pid` maps the file (dev, ino), from /proc/PID/maps: a live segment is
// mapped by its process for its whole life; one left by an exec or a crash is not.
bool process_maps(int pid, dev_t dev, ino_t ino);

// "/dev/shm/poolguard.<pid>"
std::string segment_path(int pid);
// Pids of the files named poolguard.<pid><suffix> in /dev/shm, in increasing order.
std::vector<int> published_pids(const char* suffix);
// Pids of the files named poolguard.<pid> in /dev/shm (published_pids("")).
std::vector<int> segment_pids();

enum class OpenStatus {
  kOk,
  kNoProcess,  // no process with this pid
  kNotOwner,   // the process or its segment belongs to another user
  kNoSegment,  // the process publishes nothing
  kNotReady,   // the segment is being created
  kInvalid,    // not a segment this reader understands (magic, version, size, pid)
  kStale,      // a segment the process no longer publishes in (exec, pid reused)
  kError,      // a system call failed
};

// "process PID (comm)", for messages.
std::string describe_process(const ProcessInfo& p);

// What the stats and profile readers check before trusting a file a process publishes in
// /dev/shm: the process exists, is a process (not a thread) and belongs to the caller (unless the
// caller is root); the file opens with `flags` (O_NOFOLLOW added), is a regular file and is the
// caller's. On kOk, *fd is open and *st describes it. `what` names what is read in messages
// ("statistics", "heap profile"), `kind` the file ("segment", "profile"), and a process that has
// no such file gets "process PID (comm)" followed by `missing`. On failure *fd is -1 or open (the
// caller closes it) and `*why` holds one sentence for the user.
OpenStatus open_published_file(int pid, const std::string& path, int flags, const char* what,
                               const char* kind, const char* missing, ProcessInfo* proc, int* fd,
                               struct stat* st, std::string* why);

// The checks of a published file's header that both readers make: `magic` as loaded (0: still
// being created, kNotReady), then the expected magic and version. `kind` names the file in
// messages ("segment", "profile").
OpenStatus check_published_header(uint64_t magic, uint64_t want_magic, uint32_t version,
                                  uint32_t want_version, const char* kind, const std::string& path,
                                  const ProcessInfo& proc, std::string* why);

class SegmentReader {
 public:
  SegmentReader() = default;
  ~SegmentReader();
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // Opens /dev/shm/poolguard.<pid> and validates it. Refuses (kNotOwner) a process or segment of
  // another user unless the caller is root. On failure `*why` holds one sentence for the user.
  OpenStatus open(int pid, std::string* why);

  // Asks the publisher for fresh figures (bumps `request`, wakes it) without waiting.
  void request();
  // Waits until the figures answer the last request(), at most until `deadline_ns`
  // (CLOCK_MONOTONIC). false if the process did not answer in time (stopped, or busy).
  bool wait_fresh(uint64_t deadline_ns);
  // Copies consistent figures and the arena map into *out (header included); false if no
  // consistent copy could be taken before `deadline_ns` (a writer stopped mid-publication).
  bool copy(Segment* out, uint64_t deadline_ns) const;

  const ProcessInfo& process() const { return proc_; }
  const std::string& path() const { return path_; }
  dev_t dev() const { return dev_; }
  ino_t ino() const { return ino_; }

 private:
  void close();
  int fd_ = -1;
  Segment* seg_ = nullptr;
  size_t map_size_ = 0;
  uint32_t want_ = 0;  // the request value to wait for
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  ProcessInfo proc_;
  std::string path_;
};

// CLOCK_MONOTONIC in nanoseconds, for deadlines.
uint64_t monotonic_ns();

}  // namespace pg::stats
