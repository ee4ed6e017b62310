// pg_options: prints poolguard's runtime options from the one table that defines them
// (base/options.inc): `--markdown` writes docs/OPTIONS.md's table, `--man` the list of the man
// page's ENVIRONMENT section, `--help` the help text, and `--check NAME VALUE` tells whether VALUE
// parses for POOLGUARD_NAME (exit 0) or not (exit 1).
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/options.h"

namespace {

int usage(FILE* out, int code) {
  fprintf(out,
          "usage: pg_options --markdown | --man | --help | --check NAME VALUE\n"
          "  --markdown          the options as a Markdown table (docs/OPTIONS.md)\n"
          "  --man               the options as roff, for the man page (docs/poolguard.1)\n"
          "  --help              this text, then the options\n"
          "  --check NAME VALUE  exit 0 if VALUE is valid for POOLGUARD_NAME, else 1\n");
  if (code == 0) {
    fflush(out);
    pg::options_write_help(STDOUT_FILENO);
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--markdown") == 0) {
    pg::options_write_markdown(STDOUT_FILENO);
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--man") == 0) {
    pg::options_write_man(STDOUT_FILENO);
    return 0;
  }
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    return usage(stdout, 0);
  }
  if (argc == 4 && strcmp(argv[1], "--check") == 0) {
    uint64_t v;
    if (pg::option_parse(argv[2], argv[3], &v)) {
      printf("%llu\n", static_cast<unsigned long long>(v));
      return 0;
    }
    fprintf(stderr, "pg_options: POOLGUARD_%s=%s is not valid\n", argv[2], argv[3]);
    return 1;
  }
  return usage(stderr, 2);
}
