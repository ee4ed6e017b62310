// Built against an installed poolguard (tests/tools/package_consumer.sh), with its CMake package or
// its pkg-config flags: prints the statistics segment version of the installed header and whether
// libpoolguard.so, linked in, is mapped.
#include <cstdio>
#include <cstring>
#include <memory>

#include "stats/segment.h"

int main() {
  auto block = std::make_unique<char[]>(100);  // served by poolguard, the linked malloc
  std::strcpy(block.get(), "mapped");
  bool mapped = false;
  if (FILE* maps = std::fopen("/proc/self/maps", "r")) {
    char line[4096];
    while (std::fgets(line, sizeof line, maps) != nullptr) {
      mapped = mapped || std::strstr(line, "/libpoolguard.so") != nullptr;
    }
    std::fclose(maps);
  }
  std::printf("segment version %u, libpoolguard.so %s\n", pg::stats::kSegmentVersion,
              mapped ? block.get() : "not mapped");
  return mapped ? 0 : 1;
}
