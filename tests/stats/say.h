/* The answers of the stats tests' driven programs (hold.c, ramp.c): whole lines on stdout with
 * write(2), never stdio, whose buffer would be an allocation the tests do not expect. */
#ifndef PG_TESTS_STATS_SAY_H
#define PG_TESTS_STATS_SAY_H

#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static void say(const char* text) {
  size_t len = strlen(text);
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, text, len);
    if (n <= 0) _exit(3);
    text += n;
    len -= (size_t)n;
  }
}

/* "WORD N\n" (snprintf into a stack buffer: no allocation). */
static void say_number(const char* word, long n) {
  char line[64];
  snprintf(line, sizeof line, "%s %ld\n", word, n);
  say(line);
}

#endif
