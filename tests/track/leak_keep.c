// Blocks that are still reachable at exit, each held by one kind of root only, for
// tests/track/leak_ten_test.sh: none of them may be reported as a leak.
//   keep_global    a global variable
//   keep_tls       a thread-local variable of the main thread
//   keep_local     a local of a function still on the stack when exit() runs
//   keep_register  a callee-saved register (x86-64: rbx) of that function across the exit() call
// Prints "done" and exits 0 through exit() from keep_local's frame.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void* volatile g_global;
__thread void* volatile t_tls;

__attribute__((noinline)) void* keep_global(void) {
  return malloc(101);
}
__attribute__((noinline)) void* keep_tls(void) {
  return malloc(102);
}
__attribute__((noinline)) void* keep_local(void) {
  return malloc(103);
}
__attribute__((noinline)) void* keep_register(void) {
  return malloc(104);
}

// Not declared noreturn, so that the caller keeps its register live across the call.
__attribute__((noinline)) void end_here(void) {
  puts("done");
  exit(0);
}

__attribute__((noinline)) void hold_and_exit(void) {
  void* volatile local = keep_local();
#if defined(__x86_64__)
  register void* reg asm("rbx") = keep_register();
  asm volatile("" : "+r"(reg));
  end_here();
  asm volatile("" : : "r"(reg));
#else
  void* volatile reg = keep_register();
  end_here();
#endif
  (void)local;
}

int main(void) {
  g_global = keep_global();
  t_tls = keep_tls();
  hold_and_exit();
  return 1;
}
