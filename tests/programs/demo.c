// Demo workload for scripts/run.sh: the object-heavy allocation pattern poolguard is built for.
// Two threads each count words in a generated text with a chained hash table of small strings,
// drop the rare words, and build a report string that grows by realloc. The main thread merges
// the tables (freeing blocks the workers allocated) and prints a short, deterministic result.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kThreads = 2, kWordsPerThread = 300000 };

typedef struct Entry {
  struct Entry* next;
  char* word;
  unsigned long count;
} Entry;

typedef struct {
  Entry** buckets;
  size_t nbuckets;
  size_t size;
} Table;

typedef struct {
  uint64_t seed;
  Table table;
  char* report;  // the most frequent words, grown with realloc
  size_t report_len;
  unsigned long dropped;
} Work;

static void die(const char* what) {
  fprintf(stderr, "pg_demo: %s failed\n", what);
  exit(1);
}

static void* xmalloc(size_t n) {
  void* p = malloc(n);
  if (p == NULL) die("malloc");
  return p;
}

static uint64_t next_random(uint64_t* s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s >> 33;
}

static uint64_t hash_string(const char* s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (; *s != '\0'; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

// Words of 1..7 letters from a small alphabet, skewed towards short ones so that many repeat.
static char* make_word(uint64_t* s) {
  size_t len = 1 + next_random(s) % 4 + next_random(s) % 4;
  char* w = xmalloc(len + 1);
  for (size_t i = 0; i < len; i++) w[i] = (char)('a' + next_random(s) % 9);
  w[len] = '\0';
  return w;
}

static void table_grow(Table* t) {
  size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
  Entry** b = calloc(n, sizeof *b);
  if (b == NULL) die("calloc");
  for (size_t i = 0; i < t->nbuckets; i++) {
    for (Entry* e = t->buckets[i]; e != NULL;) {
      Entry* next = e->next;
      size_t j = hash_string(e->word) & (n - 1);
      e->next = b[j];
      b[j] = e;
      e = next;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
}

// Takes ownership of word (frees it when the word is already present).
static void table_add(Table* t, char* word, unsigned long count) {
  if (t->size >= t->nbuckets) table_grow(t);
  size_t j = hash_string(word) & (t->nbuckets - 1);
  for (Entry* e = t->buckets[j]; e != NULL; e = e->next) {
    if (strcmp(e->word, word) == 0) {
      e->count += count;
      free(word);
      return;
    }
  }
  Entry* e = xmalloc(sizeof *e);
  e->word = word;
  e->count = count;
  e->next = t->buckets[j];
  t->buckets[j] = e;
  t->size++;
}

// Removes and frees the entries seen fewer than min_count times; returns how many went.
static unsigned long table_drop_rare(Table* t, unsigned long min_count) {
  unsigned long dropped = 0;
  for (size_t i = 0; i < t->nbuckets; i++) {
    Entry** link = &t->buckets[i];
    while (*link != NULL) {
      Entry* e = *link;
      if (e->count < min_count) {
        *link = e->next;
        free(e->word);
        free(e);
        t->size--;
        dropped++;
      } else {
        link = &e->next;
      }
    }
  }
  return dropped;
}

static void append(Work* w, const char* s) {
  size_t n = strlen(s);
  char* r = realloc(w->report, w->report_len + n + 1);  // grows a little at a time, on purpose
  if (r == NULL) die("realloc");
  memcpy(r + w->report_len, s, n + 1);
  w->report = r;
  w->report_len += n;
}

static void* worker(void* arg) {
  Work* w = arg;
  for (int i = 0; i < kWordsPerThread; i++) table_add(&w->table, make_word(&w->seed), 1);
  w->dropped = table_drop_rare(&w->table, 3);
  char line[64];
  for (size_t i = 0; i < w->table.nbuckets; i++) {
    for (Entry* e = w->table.buckets[i]; e != NULL; e = e->next) {
      if (e->count >= 1000) {
        snprintf(line, sizeof line, "%s=%lu ", e->word, e->count);
        append(w, line);
      }
    }
  }
  return NULL;
}

int main(void) {
  Work work[kThreads];
  pthread_t threads[kThreads];
  memset(work, 0, sizeof work);
  for (int i = 0; i < kThreads; i++) {
    work[i].seed = 12345 + (uint64_t)i;
    if (pthread_create(&threads[i], NULL, worker, &work[i]) != 0) die("pthread_create");
  }

  Table merged = {0};
  unsigned long dropped = 0;
  size_t report_bytes = 0;
  for (int i = 0; i < kThreads; i++) {
    if (pthread_join(threads[i], NULL) != 0) die("pthread_join");
    Table* t = &work[i].table;
    for (size_t b = 0; b < t->nbuckets; b++) {
      for (Entry* e = t->buckets[b]; e != NULL;) {
        Entry* next = e->next;
        table_add(&merged, strdup(e->word), e->count);
        free(e->word);  // cross-thread frees: the worker allocated these
        free(e);
        e = next;
      }
    }
    free(t->buckets);
    dropped += work[i].dropped;
    report_bytes += work[i].report_len;
    free(work[i].report);
  }

  unsigned long total = 0;
  const Entry* top = NULL;
  for (size_t b = 0; b < merged.nbuckets; b++) {
    for (const Entry* e = merged.buckets[b]; e != NULL; e = e->next) {
      total += e->count;
      if (top == NULL || e->count > top->count ||
          (e->count == top->count && strcmp(e->word, top->word) < 0)) {
        top = e;
      }
    }
  }
  printf("pg_demo: %d threads, %d words each: %zu distinct kept (%lu rare dropped), %lu counted\n",
         kThreads, kWordsPerThread, merged.size, dropped, total);
  printf("pg_demo: most frequent \"%s\" x%lu; frequent-word reports %zu bytes\n",
         top ? top->word : "", top ? top->count : 0UL, report_bytes);

  table_drop_rare(&merged, (unsigned long)-1);  // frees everything
  free(merged.buckets);
  return 0;
}
