// Loads the plugin again and again (with threads calling into it), frees what it returned after
// unloading it, and prints a checksum that must not depend on the allocator.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef char* (*make_fn)(int, const char*);

struct job {
  make_fn make;
  char* out[200];
};

static void* worker(void* arg) {
  struct job* j = arg;
  for (int i = 0; i < 200; i++) j->out[i] = j->make(i * 7, "-thread");
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
    return 2;
  }
  unsigned long sum = 0;
  for (int round = 0; round < 50; round++) {
    void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      return 1;
    }
    make_fn make = (make_fn)dlsym(h, "plugin_make");
    if (make == NULL) return 1;
    struct job jobs[2] = {{make, {0}}, {make, {0}}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, &jobs[i]);
    char* mine[100];
    for (int i = 0; i < 100; i++) mine[i] = make(i + round, "-main");
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    if (dlclose(h) != 0) return 1;
    // The memory outlives the library that allocated it.
    for (int i = 0; i < 100; i++) {
      for (const char* c = mine[i]; *c; c++) sum = sum * 31 + (unsigned char)*c;
      free(mine[i]);
    }
    for (int k = 0; k < 2; k++)
      for (int i = 0; i < 200; i++) {
        sum += strlen(jobs[k].out[i]);
        free(jobs[k].out[i]);
      }
  }
  printf("dlopen rounds 50 checksum %lu\n", sum);
  return 0;
}
