// Symbolization (base/symbolize.h): dladdr for the module and the exported name, then addr2line
// run as a child over each module for static functions and file:line.
//
// This runs inside the preloaded allocator (leak reports at exit), so nothing here calls malloc,
// directly or through std::string & co.: the scratch arrays, the argument strings and the buffer
// that receives addr2line's output are mapped with mmap and unmapped before returning, and the
// child is started with clone + execve (no posix_spawn file actions, which glibc mallocs; no
// fork handlers). Every name is checked against the module's symbol table (base/elf_symbols.h).
#include "base/symbolize.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "base/align.h"
#include "base/clock.h"
#include "base/elf_symbols.h"
#include "base/format.h"
#include "base/os.h"

namespace pg {

namespace {

// Offsets per addr2line run: keeps the command line far below ARG_MAX (256 * 19 bytes) while
// still paying the cost of loading a module's DWARF only once for a typical report.
constexpr size_t kBatch = 256;
// addr2line's output is read into a mapping that starts at this size and doubles up to the cap;
// past the cap the rest is read and dropped (the frames it would have named stay as dladdr left
// them), so a runaway child cannot make us map without bound.
constexpr size_t kOutputInitial = size_t{64} << 10;
constexpr size_t kOutputCap = size_t{64} << 20;
// A child that writes nothing for this long is killed, and addr2line is not run again in the same
// call: addr2line on a huge module with full DWARF can be slow, but a report at exit must never
// hang the process, nor wait this long once per module.
constexpr int kIdleTimeoutMs = 60 * 1000;
// While no output comes, whether the child has exited is checked this often: a grandchild that
// inherited the pipe could otherwise hold it open long after the child is gone.
constexpr int kExitCheckMs = 1000;
// Where addr2line is looked for after the caller's PATH, and the only PATH the child sees.
#define PG_SYMBOLIZE_PATH "/usr/local/bin:/usr/bin:/bin"
constexpr const char kDefaultPath[] = PG_SYMBOLIZE_PATH;

// Restores errno on scope exit: symbolizing is a side activity of whatever the program was doing.
class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }

 private:
  int saved_;
};

// Copies src[0..len) into dst (capacity cap, cap > 0), cutting it to fit, NUL-terminated.
void copy_text(char* dst, size_t cap, const char* src, size_t len) {
  if (len >= cap) len = cap - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

void copy_cstr(char* dst, size_t cap, const char* src) {
  copy_text(dst, cap, src, strlen(src));
}

// Writes "0x<hex>" and a NUL at p (at most 19 bytes); returns the byte after the NUL.
char* format_hex(char* p, uint64_t v) {
  TextBuffer<18> hex;
  hex.hex(v);
  memcpy(p, hex.data(), hex.size());
  p[hex.size()] = '\0';
  return p + hex.size() + 1;
}

// An anonymous mapping that is released when it goes out of scope.
class Scratch {
 public:
  explicit Scratch(size_t size) : size_(round_up(size)), base_(os::map(size_)) {}
  ~Scratch() {
    if (base_ != nullptr) os::unmap(base_, size_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  char* data() const { return static_cast<char*>(base_); }
  size_t size() const { return size_; }
  // Grows the mapping to at least `size` bytes, keeping its contents (it may move). false if the
  // kernel refused; the old mapping is then still valid.
  bool grow(size_t size) {
    size = round_up(size);
    void* p = mremap(base_, size_, size, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return false;
    base_ = p;
    size_ = size;
    return true;
  }

 private:
  static size_t round_up(size_t size) { return align_up(size, os::page_size()); }
  size_t size_;
  void* base_;
};

// An fd closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Moves a close-on-exec fd to a number >= 3. The child's file actions dup2 onto 0, 1 and 2; if
// one of our fds already had such a number (the program closed its stdin, say), an earlier dup2
// would clobber it before a later one reads it.
int above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = os::dup_cloexec(fd, 3);
  close(fd);
  return moved;
}

bool is_regular_file(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// Searches the directories of `path_list` (':'-separated) for an executable addr2line, and writes
// its path into buf. Done by hand, not by posix_spawnp, so that the search does not depend on
// which PATH glibc reads and so that a missing tool costs no fork.
bool find_in(const char* path_list, char* buf, size_t cap) {
  static const char kName[] = "/addr2line";
  const char* p = path_list;
  while (true) {
    const char* end = strchr(p, ':');
    size_t len = end ? static_cast<size_t>(end - p) : strlen(p);
    // An empty entry means the current directory; a report should not run whatever addr2line
    // happens to sit there, so such entries are skipped.
    if (len > 0 && p[0] == '/' && len + sizeof kName <= cap) {
      memcpy(buf, p, len);
      memcpy(buf + len, kName, sizeof kName);
      if (access(buf, X_OK) == 0 && is_regular_file(buf)) return true;
    }
    if (!end) return false;
    p = end + 1;
  }
}

bool find_addr2line(char* buf, size_t cap) {
  const char* path = os::env("PATH");  // nullptr for setuid programs: they get the default only
  if (path != nullptr && find_in(path, buf, cap)) return true;
  return find_in(kDefaultPath, buf, cap);
}

// How one addr2line run ended.
enum class Run {
  kOk,        // it ran and wrote something (parsed for as many addresses as it answered)
  kFailed,    // it could not be started, or wrote nothing (a module it cannot read)
  kTimedOut,  // it was killed after kIdleTimeoutMs of silence
};

// Whether the child has exited, reaping it if so. With SIGCHLD ignored the kernel reaps it itself
// and waitpid fails with ECHILD once it is gone; a SIGCHLD handler of the program may also have
// reaped it first. Both count as gone: the output, not the status, tells whether the run was
// useful.
bool child_gone(pid_t pid, int flags) {
  while (true) {
    int status;
    pid_t r = waitpid(pid, &status, flags);
    if (r == pid) return true;
    if (r < 0 && errno == EINTR) continue;
    return r < 0 && errno == ECHILD;
  }
}

// What read_all saw last.
enum class End { kEof, kChildGone, kTimedOut, kError };

// Reads the child's stdout (fd) until EOF into out, growing it, for as long as the child keeps
// writing within the idle timeout. Returns the number of bytes kept; *end tells why it stopped
// (kChildGone: the child was reaped here).
size_t read_all(int fd, pid_t pid, Scratch& out, End* end) {
  size_t used = 0;
  char discard[512];
  int64_t last = monotonic_ms();
  while (true) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int left = static_cast<int>(kIdleTimeoutMs - (monotonic_ms() - last));
    if (left <= 0) {
      *end = End::kTimedOut;
      return used;
    }
    int r = poll(&pfd, 1, left < kExitCheckMs ? left : kExitCheckMs);
    if (r < 0) {
      if (errno == EINTR) continue;
      *end = End::kError;
      return used;
    }
    if (r == 0) {
      // Nothing pending: whatever the child wrote before exiting would be readable now, so if it
      // is gone, nothing more is coming from it.
      if (child_gone(pid, WNOHANG)) {
        *end = End::kChildGone;
        return used;
      }
      continue;
    }
    if (used == out.size() && out.size() < kOutputCap) out.grow(out.size() * 2);
    bool keep = used < out.size();
    char* dst = keep ? out.data() + used : discard;
    size_t room = keep ? out.size() - used : sizeof discard;
    ssize_t n = read(fd, dst, room);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      *end = End::kError;
      return used;
    }
    if (n == 0) {  // EOF: the child closed its stdout (it exited)
      *end = End::kEof;
      return used;
    }
    if (keep) used += static_cast<size_t>(n);
    last = monotonic_ms();
  }
}

// What the child does between clone and execve, and where.
struct ChildSetup {
  char* const* argv;
  char* const* envp;
  int in, out, err;  // become its fds 0, 1 and 2
};

// The child's first and only function, on its own stack and sharing our memory until execve:
// system calls only. Signals stay blocked (see run_child) until every disposition is the default,
// so none of the program's handlers ever runs here; execve would reset them anyway, but not an
// ignored SIGPIPE, which would stay ignored.
//
// Not instrumented under AddressSanitizer: the child shares our memory, shadow memory included,
// so the redzones an instrumented frame poisons on its stack would outlive it (execve leaves
// without unpoisoning them) and flag whatever is mapped there next.
__attribute__((no_sanitize("address"))) int child_main(void* arg) {
  const auto* c = static_cast<const ChildSetup*>(arg);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  if (dup2(c->in, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->err, 2) < 0) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(c->argv[0], c->argv, c->envp);
  _exit(127);
}

// Starts argv with the fds of `setup`: clone(CLONE_VM | CLONE_VFORK) on a stack of our own, then
// execve, as glibc's posix_spawn does, but with no file-action list (posix_spawn's lives in
// malloc'd memory, and this may run inside free()) and without fork(): no pthread_atfork handler
// runs (poolguard's own take its locks, which a report at free() may hold) and no page of the
// program is copied. -1 on failure.
pid_t spawn(const ChildSetup& setup) {
  Scratch stack(size_t{64} << 10);
  if (stack.data() == nullptr) return -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(child_main, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD,
                    const_cast<ChildSetup*>(&setup));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
#if defined(__SANITIZE_ADDRESS__)
  // The libc calls the child made (ASan's interceptors among them) may still have poisoned some
  // of its stack: clear it before the stack is unmapped and its addresses reused.
  __asan_unpoison_memory_region(stack.data(), stack.size());
#endif
  return pid;
}

// Runs `argv` (argv[0] an absolute path) with stdout to a pipe, stdin and stderr to /dev/null
// and a clean environment, and reads its stdout into out (*got bytes).
Run run_child(char* const* argv, Scratch& out, size_t* got) {
  *got = 0;
  // The child must not run under poolguard (LD_PRELOAD) nor see its options: it would print its
  // own reports into our pipe, or recurse. LC_ALL=C keeps addr2line's output unlocalized.
  static const char kEnvPath[] = "PATH=" PG_SYMBOLIZE_PATH;
  static const char kEnvLocale[] = "LC_ALL=C";
  char* const envp[] = {const_cast<char*>(kEnvPath), const_cast<char*>(kEnvLocale), nullptr};

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Run::kFailed;
  Fd rd(above_stdio(fds[0]));
  Fd wr(above_stdio(fds[1]));
  Fd null(above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC)));
  if (rd.get() < 0 || wr.get() < 0 || null.get() < 0) return Run::kFailed;

  // All our fds are close-on-exec, so the child keeps only what dup2 gives it (dup2 clears the
  // flag on the copy), and a fork in another thread meanwhile inherits none of them.
  ChildSetup setup{argv, envp, null.get(), wr.get(), null.get()};
  pid_t pid = spawn(setup);
  if (pid < 0) return Run::kFailed;

  // Only the child may hold the write end now, or we would never see EOF.
  wr.reset();
  null.reset();
  End end = End::kEof;
  *got = read_all(rd.get(), pid, out, &end);
  // Not reaped yet, the pid cannot have been reused, so the kill reaches our child. After a
  // failed poll or read too: waiting for a child we no longer read from could block forever.
  if (end == End::kTimedOut || end == End::kError) kill(pid, SIGKILL);
  rd.reset();
  if (end != End::kChildGone) child_gone(pid, 0);
  if (end == End::kTimedOut) return Run::kTimedOut;
  // No output at all: addr2line refused the module (not ELF, unreadable) or could not exec.
  return *got > 0 ? Run::kOk : Run::kFailed;
}

// Splits the next line off [*p, end): returns its start and sets *len; advances *p past the '\n'.
// false when no complete line is left (a cut-off last line is not trusted).
bool next_line(const char** p, const char* end, const char** line, size_t* len) {
  const char* nl = static_cast<const char*>(memchr(*p, '\n', static_cast<size_t>(end - *p)));
  if (nl == nullptr) return false;
  *line = *p;
  *len = static_cast<size_t>(nl - *p);
  *p = nl + 1;
  return true;
}

bool starts_with(const char* s, size_t len, const char* prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(s, prefix, n) == 0;
}

// addr2line prints two lines per address: the function ("??" when unknown) and "file:line"
// ("??:0" or "??:?" when unknown, sometimes followed by " (discriminator N)").
void parse_output(const char* text, size_t size, SymFrame* out, size_t n) {
  const char* p = text;
  const char* end = text + size;
  for (size_t i = 0; i < n; ++i) {
    const char *fn, *fl;
    size_t fn_len, fl_len;
    if (!next_line(&p, end, &fn, &fn_len) || !next_line(&p, end, &fl, &fl_len)) return;
    if (fn_len > 0 && !(fn_len == 2 && memcmp(fn, "??", 2) == 0)) {
      copy_text(out[i].function, sizeof out[i].function, fn, fn_len);
    }
    for (size_t k = 0; k < fl_len; ++k) {
      if (fl[k] == ' ' && starts_with(fl + k, fl_len - k, " (discriminator")) {
        fl_len = k;
        break;
      }
    }
    if (fl_len > 0 && !starts_with(fl, fl_len, "??:")) {
      copy_text(out[i].file_line, sizeof out[i].file_line, fl, fl_len);
    }
  }
}

// One addr2line run over at most kBatch offsets of `module`.
Run run_batch(const char* addr2line, const char* module, const uint64_t* offsets, size_t n,
              SymFrame* out, Scratch& args, Scratch& output) {
  // args holds argv (pointers) first, then the hex strings.
  char** argv = reinterpret_cast<char**>(args.data());
  char* text = args.data() + (kBatch + 6) * sizeof(char*);
  size_t a = 0;
  argv[a++] = const_cast<char*>(addr2line);
  argv[a++] = const_cast<char*>("-f");  // function names
  argv[a++] = const_cast<char*>("-C");  // demangled
  argv[a++] = const_cast<char*>("-e");
  argv[a++] = const_cast<char*>(module);
  for (size_t i = 0; i < n; ++i) {
    argv[a++] = text;
    text = format_hex(text, offsets[i]);
  }
  argv[a] = nullptr;

  size_t got = 0;
  Run run = run_child(argv, output, &got);
  // Even a run that timed out may have answered for its first addresses.
  parse_output(output.data(), got, out, n);
  return run;
}

// The real path of the main program. dladdr gives argv[0] for it (or ""), which may be relative,
// a bare name found through PATH, or anything the program's parent chose.
bool self_exe(char* buf, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
  if (n <= 0) return false;
  buf[n] = '\0';
  return true;
}

// What addr2line -e MODULE expects for pc: for ET_DYN modules (shared libraries, PIE programs)
// the address relative to where the module was loaded, for ET_EXEC programs (linked at a fixed
// address) the absolute pc. The load bias is the link map's l_addr when dladdr1 gives it: it
// differs from dli_fbase (the lowest mapped address) when the first segment is not linked at 0.
uint64_t module_offset(uintptr_t pc, const Dl_info& info, const struct link_map* map) {
  const auto* eh = static_cast<const ElfW(Ehdr)*>(info.dli_fbase);
  if (eh != nullptr && memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_type == ET_EXEC) {
    return pc;
  }
  uintptr_t bias = map != nullptr ? map->l_addr : reinterpret_cast<uintptr_t>(info.dli_fbase);
  return pc - bias;
}

// symbolize_module, telling also whether a run timed out (then the remaining batches are not run).
Run module_runs(const char* module, const uint64_t* offsets, size_t n, SymFrame* out) {
  if (n == 0) return Run::kOk;
  // A FIFO or device named in a map would block addr2line's open; a missing file would cost a
  // spawn for nothing.
  if (module == nullptr || module[0] == '\0' || !is_regular_file(module)) return Run::kFailed;
  char addr2line[PATH_MAX];
  if (!find_addr2line(addr2line, sizeof addr2line)) return Run::kFailed;

  Scratch args((kBatch + 6) * sizeof(char*) + kBatch * 19);
  Scratch output(kOutputInitial);
  if (args.data() == nullptr || output.data() == nullptr) return Run::kFailed;
  Run result = Run::kOk;
  for (size_t done = 0; done < n; done += kBatch) {
    size_t count = n - done < kBatch ? n - done : kBatch;
    Run run = run_batch(addr2line, module, offsets + done, count, out + done, args, output);
    if (run == Run::kTimedOut) return run;
    if (run == Run::kFailed) result = run;
  }
  return result;
}

// Names only what a symbol of the module covers. addr2line, like dladdr before glibc checked
// sizes, names the nearest symbol at or below the address whatever its size: in a stripped module
// that is often another function, a small exported one before the static function the frame is
// in. A frame with a file:line keeps addr2line's name (it comes from the debug information, which
// the module's own symbol table may lack when the debug information is a separate file); any
// other keeps a name only where the module's .symtab (else .dynsym) has a function covering it,
// and gets that symbol's name when addr2line gave none (mangled: demangling would need malloc).
void check_names(const char* module, const uint64_t* offsets, size_t n, SymFrame* out) {
  ElfSymbols elf(module);
  Scratch names_map(n * sizeof(const char*));
  auto** names = reinterpret_cast<const char**>(names_map.data());
  bool known = names != nullptr && elf.ok() && elf.covering_all(offsets, n, names, nullptr);
  for (size_t i = 0; i < n; ++i) {
    SymFrame& f = out[i];
    const char* symbol = known ? names[i] : nullptr;
    if (f.file_line[0] != '\0' && f.function[0] != '\0') continue;
    if (symbol == nullptr) {
      if (f.file_line[0] == '\0') f.function[0] = '\0';
    } else if (f.function[0] == '\0') {
      copy_cstr(f.function, sizeof f.function, symbol);
    }
  }
}

}  // namespace

bool symbolize_module(const char* module, const uint64_t* offsets, size_t n, SymFrame* out) {
  ErrnoKeeper keep_errno;
  // Named apart, so that check_names judges addr2line's names, not what the caller put in out.
  Scratch copy(n * sizeof(SymFrame));
  if (n == 0 || copy.data() == nullptr) return n == 0;
  auto* frames = reinterpret_cast<SymFrame*>(copy.data());
  bool ran = module_runs(module, offsets, n, frames) == Run::kOk;
  check_names(module, offsets, n, frames);
  for (size_t i = 0; i < n; ++i) {
    if (frames[i].function[0])
      copy_cstr(out[i].function, sizeof out[i].function, frames[i].function);
    if (frames[i].file_line[0]) {
      copy_cstr(out[i].file_line, sizeof out[i].file_line, frames[i].file_line);
    }
  }
  return ran;
}

void symbolize_self(const uintptr_t* pcs, size_t n, SymFrame* out, bool use_addr2line) {
  ErrnoKeeper keep_errno;
  if (n == 0) return;
  char exe[PATH_MAX];
  int exe_state = 0;  // 0: not read yet, 1: read, -1: unreadable

  // The full module path of each frame, for grouping: out[i].module may be cut to fit, and
  // addr2line needs the whole path. dli_fname stays valid while the module is loaded.
  Scratch paths_map(n * sizeof(const char*));
  const char** paths = reinterpret_cast<const char**>(paths_map.data());

  for (size_t i = 0; i < n; ++i) {
    SymFrame& f = out[i];
    f.pc = pcs[i];
    f.offset = 0;
    f.function[0] = f.module[0] = f.file_line[0] = '\0';
    if (paths) paths[i] = nullptr;

    Dl_info info;
    struct link_map* map = nullptr;
    if (dladdr1(reinterpret_cast<void*>(pcs[i]), &info, reinterpret_cast<void**>(&map),
                RTLD_DL_LINKMAP) == 0 ||
        info.dli_fbase == nullptr) {
      continue;  // in no module (JIT code, a bad pointer): nothing to say
    }
    // The main program's link map has an empty name; dli_fname is then argv[0].
    const char* path = info.dli_fname;
    bool is_main = (map != nullptr && map->l_name != nullptr && map->l_name[0] == '\0') ||
                   path == nullptr || path[0] == '\0';
    if (is_main) {
      if (exe_state == 0) exe_state = self_exe(exe, sizeof exe) ? 1 : -1;
      if (exe_state == 1) path = exe;
    }
    if (path == nullptr) path = "";
    copy_cstr(f.module, sizeof f.module, path);
    f.offset = module_offset(pcs[i], info, map);
    if (info.dli_sname != nullptr) {
      // The nearest exported symbol at or below pc, which may be another function altogether
      // (a static one that follows it): "name+0xoff" says how far, unless addr2line names it.
      TextBuffer<sizeof f.function> name;
      name.str(info.dli_sname);
      uintptr_t start = reinterpret_cast<uintptr_t>(info.dli_saddr);
      if (start != 0 && pcs[i] != start) name.chr('+').hex(pcs[i] - start);
      copy_text(f.function, sizeof f.function, name.data(), name.size());
    }
    if (paths && path[0] != '\0') paths[i] = path;
  }
  if (paths == nullptr) return;

  // One module at a time: gather up to kBatch of its frames, name them, copy the answers back.
  // paths[i] is cleared once frame i has been sent. addr2line is not run again on a module it
  // could not read, nor on any module after a run timed out (another could hang as long): those
  // frames get the symbol table's names only.
  Scratch batch_map(kBatch * (sizeof(SymFrame) + sizeof(uint64_t) + sizeof(size_t)));
  if (batch_map.data() == nullptr) return;
  auto* frames = reinterpret_cast<SymFrame*>(batch_map.data());
  auto* offsets = reinterpret_cast<uint64_t*>(frames + kBatch);
  auto* index = reinterpret_cast<size_t*>(offsets + kBatch);
  bool child = use_addr2line;
  for (size_t i = 0; i < n; ++i) {
    if (paths[i] == nullptr) continue;
    const char* module = paths[i];
    bool child_here = child;
    size_t next = i;
    while (next < n) {
      size_t count = 0;
      for (size_t j = next; j < n && count < kBatch; ++j) {
        if (paths[j] == nullptr || strcmp(paths[j], module) != 0) continue;
        index[count] = j;
        offsets[count] = out[j].offset;
        frames[count].function[0] = frames[count].file_line[0] = '\0';
        ++count;
        paths[j] = nullptr;
        next = j + 1;
      }
      if (count == 0) break;
      if (child_here) {
        Run run = module_runs(module, offsets, count, frames);
        if (run != Run::kOk) child_here = false;
        if (run == Run::kTimedOut) child = false;
      }
      check_names(module, offsets, count, frames);
      // A name checked here replaces dladdr's (which glibc gives only when the exported symbol
      // covers the address, as "name+0xoff"); a frame left without one keeps dladdr's.
      for (size_t k = 0; k < count; ++k) {
        SymFrame& f = out[index[k]];
        if (frames[k].function[0]) copy_cstr(f.function, sizeof f.function, frames[k].function);
        if (frames[k].file_line[0]) {
          copy_cstr(f.file_line, sizeof f.file_line, frames[k].file_line);
        }
      }
    }
  }
}

}  // namespace pg
