// C++ under a heap limit: operator new must throw std::bad_alloc, and nothrow new return null.
#include <cstdio>
#include <memory>
#include <new>
#include <vector>

int main() {
  std::vector<std::unique_ptr<char[]>> held;
  size_t bytes = 0;
  try {
    for (;;) {
      held.emplace_back(new char[4096]);
      bytes += 4096;
      if (bytes > (size_t{1} << 32)) return 1;
    }
  } catch (const std::bad_alloc&) {
    std::printf("bad_alloc after %zu MiB\n", bytes >> 20);
  }
  char* p = new (std::nothrow) char[1 << 20];
  std::printf("nothrow new %s\n", p == nullptr ? "returned null" : "succeeded");
  delete[] p;
  return 0;
}
