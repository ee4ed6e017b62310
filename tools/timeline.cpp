// The timeline's figures and lines (tools/timeline.h).
#include "tools/timeline.h"

#include <cstdio>

#include "tools/text.h"

namespace pg::tool::timeline {

namespace {

// Builds one JSON object: fields appended in order, commas between them.
class Object {
 public:
  explicit Object(const char* type) { raw("type", json_string(type)); }
  Object& num(const char* key, uint64_t v) { return raw(key, std::to_string(v)); }
  Object& str(const char* key, const std::string& v) { return raw(key, json_string(v)); }
  Object& raw(const char* key, const std::string& json) {
    text_ += (text_.size() > 1 ? ",\"" : "\"") + std::string(key) + "\":" + json;
    return *this;
  }
  Object& stamp(Stamp s) {
    raw("t", fixed(s.t, 3));
    return num("time_unix_ms", s.unix_ms);
  }
  std::string line() const { return text_ + "}\n"; }

 private:
  std::string text_ = "{";
};

uint64_t grown(uint64_t before, uint64_t after) {
  return after >= before ? after - before : after;
}

// A number of seconds as JSON, as short as it reads back the same to the microsecond.
std::string seconds(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Sample sample_of(const pg::stats::Figures& f) {
  Sample v;
  for (uint32_t i = 0; i < f.num_classes; ++i) {
    const pg::stats::ClassFigures& c = f.classes[i];
    ClassSample cs{c.block_size, c.live_blocks, c.block_size * c.live_blocks,
                   c.pools * c.pool_bytes};
    (c.block_size <= kSmallMax ? v.small_in_use : v.medium_in_use) += cs.in_use;
    (c.block_size <= kSmallMax ? v.small_held : v.medium_held) += cs.held;
    if (cs.live_blocks != 0 || c.pools != 0) v.classes.push_back(cs);
  }
  v.large_bytes = f.large_live_bytes;
  v.large_blocks = f.large_allocs >= f.large_frees ? f.large_allocs - f.large_frees : 0;
  v.live_bytes = v.small_in_use + v.medium_in_use + v.large_bytes;
  v.pools_in_use = f.pools_in_use;
  v.arenas_in_use = f.arenas_in_use;
  v.arenas_mapped = f.arenas_mapped;
  v.arena_bytes = f.arenas_in_use * f.arena_size;
  v.rss_bytes = f.rss_bytes;
  v.limit_bytes = f.limit_bytes;
  v.limit_in_use = f.limit_in_use;
  v.pools_peak = f.pool_size != 0 ? f.peak_small_bytes / f.pool_size : 0;
  v.limit_peak = f.limit_peak;
  v.allocs = f.small_allocs + f.large_allocs;
  v.frees = f.small_frees + f.large_frees;
  v.guard_events = f.guard_events;
  v.limit_refused = f.limit_refused;
  v.errors = f.double_frees + f.invalid_frees + f.corruptions;
  return v;
}

std::vector<CounterEvent> events_between(const Sample& before, const Sample& after) {
  std::vector<CounterEvent> out;
  const CounterEvent all[] = {{"guard", grown(before.guard_events, after.guard_events)},
                              {"limit_refused", grown(before.limit_refused, after.limit_refused)},
                              {"error", grown(before.errors, after.errors)}};
  for (const CounterEvent& e : all) {
    if (e.count != 0) out.push_back(e);
  }
  return out;
}

bool ProfileRule::sampled(double t, uint64_t live, bool last) {
  bool new_high = !have_peak || live > peak_live;
  if (new_high) peak_live = live, have_peak = true;
  if (new_high && (!have_copy || live > copy_live + copy_live / 100)) pending = true;
  bool near_peak = live + peak_live / 100 >= peak_live;
  bool gap_passed = last || !have_copy || t - copy_t >= kProfileGapSeconds;
  return pending && near_peak && gap_passed;
}

bool ProfileRule::last_chance(uint64_t live) const {
  return pending && live + peak_live / 100 >= peak_live;
}

void ProfileRule::copied(double t, uint64_t live) {
  have_copy = true;
  copy_t = t;
  copy_live = live;
  pending = false;
}

std::string header_line(const Header& h) {
  Object o("header");
  o.str("format", "poolguard-record").num("version", kFormatVersion).str("poolguard", h.version);
  o.str("time", iso_time(h.unix_ns)).num("time_unix_ms", h.unix_ns / 1000000u);
  o.raw("interval_s", seconds(h.interval_s));
  std::string command = "null";
  if (h.has_command) {
    command = "[";
    for (size_t i = 0; i < h.command.size(); ++i) {
      command += (i ? "," : "") + json_string(h.command[i]);
    }
    command += "]";
  }
  o.raw("command", command).num("pid", static_cast<uint64_t>(h.pid));
  return o.num("profile_bytes", h.profile_bytes).line();
}

std::string process_line(Stamp s, int pid, int ppid, const std::string& comm,
                         const pg::stats::Figures& f) {
  Object o("process");
  o.stamp(s).num("pid", static_cast<uint64_t>(pid)).num("ppid", static_cast<uint64_t>(ppid));
  o.str("comm", comm).num("small_max", kSmallMax).num("pool_max", f.small_max);
  o.num("pool_size", f.pool_size).num("arena_size", f.arena_size);
  std::string classes = "[";
  for (uint32_t i = 0; i < f.num_classes; ++i) {
    classes += (i ? "," : "") + std::to_string(f.classes[i].block_size);
  }
  return o.raw("classes", classes + "]").line();
}

std::string sample_line(Stamp s, int pid, const Sample& v) {
  Object o("sample");
  o.stamp(s).num("pid", static_cast<uint64_t>(pid));
  o.num("small_in_use", v.small_in_use).num("small_held", v.small_held);
  o.num("medium_in_use", v.medium_in_use).num("medium_held", v.medium_held);
  o.num("large_bytes", v.large_bytes).num("large_blocks", v.large_blocks);
  o.num("live_bytes", v.live_bytes).num("pools_in_use", v.pools_in_use);
  o.num("arenas_in_use", v.arenas_in_use).num("arenas_mapped", v.arenas_mapped);
  o.num("arena_bytes", v.arena_bytes).num("rss_bytes", v.rss_bytes);
  o.num("limit_bytes", v.limit_bytes).num("limit_in_use", v.limit_in_use);
  o.num("allocs", v.allocs).num("frees", v.frees).num("guard_events", v.guard_events);
  o.num("limit_refused", v.limit_refused).num("errors", v.errors);
  o.num("pools_peak", v.pools_peak).num("limit_peak", v.limit_peak);
  std::string classes = "[";
  for (size_t i = 0; i < v.classes.size(); ++i) {
    const ClassSample& c = v.classes[i];
    classes += (i ? ",[" : "[") + std::to_string(c.size) + "," + std::to_string(c.live_blocks) +
               "," + std::to_string(c.in_use) + "," + std::to_string(c.held) + "]";
  }
  return o.raw("classes", classes + "]").line();
}

std::string event_line(Stamp s, int pid, const char* kind, uint64_t count) {
  Object o("event");
  o.stamp(s).num("pid", static_cast<uint64_t>(pid)).str("kind", kind);
  return o.num("count", count).line();
}

std::string peak_line(int pid, const Peak& peak, const std::map<uint64_t, RemoteFrame>& names) {
  Object o("peak");
  o.stamp(peak.at).num("pid", static_cast<uint64_t>(pid)).num("live_bytes", peak.live_bytes);
  if (peak.profile == nullptr) return o.raw("profile", "null").raw("stacks", "[]").line();
  const pg::stats::Profile& p = *peak.profile;
  std::string prof =
      "{\"sample_bytes\":" + std::to_string(p.sample_bytes) +
      ",\"bytes\":" + std::to_string(p.bytes) + ",\"blocks\":" + std::to_string(p.blocks) +
      ",\"live_samples\":" + std::to_string(p.live_samples) +
      ",\"stacks_total\":" + std::to_string(p.stacks_total) + ",\"t\":" + fixed(peak.profile_t, 3) +
      ",\"live_bytes\":" + std::to_string(peak.profile_live) + "}";
  std::string stacks = "[";
  for (size_t i = 0; i < p.stacks.size() && i < kPeakStacks; ++i) {
    const pg::stats::ProfileStack& st = p.stacks[i];
    stacks += (i ? ",{" : "{") + std::string("\"bytes\":") + std::to_string(st.bytes) +
              ",\"blocks\":" + std::to_string(st.blocks) +
              ",\"samples\":" + std::to_string(st.samples) + ",\"frames\":[";
    for (size_t k = 0; k < st.pcs.size(); ++k) {
      auto it = names.find(st.pcs[k]);
      RemoteFrame f;
      if (it != names.end()) f = it->second;
      f.frame.pc = st.pcs[k];
      stacks += (k ? ",{" : "{") + std::string("\"pc\":") + json_string(hex(f.frame.pc)) +
                ",\"function\":" + json_string(f.frame.function) +
                ",\"module\":" + json_string(f.frame.module) +
                ",\"offset\":" + json_string(hex(f.frame.offset)) +
                ",\"file_line\":" + json_string(f.file_line) + "}";
    }
    stacks += "]}";
  }
  return o.raw("profile", prof).raw("stacks", stacks + "]").line();
}

std::string end_line(Stamp s, uint64_t samples, int exit_status) {
  Object o("end");
  o.stamp(s).num("samples", samples);
  return o.raw("exit_status", exit_status < 0 ? std::string("null") : std::to_string(exit_status))
      .line();
}

}  // namespace pg::tool::timeline
