// RemoteSymbolizer (tools/remote_symbolizer.h): the process's mappings, each module's ELF type,
// and addr2line's names, cached.
#include "tools/remote_symbolizer.h"

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/maps.h"
#include "base/symbolize.h"

namespace pg::tool {

std::vector<ModuleMapping> read_module_maps(int pid) {
  std::vector<ModuleMapping> maps;
  pg::maps::for_each(pid, [&](const pg::maps::Mapping& m) {
    if (m.path_len > 0) maps.push_back({m.start, m.end, m.offset, std::string(m.path, m.path_len)});
    return true;
  });
  std::sort(maps.begin(), maps.end(),
            [](const ModuleMapping& a, const ModuleMapping& b) { return a.start < b.start; });
  return maps;
}

std::map<uint64_t, RemoteFrame> RemoteSymbolizer::symbolize(const std::vector<uint64_t>& pcs) {
  return symbolize(pcs, read_module_maps(pid_));
}

std::map<uint64_t, RemoteFrame> RemoteSymbolizer::symbolize(const std::vector<uint64_t>& pcs,
                                                            const std::vector<Mapping>& maps) {
  std::map<uint64_t, RemoteFrame> out;
  std::map<uint64_t, std::pair<std::string, uint64_t>> lookups;  // pc -> (module, offset)
  std::map<std::string, std::set<uint64_t>> todo;                // module -> offsets to name
  for (uint64_t pc : pcs) {
    if (out.count(pc)) continue;
    RemoteFrame& rf = out[pc];
    rf.frame.pc = pc;
    auto next = std::upper_bound(maps.begin(), maps.end(), pc,
                                 [](uint64_t v, const Mapping& m) { return v < m.start; });
    if (next == maps.begin() || pc >= std::prev(next)->end) continue;  // JIT code, or gone
    const Mapping& m = *std::prev(next);
    rf.frame.module = m.path;
    rf.frame.offset = pc - m.start + m.file_offset;
    // [vdso], [heap], and files deleted since they were mapped: no file to read symbols from.
    if (m.path[0] != '/' || m.path.ends_with(" (deleted)")) continue;
    int type = elf_type(m.path);
    if (type == 0) continue;
    // Offsets of a shared object or PIE are from where its first byte (file offset 0) is
    // mapped (the nearest such mapping below, should the file be loaded twice); a
    // fixed-address executable is linked at the addresses it runs at.
    uint64_t base = m.start - m.file_offset;
    for (const Mapping& other : maps) {
      if (other.start > m.start) break;
      if (other.path == m.path && other.file_offset == 0) base = other.start;
    }
    rf.frame.offset = type == ET_EXEC ? pc : pc - base;
    // A return address may be just past the call, at the next line or function: name the
    // byte before it, the call itself.
    uint64_t lookup = rf.frame.offset > 0 ? rf.frame.offset - 1 : 0;
    lookups[pc] = {m.path, lookup};
    if (!names_.count({m.path, lookup})) todo[m.path].insert(lookup);
  }
  for (const auto& [module, offsets] : todo) name_all(module, offsets);
  for (const auto& [pc, where] : lookups) {
    const auto& [function, file_line] = names_[where];
    out[pc].frame.function = function;
    out[pc].file_line = file_line;
  }
  return out;
}

std::string RemoteSymbolizer::local_path(const std::string& path) const {
  std::string through = "/proc/" + std::to_string(pid_) + "/root" + path;
  return access(through.c_str(), R_OK) == 0 ? through : path;
}

int RemoteSymbolizer::elf_type(const std::string& path) {
  auto it = elf_types_.find(path);
  if (it != elf_types_.end()) return it->second;
  int type = 0;
  std::ifstream in(local_path(path), std::ios::binary);
  unsigned char h[EI_NIDENT + 2];
  if (in.read(reinterpret_cast<char*>(h), sizeof h) && memcmp(h, ELFMAG, SELFMAG) == 0) {
    // e_type follows e_ident in both ELF classes, in the file's byte order.
    int t = h[EI_DATA] == ELFDATA2MSB ? (h[EI_NIDENT] << 8 | h[EI_NIDENT + 1])
                                      : (h[EI_NIDENT + 1] << 8 | h[EI_NIDENT]);
    if (t == ET_EXEC || t == ET_DYN) type = t;
  }
  elf_types_[path] = type;
  return type;
}

void RemoteSymbolizer::name_all(const std::string& module, const std::set<uint64_t>& offsets) {
  // One run per module, unless it has very many frames: keep argument lists and buffers sane.
  constexpr size_t kBatch = 8192;
  std::vector<uint64_t> all(offsets.begin(), offsets.end());
  std::string file = local_path(module);
  for (size_t from = 0; from < all.size(); from += kBatch) {
    size_t n = std::min(kBatch, all.size() - from);
    std::vector<pg::SymFrame> syms(n);
    for (size_t i = 0; i < n; ++i) syms[i].offset = all[from + i];
    if (!pg::symbolize_module(file.c_str(), all.data() + from, n, syms.data()) && !warned_) {
      warned_ = true;
      fprintf(stderr,
              "poolguard: cannot run addr2line (apt-get install binutils): frames are shown as "
              "module+offset\n");
    }
    for (size_t i = 0; i < n; ++i) {
      names_[{module, all[from + i]}] = {known(syms[i].function), known(syms[i].file_line)};
    }
  }
}

std::string RemoteSymbolizer::known(const char* s) {
  return s[0] == '\0' || s[0] == ':' || strncmp(s, "??", 2) == 0 ? "" : s;
}

namespace {

// The return addresses of the first `top` stacks (0: all).
std::vector<uint64_t> top_pcs(const pg::stats::Profile& p, size_t top) {
  std::vector<uint64_t> pcs;
  for (size_t i = 0; i < p.stacks.size() && (top == 0 || i < top); ++i) {
    pcs.insert(pcs.end(), p.stacks[i].pcs.begin(), p.stacks[i].pcs.end());
  }
  return pcs;
}

}  // namespace

std::map<uint64_t, RemoteFrame> name_frames(RemoteSymbolizer& sym, const pg::stats::Profile& p,
                                            size_t top) {
  return sym.symbolize(top_pcs(p, top));
}

std::map<uint64_t, RemoteFrame> name_frames(RemoteSymbolizer& sym, const pg::stats::Profile& p,
                                            size_t top, const std::vector<ModuleMapping>& maps) {
  return sym.symbolize(top_pcs(p, top), maps);
}

}  // namespace pg::tool
