// Starting a command under the preload (tools/launch.h): settings checked against the option
// table, the library found, the environment set, the command executed.
#include "tools/launch.h"

#include <errno.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/options.h"
#include "tools/args.h"

#ifndef PG_BIN_TO_LIB
#define PG_BIN_TO_LIB "../lib"
#endif
#ifndef PG_MULTIARCH
#define PG_MULTIARCH ""
#endif

namespace pg::tool {

namespace {

// "NAME=VALUE": the option's name without the POOLGUARD_ prefix and the value, checked against
// the option table. Returns 0, or the status of the usage error printed (2).
int parse_env_setting(const char* usage, const std::string& setting, std::string* name,
                      std::string* value) {
  size_t eq = setting.find('=');
  if (eq == std::string::npos || eq == 0) {
    return usage_error(usage, "-e needs NAME=VALUE, got '" + setting + "'");
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
    return usage_error(usage, message);
  }
  uint64_t parsed;
  if (!pg::option_parse(name->c_str(), value->c_str(), &parsed)) {
    return usage_error(usage, "-e: not a valid value for POOLGUARD_" + *name + ": '" + *value +
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

bool take_env_option(const char* usage, const std::vector<std::string>& args, size_t* i,
                     Settings* out, int* status) {
  const std::string& a = args[*i];
  std::string name = a, value;
  bool inline_value = split_eq(a, &name, &value);
  bool attached = a.rfind("-e", 0) == 0 && a.size() > 2;  // -eNAME=VALUE
  if (a != "-e" && name != "--env" && !attached) return false;
  *status = 0;
  if (attached) {
    value = a.substr(2);
  } else if (!inline_value) {
    if (*i + 1 >= args.size()) {
      *status = usage_error(usage, a + " needs NAME=VALUE");
      return true;
    }
    value = args[++*i];
  }
  std::string option, option_value;
  *status = parse_env_setting(usage, value, &option, &option_value);
  if (*status == 0) out->emplace_back(option, option_value);
  return true;
}

int add_profile_setting(const char* usage, const std::string& value, Settings* out) {
  uint64_t v;
  if (!pg::option_parse("PROFILE", value.c_str(), &v)) {
    return usage_error(usage,
                       "--profile: not a size: '" + value + "' (bytes, or with K, M, G or T)");
  }
  out->emplace_back("PROFILE", value);
  return 0;
}

int set_preload_environment(const char* command, const Settings& settings, bool pymalloc) {
  std::vector<std::string> tried;
  std::string lib = find_library(&tried);
  if (lib.empty()) {
    fprintf(stderr, "poolguard %s: cannot find libpoolguard.so; looked for:\n", command);
    for (const std::string& t : tried) fprintf(stderr, "  %s\n", t.c_str());
    return 1;
  }
  if (lib.find_first_of(" :") != std::string::npos) {
    fprintf(stderr, "poolguard %s: LD_PRELOAD cannot name %s (spaces and ':' separate entries)\n",
            command, lib.c_str());
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
  return 0;
}

int exec_command(const char* command, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  int err = errno;
  fprintf(stderr, "poolguard %s: %s: %s\n", command, argv[0],
          err == ENOENT ? "command not found" : strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace pg::tool
