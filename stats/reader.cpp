#include "stats/reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/maps.h"

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

uint64_t load(const uint64_t& v) {
  return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

// Whether /proc/PID/maps names a mapping whose path contains `needle`.
bool maps_contain(int pid, const char* needle) {
  bool found = false;
  pg::maps::for_each(pid, [&](const pg::maps::Mapping& m) {
    found = m.path_contains(needle);
    return !found;
  });
  return found;
}

// The ids of the System V segments process pid has attached (the inode field of their lines in
// /proc/PID/maps), in order of address, each once.
std::vector<int> attached_segments(int pid) {
  std::vector<int> ids;
  pg::maps::for_each(pid, [&](const pg::maps::Mapping& m) {
    int id = static_cast<int>(m.inode);
    if (m.path_starts_with(kSysvMapPrefix) && m.inode <= INT_MAX &&
        std::find(ids.begin(), ids.end(), id) == ids.end()) {
      ids.push_back(id);
    }
    return true;
  });
  return ids;
}

// The value of `name` in the process's environment as it was at exec (/proc/PID/environ), or
// "" when unset or unreadable.
std::string environ_value(int pid, const std::string& name) {
  bool ok;
  std::string env = read_file("/proc/" + std::to_string(pid) + "/environ", &ok);
  std::string key = name + "=";
  for (size_t at = 0; ok && at < env.size();) {
    size_t end = env.find('\0', at);
    if (end == std::string::npos) end = env.size();
    if (env.compare(at, key.size(), key) == 0) {
      return env.substr(at + key.size(), end - at - key.size());
    }
    at = end + 1;
  }
  return "";
}

// Why process `proc` publishes no segment with `magic`, as far as /proc tells.
std::string why_missing(const ProcessInfo& proc, uint64_t magic, const char* what) {
  std::string who = describe_process(proc);
  if (!maps_contain(proc.pid, "libpoolguard")) {
    return who + " does not run under poolguard (libpoolguard.so is not loaded)";
  }
  std::string segment = environ_value(proc.pid, "POOLGUARD_SEGMENT");
  if (segment == "off" || segment == "0" || segment == "no" || segment == "false") {
    return who + " runs under poolguard with POOLGUARD_SEGMENT=" + segment + ": it publishes no " +
           what;
  }
  if (magic != kSegmentMagic) {
    return who + " runs under poolguard without a heap profile (POOLGUARD_PROFILE or " +
           "POOLGUARD_LEAKS not set)";
  }
  return who + " runs under poolguard but publishes no " + what + " (a set-user-ID program, " +
         "or the kernel refused a shared memory segment: kernel.shmmni)";
}

// Attaches segment `id` read-only; nullptr (errno set) on failure. *size gets its size.
const void* attach_readonly(int id, uint64_t* size) {
  struct shmid_ds ds;
  if (shmctl(id, IPC_STAT, &ds) != 0) return nullptr;
  void* p = shmat(id, nullptr, SHM_RDONLY);
  if (p == reinterpret_cast<void*>(-1)) return nullptr;
  *size = ds.shm_segsz;
  return p;
}

}  // namespace

std::string describe_process(const ProcessInfo& p) {
  return "process " + std::to_string(p.pid) + " (" + p.comm + ")";
}

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
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
  // Fields after the command name: state is field 3, ppid 4, start time 22.
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3) out->state = field[0];
    if (i == 4) out->ppid = atoi(field.c_str());
    if (i == 22) out->start_time = std::strtoull(field.c_str(), nullptr, 10);
  }
  return true;
}

std::vector<int> segment_pids() {
  std::vector<int> pids;
  std::ifstream in("/proc/sysvipc/shm");
  std::string line;
  std::getline(in, line);  // the column titles
  while (std::getline(in, line)) {
    // key shmid perms size cpid lpid nattch uid ...
    long long key, id, size, cpid, lpid, nattch;
    unsigned perms;
    if (sscanf(line.c_str(), "%lld %lld %o %lld %lld %lld %lld", &key, &id, &perms, &size, &cpid,
               &lpid, &nattch) != 7 ||
        id < 0 || id > INT_MAX || nattch == 0 ||
        size < static_cast<long long>(sizeof(SegmentHeader))) {
      continue;
    }
    uint64_t got;
    const void* mem = attach_readonly(static_cast<int>(id), &got);
    if (mem == nullptr) continue;  // another user's, or gone meanwhile
    const SegmentHeader* h = static_cast<const SegmentHeader*>(mem);
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == kSegmentMagic && h->pid > 0 &&
        std::find(pids.begin(), pids.end(), h->pid) == pids.end()) {
      pids.push_back(h->pid);
    }
    shmdt(mem);
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

OpenStatus open_published(int pid, uint64_t magic, const char* what, ProcessInfo* proc,
                          const void** mem, uint64_t* size, std::string* why) {
  *mem = nullptr;
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
  std::string maps = "/proc/" + std::to_string(pid) + "/maps";
  if (access(maps.c_str(), R_OK) != 0) {
    *why = describe_process(*proc) + " does not let other processes read its memory map (it is " +
           "not dumpable: set-user-ID, or prctl(PR_SET_DUMPABLE, 0)); its " + what +
           " cannot be found";
    return OpenStatus::kNotOwner;
  }
  bool refused = false;
  for (int id : attached_segments(pid)) {
    uint64_t got = 0;
    const void* m = attach_readonly(id, &got);
    if (m == nullptr) {
      refused = refused || errno == EACCES || errno == EPERM;
      continue;
    }
    if (got >= sizeof(uint64_t) &&
        __atomic_load_n(static_cast<const uint64_t*>(m), __ATOMIC_ACQUIRE) == magic) {
      *mem = m;
      *size = got;
      return OpenStatus::kOk;
    }
    shmdt(m);
  }
  if (refused) {
    *why = "the " + std::string(what) + " of " + describe_process(*proc) + " belongs to another " +
           "user; only its owner (or root) may read it";
    return OpenStatus::kNotOwner;
  }
  *why = why_missing(*proc, magic, what);
  return OpenStatus::kNoSegment;
}

OpenStatus check_published_header(uint64_t magic, uint64_t want_magic, uint32_t version,
                                  uint32_t want_version, int header_pid, uint64_t header_start,
                                  const char* kind, const ProcessInfo& proc, std::string* why) {
  std::string which = "the " + std::string(kind) + " of " + describe_process(proc);
  if (magic == 0) {
    *why = which + " is being set up; try again";
    return OpenStatus::kNoSegment;
  }
  if (magic != want_magic) {
    *why = which + " is not a poolguard " + kind + " (bad magic)";
    return OpenStatus::kInvalid;
  }
  if (version != want_version) {
    *why = which + " has version " + std::to_string(version) + ", this poolguard reads version " +
           std::to_string(want_version);
    return OpenStatus::kInvalid;
  }
  if (header_pid != proc.pid) {
    *why = describe_process(proc) + " shares the " + kind + " of process " +
           std::to_string(header_pid) + " (made by clone() without fork handlers): its own " +
           "figures cannot be told apart";
    return OpenStatus::kNoSegment;
  }
  if (header_start != proc.start_time) {
    *why = which + " was made by an earlier process with the same pid";
    return OpenStatus::kInvalid;
  }
  return OpenStatus::kOk;
}

SegmentReader::~SegmentReader() {
  close();
}

void SegmentReader::close() {
  if (mem_ != nullptr && attached_) shmdt(mem_);
  mem_ = nullptr;
  attached_ = false;
}

OpenStatus SegmentReader::open(int pid, std::string* why) {
  close();
  uint64_t size = 0;
  ProcessInfo proc;
  const void* mem;
  OpenStatus status = open_published(pid, kSegmentMagic, "statistics", &proc, &mem, &size, why);
  proc_ = proc;
  if (status != OpenStatus::kOk) return status;
  status = attach(mem, size, proc, why);
  attached_ = true;
  return status;
}

OpenStatus SegmentReader::attach(const void* mem, size_t size, const ProcessInfo& proc,
                                 std::string* why) {
  proc_ = proc;
  mem_ = mem;
  size_ = size;
  if (size < sizeof(SegmentHeader)) {
    *why = "the segment of " + describe_process(proc_) + " is too small to be one";
    return OpenStatus::kInvalid;
  }
  const SegmentHeader* h = static_cast<const SegmentHeader*>(mem_);
  uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
  memcpy(&header_, h, sizeof header_);
  OpenStatus status =
      check_published_header(magic, kSegmentMagic, header_.version, kSegmentVersion, header_.pid,
                             header_.start_time, "segment", proc_, why);
  if (status != OpenStatus::kOk) return status;
  // Every part must lie inside the memory: the geometry is checked here, never trusted later.
  const SegmentHeader& g = header_;
  auto fits = [&](uint64_t offset, uint64_t count, uint64_t stride) {
    return offset <= size && stride != 0 && count <= (size - offset) / stride;
  };
  bool aligned =
      ((g.globals_offset | g.large_offset | g.arenas_offset | g.heaps_offset | g.heap_stride) &
       7) == 0;
  if (!aligned || g.size != size || g.num_classes == 0 || g.num_classes > kSegmentMaxClasses ||
      g.num_slots != g.num_classes + 1 || g.large_stride != sizeof(SegmentLargeSlot) ||
      g.arena_stride != sizeof(SegmentArena) || g.pool_size == 0 || g.pool_header >= g.pool_size ||
      std::any_of(g.class_size, g.class_size + g.num_classes, [](uint32_t v) { return v == 0; }) ||
      !fits(g.globals_offset, 1, sizeof(SegmentGlobals)) ||
      !fits(g.large_offset, g.large_capacity, g.large_stride) ||
      !fits(g.arenas_offset, g.max_arenas, g.arena_stride) ||
      !fits(g.heaps_offset, g.max_heaps, g.heap_stride) ||
      g.heap_stride < (2 * uint64_t{g.num_slots} + g.num_classes) * sizeof(uint64_t)) {
    *why = "the segment of " + describe_process(proc_) + " has a geometry this reader does not " +
           "understand";
    return OpenStatus::kInvalid;
  }
  return OpenStatus::kOk;
}

void SegmentReader::read(Figures* out) const {
  const SegmentHeader& h = header_;
  const SegmentGlobals& g = *reinterpret_cast<const SegmentGlobals*>(at(h.globals_offset));
  Figures& f = *out;
  f = Figures{};
  f.pid = h.pid;
  f.uid = h.uid;
  f.version = h.version;
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  f.read_time_ns = static_cast<uint64_t>(now.tv_sec) * 1000000000u + now.tv_nsec;
  f.num_classes = h.num_classes;
  f.small_max = h.small_max;
  f.pool_size = h.pool_size;
  f.pool_header = h.pool_header;
  f.arena_size = h.arena_size;

  // Small blocks: the heap slots summed, by class (slot 0, malloc(0), is class 0's).
  uint64_t heaps = std::min<uint64_t>(load(g.heap_slots), h.max_heaps);
  for (uint64_t i = 0; i < heaps; ++i) {
    const uint64_t* slot =
        reinterpret_cast<const uint64_t*>(at(h.heaps_offset + i * h.heap_stride));
    const uint64_t* allocs = slot;
    const uint64_t* requested = slot + h.num_slots;
    const uint64_t* frees = slot + 2 * h.num_slots;
    for (uint32_t s = 0; s < h.num_slots; ++s) {
      uint32_t c = s == 0 ? 0 : s - 1;
      f.classes[c].allocs += load(allocs[s]);
      f.classes[c].requested_bytes += load(requested[s]);
    }
    for (uint32_t c = 0; c < h.num_classes; ++c) f.classes[c].frees += load(frees[c]);
  }
  for (uint32_t c = 0; c < h.num_classes; ++c) {
    ClassFigures& cf = f.classes[c];
    cf.block_size = h.class_size[c];
    cf.frees += load(g.abandoned_frees[c]);
    cf.pools = load(g.class_pools[c]);
    cf.live_blocks = cf.allocs >= cf.frees ? cf.allocs - cf.frees : 0;
    cf.held_bytes = cf.live_blocks * cf.block_size;
    uint32_t units = h.class_units[c] == 0 ? 1 : h.class_units[c];
    cf.pool_bytes = uint64_t{units} * h.pool_size;
    uint64_t capacity = cf.pools * ((cf.pool_bytes - h.pool_header) / cf.block_size);
    cf.free_blocks = capacity >= cf.live_blocks ? capacity - cf.live_blocks : 0;
    f.small_allocs += cf.allocs;
    f.small_frees += cf.frees;
  }

  // Large blocks: the slots and the shared totals.
  uint64_t in = load(g.large_gone_bytes_in), outb = load(g.large_gone_bytes_out);
  f.large_allocs = load(g.large_gone_allocs);
  f.large_frees = load(g.large_gone_frees);
  uint64_t large = std::min<uint64_t>(load(g.large_slots), h.large_capacity);
  for (uint64_t i = 0; i < large; ++i) {
    const SegmentLargeSlot& s =
        *reinterpret_cast<const SegmentLargeSlot*>(at(h.large_offset + i * h.large_stride));
    f.large_allocs += load(s.allocs);
    f.large_frees += load(s.frees);
    in += load(s.bytes_in);
    outb += load(s.bytes_out);
  }
  f.large_live_bytes = in >= outb ? in - outb : 0;

  f.arenas_mapped = load(g.arenas_mapped);
  f.arenas_in_use = load(g.arenas_in_use);
  f.arenas_released = load(g.arenas_released);
  f.reserved_bytes = load(g.reserved_bytes);
  f.fallback_arenas = load(g.fallback_arenas);
  f.pools_in_use = load(g.pools_in_use);
  f.pools_purged = load(g.pools_purged);
  f.peak_small_bytes = load(g.peak_pools) * h.pool_size;
  f.limit_bytes = load(g.limit_bytes);
  f.limit_in_use = load(g.limit_in_use);
  f.limit_peak = load(g.limit_peak);
  f.limit_refused = load(g.limit_refused);
  f.guard_events = load(g.guard_errors);
  f.threads = load(g.heaps_created);
  f.double_frees = load(g.double_frees);
  f.invalid_frees = load(g.invalid_frees);
  f.corruptions = load(g.corruptions);

  // The arena map: each entry copied under its seqlock, the ones in use kept.
  uint64_t listed = std::min<uint64_t>(load(g.arenas_listed), h.max_arenas);
  for (uint64_t i = 0; i < listed; ++i) {
    const SegmentArena* e =
        reinterpret_cast<const SegmentArena*>(at(h.arenas_offset + i * h.arena_stride));
    // An entry still being rewritten after a few tries (its writer died midway, or the segment
    // is not what it claims) is left out.
    SegmentArena copy;
    bool stable = false;
    for (int tries = 0; tries < 64 && !stable; ++tries) {
      uint64_t before = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
      memcpy(&copy, e, sizeof copy);
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      stable = (before & 1) == 0 && __atomic_load_n(&e->seq, __ATOMIC_RELAXED) == before;
    }
    if (!stable || copy.base == 0) continue;
    ArenaFigures a;
    a.base = copy.base;
    for (size_t k = 0; k < kSegmentPoolsPerArena; ++k) {
      a.pools[k].state = copy.pools[k].state;
      a.pools[k].cls = copy.pools[k].cls;
    }
    f.arenas.push_back(a);
  }
  f.arenas_unlisted = f.arenas_in_use > f.arenas.size() ? f.arenas_in_use - f.arenas.size() : 0;

  // Resident memory, from /proc (pages, second field of statm).
  bool ok;
  std::string statm = read_file("/proc/" + std::to_string(proc_.pid) + "/statm", &ok);
  unsigned long long size_pages = 0, resident = 0;
  if (ok && sscanf(statm.c_str(), "%llu %llu", &size_pages, &resident) == 2) {
    f.rss_bytes = resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  }
}

bool SegmentReader::read_fill(Figures* f, std::string* why) const {
  const SegmentHeader& h = header_;
  uint64_t headers = kSegmentPoolsPerArena * uint64_t{h.pool_meta_size};
  if (h.pool_meta_size == 0 || h.pool_used_offset + sizeof(uint32_t) > h.pool_meta_size) {
    *why = "the segment does not say where pool headers are";
    return false;
  }
  std::vector<char> buf(headers);
  for (ArenaFigures& a : f->arenas) {
    iovec local{buf.data(), headers};
    iovec remote{reinterpret_cast<void*>(a.base), headers};
    ssize_t n = process_vm_readv(proc_.pid, &local, 1, &remote, 1, 0);
    if (n != static_cast<ssize_t>(headers)) {
      int err = errno;
      if (n < 0 && (err == EPERM || err == EACCES)) {
        *why = "reading the pools' fill needs permission to read the process's memory, as a " +
               std::string("debugger does (kernel.yama.ptrace_scope, or root)");
        return false;
      }
      continue;  // released meanwhile: leave this arena's fill unknown
    }
    uint32_t lead_used = kUsedUnknown;
    for (size_t k = 0; k < kSegmentPoolsPerArena; ++k) {
      if (a.pools[k].state == kSegPoolSpanTail) {
        a.pools[k].used = lead_used;  // the units of a span show their pool's fill
        continue;
      }
      lead_used = kUsedUnknown;
      if (a.pools[k].state != kSegPoolInUse) continue;
      uint32_t used;
      memcpy(&used, buf.data() + k * h.pool_meta_size + h.pool_used_offset, sizeof used);
      a.pools[k].used = lead_used = used & 0x7fffffffu;  // the top bit is a flag (filed as full)
    }
  }
  f->fill_known = true;
  return true;
}

}  // namespace pg::stats
