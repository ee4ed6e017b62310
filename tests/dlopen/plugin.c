// A library loaded and unloaded at run time: it allocates in its constructor, hands out memory
// that outlives it, and frees its own state in its destructor.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char** table;
static int table_len;

__attribute__((constructor)) static void plugin_init(void) {
  table_len = 1000;
  table = calloc((size_t)table_len, sizeof *table);
  for (int i = 0; i < table_len; i++) {
    char buf[32];
    snprintf(buf, sizeof buf, "entry-%d", i);
    table[i] = strdup(buf);
  }
}

__attribute__((destructor)) static void plugin_fini(void) {
  for (int i = 0; i < table_len; i++) free(table[i]);
  free(table);
}

// Returns a malloc'ed copy of entry i followed by a suffix: the caller frees it, maybe after
// dlclose.
char* plugin_make(int i, const char* suffix) {
  const char* e = table[i % table_len];
  size_t n = strlen(e) + strlen(suffix) + 1;
  char* s = malloc(n);
  snprintf(s, n, "%s%s", e, suffix);
  return s;
}
