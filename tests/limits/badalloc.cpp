// C++ under a heap limit: operator new must throw std::bad_alloc, nothrow new return null, and
// the program's std::set_new_handler be called first (libpoolguard.so has no C++ runtime of its
// own: preload/new_failure.cpp uses the program's).
#include <cstdio>
#include <memory>
#include <new>
#include <vector>

namespace {

std::vector<std::unique_ptr<char[]>>* g_held;
int g_handler_calls;

// Gives back a quarter of what is held, once; then removes itself, so the next failure throws.
void release_some() {
  ++g_handler_calls;
  size_t keep = g_held->size() - g_held->size() / 4;
  g_held->resize(keep);
  std::set_new_handler(nullptr);
}

void throw_bad_alloc() {
  ++g_handler_calls;
  throw std::bad_alloc();
}

struct alignas(64) Aligned {
  char bytes[4096];
};

}  // namespace

int main() {
  std::vector<std::unique_ptr<char[]>> held;
  held.reserve(1 << 16);
  g_held = &held;
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

  // The new_handler frees memory: the failed request is retried and succeeds.
  std::set_new_handler(release_some);
  std::unique_ptr<char[]> big(new char[1 << 20]);
  std::printf("new_handler called %d time(s), then new succeeded\n", g_handler_calls);
  big.reset();
  std::unique_ptr<Aligned[]> fill;
  try {
    for (;;) held.emplace_back(new char[4096]);
  } catch (const std::bad_alloc&) {
  }

  // A new_handler that throws: operator new passes it on, nothrow new returns null.
  g_handler_calls = 0;
  std::set_new_handler(throw_bad_alloc);
  bool threw = false;
  try {
    fill.reset(new Aligned[256]);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  Aligned* a = new (std::nothrow) Aligned[256];
  char* c = new (std::nothrow) char[1 << 20];
  std::printf("throwing new_handler: aligned new %s, nothrow new %s and %s, %d call(s)\n",
              threw ? "threw" : "did not throw", a == nullptr ? "null" : "not null",
              c == nullptr ? "null" : "not null", g_handler_calls);
  return 0;
}
