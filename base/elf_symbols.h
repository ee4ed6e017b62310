// The symbol table of an ELF file on disk, read without malloc: which function covers an address
// (st_value <= address < st_value + st_size), and the file's GNU build-id. The one judge of
// whether a name may be printed for a frame: a stripped module's nearest preceding symbol is
// usually another function altogether, so a symbol that does not cover the address names nothing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

// A module's file, mapped read-only while the object lives. Addresses are link-time addresses:
// the offset from the load bias for shared objects and PIEs (what addr2line -e FILE takes), the
// pc itself for fixed-address (ET_EXEC) programs.
class ElfSymbols {
 public:
  // Maps `path`; ok() is false when it is not a readable ELF file of this machine's class.
  explicit ElfSymbols(const char* path);
  ~ElfSymbols();
  ElfSymbols(const ElfSymbols&) = delete;
  ElfSymbols& operator=(const ElfSymbols&) = delete;

  bool ok() const { return ehdr_ok_; }
  // Whether the file has a symbol table at all (.symtab, else .dynsym).
  bool has_symbols() const { return symtab_ != nullptr; }

  // The name of the function symbol covering `address` (NUL-terminated, inside the mapping: valid
  // while this object lives) and its start in *start; nullptr when no symbol covers it. When
  // several do (aliases, nested symbols), the one starting last.
  const char* covering(uint64_t address, uint64_t* start) const;
  // covering() for addresses[0..n), into names[0..n) (and starts[0..n) unless null), in one pass
  // over the symbols: a profile asks about thousands of addresses of a module with many symbols.
  // false when its scratch memory could not be mapped (names are then left null).
  bool covering_all(const uint64_t* addresses, size_t n, const char** names,
                    uint64_t* starts) const;

  // The GNU build-id as lowercase hex into buf (NUL-terminated); false when the file has none or
  // it does not fit.
  bool build_id(char* buf, size_t cap) const;

 private:
  // Whether symbol i is a defined function-like symbol with a size, and then its name.
  const char* usable(size_t i, uint64_t* value, uint64_t* size) const;

  const unsigned char* file_ = nullptr;
  size_t size_ = 0;
  bool ehdr_ok_ = false;
  const unsigned char* symtab_ = nullptr;  // the symbols (Elf64_Sym), symbols_ of them
  size_t symbols_ = 0;
  const char* strtab_ = nullptr;  // their names
  size_t strtab_size_ = 0;
};

}  // namespace pg
