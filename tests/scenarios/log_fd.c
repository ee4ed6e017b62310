// Scenario 11: where poolguard's log records go. The program re-runs itself with
// POOLGUARD_LIMIT=4M and POOLGUARD_LOG=DIR/pg.%p.log; that child allocates over the limit (a
// limit-exceeded record), closes every descriptor from 3 up (closefrom), opens its own data
// files, allocates over the limit again and from call sites it has not used before (stack walks
// meet uncached frames), and writes its data. The data files must hold exactly
// the program's data (before 82c0936 the second record landed in the file that took the log's
// old descriptor number) and the log both records. Then, as root, POOLGUARD_LOG naming a symbolic
// link that another user (nobody) planted, another user's file, or a file with a second hard link
// must leave those files untouched (the records go to stderr instead).
//
// Without poolguard (the plain glibc run) nothing limits the child: the data files are checked
// and no log may appear.
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "scenario.h"

extern char** environ;

// Twice POOLGUARD_LIMIT, which leaves the child's own allocations (a pool per size class on two
// threads) well clear of it: only these requests are refused.
#define OVER_LIMIT ((size_t)8 << 20)
enum { kDataFiles = 3, kDataLines = 200 };

// Formats a path into the array buf; fails if it does not fit.
#define PATH_FORMAT(buf, ...) \
  SCEN_CHECK(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf, "path too long: %s", buf)

static void data_line(char* buf, size_t size, int file, int line) {
  snprintf(buf, size, "data file %d line %d: the program's own bytes\n", file, line);
}

// One allocation over the limit: refused under poolguard (ON_LIMIT=null), with a record.
static void over_limit(int expect_refusal) {
  volatile size_t n = OVER_LIMIT;
  errno = 0;
  void* p = malloc(n);
  if (expect_refusal) {
    SCEN_CHECK(p == NULL && errno == ENOMEM, "malloc(8 MiB) over POOLGUARD_LIMIT=4M: %p, errno %d",
               p, errno);
  }
  free(p);
}

// Allocations from call sites this program has not used before, on this thread and on a new one:
// poolguard's stack walks (guard and tracked modes) meet frames libunwind has not cached, which
// is when libunwind checks memory through its pipe, whose descriptors closefrom() has closed
// (before db820f7 libunwind's bytes landed in the data files opened since).
static void* __attribute__((noinline)) site_a(size_t n) {
  return malloc(n);
}
static void* __attribute__((noinline)) site_b(const char* s) {
  return strdup(s);
}
static int compare(const void* a, const void* b) {
  void* p = malloc(24);  // from inside qsort: frames of libc
  free(p);
  return *(const int*)a - *(const int*)b;
}
static void* thread_sites(void* arg) {
  (void)arg;
  for (int i = 0; i < 50; ++i) free(site_a(16 + (size_t)i * 40));
  return NULL;
}
static void new_call_sites(void) {
  for (int i = 0; i < 50; ++i) free(site_a(32 + (size_t)i * 64));
  for (int i = 0; i < 50; ++i) free(site_b("a string copied by libc"));
  int v[64];
  for (int i = 0; i < 64; ++i) v[i] = (i * 37) % 64;
  qsort(v, 64, sizeof v[0], compare);
  pthread_t t;
  SCEN_CHECK(pthread_create(&t, NULL, thread_sites, NULL) == 0, "pthread_create");
  SCEN_CHECK(pthread_join(t, NULL) == 0, "pthread_join");
}

// The child's work for the descriptor check (argv: child DIR data|data-high). "data" closes its
// descriptors with closefrom(3); "data-high" closes them one by one with close() and then puts
// its data files at every number from 100 to 131 with dup2(), where a library that keeps a
// descriptor out of the program's way would put it (poolguard puts libunwind's pipe there).
static int child_data(const char* dir, int poolguard, int high) {
  over_limit(poolguard);  // the first record: the log opened (and, before the fix, kept) as fd 3
  if (high) {
    for (int fd = 3; fd < 1024; ++fd) close(fd);
  } else {
    closefrom(3);
  }
  int fds[kDataFiles];
  for (int f = 0; f < kDataFiles; ++f) {
    char path[512];
    PATH_FORMAT(path, "%s/data%d", dir, f);
    fds[f] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    SCEN_CHECK(fds[f] >= 0, "child: open(%s): %m", path);
  }
  if (high) {
    for (int fd = 100; fd < 132; ++fd) {
      SCEN_CHECK(dup2(fds[fd % kDataFiles], fd) == fd, "child: dup2(%d): %m", fd);
    }
  }
  over_limit(poolguard);  // the second record: must go to the log, not to fds[0]
  new_call_sites();
  for (int line = 0; line < kDataLines; ++line) {
    for (int f = 0; f < kDataFiles; ++f) {
      char buf[128];
      data_line(buf, sizeof buf, f, line);
      scen_write_all(fds[f], buf, strlen(buf));
    }
    if (line == kDataLines / 2) over_limit(poolguard);  // the third, amid the program's writes
  }
  for (int f = 0; f < kDataFiles; ++f) SCEN_CHECK(close(fds[f]) == 0, "child: close: %m");
  if (high) {
    // Before the unwinder learnt of the program's closes, libunwind met a data file where its
    // pipe had been, closed it (descriptors 100 and 101) and opened a new pipe among the
    // program's numbers.
    for (int fd = 100; fd < 132; ++fd) {
      SCEN_CHECK(close(fd) == 0, "child: descriptor %d closed behind the program's back", fd);
    }
  }
  return 0;
}

// Runs this program as a child with POOLGUARD_LIMIT=4M and POOLGUARD_LOG=log, args child DIR
// MODE, stderr to err_path (or inherited when NULL), and descriptors 0-2 plus `extra` more
// (/dev/null, inherited as from a harness that leaves its own files open: ctest does). Which
// numbers are free decides which numbers whatever the child opens gets. Returns the child's pid
// after it exited 0.
static pid_t run_child(const char* self, const char* dir, const char* mode, const char* log,
                       const char* err_path, int extra) {
  static char* env[512];
  int n = 0;
  for (char** e = environ; *e != NULL && n < 500; ++e) {
    if (strncmp(*e, "POOLGUARD_LIMIT=", 16) != 0 && strncmp(*e, "POOLGUARD_LOG=", 14) != 0) {
      env[n++] = *e;
    }
  }
  static char limit_var[] = "POOLGUARD_LIMIT=4M";
  static char log_var[600];
  snprintf(log_var, sizeof log_var, "POOLGUARD_LOG=%s", log);
  env[n++] = limit_var;
  env[n++] = log_var;
  env[n] = NULL;
  fflush(NULL);
  pid_t pid = fork();
  SCEN_CHECK(pid >= 0, "fork: %m");
  if (pid == 0) {
    if (err_path != NULL) {
      int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || dup2(fd, 2) < 0) _exit(120);
      close(fd);
    }
    closefrom(3);
    for (int i = 0; i < extra; ++i) {
      if (open("/dev/null", O_RDONLY) < 0) _exit(122);
    }
    char* argv[] = {(char*)self, (char*)"child", (char*)dir, (char*)mode, NULL};
    execve("/proc/self/exe", argv, env);
    _exit(121);
  }
  char what[64];
  snprintf(what, sizeof what, "child (%s, %d descriptors inherited)", mode, 3 + extra);
  scen_expect_exit(scen_wait_child(pid, 60, what), 0, what);
  return pid;
}

// The whole content of path (malloc'ed, NUL-terminated), or NULL if it does not exist.
static char* slurp(const char* path, size_t* size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    SCEN_CHECK(errno == ENOENT, "open(%s): %m", path);
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char* buf = malloc(cap + 1);
  SCEN_CHECK(buf != NULL, "malloc failed");
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
      SCEN_CHECK(buf != NULL, "realloc failed");
    }
    ssize_t r = read(fd, buf + n, cap - n);
    SCEN_CHECK(r >= 0, "read(%s): %m", path);
    if (r == 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  *size = n;
  return buf;
}

static int count_lines_with(const char* text, const char* needle) {
  int count = 0;
  for (const char* p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle)) ++count;
  return count;
}

// The sum of the numbers after each occurrence of `key` (such as "\"suppressed\":").
static long sum_after(const char* text, const char* key) {
  long sum = 0;
  for (const char* p = text; (p = strstr(p, key)) != NULL; p += strlen(key)) {
    sum += strtol(p + strlen(key), NULL, 10);
  }
  return sum;
}

static void check_data_files(const char* dir) {
  for (int f = 0; f < kDataFiles; ++f) {
    char path[512];
    PATH_FORMAT(path, "%s/data%d", dir, f);
    size_t size;
    char* got = slurp(path, &size);
    SCEN_CHECK(got != NULL, "%s missing", path);
    size_t at = 0;
    for (int line = 0; line < kDataLines; ++line) {
      char want[128];
      data_line(want, sizeof want, f, line);
      size_t len = strlen(want);
      if (at + len > size || memcmp(got + at, want, len) != 0) {
        SCEN_FAIL("%s: line %d is not the program's: '%.100s'", path, line + 1, got + at);
      }
      at += len;
    }
    SCEN_CHECK(at == size, "%s: %zu bytes more than the program wrote: '%.100s'", path, size - at,
               got + at);
    free(got);
    unlink(path);
  }
}

static void descriptor_check(const char* self, const char* dir, int poolguard, int extra,
                             const char* how) {
  char log[512];
  PATH_FORMAT(log, "%s/pg.%%p.log", dir);
  pid_t pid = run_child(self, dir, how, log, NULL, extra);
  check_data_files(dir);
  PATH_FORMAT(log, "%s/pg.%d.log", dir, (int)pid);
  size_t size;
  char* text = slurp(log, &size);
  if (!poolguard) {
    SCEN_CHECK(text == NULL, "a log %s without poolguard", log);
    scen_note("descriptors (%d inherited, %s): data files intact (no poolguard: no log)", 3 + extra,
              how);
    return;
  }
  SCEN_CHECK(text != NULL, "no log at %s", log);
  int records = count_lines_with(text, "poolguard: limit-exceeded {");
  // Three refusals, each with its record, or counted as a repeat of the one before when the
  // compiler merged two of the calls into one (same stack): in a later record's "suppressed" or
  // in the log-suppressed record at exit. Before this was checked, the tracked modes logged two
  // records for one refusal.
  long folded = sum_after(text, "\"suppressed\":") + sum_after(text, "\"count\":");
  SCEN_CHECK(records >= 1 && records + folded == 3,
             "%s holds %d limit-exceeded records and %ld folded, expected 3 in all:\n%.2000s", log,
             records, folded, text);
  free(text);
  unlink(log);
  scen_note("descriptors (%d inherited, %s): data files intact, %d records in the log (%ld folded)",
            3 + extra, how, records, folded);
}

// POOLGUARD_LOG naming a path poolguard must not write: `victim` stays as it was and the
// records go to the child's stderr.
static void refused_log(const char* self, const char* dir, const char* log, const char* victim,
                        const char* what) {
  char err[512];
  PATH_FORMAT(err, "%s/stderr", dir);
  struct stat before;
  SCEN_CHECK(stat(victim, &before) == 0, "stat(%s): %m", victim);
  run_child(self, dir, "over", log, err, 0);
  struct stat after;
  SCEN_CHECK(stat(victim, &after) == 0, "stat(%s): %m", victim);
  SCEN_CHECK(after.st_size == before.st_size, "%s: %s grew from %lld to %lld bytes", what, victim,
             (long long)before.st_size, (long long)after.st_size);
  size_t size;
  char* text = slurp(err, &size);
  SCEN_CHECK(text != NULL && count_lines_with(text, "poolguard: limit-exceeded {") >= 2,
             "%s: the records did not go to stderr instead:\n%.1000s", what, text ? text : "");
  free(text);
  unlink(err);
  scen_note("%s: not written, records on stderr", what);
}

static void hostile_paths(const char* self, const char* dir) {
  char target[512], link_path[512], other[512], victim[512], second[512];
  PATH_FORMAT(target, "%s/target", dir);
  PATH_FORMAT(link_path, "%s/link", dir);
  PATH_FORMAT(other, "%s/other.log", dir);
  PATH_FORMAT(victim, "%s/victim", dir);
  PATH_FORMAT(second, "%s/second-name.log", dir);

  // A file with a second hard link (any user can make one to a file they can see).
  int fd = open(victim, O_WRONLY | O_CREAT | O_EXCL, 0600);
  SCEN_CHECK(fd >= 0, "create %s: %m", victim);
  close(fd);
  SCEN_CHECK(link(victim, second) == 0, "link: %m");
  refused_log(self, dir, second, victim, "a file with two links");

  if (geteuid() != 0) {
    scen_note("not root: the other user's symbolic link and file are skipped");
    return;
  }
  // A symbolic link that belongs to another user (nobody), pointing at a file of ours.
  fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);
  SCEN_CHECK(fd >= 0, "create %s: %m", target);
  close(fd);
  SCEN_CHECK(symlink(target, link_path) == 0, "symlink: %m");
  SCEN_CHECK(lchown(link_path, 65534, 65534) == 0, "lchown(%s, nobody): %m", link_path);
  refused_log(self, dir, link_path, target, "another user's symbolic link");
  // Another user's regular file.
  fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0644);
  SCEN_CHECK(fd >= 0, "create %s: %m", other);
  close(fd);
  SCEN_CHECK(chown(other, 65534, 65534) == 0, "chown(%s, nobody): %m", other);
  refused_log(self, dir, other, other, "another user's file");
}

static void remove_dir(const char* dir) {
  static const char* names[] = {"target",          "link",  "other.log", "victim",
                                "second-name.log", "stderr"};
  for (size_t i = 0; i < sizeof names / sizeof *names; ++i) {
    char path[512];
    PATH_FORMAT(path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  SCEN_CHECK(rmdir(dir) == 0, "rmdir(%s): %m (files left behind?)", dir);
}

int main(int argc, char** argv) {
  int poolguard = scen_under_poolguard();
  if (argc == 4 && strcmp(argv[1], "child") == 0) {
    if (strcmp(argv[3], "data") == 0) return child_data(argv[2], poolguard, 0);
    if (strcmp(argv[3], "data-high") == 0) return child_data(argv[2], poolguard, 1);
    over_limit(poolguard);
    over_limit(poolguard);
    return 0;
  }
  const char* tmp = getenv("TMPDIR");
  char dir[512];
  PATH_FORMAT(dir, "%s/pg-scen-log.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
  SCEN_CHECK(mkdtemp(dir) != NULL, "mkdtemp(%s): %m", dir);
  // The child starts with 3 and with 4 descriptors: a descriptor the allocator (or a library it
  // uses) keeps across the program's closefrom() can then be any of the numbers the program and
  // the allocator open afterwards.
  descriptor_check(argv[0], dir, poolguard, 0, "data");
  descriptor_check(argv[0], dir, poolguard, 1, "data");
  descriptor_check(argv[0], dir, poolguard, 0, "data-high");
  if (poolguard) {
    hostile_paths(argv[0], dir);
  } else {
    scen_note("no poolguard: the refused log paths are not checked");
  }
  remove_dir(dir);
  scen_note("ok");
  return 0;
}
