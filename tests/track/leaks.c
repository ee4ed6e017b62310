// A program that leaks known blocks from known functions, for the leak report's tests
// (tests/track/leaks_test.sh). Built with -O0 -g -fno-builtin so that every malloc stays and
// every frame has line information.
//
//   direct      leak_direct: 4 blocks of 100 bytes, pointers dropped
//   cycle       leak_cycle: two 48-byte nodes pointing at each other, nothing else at them
//               (one is reported direct, the other indirect, both from leak_cycle)
//   tree        leak_tree_root: a 32-byte root (direct) holding three 200-byte children
//               allocated in leak_tree_child (indirect: only the leaked root points at them)
//   large       leak_large: one 100000-byte block (glibc serves it with mmap)
//   thread      leak_on_thread: 64 bytes allocated by a second thread that then exits
//   reachable   keep_global: a 1000-byte block held by a global, pointing at a 500-byte block
//               from keep_child, and a 300-byte block held only by a thread that is still
//               running at exit (keep_on_thread): none of them is a leak.
// Exits 0 after printing "done" (buffered stdout: POOLGUARD_LEAKS_EXIT_CODE must not lose it).
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct node {
  struct node* next;
  char payload[40];
};

void* volatile g_keep;  // reachable from the data segment

__attribute__((noinline)) void leak_direct(void) {
  for (int i = 0; i < 4; ++i) {
    char* p = malloc(100);
    memset(p, 1, 100);
  }
}

__attribute__((noinline)) void leak_cycle(void) {
  struct node* a = malloc(sizeof *a);
  struct node* b = malloc(sizeof *b);
  a->next = b;
  b->next = a;
}

__attribute__((noinline)) void* leak_tree_child(void) {
  void* c = malloc(200);
  memset(c, 2, 200);
  return c;
}

__attribute__((noinline)) void leak_tree_root(void) {
  void** root = malloc(32);
  memset(root, 0, 32);
  for (int i = 0; i < 3; ++i) root[i] = leak_tree_child();
}

__attribute__((noinline)) void leak_large(void) {
  char* p = malloc(100000);
  memset(p, 3, 100000);
}

__attribute__((noinline)) void* keep_child(void) {
  return malloc(500);
}

__attribute__((noinline)) void keep_global(void) {
  void** p = malloc(1000);
  memset(p, 0, 1000);
  p[5] = keep_child();
  g_keep = p;
}

__attribute__((noinline)) void leak_on_thread(void) {
  char* p = malloc(64);
  memset(p, 4, 64);
}

__attribute__((noinline)) void scrub_stack(void);

void* thread_main(void* arg) {
  (void)arg;
  leak_on_thread();
  return NULL;
}

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_ready;

__attribute__((noinline)) void* keep_on_thread(void* arg) {
  (void)arg;
  void* volatile mine = malloc(300);  // on this thread's stack only
  pthread_mutex_lock(&g_lock);
  g_ready = 1;
  pthread_cond_signal(&g_cond);
  pthread_mutex_unlock(&g_lock);
  for (;;) pause();  // still running when the process exits
  return (void*)mine;
}

// Overwrites the stack below main's frame, where the leaking functions' locals were.
__attribute__((noinline)) void scrub_stack(void) {
  volatile char junk[16384];
  memset((char*)junk, 0, sizeof junk);
}

int main(void) {
  leak_direct();
  leak_cycle();
  leak_tree_root();
  leak_large();
  keep_global();
  // On a stack of its own, unmapped once it has ended: glibc would otherwise cache the stack and
  // give it to the next thread, whose scan could find a stale copy of the leaked pointer there.
  size_t stack_size = 1 << 20;
  void* stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, stack_size);
  pthread_t t;
  pthread_create(&t, &attr, thread_main, NULL);
  pthread_join(t, NULL);
  pthread_attr_destroy(&attr);
  munmap(stack, stack_size);
  pthread_t keeper;
  pthread_create(&keeper, NULL, keep_on_thread, NULL);
  pthread_mutex_lock(&g_lock);
  while (!g_ready) pthread_cond_wait(&g_cond, &g_lock);
  pthread_mutex_unlock(&g_lock);
  scrub_stack();
  printf("done\n");
  return 0;
}
