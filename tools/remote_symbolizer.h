// Naming the return addresses of another process (RemoteSymbolizer): which module holds each, from
// /proc/PID/maps (base/maps.h) or a copy of it kept while the process lived, and its function and
// file:line, from addr2line (base/symbolize.h).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "stats/profile_reader.h"
#include "tools/flamegraph.h"

namespace pg::tool {

// One frame of another process, named.
struct RemoteFrame {
  pg::flame::Frame frame;  // function, module, offset of the return address in it, pc
  std::string file_line;   // "file.c:12"; "" without line information
};

// One file-backed mapping of a process.
struct ModuleMapping {
  uint64_t start, end, file_offset;
  std::string path;
};
// The file-backed mappings of process `pid` now, by address (empty when it cannot be read): what
// names its frames, kept by `record` so that they can be named after the process exits.
std::vector<ModuleMapping> read_module_maps(int pid);

// Names the return addresses of another process: /proc/PID/maps says which module holds each
// and where it is loaded, addr2line (pg::symbolize_module) reads the module's symbol and line
// tables. Names are cached by (module, offset), so `stat --watch` runs addr2line on new frames
// only, and `record` once per module for the frames of all its processes.
class RemoteSymbolizer {
 public:
  explicit RemoteSymbolizer(int pid) : pid_(pid) {}

  // A frame for each of `pcs` (repeats allowed), by pc. Reads /proc/PID/maps once, then runs
  // addr2line once per module for all its new offsets.
  std::map<uint64_t, RemoteFrame> symbolize(const std::vector<uint64_t>& pcs);
  // The same from `maps`, the process's mappings as read_module_maps() read them (the process
  // may have exited since). Modules are read through /proc/PID/root while PID lives, else at the
  // same path in our file system.
  std::map<uint64_t, RemoteFrame> symbolize(const std::vector<uint64_t>& pcs,
                                            const std::vector<ModuleMapping>& maps);

 private:
  using Mapping = ModuleMapping;

  // The file mapped at `path` in the process's view of the file system (its mount namespace,
  // through /proc/PID/root) when we may look there, else the same path in ours.
  std::string local_path(const std::string& path) const;
  // ET_EXEC or ET_DYN from the file's ELF header; 0 when it is not an ELF file we can read.
  int elf_type(const std::string& path);
  // Runs addr2line over `module` for `offsets` and caches the names (empty ones too: a frame
  // that cannot be named is not asked about again).
  void name_all(const std::string& module, const std::set<uint64_t>& offsets);
  // addr2line says "??", "??:0" or ":?" (no file name) for what it does not know.
  static std::string known(const char* s);

  int pid_;
  std::map<std::string, int> elf_types_;
  std::map<std::pair<std::string, uint64_t>, std::pair<std::string, std::string>> names_;
  bool warned_ = false;
};

// The frames of the first `top` stacks (0: all), named.
std::map<uint64_t, RemoteFrame> name_frames(RemoteSymbolizer& sym, const pg::stats::Profile& p,
                                            size_t top);
// The same from a copy of the process's mappings.
std::map<uint64_t, RemoteFrame> name_frames(RemoteSymbolizer& sym, const pg::stats::Profile& p,
                                            size_t top, const std::vector<ModuleMapping>& maps);

}  // namespace pg::tool
