// Command-line helpers shared by the commands: usage errors and --help, the parsers of process
// ids, durations and "--name=value", and where the tool itself lives.
#pragma once

#include <string>

namespace pg::tool {

// Prints "poolguard: MESSAGE" and the usage text on stderr; returns 2 (bad arguments).
int usage_error(const char* usage, const std::string& message);
// Prints the usage text on stdout; returns 0.
int help(const char* usage);
// "--help" or "-h".
bool is_help(const std::string& a);

// A process id: decimal digits, 1 to INT_MAX.
bool parse_pid(const std::string& s, int* pid);
// An argument `a` that is none of the command's options: an unknown option, or the PID (one
// only). Returns 0 when it was the PID (*pid set, *have_pid true), else the status of the usage
// error printed (2).
int pid_argument(const char* usage, const std::string& a, int* pid, bool* have_pid);
// Seconds: a number above 0, at most a day.
bool parse_seconds(const std::string& s, double* out);
// Splits "--name=value" into name and value; true if there was a '='.
bool split_eq(const std::string& a, std::string* name, std::string* value);

// The directory of the running poolguard binary ("." if /proc/self/exe cannot be read).
std::string tool_dir();
// `path` with symbolic links, "." and ".." resolved (realpath); `path` itself if it does not exist.
std::string clean_path(const std::string& path);

}  // namespace pg::tool
