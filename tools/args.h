// Command-line helpers shared by the commands: usage errors and --help, the parsers of process
// ids, durations and options with values ("--name value", "--name=value"), and where the tool
// itself lives.
#pragma once

#include <string>
#include <vector>

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
// Whether argument `a` is option `name`: itself, or for a long option "--name=value".
bool is_option(const std::string& a, const char* name);
// The value of the option at args[*i]: after its '=' ("--name=value"), else the next argument,
// which *i then moves to. false when there is none (the option ends the command line).
bool option_value(const std::vector<std::string>& args, size_t* i, std::string* value);

// The directory of the running poolguard binary ("." if /proc/self/exe cannot be read).
std::string tool_dir();
// `path` with symbolic links, "." and ".." resolved (realpath); `path` itself if it does not exist.
std::string clean_path(const std::string& path);

}  // namespace pg::tool
