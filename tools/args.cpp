// The command-line helpers of tools/args.h.
#include "tools/args.h"

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pg::tool {

int usage_error(const char* usage, const std::string& message) {
  fprintf(stderr, "poolguard: %s\n%s", message.c_str(), usage);
  return 2;
}

int help(const char* usage) {
  fputs(usage, stdout);
  return 0;
}

bool is_help(const std::string& a) {
  return a == "--help" || a == "-h";
}

bool parse_pid(const std::string& s, int* pid) {
  if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), ::isdigit)) return false;
  long long v = std::stoll(s);
  if (v <= 0 || v > INT_MAX) return false;
  *pid = static_cast<int>(v);
  return true;
}

int pid_argument(const char* usage, const std::string& a, int* pid, bool* have_pid) {
  if (!a.empty() && a[0] == '-') return usage_error(usage, "unknown option '" + a + "'");
  if (*have_pid) return usage_error(usage, "one PID only");
  if (!parse_pid(a, pid)) return usage_error(usage, "not a process id: '" + a + "'");
  *have_pid = true;
  return 0;
}

bool parse_seconds(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = strtod(s.c_str(), &end);
  if (end == nullptr || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 86400) return false;
  *out = v;
  return true;
}

bool split_eq(const std::string& a, std::string* name, std::string* value) {
  size_t eq = a.find('=');
  if (a.rfind("--", 0) != 0 || eq == std::string::npos) return false;
  *name = a.substr(0, eq);
  *value = a.substr(eq + 1);
  return true;
}

bool is_option(const std::string& a, const char* name) {
  size_t n = strlen(name);
  return a.compare(0, n, name) == 0 &&
         (a.size() == n || (a[n] == '=' && a.compare(0, 2, "--") == 0));
}

bool option_value(const std::vector<std::string>& args, size_t* i, std::string* value) {
  std::string name;
  if (split_eq(args[*i], &name, value)) return true;
  if (*i + 1 >= args.size()) return false;
  *value = args[++*i];
  return true;
}

std::string tool_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string clean_path(const std::string& path) {
  char real[PATH_MAX];
  return realpath(path.c_str(), real) != nullptr ? std::string(real) : path;
}

}  // namespace pg::tool
