// Reading recordings (tools/recording_reader.h): each line parsed by tools/json.h, its fields
// checked against docs/TIMELINE.md, then the samples summed into the chart's ticks.
#include "tools/recording_reader.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "tools/json.h"
#include "tools/text.h"

namespace pg::timeline {

namespace {

using tool::bytes;
using tool::fixed;

// The fields of one line, read with the first problem kept as the error: "line 4: sample:
// "rss_bytes" missing". Required fields must be there; optional ones may be missing, and
// either kind must have the type the format gives it when present.
class Fields {
 public:
  Fields(const json::Value& v, size_t line, std::string type, std::string* error)
      : v_(v), line_(line), type_(std::move(type)), error_(error) {}

  bool ok() const { return ok_; }

  // An integer >= 0.
  void u64(const char* key, uint64_t* out, bool required = true) {
    const json::Value* f = get(key, required);
    if (f != nullptr && !f->to_u64(out)) bad(key, "an integer >= 0");
  }
  // A process id: an integer > 0.
  void pid(const char* key, int64_t* out, bool required = true) {
    const json::Value* f = get(key, required);
    if (f != nullptr && (!f->to_i64(out) || *out <= 0)) bad(key, "a process id");
  }
  void i64(const char* key, int64_t* out, bool required = true) {
    const json::Value* f = get(key, required);
    if (f != nullptr && !f->to_i64(out)) bad(key, "an integer");
  }
  // A time in seconds or another finite number.
  void number(const char* key, double* out, bool required = true) {
    const json::Value* f = get(key, required);
    if (f == nullptr) return;
    if (!f->is_number() || !std::isfinite(f->as_double())) return bad(key, "a number");
    *out = f->as_double();
  }
  void string(const char* key, std::string* out, bool required = true) {
    const json::Value* f = get(key, required);
    if (f == nullptr) return;
    if (!f->is_string()) return bad(key, "a string");
    *out = f->as_string();
  }
  // The member itself, for arrays, objects and nulls; null when missing (an error if required).
  const json::Value* get(const char* key, bool required = true) {
    if (!ok_) return nullptr;
    const json::Value* f = v_.find(key);
    if (f == nullptr && required) fail("\"" + std::string(key) + "\" missing");
    return f;
  }
  void bad(const char* key, const char* what) {
    fail("\"" + std::string(key) + "\" is not " + what);
  }
  // A nested object's fields failed (and wrote the error): this line fails too.
  void absorb(const Fields& inner) {
    if (!inner.ok()) ok_ = false;
  }
  void fail(const std::string& message) {
    if (!ok_) return;
    ok_ = false;
    *error_ = "line " + std::to_string(line_) + ": " + type_ + ": " + message;
  }

 private:
  const json::Value& v_;
  size_t line_;
  std::string type_;
  std::string* error_;
  bool ok_ = true;
};

bool read_header(Fields& f, Header* h, std::string* error) {
  std::string format;
  int64_t version = 0;
  f.string("format", &format);
  f.i64("version", &version);
  if (!f.ok()) return false;
  if (format != "poolguard-record") {
    *error = "not a poolguard recording: its header's format is \"" + format +
             "\", not \"poolguard-record\"";
    return false;
  }
  if (version != kFormatVersion) {
    *error = "a recording of format version " + std::to_string(version) +
             "; this poolguard reads version " + std::to_string(kFormatVersion) +
             " (docs/TIMELINE.md)";
    return false;
  }
  f.string("poolguard", &h->poolguard, false);
  f.string("time", &h->time, false);
  f.u64("time_unix_ms", &h->time_unix_ms, false);
  f.number("interval_s", &h->interval_s, false);
  f.pid("pid", &h->pid, false);
  f.u64("profile_bytes", &h->profile_bytes, false);
  if (const json::Value* c = f.get("command", false); c != nullptr && !c->is_null()) {
    if (!c->is_array()) f.bad("command", "an array of strings or null");
    for (const json::Value& a : c->items()) {
      if (!a.is_string()) f.bad("command", "an array of strings or null");
      h->command.push_back(a.as_string());
    }
  }
  if (!f.ok()) return false;
  if (!(h->interval_s >= 0)) h->interval_s = 0;
  return true;
}

void read_sample(Fields& f, Sample* s) {
  f.number("t", &s->t);
  f.pid("pid", &s->pid);
  f.u64("small_in_use", &s->small_in_use);
  f.u64("small_held", &s->small_held);
  f.u64("medium_in_use", &s->medium_in_use);
  f.u64("medium_held", &s->medium_held);
  f.u64("large_bytes", &s->large_bytes);
  f.u64("live_bytes", &s->live_bytes);
  f.u64("rss_bytes", &s->rss_bytes);
  f.u64("limit_bytes", &s->limit_bytes);
  f.u64("pools_in_use", &s->pools_in_use, false);
  f.u64("limit_in_use", &s->limit_in_use, false);
  f.u64("pools_peak", &s->pools_peak, false);
  f.u64("limit_peak", &s->limit_peak, false);
}

void read_frame(Fields& f, Frame* fr) {
  f.string("pc", &fr->pc, false);
  f.string("function", &fr->function, false);
  f.string("module", &fr->module, false);
  f.string("offset", &fr->offset, false);
  f.string("file_line", &fr->file_line, false);
}

void read_peak(Fields& f, size_t line, Peak* p, std::string* error) {
  f.number("t", &p->t);
  f.pid("pid", &p->pid);
  f.u64("live_bytes", &p->live_bytes);
  const json::Value* profile = f.get("profile");
  if (profile == nullptr) return;
  if (!profile->is_null()) {
    if (!profile->is_object()) return f.bad("profile", "an object or null");
    p->has_profile = true;
    Fields pf(*profile, line, "peak: profile", error);
    pf.u64("sample_bytes", &p->profile_sample_bytes);
    pf.u64("bytes", &p->profile_bytes);
    pf.u64("blocks", &p->profile_blocks, false);
    f.absorb(pf);
    if (!f.ok()) return;
  }
  const json::Value* stacks = f.get("stacks", false);
  if (stacks == nullptr || stacks->is_null()) return;
  if (!stacks->is_array()) return f.bad("stacks", "an array");
  for (const json::Value& s : stacks->items()) {
    if (!s.is_object()) return f.bad("stacks", "an array of objects");
    PeakStack ps;
    Fields sf(s, line, "peak: stacks", error);
    sf.u64("bytes", &ps.bytes);
    sf.u64("blocks", &ps.blocks, false);
    sf.u64("samples", &ps.samples, false);
    const json::Value* frames = sf.get("frames");
    if (frames != nullptr && !frames->is_array()) sf.bad("frames", "an array");
    if (frames != nullptr && sf.ok()) {
      for (const json::Value& fr : frames->items()) {
        if (!fr.is_object()) {
          sf.bad("frames", "an array of objects");
          break;
        }
        Fields ff(fr, line, "peak: frame", error);
        Frame frame;
        read_frame(ff, &frame);
        f.absorb(ff);
        if (!f.ok()) return;
        ps.frames.push_back(std::move(frame));
      }
    }
    f.absorb(sf);
    if (!f.ok()) return;
    p->stacks.push_back(std::move(ps));
  }
}

// "2026-12-06 18:00:00 UTC" from the header.
std::string start_time(const Header& h) {
  std::string iso = h.time_unix_ms != 0 ? tool::iso_time(h.time_unix_ms * 1000000u) : h.time;
  if (iso.size() < 19 || iso[10] != 'T') return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 8) + " UTC";
}

std::string join(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) {
    if (!s.empty()) s += ' ';
    s += w.find(' ') == std::string::npos && !w.empty() ? w : "'" + w + "'";
  }
  return s;
}

std::string plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

bool read_recording(std::istream& in, Recording* out, std::string* error) {
  Recording r;
  std::string text;
  bool have_header = false;
  size_t n = 0;
  while (std::getline(in, text)) {
    ++n;
    // getline stops at the end of the input without a newline only on the last line: a line
    // still being written when the recorder stopped.
    const bool unterminated = in.eof();
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    json::Value v;
    json::Error je;
    if (!json::parse(text, &v, &je)) {
      std::string where = "line " + std::to_string(n) + ", column " +
                          std::to_string(je.offset + 1) + ": " + je.message;
      if (!have_header) {
        *error = "not a poolguard recording: " + where;
        return false;
      }
      if (unterminated) {
        r.notes.push_back("line " + std::to_string(n) +
                          " is cut short (the recording stopped while writing it): ignored");
        break;
      }
      *error = where;
      return false;
    }
    if (!v.is_object()) {
      *error = (have_header ? "" : "not a poolguard recording: ") + std::string("line ") +
               std::to_string(n) + ": not a JSON object";
      return false;
    }
    const json::Value* type = v.find("type");
    if (type == nullptr || !type->is_string()) {
      *error = (have_header ? "" : "not a poolguard recording: ") + std::string("line ") +
               std::to_string(n) + ": no \"type\" string";
      return false;
    }
    const std::string& t = type->as_string();
    Fields f(v, n, t, error);
    if (!have_header) {
      if (t != "header") {
        *error = "not a poolguard recording: line " + std::to_string(n) + " is a \"" + t +
                 "\" line, not the header";
        return false;
      }
      if (!read_header(f, &r.header, error)) return false;
      have_header = true;
      continue;
    }
    if (t == "header") {
      f.fail("a second header");
    } else if (t == "process") {
      Process p;
      f.number("t", &p.t);
      f.pid("pid", &p.pid);
      f.pid("ppid", &p.ppid, false);
      f.string("comm", &p.comm, false);
      f.u64("pool_size", &p.pool_size, false);
      r.processes.push_back(std::move(p));
    } else if (t == "sample") {
      Sample s;
      read_sample(f, &s);
      r.samples.push_back(s);
    } else if (t == "event") {
      Event e;
      f.number("t", &e.t);
      f.pid("pid", &e.pid);
      f.string("kind", &e.kind);
      f.u64("count", &e.count);
      r.events.push_back(std::move(e));
    } else if (t == "peak") {
      Peak p;
      read_peak(f, n, &p, error);
      r.peaks.push_back(std::move(p));
    } else if (t == "end") {
      r.has_end = true;
      f.number("t", &r.end.t);
      f.u64("samples", &r.end.samples);
      if (const json::Value* s = f.get("exit_status", false); s != nullptr && !s->is_null()) {
        r.end.has_exit_status = true;
        f.i64("exit_status", &r.end.exit_status);
      }
    }
    // Lines of other types are of a later version of the format: skipped.
    if (!f.ok()) return false;
  }
  if (in.bad()) {
    *error = "read error";
    return false;
  }
  if (!have_header) {
    *error = "not a poolguard recording: empty";
    return false;
  }
  if (r.samples.empty()) {
    *error = "no samples: the recording ended before its first sample";
    return false;
  }
  if (!r.has_end) r.notes.push_back("no end line: the recording was cut short");
  *out = std::move(r);
  return true;
}

bool chart_data(const Recording& r, int64_t pid, ChartData* out, std::string* error) {
  ChartData d;
  std::map<int64_t, std::string> comm;
  for (const Process& p : r.processes) comm[p.pid] = p.comm;
  auto name = [&](int64_t p) {  // "12 (prog)"
    auto it = comm.find(p);
    return std::to_string(p) +
           (it == comm.end() || it->second.empty() ? "" : " (" + it->second + ")");
  };
  auto who = [&](int64_t p) { return "pid " + name(p); };

  // Ticks: the samples of the processes drawn, summed per t. A limit is drawn at a tick only
  // when every process there has one: their sum caps what they can hold together.
  std::set<int64_t> all_pids, pids;
  struct Sum {
    Tick tick;
    size_t samples = 0, limited = 0;
  };
  std::map<double, Sum> by_t;
  // The highest sampled and the highest kept by the process itself (its high-water marks, which
  // also see what happened between samples), of the pools in use and of the limit's charge.
  uint64_t pools_sampled = 0, pools_peak = 0, charged_sampled = 0, charged_peak = 0;
  for (const Sample& s : r.samples) {
    all_pids.insert(s.pid);
    if (pid != 0 && s.pid != pid) continue;
    pids.insert(s.pid);
    pools_sampled = std::max(pools_sampled, s.pools_in_use);
    pools_peak = std::max(pools_peak, s.pools_peak);
    charged_sampled = std::max(charged_sampled, s.limit_in_use);
    charged_peak = std::max(charged_peak, s.limit_peak);
    Sum& sum = by_t[s.t];
    Tick& k = sum.tick;
    k.t = s.t;
    k.small += s.small_in_use;
    k.small_held += s.small_held;
    k.medium += s.medium_in_use;
    k.medium_held += s.medium_held;
    k.large += s.large_bytes;
    k.rss += s.rss_bytes;
    k.limit += s.limit_bytes;
    ++sum.samples;
    if (s.limit_bytes != 0) ++sum.limited;
  }
  if (pids.empty()) {
    std::string list;
    for (int64_t p : all_pids) list += (list.empty() ? "" : ", ") + name(p);
    *error = "no samples of pid " + std::to_string(pid) + " in the recording (it has " +
             (all_pids.size() == 1 ? "pid " : "pids ") + list + ")";
    return false;
  }
  for (auto& [t, sum] : by_t) {
    if (sum.limited != sum.samples) sum.tick.limit = 0;
    d.ticks.push_back(sum.tick);
  }
  const bool several = pids.size() > 1;
  if (several) d.limit_note = "(summed)";

  for (const Event& e : r.events) {
    if (pids.count(e.pid) == 0) continue;
    d.events.push_back(e);
  }

  // The peak: one process's from its peak line; several processes' from their summed ticks
  // (their own peaks need not coincide), or a process's whose peak line is missing.
  const Peak* peak = nullptr;
  for (const Peak& p : r.peaks) {
    if (pids.count(p.pid) != 0 && (peak == nullptr || p.live_bytes > peak->live_bytes)) peak = &p;
  }
  d.has_peak = true;
  if (!several && peak != nullptr) {
    d.peak_t = peak->t;
    d.peak_bytes = peak->live_bytes;
  } else {
    d.peak_t = d.ticks.front().t;
    for (const Tick& k : d.ticks) {
      uint64_t live = k.small + k.medium + k.large;
      if (live > d.peak_bytes) d.peak_t = k.t, d.peak_bytes = live;
    }
    // Several processes: the caption says they are summed.
    if (!several) d.peak_note = "from the samples";
  }

  // One process: whether it held more between samples than any sample shows (a spike shorter
  // than the interval), by its own high-water marks. Within 1%: nothing to say.
  if (!several) {
    auto above = [](uint64_t peak, uint64_t sampled) { return peak > sampled + sampled / 100; };
    uint64_t pool_size = 0;
    for (const Process& p : r.processes) {
      if (pids.count(p.pid) != 0 && p.pool_size != 0) pool_size = p.pool_size;
    }
    if (above(charged_peak, charged_sampled)) {
      d.peak_between = "between samples: up to " + bytes(charged_peak) +
                       " charged to the limit (sampled at most " + bytes(charged_sampled) + ")";
    } else if (pool_size != 0 && above(pools_peak, pools_sampled)) {
      d.peak_between = "between samples: up to " + bytes(pools_peak * pool_size) +
                       " in pools (sampled at most " + bytes(pools_sampled * pool_size) + ")";
    }
  }

  // The stacks: of the process with the highest peak.
  if (peak == nullptr) {
    d.stacks_heading = "Stacks at the peak";
    d.stacks_note = "no peak line: the recording was cut short before its end";
  } else {
    std::string at = who(peak->pid) + ", " + bytes(peak->live_bytes) + " live at " +
                     time_label(peak->t, r.header.interval_s);
    if (!peak->has_profile) {
      d.stacks_heading = "Stacks at the peak of " + at;
      d.stacks_note = "no heap profile: run `poolguard record --profile 512K ...`";
    } else {
      d.stacks_heading = "Largest stacks at the peak of " + at + ": heap profile " +
                         bytes(peak->profile_bytes) + " in " +
                         plural(peak->profile_blocks, "block", "blocks") + ", one sample per " +
                         bytes(peak->profile_sample_bytes);
      d.profile_bytes = peak->profile_bytes;
      for (const PeakStack& s : peak->stacks) d.stacks.push_back({s.bytes, s.frames});
      if (d.stacks.empty()) d.stacks_note = "the heap profile held no sampled allocations then";
    }
  }

  // Heading and caption.
  const Header& h = r.header;
  std::string what = !h.command.empty() ? join(h.command) : h.pid != 0 ? who(h.pid) : "a recording";
  d.title = "Memory over time: " + what;
  if (pid != 0 && !(h.command.empty() && h.pid == pid)) d.title += ", " + who(pid);
  std::vector<std::string> parts;
  if (pid != 0) {
    parts.push_back(who(pid) + " of " + plural(all_pids.size(), "process", "processes"));
  } else if (several) {
    parts.push_back(std::to_string(pids.size()) + " processes, summed");
  } else {
    parts.push_back(who(*pids.begin()));
  }
  if (!start_time(h).empty()) parts.push_back("started " + start_time(h));
  if (h.interval_s > 0) parts.push_back("sampled every " + time_label(h.interval_s, 0.001));
  parts.push_back(plural(d.ticks.size(), "tick", "ticks") + " over " +
                  time_label(d.ticks.back().t - std::min(0.0, d.ticks.front().t), h.interval_s));
  if (!r.has_end) {
    parts.push_back("cut short (no end line)");
  } else if (r.end.has_exit_status) {
    parts.push_back("exit status " + std::to_string(r.end.exit_status));
  }
  for (const std::string& p : parts) d.caption += (d.caption.empty() ? "" : " \u00b7 ") + p;
  d.interval_s = h.interval_s;
  *out = std::move(d);
  return true;
}

}  // namespace pg::timeline
