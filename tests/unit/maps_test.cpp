// base/maps.h: the one /proc/PID/maps parser (the leak scan, the stats readers and the tool use
// it): lines of every shape the kernel writes, text split into lines, and the file read through
// buffers too small for some lines.
#include "base/maps.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <string>

namespace pg::test {
namespace {

// The line parsed last: Mapping::path points into it.
std::string g_line;

bool parse(const char* line, maps::Mapping* m) {
  g_line = line;
  return maps::parse_line(g_line.data(), g_line.data() + g_line.size(), m);
}

TEST(Maps, ParsesAFileMapping) {
  maps::Mapping m;
  ASSERT_TRUE(
      parse("7f1c2a000000-7f1c2a021000 r-xp 0001f000 08:01 1048602    /usr/lib/libc.so.6", &m));
  EXPECT_EQ(m.start, 0x7f1c2a000000u);
  EXPECT_EQ(m.end, 0x7f1c2a021000u);
  EXPECT_STREQ(m.perms, "r-xp");
  EXPECT_TRUE(m.readable());
  EXPECT_FALSE(m.writable());
  EXPECT_EQ(m.offset, 0x1f000u);
  EXPECT_EQ(m.inode, 1048602u);
  EXPECT_EQ(std::string(m.path, m.path_len), "/usr/lib/libc.so.6");
  EXPECT_TRUE(m.path_starts_with("/usr/lib/"));
  EXPECT_TRUE(m.path_contains("libc"));
  EXPECT_FALSE(m.path_contains("libm"));
}

TEST(Maps, ParsesAnonymousSpecialAndSysvMappings) {
  maps::Mapping m;
  ASSERT_TRUE(parse("55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0 ", &m));
  EXPECT_EQ(m.path_len, 0u);
  EXPECT_TRUE(m.writable());
  ASSERT_TRUE(parse(
      "7ffd1b5e0000-7ffd1b601000 rw-p 00000000 00:00 0                          [stack]", &m));
  EXPECT_EQ(std::string(m.path, m.path_len), "[stack]");
  ASSERT_TRUE(
      parse("7f00aa000000-7f00ab000000 rw-s 00000000 00:01 98317   /SYSV00000000 (deleted)", &m));
  EXPECT_EQ(m.inode, 98317u);
  EXPECT_TRUE(m.path_starts_with("/SYSV"));
  EXPECT_TRUE(m.path_contains("(deleted)"));
  // A path with spaces is kept whole.
  ASSERT_TRUE(parse("1000-2000 r--p 00000000 08:01 7 /tmp/a dir/f", &m));
  EXPECT_EQ(std::string(m.path, m.path_len), "/tmp/a dir/f");
}

TEST(Maps, RejectsWhatIsNotAMapsLine) {
  maps::Mapping m;
  EXPECT_FALSE(parse("", &m));
  EXPECT_FALSE(parse("hello world", &m));
  EXPECT_FALSE(parse("1000-2000", &m));
  EXPECT_FALSE(parse("1000-2000 rw-p", &m));
  EXPECT_FALSE(parse("zz-2000 rw-p 00000000 08:01 7 /x", &m));
}

TEST(Maps, SplitsTextIntoLinesAndSkipsBadOnes) {
  std::string text =
      "1000-2000 r--p 00000000 08:01 7 /a\n"
      "not a line\n"
      "3000-4000 rw-p 00000000 00:00 0\n"
      "5000-6000 r-xp 00001000 08:01 9 /b";  // no final newline
  const char* p = text.data();
  const char* end = p + text.size();
  maps::Mapping m;
  ASSERT_TRUE(maps::next_in_text(&p, end, &m));
  EXPECT_EQ(m.start, 0x1000u);
  ASSERT_TRUE(maps::next_in_text(&p, end, &m));
  EXPECT_EQ(m.start, 0x3000u);
  ASSERT_TRUE(maps::next_in_text(&p, end, &m));
  EXPECT_EQ(m.start, 0x5000u);
  EXPECT_EQ(std::string(m.path, m.path_len), "/b");
  EXPECT_FALSE(maps::next_in_text(&p, end, &m));
}

// The reader finds a mapping of this process's, with small buffers too (a line that does not fit
// is skipped, the others are still read).
TEST(Maps, ReaderFindsOwnMappingWithAnyBufferSize) {
  void* mem = mmap(nullptr, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  uintptr_t at = reinterpret_cast<uintptr_t>(mem);
  for (size_t cap : {size_t{4096}, size_t{256}, size_t{100}}) {
    char buf[4096];
    maps::Reader reader(buf, cap);
    ASSERT_TRUE(reader.open(0));
    maps::Mapping m;
    bool found = false;
    size_t lines = 0;
    while (reader.next(&m)) {
      ++lines;
      if (m.start <= at && at < m.end) found = true;
    }
    EXPECT_TRUE(found) << "buffer of " << cap;
    EXPECT_GT(lines, 5u);
  }
  size_t n = 0;
  EXPECT_TRUE(maps::for_each(0, [&](const maps::Mapping&) { return ++n < 3; }));
  EXPECT_EQ(n, 3u);  // stops when asked to
  munmap(mem, 8192);
}

}  // namespace
}  // namespace pg::test
