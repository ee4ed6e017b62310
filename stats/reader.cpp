#include "stats/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pg::stats {

namespace {

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string user_name(uint32_t uid) {
  struct passwd* pw = getpwuid(uid);
  return pw ? std::string(pw->pw_name) : std::to_string(uid);
}

}  // namespace

std::string describe_process(const ProcessInfo& p) {
  return "process " + std::to_string(p.pid) + " (" + p.comm + ")";
}

OpenStatus check_published_header(uint64_t magic, uint64_t want_magic, uint32_t version,
                                  uint32_t want_version, const char* kind, const std::string& path,
                                  const ProcessInfo& proc, std::string* why) {
  if (magic == 0) {
    *why = describe_process(proc) + " is creating its " + kind + "; try again";
    return OpenStatus::kNotReady;
  }
  if (magic != want_magic) {
    *why = path + " is not a poolguard " + kind + " (bad magic)";
    return OpenStatus::kInvalid;
  }
  if (version != want_version) {
    *why = path + " has " + kind + " version " + std::to_string(version) +
           ", this poolguard reads version " + std::to_string(want_version);
    return OpenStatus::kInvalid;
  }
  return OpenStatus::kOk;
}

OpenStatus open_published_file(int pid, const std::string& path, int flags, const char* what,
                               const char* kind, const char* missing, ProcessInfo* proc, int* fd,
                               struct stat* st, std::string* why) {
  *fd = -1;
  if (!read_process(pid, proc)) {
    *why = "no process with pid " + std::to_string(pid);
    return OpenStatus::kNoProcess;
  }
  if (proc->tgid != 0 && proc->tgid != pid) {
    *why = std::to_string(pid) + " is a thread of process " + std::to_string(proc->tgid) +
           ": give the process id";
    return OpenStatus::kNoProcess;
  }
  uint32_t me = geteuid();
  if (me != 0 && proc->euid != me) {
    *why = describe_process(*proc) + " belongs to user " + user_name(proc->euid) +
           "; only that user (or root) may read its " + what;
    return OpenStatus::kNotOwner;
  }
  *fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
  if (*fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      *why = describe_process(*proc) + missing;
      return OpenStatus::kNoSegment;
    }
    if (err == EACCES || err == EPERM) {
      *why = path + " belongs to another user; only its owner (or root) may read it";
      return OpenStatus::kNotOwner;
    }
    if (err == ELOOP) {
      *why = path + " is a symbolic link, not a poolguard " + kind;
      return OpenStatus::kInvalid;
    }
    *why = "cannot open " + path + ": " + strerror(err);
    return OpenStatus::kError;
  }
  if (fstat(*fd, st) != 0) {
    *why = "cannot stat " + path + ": " + strerror(errno);
    return OpenStatus::kError;
  }
  if (!S_ISREG(st->st_mode)) {
    *why = path + " is not a regular file";
    return OpenStatus::kInvalid;
  }
  if (me != 0 && st->st_uid != me) {
    *why = path + " belongs to user " + user_name(st->st_uid) +
           ", not to you; only its owner (or root) may read it";
    return OpenStatus::kNotOwner;
  }
  return OpenStatus::kOk;
}

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

std::string segment_path(int pid) {
  return kSegmentPathPrefix + std::to_string(pid);
}

std::vector<int> published_pids(const char* suffix) {
  std::vector<int> pids;
  DIR* d = opendir("/dev/shm");
  if (d == nullptr) return pids;
  const std::string prefix = std::string(kSegmentPathPrefix).substr(strlen("/dev/shm/"));
  const size_t suffix_len = strlen(suffix);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= prefix.size() + suffix_len || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix_len, suffix_len, suffix) != 0) {
      continue;
    }
    std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix_len);
    if (digits.size() > 9 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    pids.push_back(std::stoi(digits));
  }
  closedir(d);
  std::sort(pids.begin(), pids.end());
  return pids;
}

std::vector<int> segment_pids() {
  return published_pids("");
}

bool read_process(int pid, ProcessInfo* out) {
  *out = ProcessInfo{};
  out->pid = pid;
  std::string dir = "/proc/" + std::to_string(pid);
  bool ok;
  std::string status = read_file(dir + "/status", &ok);
  if (!ok || status.empty()) return false;
  std::istringstream lines(status);
  std::string line;
  bool have_uid = false;
  while (std::getline(lines, line)) {
    unsigned r, e;
    int tgid;
    if (sscanf(line.c_str(), "Uid: %u %u", &r, &e) == 2) {
      out->euid = e;
      have_uid = true;
    } else if (sscanf(line.c_str(), "Tgid: %d", &tgid) == 1) {
      out->tgid = tgid;
    }
  }
  if (!have_uid) return false;
  std::string stat = read_file(dir + "/stat", &ok);
  size_t open = stat.find('('), close = stat.rfind(')');
  if (!ok || open == std::string::npos || close == std::string::npos || close < open) return false;
  out->comm = stat.substr(open + 1, close - open - 1);
  // Fields after the command name: state is field 3, start time field 22.
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) out->start_time = std::strtoull(field.c_str(), nullptr, 10);
  }
  return true;
}

bool process_maps(int pid, dev_t dev, ino_t ino) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // start-end perms offset major:minor inode path
    char range[64], perms[8], offset[32];
    unsigned maj, min;
    unsigned long long inode;
    if (sscanf(line.c_str(), "%63s %7s %31s %x:%x %llu", range, perms, offset, &maj, &min,
               &inode) != 6) {
      continue;
    }
    if (inode == ino && maj == major(dev) && min == minor(dev)) return true;
  }
  return false;
}

SegmentReader::~SegmentReader() {
  close();
}

void SegmentReader::close() {
  if (seg_ != nullptr) munmap(seg_, map_size_);
  if (fd_ >= 0) ::close(fd_);
  seg_ = nullptr;
  fd_ = -1;
}

OpenStatus SegmentReader::open(int pid, std::string* why) {
  close();
  path_ = segment_path(pid);
  struct stat st;
  OpenStatus status =
      open_published_file(pid, path_, O_RDWR, "statistics", "segment",
                          " publishes no statistics: it does not run under poolguard, or runs with "
                          "POOLGUARD_SEGMENT=off",
                          &proc_, &fd_, &st, why);
  if (status != OpenStatus::kOk) return status;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  if (st.st_size == 0) {
    *why = describe_process(proc_) + " is creating its segment; try again";
    return OpenStatus::kNotReady;
  }
  constexpr size_t kHeaderPart = offsetof(Segment, reserved_hdr);
  if (static_cast<uint64_t>(st.st_size) < kHeaderPart) {
    *why = path_ + " is too small to be a poolguard segment";
    return OpenStatus::kInvalid;
  }
  map_size_ = std::min(static_cast<size_t>(st.st_size), sizeof(Segment));
  void* mem = mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (mem == MAP_FAILED) {
    *why = "cannot map " + path_ + ": " + strerror(errno);
    return OpenStatus::kError;
  }
  seg_ = static_cast<Segment*>(mem);
  status = check_published_header(__atomic_load_n(&seg_->magic, __ATOMIC_ACQUIRE), kSegmentMagic,
                                  seg_->version, kSegmentVersion, "segment", path_, proc_, why);
  if (status != OpenStatus::kOk) return status;
  if (seg_->size != sizeof(Segment) || map_size_ != sizeof(Segment)) {
    *why = path_ + " has the wrong size for segment version " + std::to_string(kSegmentVersion) +
           " (" + std::to_string(seg_->size) + " bytes declared, " + std::to_string(st.st_size) +
           " in the file, " + std::to_string(sizeof(Segment)) + " expected)";
    return OpenStatus::kInvalid;
  }
  if (seg_->pid != pid || seg_->num_classes > kSegmentMaxClasses ||
      seg_->max_arenas != kSegmentMaxArenas) {
    *why = path_ + " describes pid " + std::to_string(seg_->pid) + " or a geometry this reader " +
           "does not understand";
    return OpenStatus::kInvalid;
  }
  if (seg_->start_time != proc_.start_time || !process_maps(pid, dev_, ino_)) {
    *why = path_ + " is stale: " + describe_process(proc_) +
           " no longer publishes there (it exec'd a program without poolguard, or the pid was "
           "reused); `poolguard ls` removes it";
    return OpenStatus::kStale;
  }
  return OpenStatus::kOk;
}

void SegmentReader::request() {
  want_ = __atomic_add_fetch(&seg_->request, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &seg_->request, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

bool SegmentReader::wait_fresh(uint64_t deadline_ns) {
  for (;;) {
    uint32_t done = __atomic_load_n(&seg_->published, __ATOMIC_ACQUIRE);
    if (static_cast<int32_t>(done - want_) >= 0) return true;
    uint64_t now = monotonic_ns();
    if (now >= deadline_ns) return false;
    uint64_t left = deadline_ns - now;
    timespec ts{static_cast<time_t>(left / 1000000000u), static_cast<long>(left % 1000000000u)};
    syscall(SYS_futex, &seg_->published, FUTEX_WAIT, done, &ts, nullptr, 0);
  }
}

bool SegmentReader::copy(Segment* out, uint64_t deadline_ns) const {
  for (;;) {
    uint64_t before = __atomic_load_n(&seg_->seq, __ATOMIC_ACQUIRE);
    if ((before & 1) == 0) {
      memcpy(static_cast<void*>(out), seg_, offsetof(Segment, arenas));
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      if (__atomic_load_n(&seg_->seq, __ATOMIC_RELAXED) == before) {
        // The counts are consistent: only now trust them to size the arena copy.
        size_t listed = std::min<uint64_t>(
            {out->arenas_listed, out->arenas_backed, static_cast<uint64_t>(kSegmentMaxArenas)});
        memcpy(static_cast<void*>(out->arenas), seg_->arenas, listed * sizeof(SegmentArena));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&seg_->seq, __ATOMIC_RELAXED) == before) {
          out->arenas_listed = listed;
          return true;
        }
      }
    }
    if (monotonic_ns() >= deadline_ns) return false;
    sched_yield();
  }
}

}  // namespace pg::stats
