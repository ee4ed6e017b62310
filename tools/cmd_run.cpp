// `poolguard run -- CMD`: runs a command with libpoolguard.so preloaded, its options turned into
// POOLGUARD_* variables.
#include <errno.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/options.h"
#include "tools/args.h"
#include "tools/commands.h"

#ifndef PG_BIN_TO_LIB
#define PG_BIN_TO_LIB "../lib"
#endif
#ifndef PG_MULTIARCH
#define PG_MULTIARCH ""
#endif

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

// "-e NAME=VALUE": the option's name without the POOLGUARD_ prefix and the value, checked against
// the option table. Returns 0, or the status of the usage error printed (2).
int parse_env_setting(const std::string& setting, std::string* name, std::string* value) {
  size_t eq = setting.find('=');
  if (eq == std::string::npos || eq == 0) {
    return usage_error(kRunUsage, "-e needs NAME=VALUE, got '" + setting + "'");
  }
  *name = setting.substr(0, eq);
  *value = setting.substr(eq + 1);
  const std::string prefix = "POOLGUARD_";
  if (name->rfind(prefix, 0) == 0) name->erase(0, prefix.size());
  if (!pg::option_known(name->c_str())) {
    std::string message = "-e: POOLGUARD_" + *name + " is not an option";
    if (const char* nearest = pg::option_nearest(name->c_str())) {
      message += std::string(" (did you mean POOLGUARD_") + nearest + "?)";
    }
    return usage_error(kRunUsage, message);
  }
  uint64_t parsed;
  if (!pg::option_parse(name->c_str(), value->c_str(), &parsed)) {
    return usage_error(kRunUsage, "-e: not a valid value for POOLGUARD_" + *name + ": '" + *value +
                                      "' (expected " + pg::option_values(name->c_str()) + ")");
  }
  return 0;
}

// libpoolguard.so next to the tool: in the build tree (build/tools/poolguard ->
// build/preload/libpoolguard.so) or where `cmake --install` put it.
std::string find_library(std::vector<std::string>* tried) {
  std::string dir = tool_dir();
  std::vector<std::string> candidates = {dir + "/../preload/libpoolguard.so",
                                         dir + "/" + PG_BIN_TO_LIB + "/libpoolguard.so"};
  if (PG_MULTIARCH[0] != '\0') {
    candidates.push_back(dir + "/../lib/" + PG_MULTIARCH + "/libpoolguard.so");
  }
  candidates.push_back(dir + "/../lib/libpoolguard.so");
  for (const std::string& c : candidates) {
    tried->push_back(c);
    if (access(c.c_str(), R_OK) == 0) return clean_path(c);
  }
  return "";
}

}  // namespace

int cmd_run(const std::vector<std::string>& args) {
  bool pymalloc = false;
  // The options to set, by name without the POOLGUARD_ prefix, in the order given.
  std::vector<std::pair<std::string, std::string>> settings;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string a = args[i], name = a, value;
    bool inline_value = split_eq(a, &name, &value);
    auto take_value = [&]() -> bool {
      if (inline_value) return true;
      if (i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
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
    } else if (a == "-e" || name == "--env" || (a.rfind("-e", 0) == 0 && a.size() > 2)) {
      if (a.rfind("-e", 0) == 0 && a.size() > 2) {
        value = a.substr(2);  // -eNAME=VALUE
      } else if (!take_value()) {
        return usage_error(kRunUsage, a + " needs NAME=VALUE");
      }
      std::string option, option_value;
      if (int status = parse_env_setting(value, &option, &option_value)) return status;
      settings.emplace_back(option, option_value);
    } else if (name == "--profile") {
      uint64_t v;
      if (!take_value()) return usage_error(kRunUsage, "--profile needs BYTES");
      if (!pg::option_parse("PROFILE", value.c_str(), &v)) {
        return usage_error(kRunUsage,
                           "--profile: not a size: '" + value + "' (bytes, or with K, M, G or T)");
      }
      settings.emplace_back("PROFILE", value);
    } else if (name == "--limit") {
      if (!take_value()) return usage_error(kRunUsage, "--limit needs SIZE");
      uint64_t v;
      if (!pg::parse_size(value.c_str(), &v)) {
        return usage_error(kRunUsage,
                           "--limit: not a size: '" + value + "' (bytes, or with K, M, G or T)");
      }
      settings.emplace_back("LIMIT", value);
    } else if (name == "--log") {
      if (!take_value() || value.empty()) return usage_error(kRunUsage, "--log needs PATH");
      settings.emplace_back("LOG", value);
    } else if (name == "--guard") {
      uint64_t mode;
      if (!take_value()) return usage_error(kRunUsage, "--guard needs MODE");
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

  std::vector<std::string> tried;
  std::string lib = find_library(&tried);
  if (lib.empty()) {
    fprintf(stderr, "poolguard run: cannot find libpoolguard.so; looked for:\n");
    for (const std::string& t : tried) fprintf(stderr, "  %s\n", t.c_str());
    return 1;
  }
  if (lib.find_first_of(" :") != std::string::npos) {
    fprintf(stderr, "poolguard run: LD_PRELOAD cannot name %s (spaces and ':' separate entries)\n",
            lib.c_str());
    return 1;
  }
  const char* old = getenv("LD_PRELOAD");
  std::string preload = lib;
  if (old != nullptr && *old != '\0') preload += std::string(":") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  for (const auto& [option, value] : settings) {
    setenv(("POOLGUARD_" + option).c_str(), value.c_str(), 1);
  }
  // CPython serves objects of up to 512 bytes from pymalloc, out of 1 MiB arenas it maps itself:
  // under a plain preload poolguard sees only the arenas' mmap calls, not the objects.
  if (!pymalloc) setenv("PYTHONMALLOC", "malloc", 0);

  std::vector<char*> argv;
  for (size_t k = i; k < args.size(); ++k) argv.push_back(const_cast<char*>(args[k].c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  int err = errno;
  fprintf(stderr, "poolguard run: %s: %s\n", argv[0],
          err == ENOENT ? "command not found" : strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace pg::tool
