// Unit tests of base/symbolize: dladdr's module and offset, addr2line's function and file:line for
// a static function of this binary, libc, addresses in no module, modules addr2line cannot read,
// large batches, and the child's clean environment (no LD_PRELOAD or POOLGUARD_* reaches it).
#include "base/symbolize.h"

#include <dirent.h>
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace pg {
namespace {

// The address of the call instruction in the caller (the return address minus one lies inside
// it), so that the line is the caller's line of the call, not the next one.
__attribute__((noinline)) uintptr_t call_site() {
  uintptr_t ra = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
  return ra - 1;
}

// Static: it is in .symtab only, never in .dynsym, so only addr2line can name it.
static __attribute__((noinline, noclone)) uintptr_t first_static_function(int* line) {
  *line = __LINE__ + 1;
  uintptr_t pc = call_site();
  asm volatile("" ::: "memory");
  return pc;
}

static __attribute__((noinline, noclone)) uintptr_t second_static_function(int* line) {
  *line = __LINE__ + 1;
  uintptr_t pc = call_site();
  asm volatile("" ::: "memory");
  return pc;
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// The load bias of the first module whose name contains `name` ("" for the main program), found
// with dl_iterate_phdr: an independent check of symbolize's dladdr-based offsets.
uintptr_t load_bias(const char* name) {
  struct Query {
    const char* name;
    uintptr_t bias;
    bool found;
  } q{name, 0, false};
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        auto* q = static_cast<Query*>(data);
        const char* n = info->dlpi_name ? info->dlpi_name : "";
        bool match = q->name[0] == '\0' ? n[0] == '\0' : strstr(n, q->name) != nullptr;
        if (!match) return 0;
        q->bias = info->dlpi_addr;
        q->found = true;
        return 1;
      },
      &q);
  EXPECT_TRUE(q.found) << name;
  return q.bias;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// libc's own write, looked up in libc: &write may be a sanitizer's interceptor or, in a non-PIE
// binary, a PLT stub of the program.
uintptr_t write_address() {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  EXPECT_NE(libc, nullptr);
  void* sym = libc ? dlsym(libc, "write") : nullptr;
  if (libc) dlclose(libc);
  EXPECT_NE(sym, nullptr);
  return reinterpret_cast<uintptr_t>(sym);
}

int open_fds() {
  int count = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) count += e->d_name[0] != '.';
  closedir(d);
  return count;
}

// Counts SIGCHLD while alive, to tell whether a child process ran.
std::atomic<int> g_sigchld{0};
class ChildCounter {
 public:
  ChildCounter() {
    g_sigchld = 0;
    struct sigaction sa = {};
    sa.sa_handler = [](int) { g_sigchld.fetch_add(1); };
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, &old_);
  }
  ~ChildCounter() { sigaction(SIGCHLD, &old_, nullptr); }
  int count() const { return g_sigchld.load(); }

 private:
  struct sigaction old_;
};

// Sets an environment variable for the scope, then puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_;
  std::string old_;
};

// A fresh temporary directory, removed (with its files) at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/pg_symbolize_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)!system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void expect_first_static(const SymFrame& f, uintptr_t pc, int line) {
  EXPECT_EQ(f.pc, pc);
  EXPECT_EQ(std::string(f.module), self_exe());
  EXPECT_EQ(f.offset, pc - load_bias(""));
  EXPECT_NE(std::string(f.function).find("first_static_function"), std::string::npos) << f.function;
  EXPECT_TRUE(ends_with(f.file_line, "symbolize_test.cpp:" + std::to_string(line))) << f.file_line;
}

TEST(Symbolize, StaticFunctionOfThisBinaryWithAddr2line) {
  int line = 0;
  uintptr_t pc = first_static_function(&line);
  SymFrame f;
  symbolize_self(&pc, 1, &f, true);
  expect_first_static(f, pc, line);
}

TEST(Symbolize, LibcFunction) {
  uintptr_t pc = write_address();
  SymFrame f;
  symbolize_self(&pc, 1, &f, true);
  EXPECT_TRUE(ends_with(f.module, "libc.so.6")) << f.module;
  EXPECT_EQ(f.offset, pc - load_bias("libc.so.6"));
  EXPECT_NE(std::string(f.function).find("write"), std::string::npos) << f.function;
}

TEST(Symbolize, DladdrOnlyRunsNoChild) {
  int line = 0;
  uintptr_t pcs[2] = {first_static_function(&line), write_address()};
  SymFrame f[2];
  ChildCounter children;
  symbolize_self(pcs, 2, f, false);
  EXPECT_EQ(children.count(), 0);
  EXPECT_EQ(std::string(f[0].module), self_exe());
  EXPECT_EQ(f[0].offset, pcs[0] - load_bias(""));
  EXPECT_STREQ(f[0].file_line, "");
  EXPECT_TRUE(ends_with(f[1].module, "libc.so.6")) << f[1].module;
  EXPECT_EQ(f[1].offset, pcs[1] - load_bias("libc.so.6"));
  EXPECT_NE(std::string(f[1].function).find("write"), std::string::npos) << f[1].function;
  EXPECT_STREQ(f[1].file_line, "");
}

TEST(Symbolize, AddressInNoModule) {
  void* anon = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(anon, MAP_FAILED);
  uintptr_t pcs[3] = {16, reinterpret_cast<uintptr_t>(anon) + 8, UINTPTR_MAX - 15};
  SymFrame f[3];
  memset(f, 'x', sizeof f);
  symbolize_self(pcs, 3, f, true);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(f[i].pc, pcs[i]);
    EXPECT_EQ(f[i].offset, 0u);
    EXPECT_STREQ(f[i].function, "");
    EXPECT_STREQ(f[i].module, "");
    EXPECT_STREQ(f[i].file_line, "");
  }
  munmap(anon, 4096);
}

TEST(Symbolize, UnreadableModulesFailQuickly) {
  TempDir dir;
  std::string text = dir.path() + "/not_elf.so";
  std::ofstream(text) << "just some text\n";
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string modules[] = {"/nonexistent/libnothere.so", text, fifo, dir.path(), ""};
  uint64_t offsets[2] = {0x1000, 0x2000};
  int fds = open_fds();
  auto start = std::chrono::steady_clock::now();
  for (const std::string& m : modules) {
    SymFrame f[2];
    for (SymFrame& x : f) x.function[0] = x.file_line[0] = '\0';
    EXPECT_FALSE(symbolize_module(m.c_str(), offsets, 2, f)) << m;
    for (SymFrame& x : f) {
      EXPECT_STREQ(x.function, "") << m;
      EXPECT_STREQ(x.file_line, "") << m;
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(open_fds(), fds);
}

TEST(Symbolize, ModuleFillsOnlyWhatItKnows) {
  // Offset 0 of the test binary is its ELF header: addr2line says "??" and "??:0", so the fields
  // keep what the caller put there.
  std::string exe = self_exe();
  uint64_t offset = 0;
  SymFrame f;
  strcpy(f.function, "from_dladdr");
  strcpy(f.file_line, "");
  EXPECT_TRUE(symbolize_module(exe.c_str(), &offset, 1, &f));
  EXPECT_STREQ(f.function, "from_dladdr");
  EXPECT_STREQ(f.file_line, "");
}

TEST(Symbolize, BatchOfThousandAcrossModules) {
  int line1 = 0, line2 = 0;
  uintptr_t pc1 = first_static_function(&line1);
  uintptr_t pc2 = second_static_function(&line2);
  uintptr_t pc3 = write_address();
  constexpr size_t kN = 1000;
  std::vector<uintptr_t> pcs(kN);
  for (size_t i = 0; i < kN; ++i) pcs[i] = i % 3 == 0 ? pc1 : i % 3 == 1 ? pc3 : pc2;
  std::vector<SymFrame> f(kN);
  int fds = open_fds();
  ChildCounter children;
  symbolize_self(pcs.data(), kN, f.data(), true);
  // 667 frames of this binary, 333 of libc: 3 + 2 runs of at most 256 offsets (SIGCHLDs may merge).
  EXPECT_GE(children.count(), 1);
  EXPECT_LE(children.count(), 5);
  EXPECT_EQ(open_fds(), fds);
  for (size_t i = 0; i < kN; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(f[i].pc, pcs[i]);
    if (i % 3 == 0) {
      expect_first_static(f[i], pc1, line1);
    } else if (i % 3 == 1) {
      EXPECT_TRUE(ends_with(f[i].module, "libc.so.6")) << f[i].module;
      EXPECT_NE(std::string(f[i].function).find("write"), std::string::npos) << f[i].function;
    } else {
      EXPECT_NE(std::string(f[i].function).find("second_static_function"), std::string::npos)
          << f[i].function;
      EXPECT_TRUE(ends_with(f[i].file_line, "symbolize_test.cpp:" + std::to_string(line2)))
          << f[i].file_line;
    }
  }
}

// The child must not run under the preload nor see poolguard's options. With LD_PRELOAD naming a
// missing library and LD_DEBUG_OUTPUT set, a child that inherited the environment would still
// work (ld.so only complains on stderr) but would leave ld.so debug files behind.
TEST(Symbolize, ChildDoesNotInheritPreloadOrOptions) {
  TempDir dir;
  int line = 0;
  uintptr_t pc = first_static_function(&line);
  SymFrame f;
  {
    ScopedEnv preload("LD_PRELOAD", "/nonexistent/libpoolguard_missing.so");
    ScopedEnv debug("LD_DEBUG", "files");
    ScopedEnv debug_out("LD_DEBUG_OUTPUT", dir.path() + "/lddebug");
    ScopedEnv stats("POOLGUARD_STATS", "exit");
    symbolize_self(&pc, 1, &f, true);
  }
  expect_first_static(f, pc, line);
  DIR* d = opendir(dir.path().c_str());
  ASSERT_NE(d, nullptr);
  int files = 0;
  while (dirent* e = readdir(d)) files += e->d_name[0] != '.';
  closedir(d);
  EXPECT_EQ(files, 0) << "the child saw LD_DEBUG/LD_DEBUG_OUTPUT";
}

// A stand-in addr2line found first on PATH reports the environment and arguments it was given.
TEST(Symbolize, ChildEnvironmentAndArguments) {
  TempDir dir;
  std::string fake = dir.path() + "/addr2line";
  std::ofstream(fake) << "#!/bin/sh\n"
                         "[ \"$1 $2 $3\" = \"-f -C -e\" ] || exit 3\n"
                         "shift 4\n"
                         "for a in \"$@\"; do\n"
                         "  echo \"$a pre=${LD_PRELOAD:-none} pg=${POOLGUARD_STATS:-none} "
                         "lc=${LC_ALL:-none} path=$PATH\"\n"
                         "  echo \"fake.c:7 (discriminator 3)\"\n"
                         "done\n";
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);
  std::string exe = self_exe();
  uint64_t offsets[2] = {0x1234, 0xabcdef0123};
  SymFrame f[2];
  {
    ScopedEnv path("PATH", dir.path() + ":/usr/bin:/bin");
    ScopedEnv preload("LD_PRELOAD", "/nonexistent/libpoolguard_missing.so");
    ScopedEnv stats("POOLGUARD_STATS", "exit");
    ASSERT_TRUE(symbolize_module(exe.c_str(), offsets, 2, f));
  }
  const char* rest = " pre=none pg=none lc=C path=/usr/local/bin:/usr/bin:/bin";
  EXPECT_EQ(std::string(f[0].function), std::string("0x1234") + rest);
  EXPECT_EQ(std::string(f[1].function), std::string("0xabcdef0123") + rest);
  EXPECT_STREQ(f[0].file_line, "fake.c:7");
  EXPECT_STREQ(f[1].file_line, "fake.c:7");
}

// A child that exits while a process it started still holds the pipe: the answers are taken when
// the child is gone, without waiting for EOF (which comes only when the grandchild ends).
TEST(Symbolize, DoesNotWaitForGrandchildHoldingThePipe) {
  TempDir dir;
  std::string fake = dir.path() + "/addr2line";
  std::ofstream(fake) << "#!/bin/sh\n"
                         "echo held_function\n"
                         "echo held.c:9\n"
                         "sleep 10 &\n";
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);
  std::string exe = self_exe();
  uint64_t offset = 0x10;
  SymFrame f;
  auto start = std::chrono::steady_clock::now();
  {
    ScopedEnv path("PATH", dir.path() + ":/usr/bin:/bin");
    EXPECT_TRUE(symbolize_module(exe.c_str(), &offset, 1, &f));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
  EXPECT_STREQ(f.function, "held_function");
  EXPECT_STREQ(f.file_line, "held.c:9");
}

TEST(Symbolize, WorksWithSigchldIgnored) {
  struct sigaction ign = {}, old;
  ign.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &ign, &old);
  int line = 0;
  uintptr_t pc = first_static_function(&line);
  SymFrame f;
  symbolize_self(&pc, 1, &f, true);
  sigaction(SIGCHLD, &old, nullptr);
  expect_first_static(f, pc, line);
}

TEST(Symbolize, WorksWithStdioClosed) {
  int saved[3];
  for (int fd = 0; fd < 3; ++fd) saved[fd] = dup(fd);
  for (int fd = 0; fd < 3; ++fd) close(fd);
  int line = 0;
  uintptr_t pc = first_static_function(&line);
  SymFrame f;
  symbolize_self(&pc, 1, &f, true);
  for (int fd = 0; fd < 3; ++fd) {
    dup2(saved[fd], fd);
    close(saved[fd]);
  }
  expect_first_static(f, pc, line);
}

TEST(Symbolize, KeepsErrno) {
  int line = 0;
  uintptr_t pc = first_static_function(&line);
  SymFrame f;
  errno = EDOM;
  symbolize_self(&pc, 1, &f, true);
  EXPECT_EQ(errno, EDOM);
  errno = ERANGE;
  uint64_t offset = 0;
  symbolize_module("/nonexistent", &offset, 1, &f);
  EXPECT_EQ(errno, ERANGE);
}

}  // namespace
}  // namespace pg
