/* A vfork child closing every descriptor above stderr before it exits, as CPython's subprocess
 * and posix_spawn do before exec: the child shares the parent's memory but not its descriptor
 * table, so the parent must go on walking stacks (its libunwind pipe is still open). The parent
 * then leaks one block from leak_after_vfork(), which the leak report must name. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void* volatile sink;

__attribute__((noinline)) void leak_after_vfork(void) {
  char* p = malloc(1000);
  memset(p, 7, 1000);
  sink = p;
  sink = NULL;
}

int main(void) {
  /* A walk first, so that libunwind's pipe is open before the child closes its copy. */
  free(malloc(64));
  pid_t child = vfork();
  if (child == 0) {
    closefrom(3);
    _exit(0);
  }
  if (child < 0) {
    perror("vfork");
    return 2;
  }
  int status;
  waitpid(child, &status, 0);
  leak_after_vfork();
  puts("done");
  return 0;
}
