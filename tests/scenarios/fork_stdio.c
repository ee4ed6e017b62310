// Scenario 2: fork() while stdio is busy. One thread loops fopen/fprintf/fflush(NULL)/fclose (the
// stdio list lock, then each FILE's lock), two threads read a file with getline() (which mallocs
// and reallocs with the FILE's lock held) and allocate; the main thread forks a few hundred times.
// glibc's fork takes the stdio list lock and its malloc locks after the atfork handlers ran: an
// allocator that takes its own locks in the prepare handler without regard to that order
// deadlocks here (poolguard did before 82c0936). Children use stdio and malloc, then _exit(0).
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "scenario.h"

enum {
  kMinForks = 40,  // then up to kMaxForks, for up to kSeconds
  kMaxForks = 200,
  kSeconds = 2,
  kLines = 100,
};

static atomic_int g_stop;
static char g_dir[] = "/tmp/pg-scen-stdio.XXXXXX";
static char g_input[64];
static char g_output[64];
static size_t g_input_bytes;

// Line i of the input: its number, then filler up to a length between 1 and ~700 bytes, so
// that getline's buffer grows through pooled and large sizes.
static size_t line_length(int i) {
  return 8 + (size_t)((i * 97) % 700);
}

static void write_input(void) {
  FILE* f = fopen(g_input, "w");
  SCEN_CHECK(f != NULL, "fopen(%s): %m", g_input);
  for (int i = 0; i < kLines; ++i) {
    fprintf(f, "%06d ", i);
    for (size_t k = 7; k < line_length(i); ++k) fputc('a' + (int)((k + (size_t)i) % 26), f);
    fputc('\n', f);
    g_input_bytes += line_length(i) + 1;
  }
  SCEN_CHECK(fclose(f) == 0, "fclose: %m");
}

static void* writer(void* arg) {
  (void)arg;
  int round = 0;
  while (!atomic_load(&g_stop)) {
    FILE* f = fopen(g_output, "w");
    SCEN_CHECK(f != NULL, "writer: fopen(%s): %m", g_output);
    for (int i = 0; i < 20; ++i) fprintf(f, "round %d line %d %s\n", round, i, "payload");
    fflush(NULL);  // every open FILE: the list lock, then each FILE's lock in turn
    SCEN_CHECK(fclose(f) == 0, "writer: fclose: %m");
    ++round;
  }
  return NULL;
}

static void* reader(void* arg) {
  uint64_t rng = 7 + (uint64_t)(intptr_t)arg;
  while (!atomic_load(&g_stop)) {
    FILE* f = fopen(g_input, "r");
    SCEN_CHECK(f != NULL, "reader: fopen(%s): %m", g_input);
    size_t total = 0;
    int count = 0;
    for (;;) {
      char* line = NULL;  // a fresh buffer each time: getline mallocs under the FILE's lock
      size_t cap = 0;
      ssize_t n = getline(&line, &cap, f);
      if (n < 0) {
        free(line);
        break;
      }
      SCEN_CHECK((size_t)n == line_length(count) + 1, "reader: line %d has %zd bytes, want %zu",
                 count, n, line_length(count) + 1);
      SCEN_CHECK(atoi(line) == count, "reader: line %d starts with '%.6s'", count, line);
      total += (size_t)n;
      ++count;
      free(line);
      void* p = malloc(scen_mixed_size(&rng));
      SCEN_CHECK(p != NULL, "reader: malloc failed");
      free(p);
    }
    SCEN_CHECK(count == kLines && total == g_input_bytes, "reader: %d lines, %zu bytes", count,
               total);
    SCEN_CHECK(fclose(f) == 0, "reader: fclose: %m");
  }
  return NULL;
}

// In the child: stdio and malloc must work whatever the parent's threads were doing.
static void child(int round) {
  char* text = NULL;
  size_t size = 0;
  FILE* mem = open_memstream(&text, &size);  // a FILE whose buffer is malloc'ed and realloc'ed
  SCEN_CHECK(mem != NULL, "child: open_memstream: %m");
  for (int i = 0; i < 100; ++i) fprintf(mem, "child %d line %d\n", round, i);
  SCEN_CHECK(fclose(mem) == 0, "child: fclose(memstream): %m");
  SCEN_CHECK(text != NULL && size > 1000, "child: memstream holds %zu bytes", size);
  free(text);
  FILE* f = fopen(g_input, "r");
  SCEN_CHECK(f != NULL, "child: fopen(%s): %m", g_input);
  char* line = NULL;
  size_t cap = 0;
  int count = 0;
  while (getline(&line, &cap, f) >= 0) ++count;
  free(line);
  fclose(f);
  SCEN_CHECK(count == kLines, "child: read %d lines, want %d", count, kLines);
  fflush(NULL);
  _exit(0);
}

int main(void) {
  SCEN_CHECK(mkdtemp(g_dir) != NULL, "mkdtemp: %m");
  snprintf(g_input, sizeof g_input, "%s/input", g_dir);
  snprintf(g_output, sizeof g_output, "%s/output", g_dir);
  write_input();
  pthread_t threads[3];
  int rc = pthread_create(&threads[0], NULL, writer, NULL);
  SCEN_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
  for (int i = 1; i < 3; ++i) {
    rc = pthread_create(&threads[i], NULL, reader, (void*)(intptr_t)i);
    SCEN_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
  }
  double start = scen_now();
  int round = 0;
  for (; scen_more(round, kMinForks, kMaxForks, start, kSeconds); ++round) {
    pid_t pid = fork();
    SCEN_CHECK(pid >= 0, "fork: %m");
    if (pid == 0) child(round);
    char what[64];
    snprintf(what, sizeof what, "child %d", round);
    scen_expect_exit(scen_wait_child(pid, 60, what), 0, what);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 3; ++i) pthread_join(threads[i], NULL);
  unlink(g_input);
  unlink(g_output);
  rmdir(g_dir);
  scen_note("ok: %d forks while stdio was busy in 3 threads", round);
  return 0;
}
