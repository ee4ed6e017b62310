// ElfSymbols (base/elf_symbols.h): the file mapped with mmap, its section headers checked against
// the file's size before anything is read through them (a module may be truncated or not ELF at
// all), symbols looked up by a linear scan.
#include "base/elf_symbols.h"

#include <elf.h>
#include <link.h>

#include <algorithm>
#include <cstring>

#include "base/os.h"

namespace pg {

namespace {

using Ehdr = ElfW(Ehdr);
using Shdr = ElfW(Shdr);
using Sym = ElfW(Sym);
using Nhdr = ElfW(Nhdr);

#if __ELF_NATIVE_CLASS == 64
constexpr unsigned char kClass = ELFCLASS64;
#else
constexpr unsigned char kClass = ELFCLASS32;
#endif
#if __BYTE_ORDER == __LITTLE_ENDIAN
constexpr unsigned char kData = ELFDATA2LSB;
#else
constexpr unsigned char kData = ELFDATA2MSB;
#endif

// Whether [off, off + len) lies inside a file of `size` bytes (without overflowing).
bool inside(uint64_t off, uint64_t len, size_t size) {
  return off <= size && len <= size - off;
}

}  // namespace

ElfSymbols::ElfSymbols(const char* path) {
  size_t size = 0;
  const void* p = path != nullptr && path[0] != '\0' ? os::map_file(path, &size) : nullptr;
  if (p == nullptr) return;
  file_ = static_cast<const unsigned char*>(p);
  size_ = size;
  if (size < sizeof(Ehdr) || memcmp(file_, ELFMAG, SELFMAG) != 0 || file_[EI_CLASS] != kClass ||
      file_[EI_DATA] != kData) {
    return;
  }
  const auto* eh = reinterpret_cast<const Ehdr*>(file_);
  if (eh->e_shentsize != sizeof(Shdr) || !inside(eh->e_shoff, eh->e_shnum * sizeof(Shdr), size) ||
      eh->e_shoff % alignof(Shdr) != 0) {
    return;
  }
  ehdr_ok_ = true;
  const auto* sh = reinterpret_cast<const Shdr*>(file_ + eh->e_shoff);
  // .symtab names every function, static ones too; a stripped file keeps only .dynsym, the
  // exported ones.
  const Shdr* chosen = nullptr;
  for (int want : {SHT_SYMTAB, SHT_DYNSYM}) {
    for (size_t i = 0; i < eh->e_shnum && chosen == nullptr; ++i) {
      if (sh[i].sh_type == static_cast<uint32_t>(want)) chosen = &sh[i];
    }
    if (chosen != nullptr) break;
  }
  if (chosen == nullptr || chosen->sh_link >= eh->e_shnum) return;
  const Shdr& names = sh[chosen->sh_link];
  if (!inside(chosen->sh_offset, chosen->sh_size, size) || chosen->sh_offset % alignof(Sym) != 0 ||
      !inside(names.sh_offset, names.sh_size, size) || names.sh_type != SHT_STRTAB) {
    return;
  }
  symtab_ = file_ + chosen->sh_offset;
  symbols_ = chosen->sh_size / sizeof(Sym);
  strtab_ = reinterpret_cast<const char*>(file_ + names.sh_offset);
  strtab_size_ = names.sh_size;
}

ElfSymbols::~ElfSymbols() {
  if (file_ != nullptr) os::unmap(const_cast<unsigned char*>(file_), size_);
}

const char* ElfSymbols::usable(size_t i, uint64_t* value, uint64_t* size) const {
  const Sym& s = reinterpret_cast<const Sym*>(symtab_)[i];
  int type = ELF64_ST_TYPE(s.st_info);
  // Code only: data objects, sections, files and TLS offsets do not name a frame. NOTYPE covers
  // hand-written assembly that declares a size.
  if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE) return nullptr;
  if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_ABS || s.st_size == 0) return nullptr;
  if (s.st_name == 0 || s.st_name >= strtab_size_) return nullptr;
  const char* name = strtab_ + s.st_name;
  if (memchr(name, '\0', strtab_size_ - s.st_name) == nullptr || name[0] == '\0') return nullptr;
  *value = s.st_value;
  *size = s.st_size;
  return name;
}

const char* ElfSymbols::covering(uint64_t address, uint64_t* start) const {
  const char* best = nullptr;
  uint64_t best_value = 0;
  for (size_t i = 0; i < symbols_; ++i) {
    uint64_t value, size;
    const char* name = usable(i, &value, &size);
    if (name == nullptr || address < value || address - value >= size) continue;
    if (best == nullptr || value > best_value) best = name, best_value = value;
  }
  if (best != nullptr && start != nullptr) *start = best_value;
  return best;
}

bool ElfSymbols::covering_all(const uint64_t* addresses, size_t n, const char** names,
                              uint64_t* starts) const {
  for (size_t i = 0; i < n; ++i) names[i] = nullptr;
  if (n == 0 || symbols_ == 0) return true;
  // The addresses' indices sorted by address: each symbol then finds the addresses it covers by
  // a binary search, so the cost is symbols x log n rather than symbols x n.
  size_t bytes = n * (sizeof(uint32_t) + sizeof(uint64_t));
  void* scratch = os::map(bytes);
  if (scratch == nullptr) return false;
  // The 8-byte array first: after n 4-byte indices it would be misaligned for an odd n.
  auto* best = static_cast<uint64_t*>(scratch);  // start of names[i]'s symbol
  auto* order = reinterpret_cast<uint32_t*>(best + n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  std::sort(order, order + n,
            [addresses](uint32_t a, uint32_t b) { return addresses[a] < addresses[b]; });
  for (size_t s = 0; s < symbols_; ++s) {
    uint64_t value, size;
    const char* name = usable(s, &value, &size);
    if (name == nullptr) continue;
    const uint32_t* k = std::lower_bound(
        order, order + n, value, [addresses](uint32_t i, uint64_t v) { return addresses[i] < v; });
    for (; k != order + n && addresses[*k] - value < size; ++k) {
      if (names[*k] == nullptr || value > best[*k]) names[*k] = name, best[*k] = value;
    }
  }
  if (starts != nullptr) {
    for (size_t i = 0; i < n; ++i) starts[i] = names[i] != nullptr ? best[i] : 0;
  }
  os::unmap(scratch, bytes);
  return true;
}

bool ElfSymbols::build_id(char* buf, size_t cap) const {
  if (!ehdr_ok_) return false;
  const auto* eh = reinterpret_cast<const Ehdr*>(file_);
  const auto* sh = reinterpret_cast<const Shdr*>(file_ + eh->e_shoff);
  for (size_t i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_NOTE || !inside(sh[i].sh_offset, sh[i].sh_size, size_)) continue;
    uint64_t at = sh[i].sh_offset, end = sh[i].sh_offset + sh[i].sh_size;
    while (at % 4 == 0 && end - at >= sizeof(Nhdr)) {
      Nhdr note;
      memcpy(&note, file_ + at, sizeof note);
      uint64_t name_at = at + sizeof note;
      uint64_t desc_at = name_at + ((note.n_namesz + 3u) & ~3u);
      uint64_t next = desc_at + ((note.n_descsz + 3u) & ~3u);
      if (next > end) break;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
          memcmp(file_ + name_at, "GNU", 4) == 0 && note.n_descsz > 0 && 2 * note.n_descsz < cap) {
        for (uint32_t b = 0; b < note.n_descsz; ++b) {
          buf[2 * b] = "0123456789abcdef"[file_[desc_at + b] >> 4];
          buf[2 * b + 1] = "0123456789abcdef"[file_[desc_at + b] & 15];
        }
        buf[2 * note.n_descsz] = '\0';
        return true;
      }
      at = next;
    }
  }
  return false;
}

}  // namespace pg
