// Starting a command under the preload, for `run` (which becomes the command) and `record`
// (which forks it and watches it): the POOLGUARD_* settings of the command line checked against
// the option table, libpoolguard.so found next to the tool, and the environment the command
// inherits (LD_PRELOAD, the settings, PYTHONMALLOC).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pg::tool {

// The options to set for the command, by name without the POOLGUARD_ prefix, in the order given
// (the last setting of an option wins).
using Settings = std::vector<std::pair<std::string, std::string>>;

// Takes argument args[*i] when it is -e/--env in one of its forms (-e NAME=VALUE,
// -eNAME=VALUE, --env NAME=VALUE, --env=NAME=VALUE): checks the setting against the option table
// and appends it to *out, advancing *i past a separate value. Returns false when args[*i] is not
// -e/--env; otherwise true, with *status 0, or the status of the usage error printed (2).
bool take_env_option(const char* usage, const std::vector<std::string>& args, size_t* i,
                     Settings* out, int* status);
// "--profile BYTES": checks BYTES (a size, as POOLGUARD_PROFILE takes it) and appends the
// setting. Returns 0, or the status of the usage error printed (2).
int add_profile_setting(const char* usage, const std::string& value, Settings* out);

// Sets up the environment the command inherits: LD_PRELOAD naming libpoolguard.so ahead of any
// preload already there, POOLGUARD_* for each setting, and PYTHONMALLOC=malloc unless
// `pymalloc` or already set (so that CPython's objects come from poolguard). `command` names the
// tool's command in messages. Returns 0, or 1 when the library cannot be found or named in
// LD_PRELOAD (the reason printed).
int set_preload_environment(const char* command, const Settings& settings, bool pymalloc);

// Executes argv (searched in PATH) in place of this process; returns only on failure, after
// printing why: 127 when it is not found, 126 when it cannot be run.
int exec_command(const char* command, const std::vector<std::string>& argv);

}  // namespace pg::tool
