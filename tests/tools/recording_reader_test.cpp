// tools/recording_reader: recordings (docs/TIMELINE.md) written here line by line: every line
// type read, what a reader must skip or refuse, and the ticks, peak and stacks given to the chart
// (processes summed per tick, or one picked).
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "tools/recording_reader.h"

namespace {

using pg::timeline::ChartData;
using pg::timeline::Recording;

constexpr uint64_t kMiB = 1 << 20;

std::string header(int version = 1) {
  return "{\"type\":\"header\",\"format\":\"poolguard-record\",\"version\":" +
         std::to_string(version) +
         ",\"poolguard\":\"0.1.0\",\"time\":\"2026-12-06T18:00:00.000Z\","
         "\"time_unix_ms\":1796580000000,\"interval_s\":0.1,\"command\":[\"./prog\",\"a b\"],"
         "\"pid\":10,\"profile_bytes\":524288}\n";
}

std::string process(int pid, const char* comm, double t = 0) {
  std::ostringstream o;
  o << "{\"type\":\"process\",\"t\":" << t << ",\"time_unix_ms\":1796580000000,\"pid\":" << pid
    << ",\"ppid\":1,\"comm\":\"" << comm
    << "\",\"small_max\":256,\"pool_max\":32768,\"pool_size\":65536,\"arena_size\":4194304,"
       "\"classes\":[16,32]}\n";
  return o.str();
}

std::string sample(double t, int pid, uint64_t small, uint64_t medium, uint64_t large,
                   uint64_t limit = 0) {
  std::ostringstream o;
  o << "{\"type\":\"sample\",\"t\":" << t << ",\"time_unix_ms\":1796580000000,\"pid\":" << pid
    << ",\"small_in_use\":" << small << ",\"small_held\":" << small * 2
    << ",\"medium_in_use\":" << medium << ",\"medium_held\":" << medium
    << ",\"large_bytes\":" << large << ",\"large_blocks\":" << (large ? 1 : 0)
    << ",\"live_bytes\":" << small + medium + large
    << ",\"pools_in_use\":1,\"arenas_in_use\":1,\"arenas_mapped\":1,\"arena_bytes\":4194304,"
       "\"rss_bytes\":"
    << small * 2 + medium + large + kMiB << ",\"limit_bytes\":" << limit
    << ",\"limit_in_use\":0,\"allocs\":5,\"frees\":1,\"guard_events\":0,\"limit_refused\":0,"
       "\"errors\":0,\"classes\":[[16,2,32,65536]]}\n";
  return o.str();
}

std::string event(double t, int pid, const char* kind, int count) {
  std::ostringstream o;
  o << "{\"type\":\"event\",\"t\":" << t << ",\"time_unix_ms\":1796580000000,\"pid\":" << pid
    << ",\"kind\":\"" << kind << "\",\"count\":" << count << "}\n";
  return o.str();
}

std::string peak(double t, int pid, uint64_t live, bool profile, const std::string& fn = "f") {
  std::ostringstream o;
  o << "{\"type\":\"peak\",\"t\":" << t << ",\"time_unix_ms\":1796580000000,\"pid\":" << pid
    << ",\"live_bytes\":" << live << ",\"profile\":";
  if (!profile) {
    o << "null,\"stacks\":[]}\n";
  } else {
    o << "{\"sample_bytes\":524288,\"bytes\":" << live
      << ",\"blocks\":3,\"live_samples\":4,\"stacks_total\":2},\"stacks\":["
         "{\"bytes\":"
      << live * 3 / 4 << ",\"blocks\":2,\"samples\":3,\"frames\":[{\"pc\":\"0x55\",\"function\":\""
      << fn
      << "\",\"module\":\"/bin/prog\",\"offset\":\"0x10\",\"file_line\":\"a.c:3\"},"
         "{\"pc\":\"0x56\",\"function\":\"\",\"module\":\"/lib/libx.so\",\"offset\":\"0x20\","
         "\"file_line\":\"\"}]},"
         "{\"bytes\":"
      << live / 4 << ",\"blocks\":1,\"samples\":1,\"frames\":[]}]}\n";
  }
  return o.str();
}

std::string end(double t, int samples) {
  std::ostringstream o;
  o << "{\"type\":\"end\",\"t\":" << t << ",\"time_unix_ms\":1796580001000,\"samples\":" << samples
    << ",\"exit_status\":0}\n";
  return o.str();
}

// A whole recording of process 10 over three ticks, its peak at 0.2 s.
std::string one_process(bool profile = true) {
  return header() + process(10, "prog") + event(0, 10, "start", 1) +
         sample(0.0, 10, kMiB, 0, 0, 64 * kMiB) + sample(0.1, 10, 2 * kMiB, kMiB, 0, 64 * kMiB) +
         event(0.1, 10, "guard", 2) + sample(0.2, 10, 2 * kMiB, kMiB, 8 * kMiB, 64 * kMiB) +
         event(0.3, 10, "exit", 1) + peak(0.2, 10, 11 * kMiB, profile) + end(0.3, 3);
}

bool read(const std::string& text, Recording* r, std::string* error) {
  std::istringstream in(text);
  return pg::timeline::read_recording(in, r, error);
}

std::string read_error(const std::string& text) {
  Recording r;
  std::string error;
  EXPECT_FALSE(read(text, &r, &error)) << "accepted:\n" << text;
  EXPECT_FALSE(error.empty());
  return error;
}

Recording read_ok(const std::string& text) {
  Recording r;
  std::string error;
  EXPECT_TRUE(read(text, &r, &error)) << error;
  return r;
}

ChartData chart(const Recording& r, int64_t pid = 0) {
  ChartData d;
  std::string error;
  EXPECT_TRUE(pg::timeline::chart_data(r, pid, &d, &error)) << error;
  return d;
}

TEST(RecordingReader, ReadsEveryLineType) {
  Recording r = read_ok(one_process());
  EXPECT_EQ(r.header.interval_s, 0.1);
  EXPECT_EQ(r.header.time_unix_ms, 1796580000000u);
  ASSERT_EQ(r.header.command.size(), 2u);
  EXPECT_EQ(r.header.command[1], "a b");
  EXPECT_EQ(r.header.profile_bytes, 524288u);
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].comm, "prog");
  ASSERT_EQ(r.samples.size(), 3u);
  EXPECT_EQ(r.samples[2].large_bytes, 8 * kMiB);
  EXPECT_EQ(r.samples[1].small_held, 4 * kMiB);
  EXPECT_EQ(r.samples[2].limit_bytes, 64 * kMiB);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[1].kind, "guard");
  EXPECT_EQ(r.events[1].count, 2u);
  ASSERT_EQ(r.peaks.size(), 1u);
  EXPECT_TRUE(r.peaks[0].has_profile);
  EXPECT_EQ(r.peaks[0].profile_sample_bytes, 524288u);
  ASSERT_EQ(r.peaks[0].stacks.size(), 2u);
  ASSERT_EQ(r.peaks[0].stacks[0].frames.size(), 2u);
  EXPECT_EQ(r.peaks[0].stacks[0].frames[0].file_line, "a.c:3");
  EXPECT_EQ(r.peaks[0].stacks[0].frames[1].module, "/lib/libx.so");
  EXPECT_TRUE(r.has_end);
  EXPECT_EQ(r.end.samples, 3u);
  EXPECT_TRUE(r.end.has_exit_status);
  EXPECT_TRUE(r.notes.empty());
}

TEST(RecordingReader, SkipsUnknownTypesAndFields) {
  std::string text = one_process();
  text.insert(text.find("{\"type\":\"sample\""),
              "{\"type\":\"gc\",\"t\":0,\"whatever\":[1,{\"x\":null}]}\n\n");
  // A field of a later version in a sample.
  size_t at = text.find("\"small_in_use\"");
  text.insert(at, "\"numa_nodes\":{\"0\":123},");
  Recording r = read_ok(text);
  EXPECT_EQ(r.samples.size(), 3u);
}

TEST(RecordingReader, TruncatedLastLineIgnoredWithANote) {
  std::string text = header() + sample(0, 10, kMiB, 0, 0) + sample(0.1, 10, kMiB, 0, 0);
  text += "{\"type\":\"sample\",\"t\":0.2,\"pid\":10,\"small_in";  // no newline: cut short
  Recording r = read_ok(text);
  EXPECT_EQ(r.samples.size(), 2u);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_NE(r.notes[0].find("line 4 is cut short"), std::string::npos) << r.notes[0];
  // No end line either: said too.
  EXPECT_NE(r.notes.back().find("no end line"), std::string::npos) << r.notes.back();
}

TEST(RecordingReader, BrokenLineElsewhereIsAnError) {
  std::string text = header() + sample(0, 10, kMiB, 0, 0) + "{\"type\":\"sample\",\"t\":0.1,]\n" +
                     sample(0.2, 10, kMiB, 0, 0);
  EXPECT_EQ(read_error(text), "line 3, column 26: unexpected ']' (expected a key string)");
  // A broken last line that ends with its newline was written whole: not a cut.
  text = header() + sample(0, 10, kMiB, 0, 0) + "{\"type\":\"sample\",\n";
  EXPECT_NE(read_error(text).find("line 3, column"), std::string::npos);
}

TEST(RecordingReader, NotARecording) {
  EXPECT_EQ(read_error(""), "not a poolguard recording: empty");
  EXPECT_EQ(read_error("\n\n"), "not a poolguard recording: empty");
  EXPECT_NE(read_error("hello world\n").find("not a poolguard recording: line 1, column 1"),
            std::string::npos);
  EXPECT_EQ(read_error(sample(0, 10, kMiB, 0, 0)),
            "not a poolguard recording: line 1 is a \"sample\" line, not the header");
  EXPECT_EQ(read_error("[1,2]\n"), "not a poolguard recording: line 1: not a JSON object");
  EXPECT_EQ(read_error("{\"t\":1}\n"), "not a poolguard recording: line 1: no \"type\" string");
  std::string other = header();
  other.replace(other.find("poolguard-record"), 16, "something-else");
  EXPECT_NE(read_error(other + sample(0, 10, 1, 0, 0)).find("format is \"something-else\""),
            std::string::npos);
  // A header cut short is no header.
  EXPECT_NE(read_error(header().substr(0, 40)).find("not a poolguard recording"),
            std::string::npos);
}

TEST(RecordingReader, OtherVersionRefused) {
  std::string error = read_error(header(2) + sample(0, 10, kMiB, 0, 0));
  EXPECT_EQ(error,
            "a recording of format version 2; this poolguard reads version 1 (docs/TIMELINE.md)");
}

TEST(RecordingReader, NoSamples) {
  EXPECT_EQ(read_error(header() + process(10, "prog") + end(0.1, 0)),
            "no samples: the recording ended before its first sample");
}

TEST(RecordingReader, FieldsChecked) {
  std::string s = sample(0, 10, kMiB, 0, 0);
  std::string missing = s;
  missing.erase(missing.find("\"rss_bytes\""),
                missing.find("\"limit_bytes\"") - missing.find("\"rss_bytes\""));
  EXPECT_EQ(read_error(header() + missing), "line 2: sample: \"rss_bytes\" missing");
  std::string negative = s;
  negative.replace(negative.find("\"large_bytes\":0"), 15, "\"large_bytes\":-5");
  EXPECT_EQ(read_error(header() + negative),
            "line 2: sample: \"large_bytes\" is not an integer >= 0");
  std::string text_pid = s;
  text_pid.replace(text_pid.find("\"pid\":10"), 8, "\"pid\":\"10\"");
  EXPECT_EQ(read_error(header() + text_pid), "line 2: sample: \"pid\" is not a process id");
  EXPECT_EQ(read_error(header() + s +
                       "{\"type\":\"peak\",\"t\":1,\"pid\":10,\"live_bytes\":5,"
                       "\"profile\":{\"sample_bytes\":1}}\n"),
            "line 3: peak: profile: \"bytes\" missing");
  EXPECT_EQ(read_error(header() + s + "{\"type\":\"event\",\"t\":1,\"pid\":10,\"count\":1}\n"),
            "line 3: event: \"kind\" missing");
  EXPECT_EQ(read_error(header() + s + header()), "line 3: header: a second header");
}

TEST(ChartData, OneProcess) {
  ChartData d = chart(read_ok(one_process()));
  ASSERT_EQ(d.ticks.size(), 3u);
  EXPECT_EQ(d.ticks[2].large, 8 * kMiB);
  EXPECT_EQ(d.ticks[2].limit, 64 * kMiB);
  EXPECT_EQ(d.ticks[1].small_held, 4 * kMiB);
  EXPECT_EQ(d.events.size(), 3u);
  EXPECT_TRUE(d.has_peak);
  EXPECT_EQ(d.peak_t, 0.2);
  EXPECT_EQ(d.peak_bytes, 11 * kMiB);
  EXPECT_EQ(d.peak_note, "");
  EXPECT_EQ(d.title, "Memory over time: ./prog 'a b'");
  EXPECT_NE(d.caption.find("pid 10 (prog)"), std::string::npos) << d.caption;
  EXPECT_NE(d.caption.find("started 2026-12-06 18:00:00 UTC"), std::string::npos) << d.caption;
  EXPECT_NE(d.caption.find("sampled every 0.1 s"), std::string::npos) << d.caption;
  EXPECT_NE(d.caption.find("exit status 0"), std::string::npos) << d.caption;
  ASSERT_EQ(d.stacks.size(), 2u);
  EXPECT_EQ(d.stacks[0].frames[0].function, "f");
  EXPECT_EQ(d.profile_bytes, 11 * kMiB);
  EXPECT_NE(d.stacks_heading.find("pid 10 (prog)"), std::string::npos) << d.stacks_heading;
}

// A sample with the process's own high-water marks: pools in use (units of 64 KiB, as
// process() says) and bytes charged to the limit, now and at most.
std::string sample_marks(double t, uint64_t pools, uint64_t pools_peak, uint64_t charged,
                         uint64_t charged_peak) {
  std::string s = sample(t, 10, pools * 65536, 0, 0, charged_peak != 0 ? 64 * kMiB : 0);
  auto put = [&](const std::string& from, const std::string& to) {
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
  };
  put("\"pools_in_use\":1,", "\"pools_in_use\":" + std::to_string(pools) + ",");
  put("\"limit_in_use\":0,", "\"limit_in_use\":" + std::to_string(charged) + ",");
  put("\"errors\":0,", "\"errors\":0,\"pools_peak\":" + std::to_string(pools_peak) +
                           ",\"limit_peak\":" + std::to_string(charged_peak) + ",");
  return s;
}

TEST(ChartData, HeldBetweenSamples) {
  // Under a limit: the charge's peak, far above every sample.
  ChartData d = chart(read_ok(header() + process(10, "prog") + sample_marks(0, 16, 16, kMiB, kMiB) +
                              sample_marks(0.1, 16, 1000, kMiB, 70 * kMiB) + end(0.1, 2)));
  EXPECT_EQ(d.peak_between,
            "between samples: up to 70.0 MiB charged to the limit (sampled at most 1.0 MiB)");
  // Without one: the pools'.
  d = chart(read_ok(header() + process(10, "prog") + sample_marks(0, 16, 16, 0, 0) +
                    sample_marks(0.1, 16, 1024, 0, 0) + end(0.1, 2)));
  EXPECT_EQ(d.peak_between, "between samples: up to 64.0 MiB in pools (sampled at most 1.0 MiB)");
  // Within 1% of a sample, or in a recording without the marks: nothing to say.
  d = chart(
      read_ok(header() + process(10, "prog") + sample_marks(0, 100, 101, kMiB, kMiB) + end(0, 1)));
  EXPECT_EQ(d.peak_between, "");
  EXPECT_EQ(chart(read_ok(one_process())).peak_between, "");
  // Several processes summed: their marks cannot be summed (each is of its own moment).
  d = chart(read_ok(header() + process(10, "prog") + process(11, "child") +
                    sample_marks(0, 16, 1024, 0, 0) + sample(0, 11, kMiB, 0, 0) + end(0, 2)));
  EXPECT_EQ(d.peak_between, "");
}

TEST(ChartData, NoProfileSaysHowToGetOne) {
  ChartData d = chart(read_ok(one_process(false)));
  EXPECT_TRUE(d.stacks.empty());
  EXPECT_EQ(d.stacks_note, "no heap profile: run `poolguard record --profile 512K ...`");
}

TEST(ChartData, NoPeakLine) {
  std::string text = header() + sample(0, 10, kMiB, 0, 0) + sample(0.1, 10, 3 * kMiB, 0, 0) +
                     sample(0.2, 10, 2 * kMiB, 0, 0);
  ChartData d = chart(read_ok(text));
  EXPECT_EQ(d.peak_bytes, 3 * kMiB);
  EXPECT_EQ(d.peak_t, 0.1);
  EXPECT_EQ(d.peak_note, "from the samples");
  EXPECT_NE(d.stacks_note.find("no peak line"), std::string::npos);
  EXPECT_NE(d.caption.find("cut short"), std::string::npos) << d.caption;
}

// Process 10 throughout with a 64 MiB limit, process 11 at the second and third tick with a
// 32 MiB limit, then process 12 without one at the third.
std::string three_processes() {
  return header() + process(10, "prog") + sample(0, 10, kMiB, 0, 0, 64 * kMiB) +
         process(11, "child", 0.1) + event(0.1, 11, "start", 1) +
         sample(0.1, 10, kMiB, 0, 0, 64 * kMiB) + sample(0.1, 11, 2 * kMiB, kMiB, 0, 32 * kMiB) +
         sample(0.2, 10, kMiB, 0, 4 * kMiB, 64 * kMiB) +
         sample(0.2, 11, 2 * kMiB, 0, 0, 32 * kMiB) + sample(0.2, 12, kMiB, 0, 0, 0) +
         event(0.2, 12, "error", 1) + peak(0.2, 10, 5 * kMiB, true, "ten") +
         peak(0.1, 11, 3 * kMiB, true, "eleven") + peak(0.2, 12, kMiB, false) + end(0.3, 6);
}

TEST(ChartData, ProcessesSummedPerTick) {
  ChartData d = chart(read_ok(three_processes()));
  ASSERT_EQ(d.ticks.size(), 3u);
  EXPECT_EQ(d.ticks[0].small, kMiB);
  EXPECT_EQ(d.ticks[1].small, 3 * kMiB);
  EXPECT_EQ(d.ticks[1].medium, kMiB);
  EXPECT_EQ(d.ticks[2].small, 4 * kMiB);
  EXPECT_EQ(d.ticks[2].large, 4 * kMiB);
  EXPECT_EQ(d.ticks[2].rss, (2 + 4 + 1) * kMiB + (4 + 1) * kMiB + (2 + 1) * kMiB);
  // The limits summed while every process has one; none once process 12 (unlimited) is there.
  EXPECT_EQ(d.ticks[0].limit, 64 * kMiB);
  EXPECT_EQ(d.ticks[1].limit, 96 * kMiB);
  EXPECT_EQ(d.ticks[2].limit, 0u);
  EXPECT_EQ(d.limit_note, "(summed)");
  EXPECT_EQ(d.events.size(), 2u);
  // The peak of the sum, from the ticks: 8 MiB at 0.2 s (process 10's own is 5 MiB).
  EXPECT_EQ(d.peak_bytes, 8 * kMiB);
  EXPECT_EQ(d.peak_t, 0.2);
  // The stacks of the highest process peak.
  ASSERT_FALSE(d.stacks.empty());
  EXPECT_EQ(d.stacks[0].frames[0].function, "ten");
  EXPECT_NE(d.caption.find("3 processes, summed"), std::string::npos) << d.caption;
}

TEST(ChartData, OneProcessPicked) {
  Recording r = read_ok(three_processes());
  ChartData d = chart(r, 11);
  ASSERT_EQ(d.ticks.size(), 2u);
  EXPECT_EQ(d.ticks[0].t, 0.1);
  EXPECT_EQ(d.ticks[0].small, 2 * kMiB);
  EXPECT_EQ(d.ticks[0].limit, 32 * kMiB);
  EXPECT_EQ(d.limit_note, "");
  ASSERT_EQ(d.events.size(), 1u);
  EXPECT_EQ(d.events[0].kind, "start");
  EXPECT_EQ(d.peak_bytes, 3 * kMiB);  // its peak line's
  EXPECT_EQ(d.peak_t, 0.1);
  EXPECT_EQ(d.stacks[0].frames[0].function, "eleven");
  EXPECT_EQ(d.title, "Memory over time: ./prog 'a b', pid 11 (child)");
  EXPECT_NE(d.caption.find("pid 11 (child) of 3 processes"), std::string::npos) << d.caption;

  ChartData none;
  std::string error;
  EXPECT_FALSE(pg::timeline::chart_data(r, 99, &none, &error));
  EXPECT_EQ(error, "no samples of pid 99 in the recording (it has pids 10 (prog), 11 (child), 12)");
}

}  // namespace
