// The lines of a recording from hand-made figures (tools/timeline.*): the tiers split at 256
// bytes, the classes listed, events from grown counters, when the profile is copied for the peak,
// and each line one JSON object with the fields docs/TIMELINE.md names. The JSON itself is parsed
// by python3 in stats.record_* (tests/stats/record_test.py); here the text is checked as text.
#include "tools/timeline.h"

#include <gtest/gtest.h>

#include <string>

namespace pg::tool::timeline {
namespace {

pg::stats::Figures make() {
  pg::stats::Figures f;
  f.num_classes = 4;
  f.small_max = 32768;
  f.pool_size = 16384;
  f.arena_size = 1 << 20;
  const uint64_t sizes[] = {16, 256, 320, 32768};
  const uint64_t live[] = {10, 3, 0, 2};
  const uint64_t pools[] = {1, 1, 0, 2};
  for (int i = 0; i < 4; ++i) {
    auto& c = f.classes[i];
    c.block_size = sizes[i];
    c.live_blocks = live[i];
    c.allocs = live[i] + 5;
    c.frees = 5;
    c.pools = pools[i];
    c.pool_bytes = sizes[i] == 32768 ? 2 * 16384 : 16384;
  }
  f.small_allocs = 15 + 8 + 5 + 7;
  f.small_frees = 20;
  f.large_allocs = 4;
  f.large_frees = 1;
  f.large_live_bytes = 3 << 20;
  f.arenas_in_use = 2;
  f.arenas_mapped = 3;
  f.pools_in_use = 6;
  f.limit_refused = 2;
  f.double_frees = 1;
  f.corruptions = 1;
  return f;
}

bool has(const std::string& line, const std::string& text) {
  return line.find(text) != std::string::npos;
}

TEST(Timeline, SampleSplitsTheTiersAt256Bytes) {
  Sample v = sample_of(make());
  EXPECT_EQ(v.small_in_use, 10u * 16 + 3 * 256);
  EXPECT_EQ(v.small_held, 2u * 16384);
  EXPECT_EQ(v.medium_in_use, 2u * 32768);
  EXPECT_EQ(v.medium_held, 2u * 2 * 16384);
  EXPECT_EQ(v.large_bytes, 3u << 20);
  EXPECT_EQ(v.large_blocks, 3u);
  EXPECT_EQ(v.live_bytes, v.small_in_use + v.medium_in_use + v.large_bytes);
  EXPECT_EQ(v.arena_bytes, 2u << 20);
  EXPECT_EQ(v.allocs, 35u + 4);
  EXPECT_EQ(v.frees, 20u + 1);
  EXPECT_EQ(v.errors, 2u);
  // The 320-byte class has neither live blocks nor pools: not listed.
  ASSERT_EQ(v.classes.size(), 3u);
  EXPECT_EQ(v.classes[2].size, 32768u);
  EXPECT_EQ(v.classes[2].in_use, 2u * 32768);
  EXPECT_EQ(v.classes[2].held, 2u * 2 * 16384);
}

TEST(Timeline, EventsAreTheCountersThatGrew) {
  Sample a = sample_of(make()), b = a;
  EXPECT_TRUE(events_between(a, b).empty());
  b.limit_refused += 3;
  b.guard_events += 1;
  auto ev = events_between(a, b);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_STREQ(ev[0].kind, "guard");
  EXPECT_EQ(ev[0].count, 1u);
  EXPECT_STREQ(ev[1].kind, "limit_refused");
  EXPECT_EQ(ev[1].count, 3u);
  // A counter that fell started again (exec): all of it is new.
  Sample c = a;
  c.errors = 1;
  a.errors = 5;
  ev = events_between(a, c);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_STREQ(ev[0].kind, "error");
  EXPECT_EQ(ev[0].count, 1u);
}

TEST(Timeline, ProfileCopiedAtHighsAtLeastOnePercentAboveTheCopyKept) {
  ProfileRule r;
  ASSERT_TRUE(r.sampled(0.0, 1000));  // the first sample: nothing kept yet
  r.copied(0.0, 1000);
  EXPECT_FALSE(r.sampled(1.0, 1005));  // a new high, but within 1% of the copy
  EXPECT_FALSE(r.sampled(2.0, 900));
  ASSERT_TRUE(r.sampled(3.0, 2000));
  r.copied(3.0, 2000);
  // Held back by the gap, then copied at the next sample still near the peak.
  EXPECT_FALSE(r.sampled(3.1, 4000));
  EXPECT_TRUE(r.pending);
  EXPECT_FALSE(r.sampled(3.2, 3000));  // past the gap, but 25% below the peak
  ASSERT_TRUE(r.sampled(3.3, 3990));
  r.copied(3.3, 3990);
  EXPECT_FALSE(r.pending);
  EXPECT_FALSE(r.last_chance(3990));
  // The recording's last sample: the gap does not hold it back.
  EXPECT_FALSE(r.sampled(3.35, 4100));
  EXPECT_TRUE(r.sampled(3.36, 4100, true));
  r.copied(3.36, 4100);
  // A high the process ends at: its profile as it left it is the peak's.
  EXPECT_FALSE(r.sampled(3.4, 8000));
  EXPECT_TRUE(r.last_chance(7950));
  EXPECT_FALSE(r.last_chance(4000));
}

TEST(Timeline, LinesAreOneObjectEachWithTheirType) {
  pg::stats::Figures f = make();
  Stamp s{1.25, 1700000000123};
  std::string h =
      header_line({1700000000000000000ull, 0.1, true, {"./prog", "a\"b"}, 42, 0, "0.1.0"});
  EXPECT_EQ(h.rfind("{\"type\":\"header\",\"format\":\"poolguard-record\",\"version\":1,", 0), 0u)
      << h;
  EXPECT_TRUE(has(h, "\"command\":[\"./prog\",\"a\\\"b\"],\"pid\":42,\"profile_bytes\":0}\n"));
  EXPECT_TRUE(has(h, "\"interval_s\":0.1,"));
  EXPECT_TRUE(has(header_line({0, 1, false, {}, 7, 4096, "0"}), "\"command\":null,"));

  std::string p = process_line(s, 42, 1, "prog", f);
  EXPECT_TRUE(has(p, "\"t\":1.250,\"time_unix_ms\":1700000000123,\"pid\":42,\"ppid\":1,"));
  EXPECT_TRUE(has(p, "\"small_max\":256,\"pool_max\":32768,"));
  EXPECT_TRUE(has(p, "\"classes\":[16,256,320,32768]}\n"));

  std::string l = sample_line(s, 42, sample_of(f));
  EXPECT_EQ(l.rfind("{\"type\":\"sample\",\"t\":1.250,", 0), 0u) << l;
  EXPECT_TRUE(
      has(l, "\"live_bytes\":" + std::to_string(10 * 16 + 3 * 256 + 2 * 32768 + (3 << 20))));
  EXPECT_TRUE(has(l, "\"classes\":[[16,10,160,16384],[256,3,768,16384],[32768,2,65536,65536]]}"));

  EXPECT_EQ(event_line(s, 42, "exit", 1),
            "{\"type\":\"event\",\"t\":1.250,\"time_unix_ms\":1700000000123,\"pid\":42,"
            "\"kind\":\"exit\",\"count\":1}\n");
  EXPECT_EQ(end_line(s, 9, -1),
            "{\"type\":\"end\",\"t\":1.250,\"time_unix_ms\":1700000000123,\"samples\":9,"
            "\"exit_status\":null}\n");
  EXPECT_TRUE(has(end_line(s, 9, 130), "\"exit_status\":130}\n"));
}

TEST(Timeline, PeakNamesTheFramesOfTheLargestStacks) {
  Peak none{{2.0, 5}, 1234, nullptr, 0, 0};
  EXPECT_TRUE(has(peak_line(7, none, {}), "\"live_bytes\":1234,\"profile\":null,\"stacks\":[]}"));

  pg::stats::Profile prof;
  prof.sample_bytes = 1;
  prof.bytes = 300;
  prof.blocks = 3;
  prof.live_samples = 3;
  for (uint64_t i = 0; i < kPeakStacks + 5; ++i) {
    prof.stacks.push_back({100 - i, 1, 1, {0x1000 + i, 0x2000}});
  }
  prof.stacks_total = prof.stacks.size();
  std::map<uint64_t, RemoteFrame> names;
  names[0x1000].frame = {"grow_phase", "/bin/ramp", 0x123, 0x1000};
  names[0x1000].file_line = "ramp.c:12";
  Peak peak{{2.0, 5}, 1234, &prof, 1.9, 1200};
  std::string l = peak_line(7, peak, names);
  EXPECT_TRUE(has(l,
                  "\"profile\":{\"sample_bytes\":1,\"bytes\":300,\"blocks\":3,"
                  "\"live_samples\":3,\"stacks_total\":25,\"t\":1.900,\"live_bytes\":1200}"));
  EXPECT_TRUE(has(l,
                  "{\"bytes\":100,\"blocks\":1,\"samples\":1,\"frames\":[{\"pc\":\"0x1000\","
                  "\"function\":\"grow_phase\",\"module\":\"/bin/ramp\",\"offset\":\"0x123\","
                  "\"file_line\":\"ramp.c:12\"},{\"pc\":\"0x2000\",\"function\":\"\","));
  // At most kPeakStacks stacks.
  size_t n = 0;
  for (size_t at = l.find("\"frames\""); at != std::string::npos;
       at = l.find("\"frames\"", at + 1)) {
    ++n;
  }
  EXPECT_EQ(n, kPeakStacks);
}

}  // namespace
}  // namespace pg::tool::timeline
