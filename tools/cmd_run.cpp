// `poolguard run -- CMD`: runs a command with libpoolguard.so preloaded, its options turned into
// POOLGUARD_* variables.
#include <cstdint>
#include <string>
#include <vector>

#include "base/options.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/launch.h"

namespace pg::tool {

namespace {

const char kRunUsage[] =
    "usage: poolguard run [--stats] [--limit SIZE] [--log PATH] [--guard MODE] [--leaks]\n"
    "                     [--profile BYTES] [--pymalloc] [-e NAME=VALUE]... -- CMD [ARGS...]\n"
    "\n"
    "Runs CMD with libpoolguard.so preloaded (LD_PRELOAD); child processes inherit it.\n"
    "  --stats          print a summary when each process exits (POOLGUARD_STATS=exit)\n"
    "  --limit SIZE     cap the bytes the program holds, e.g. 512M (POOLGUARD_LIMIT)\n"
    "  --log PATH       where limit records go: stderr or a file, %p = pid (POOLGUARD_LOG)\n"
    "  --guard MODE     guard zones around every block: off, redzone or page (POOLGUARD_GUARD)\n"
    "  --leaks          report the blocks nothing points to at exit, by allocation stack\n"
    "                   (POOLGUARD_LEAKS=1)\n"
    "  --profile BYTES  sample one allocation per BYTES allocated (e.g. 512K) and keep the live\n"
    "                   samples by stack, for `stat --profile` and `profile` (POOLGUARD_PROFILE)\n"
    "  --pymalloc       leave PYTHONMALLOC alone; by default it is set to malloc (unless set\n"
    "                   already), so that Python's objects come from poolguard, not from arenas\n"
    "                   CPython maps itself, out of reach of the limit, the leak check and stat\n"
    "  -e, --env NAME=VALUE\n"
    "                   set any option, POOLGUARD_NAME (the prefix may be omitted), e.g.\n"
    "                   -e ON_ERROR=report; repeatable, the last setting of an option wins.\n"
    "                   `man poolguard` (ENVIRONMENT) and docs/OPTIONS.md list the options\n"
    "Exits with CMD's status; 127 if CMD is not found, 126 if it cannot be run.\n";

}  // namespace

int cmd_run(const std::vector<std::string>& args) {
  bool pymalloc = false;
  Settings settings;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string a = args[i];
    std::string value;
    int status = 0;
    if (a == "--") {
      ++i;
      break;
    }
    if (is_help(a)) return help(kRunUsage);
    if (a == "--stats") {
      settings.emplace_back("STATS", "exit");
    } else if (a == "--leaks") {
      settings.emplace_back("LEAKS", "1");
    } else if (a == "--pymalloc") {
      pymalloc = true;
    } else if (take_env_option(kRunUsage, args, &i, &settings, &status)) {
      if (status != 0) return status;
    } else if (is_option(a, "--profile")) {
      if (!option_value(args, &i, &value)) return usage_error(kRunUsage, "--profile needs BYTES");
      if (int bad = add_profile_setting(kRunUsage, value, &settings)) return bad;
    } else if (is_option(a, "--limit")) {
      if (!option_value(args, &i, &value)) return usage_error(kRunUsage, "--limit needs SIZE");
      uint64_t v;
      if (!pg::parse_size(value.c_str(), &v)) {
        return usage_error(kRunUsage,
                           "--limit: not a size: '" + value + "' (bytes, or with K, M, G or T)");
      }
      settings.emplace_back("LIMIT", value);
    } else if (is_option(a, "--log")) {
      if (!option_value(args, &i, &value) || value.empty()) {
        return usage_error(kRunUsage, "--log needs PATH");
      }
      settings.emplace_back("LOG", value);
    } else if (is_option(a, "--guard")) {
      uint64_t mode;
      if (!option_value(args, &i, &value)) return usage_error(kRunUsage, "--guard needs MODE");
      if (!pg::option_parse("GUARD", value.c_str(), &mode)) {
        return usage_error(kRunUsage,
                           "--guard: not a guard mode: '" + value + "' (off, redzone or page)");
      }
      settings.emplace_back("GUARD", value);
    } else if (!a.empty() && a[0] == '-') {
      return usage_error(kRunUsage, "unknown option '" + a + "'");
    } else {
      break;  // the command starts here
    }
  }
  if (i >= args.size()) return usage_error(kRunUsage, "CMD missing");
  if (set_preload_environment("run", settings, pymalloc) != 0) return 1;
  return exec_command("run", std::vector<std::string>(args.begin() + i, args.end()));
}

}  // namespace pg::tool
