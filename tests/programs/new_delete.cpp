// Exercises every form of C++ operator new/delete an interposed allocator must serve: plain,
// array, sized, aligned (alignas above 16 bytes), nothrow, and bad_alloc on failure; plus the
// standard containers, shared_ptr, std::function, exceptions (whose objects libstdc++ allocates
// with malloc) and objects deleted on another thread. Prints deterministic checksums.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "new_delete: FAIL: %s\n", what);
  std::exit(1);
}

void expect(bool ok, const char* what) {
  if (!ok) fail(what);
}

template <size_t Align>
struct alignas(Align) Aligned {
  unsigned char bytes[Align];
};

template <size_t Align>
uint64_t aligned_forms() {
  uint64_t sum = 0;
  auto* one = new Aligned<Align>;
  expect(reinterpret_cast<uintptr_t>(one) % Align == 0, "aligned new is misaligned");
  one->bytes[Align - 1] = 7;
  sum += one->bytes[Align - 1];
  delete one;
  auto* many = new Aligned<Align>[5];
  for (int i = 0; i < 5; i++) {
    expect(reinterpret_cast<uintptr_t>(&many[i]) % Align == 0, "aligned new[] is misaligned");
    many[i].bytes[0] = static_cast<unsigned char>(i);
    sum += many[i].bytes[0];
  }
  delete[] many;
  auto* nt = new (std::nothrow) Aligned<Align>;
  expect(nt != nullptr && reinterpret_cast<uintptr_t>(nt) % Align == 0, "aligned nothrow new");
  delete nt;
  // Explicit aligned, sized operator calls, as allocators in containers make them.
  void* raw = ::operator new (3 * Align, std::align_val_t{Align});
  expect(reinterpret_cast<uintptr_t>(raw) % Align == 0, "operator new(size, align_val_t)");
  ::operator delete (raw, 3 * Align, std::align_val_t{Align});
  return sum;
}

struct Node {
  std::string name;
  std::vector<int> values;
  std::unique_ptr<Node> child;
};

uint64_t containers() {
  uint64_t sum = 0;
  std::map<std::string, std::vector<std::string>> index;
  std::unordered_map<int, std::string> by_id;
  std::list<std::shared_ptr<Node>> nodes;
  for (int i = 0; i < 20000; i++) {
    std::string key = "key" + std::to_string(i % 997);
    index[key].push_back(std::to_string(i * 7919 % 10007));
    by_id.emplace(i, std::string(static_cast<size_t>(i % 300), static_cast<char>('a' + i % 26)));
    if (i % 5 == 0) {
      auto n = std::make_shared<Node>();
      n->name = key;
      n->values.assign(static_cast<size_t>(i % 40), i);
      n->child = std::make_unique<Node>();
      n->child->name = "child of " + key;
      nodes.push_back(std::move(n));
    }
    if (i % 3 == 0) by_id.erase(i / 2);
  }
  for (const auto& [key, list] : index) sum += key.size() * list.size();
  for (const auto& [id, s] : by_id) sum += static_cast<uint64_t>(id) ^ s.size();
  for (const auto& n : nodes) sum += n->values.size() + n->child->name.size();
  std::vector<std::string> words;
  for (const auto& [key, list] : index) words.insert(words.end(), list.begin(), list.end());
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  sum += words.size();
  std::vector<std::function<uint64_t(uint64_t)>> fns;
  for (int i = 0; i < 1000; i++) {
    std::string captured(static_cast<size_t>(i % 64), 'x');  // large captures are heap-allocated
    fns.emplace_back(
        [captured, i](uint64_t x) { return x + captured.size() + static_cast<uint64_t>(i); });
  }
  for (auto& f : fns) sum = f(sum) % 1000000007;
  return sum;
}

uint64_t exceptions() {
  uint64_t caught = 0;
  for (int i = 0; i < 2000; i++) {
    try {
      throw std::runtime_error("failure number " + std::to_string(i));
    } catch (const std::exception& e) {
      caught += std::string(e.what()).size();
    }
  }
  // A request no allocator can meet: operator new must throw, new(nothrow) must return null.
  volatile size_t huge = SIZE_MAX / 2;
  bool threw = false;
  try {
    char* p = new char[huge];
    p[0] = 1;
    delete[] p;
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  expect(threw, "new char[SIZE_MAX / 2] did not throw std::bad_alloc");
  expect(new (std::nothrow) char[huge] == nullptr, "new (nothrow) char[SIZE_MAX / 2] not null");
  return caught;
}

// Objects made on worker threads, deleted on the main thread after the workers have exited.
uint64_t cross_thread() {
  constexpr int kThreads = 3;
  std::vector<std::vector<std::unique_ptr<std::string>>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&made, t] {
      for (int i = 0; i < 10000; i++) {
        made[t].push_back(std::make_unique<std::string>(static_cast<size_t>(i % 200 + t), 'q'));
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t sum = 0;
  for (auto& v : made) {
    for (auto& s : v) sum += s->size();
    v.clear();
  }
  return sum;
}

}  // namespace

int main() {
  uint64_t plain = 0;
  for (int i = 0; i < 1000; i++) {
    int* one = new int(i);
    int* many = new int[static_cast<size_t>(i % 100 + 1)];
    many[i % 100] = *one;
    plain += static_cast<uint64_t>(many[i % 100]);
    delete one;
    delete[] many;
  }
  uint64_t aligned =
      aligned_forms<32>() + aligned_forms<64>() + aligned_forms<256>() + aligned_forms<4096>();
  std::printf("new_delete: plain=%llu aligned=%llu containers=%llu exceptions=%llu threads=%llu\n",
              static_cast<unsigned long long>(plain), static_cast<unsigned long long>(aligned),
              static_cast<unsigned long long>(containers()),
              static_cast<unsigned long long>(exceptions()),
              static_cast<unsigned long long>(cross_thread()));
  return 0;
}
