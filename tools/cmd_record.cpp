// `poolguard record`: samples the statistics segments of a command and of its descendants under
// the preload (or of a running process and its descendants) on a fixed schedule and writes the
// timeline of docs/TIMELINE.md, one JSON line at a time; with a heap profile, the stacks that held
// the most at each process's peak, named at the end from the mappings kept when they were copied.
//
// Each tick: find the descendants (/proc/PID/task/*/children, or one pass over /proc where the
// kernel has no such files), open each process's segment anew (an exec replaces it; a pid may be
// reused), sample it, compare its counters with its previous sample for events, and write the
// tick's lines with one write(2), so that a recording cut short ends with whole lines. The
// segment last opened stays attached until the process is found gone: the kernel keeps it for
// us, and its counters as the process left them still make events at its exit.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/options.h"
#include "stats/profile_reader.h"
#include "stats/reader.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/launch.h"
#include "tools/output.h"
#include "tools/reading.h"
#include "tools/remote_symbolizer.h"
#include "tools/timeline.h"

#ifndef PG_VERSION
#define PG_VERSION "0"
#endif

namespace pg::tool {

namespace {

namespace tl = pg::tool::timeline;

const char kRecordUsage[] =
    "usage: poolguard record [-i SECONDS] [--profile BYTES] [--pymalloc] [-e NAME=VALUE]...\n"
    "                        -o FILE -- CMD [ARGS...]\n"
    "       poolguard record [-i SECONDS] -o FILE PID\n"
    "\n"
    "Records the heap of CMD, run with libpoolguard.so preloaded as `poolguard run` runs it, and\n"
    "of its descendants under the preload; or of the running process PID and its descendants.\n"
    "Every SECONDS each process's bytes in use and held per size class, large blocks, arenas,\n"
    "RSS and limit go to FILE as JSON lines, with guard, limit and error events; at the end, each\n"
    "process's peak, and with a heap profile the stacks that held the most then\n"
    "(docs/TIMELINE.md; `poolguard plot` draws it).\n"
    "  -o, --output FILE    the recording (replaced if it exists)\n"
    "  -i, --interval SECONDS\n"
    "                       between two samples, from 0.01 to 86400 (default 0.1)\n"
    "  --profile BYTES      run CMD with a heap profile, one allocation sampled per BYTES\n"
    "                       allocated (POOLGUARD_PROFILE; 1: every one), for the stacks at the "
    "peak\n"
    "  --pymalloc, -e, --env NAME=VALUE\n"
    "                       as for `poolguard run`\n"
    "With CMD: stops when CMD exits and exits with its status (128+N after signal N, 127 if not\n"
    "found); SIGINT and SIGTERM sent to the recorder alone are passed on to CMD (Ctrl-C reaches\n"
    "both). With PID: stops when PID exits, or on SIGINT or SIGTERM, with status 0; 1 if PID\n"
    "cannot be read.\n";

constexpr double kDefaultInterval = 0.1;
constexpr long kFindCommandNs = 1500 * 1000;       // between ticks until the command is found
constexpr double kFindCommandFor = kYoungSeconds;  // ... at most for so long
constexpr double kMinInterval = 0.01;

// Set by the signal handlers, read by the loop.
volatile sig_atomic_t g_stop = 0;          // PID mode: SIGINT or SIGTERM ends the recording
volatile sig_atomic_t g_child_exited = 0;  // SIGCHLD: the command may have exited
volatile sig_atomic_t g_child = 0;         // command mode: where SIGINT and SIGTERM go

void on_stop_signal(int sig, siginfo_t* info, void*) {
  if (g_child <= 0) {
    g_stop = 1;
    return;
  }
  // The recorder lives until the command exits, to finish the file. Ctrl-C reaches the whole
  // foreground process group, the command included (si_code SI_KERNEL): passed on, the command
  // would get it twice. A signal a process sent to the recorder is for the command too.
  if (info == nullptr || info->si_code != SI_KERNEL) kill(g_child, sig);
}

void on_sigchld(int) {
  g_child_exited = 1;
}

void catch_signals() {
  struct sigaction sa {};
  sa.sa_sigaction = on_stop_signal;
  sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: the sleep ends at once
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction chld {};
  chld.sa_handler = on_sigchld;
  chld.sa_flags = SA_NOCLDSTOP;
  sigemptyset(&chld.sa_mask);
  sigaction(SIGCHLD, &chld, nullptr);
}

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Whether process `pid` that started at `start_time` is gone: exited (a zombie is, too: its
// memory is gone), or its pid taken by another.
bool gone(int pid, uint64_t start_time) {
  pg::stats::ProcessInfo st;
  return !pg::stats::read_process(pid, &st) || st.start_time != start_time || st.state == 'Z' ||
         st.state == 'X';
}

// The executable process `pid` runs ("" when it cannot be read).
std::string exe_of(int pid) {
  char buf[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::vector<int> numbers_in(const std::string& path) {
  std::vector<int> out;
  std::ifstream in(path);
  for (int n; in >> n;) out.push_back(n);
  return out;
}

std::vector<int> numeric_entries(const std::string& dir) {
  std::vector<int> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] >= '1' && e->d_name[0] <= '9') out.push_back(atoi(e->d_name));
    }
    closedir(d);
  }
  return out;
}

// The descendants of `roots` (roots excluded), each with its parent. The children files list
// each thread's children; a kernel without CONFIG_PROC_CHILDREN has none, and then one pass over
// every process's stat finds the parents instead.
std::vector<std::pair<int, int>> descendants(const std::vector<int>& roots) {
  static const bool have_children =
      access("/proc/self/task", R_OK) == 0 &&
      access(("/proc/self/task/" + std::to_string(getpid()) + "/children").c_str(), R_OK) == 0;
  std::multimap<int, int> by_parent;  // filled only without the children files
  if (!have_children) {
    for (int pid : numeric_entries("/proc")) {
      pg::stats::ProcessInfo st;
      if (pg::stats::read_process(pid, &st)) by_parent.emplace(st.ppid, pid);
    }
  }
  std::vector<std::pair<int, int>> out;
  std::set<int> seen(roots.begin(), roots.end());
  std::vector<int> todo = roots;
  while (!todo.empty()) {
    int parent = todo.back();
    todo.pop_back();
    std::vector<int> children;
    if (have_children) {
      std::string task = "/proc/" + std::to_string(parent) + "/task";
      for (int tid : numeric_entries(task)) {
        for (int c : numbers_in(task + "/" + std::to_string(tid) + "/children")) {
          children.push_back(c);
        }
      }
    } else {
      auto [from, to] = by_parent.equal_range(parent);
      for (auto it = from; it != to; ++it) children.push_back(it->second);
    }
    for (int c : children) {
      if (!seen.insert(c).second) continue;
      out.emplace_back(c, parent);
      todo.push_back(c);
    }
  }
  return out;
}

// A process being recorded, from its first sample to the end.
struct Tracked {
  int pid = 0, ppid = 0;
  uint64_t start_time = 0;
  std::string comm;              // as last written in a process line
  bool counts_from_zero = true;  // its first sample's counters are events
  // The segment last read: read once more when the process is gone, for its last counters.
  std::unique_ptr<SegmentReader> reader;
  bool have_last = false;
  tl::Sample last;
  // The sample with the highest live bytes.
  tl::Stamp peak_at;
  uint64_t peak_live = 0;
  // The heap profile kept for the peak (tl::ProfileRule says when to copy it), the mappings
  // that name its frames, and the profile segment it came from (kept attached, so that it can
  // be copied once more as the process left it).
  enum class HasProfile { kUnknown, kYes, kNo } has_profile = HasProfile::kUnknown;
  tl::ProfileRule rule;
  std::unique_ptr<pg::stats::ProfileReader> profile_reader;
  bool have_profile = false;
  pg::stats::Profile profile;
  std::vector<ModuleMapping> maps;
  double profile_t = 0;
  uint64_t profile_live = 0;
};

class Recorder {
 public:
  // `root_start`: the start time of the process recorded (PID mode), until its first sample.
  Recorder(int fd, std::string path, int root, uint64_t root_start, bool command_mode,
           uint64_t start_ns)
      : fd_(fd),
        path_(std::move(path)),
        root_(root),
        root_start_(root_start),
        command_mode_(command_mode),
        start_ns_(start_ns) {}

  tl::Stamp stamp() const {
    return {static_cast<double>(pg::stats::monotonic_ns() - start_ns_) / 1e9,
            realtime_ns() / 1000000u};
  }

  void write_text(const std::string& text);
  // One tick: new processes, a sample of each, events, exits. `last`: the recording's last.
  void tick(tl::Stamp s, bool last);
  // The peaks and the end line.
  void finish(tl::Stamp s, int exit_status);
  // Whether the process recorded (PID mode) is gone.
  bool root_tracked() const { return root_tracked_; }
  bool root_gone() const { return root_tracked_ ? !alive_.count(root_) : gone(root_, root_start_); }

 private:
  void discover(tl::Stamp s, std::string* out);
  void sample(Tracked& t, std::unique_ptr<SegmentReader> reader, tl::Stamp s, std::string* out);
  void ended(Tracked& t, tl::Stamp s, std::string* out);
  void copy_profile(Tracked& t, pg::stats::ProfileReader* kept, double at, uint64_t live);

  int fd_;
  std::string path_;
  bool write_failed_ = false;
  int root_;
  uint64_t root_start_;
  bool root_tracked_ = false;
  bool command_mode_;
  uint64_t start_ns_;
  bool first_tick_done_ = false;
  bool last_tick_ = false;
  uint64_t samples_ = 0;
  std::vector<std::unique_ptr<Tracked>> all_;  // in the order first seen
  std::map<int, Tracked*> alive_;
  // Processes seen without a segment once they were old enough to have one: not asked again
  // while the pid keeps its start time and command name (an exec may bring a segment).
  std::map<int, std::pair<uint64_t, std::string>> ignored_;
};

void Recorder::write_text(const std::string& text) {
  size_t done = 0;
  while (!write_failed_ && done < text.size()) {
    ssize_t n = write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Nothing more is written: a later write could succeed and leave a broken line inside.
      fprintf(stderr, "poolguard record: cannot write %s: %s; the recording stops there\n",
              path_.c_str(), n < 0 ? strerror(errno) : "no space");
      write_failed_ = true;
    }
    done += n > 0 ? static_cast<size_t>(n) : 0;
  }
}

void Recorder::discover(tl::Stamp s, std::string* out) {
  std::vector<int> roots = {root_};
  for (const auto& [pid, t] : alive_) {
    if (pid != root_) roots.push_back(pid);
  }
  std::vector<std::pair<int, int>> found;
  // The command may not have its segment yet (the tick after the fork comes before its exec).
  if (!root_tracked_) found.emplace_back(root_, 0);
  for (const auto& d : descendants(roots)) found.push_back(d);
  for (const auto& [pid, parent] : found) {
    if (alive_.count(pid) || pid == getpid()) continue;
    pg::stats::ProcessInfo st;
    if (!pg::stats::read_process(pid, &st) || st.state == 'Z' || st.state == 'X') continue;
    auto ig = ignored_.find(pid);
    if (ig != ignored_.end()) {
      if (ig->second == std::make_pair(st.start_time, st.comm)) continue;
      ignored_.erase(ig);
    }
    auto reader = std::make_unique<SegmentReader>();
    std::string why;
    if (reader->open(pid, &why) != OpenStatus::kOk) {
      pg::stats::ProcessInfo info;
      info.start_time = st.start_time;
      if (process_age(info) >= kYoungSeconds) ignored_[pid] = {st.start_time, st.comm};
      continue;
    }
    auto t = std::make_unique<Tracked>();
    t->pid = pid;
    t->ppid = parent != 0 ? parent : st.ppid;
    t->start_time = reader->process().start_time;
    // The counters of the command count from its start, as do those of a process that started
    // during the recording and runs a program of its own. Not those of a process already
    // running when a recording of PID starts, nor of a fork child, which inherits its parent's
    // counters (it runs its parent's executable): their events count from their first sample.
    if (pid == root_) {
      t->counts_from_zero = command_mode_;
    } else {
      t->counts_from_zero = (command_mode_ || first_tick_done_) && exe_of(pid) != exe_of(t->ppid);
    }
    if (pid == root_) root_tracked_ = true;
    pg::stats::Figures f;
    reader->read(&f);
    t->comm = reader->process().comm;
    *out += tl::process_line(s, pid, t->ppid, t->comm, f);
    *out += tl::event_line(s, pid, "start", 1);
    Tracked& ref = *t;
    alive_[pid] = t.get();
    all_.push_back(std::move(t));
    sample(ref, std::move(reader), s, out);
  }
}

void Recorder::tick(tl::Stamp s, bool last) {
  last_tick_ = last;
  std::string out;
  std::vector<int> known;
  for (const auto& [pid, t] : alive_) known.push_back(pid);
  discover(s, &out);  // samples the new ones
  for (int pid : known) {
    Tracked& t = *alive_.at(pid);
    auto reader = std::make_unique<SegmentReader>();
    std::string why;
    if (reader->open(pid, &why) == OpenStatus::kOk &&
        reader->process().start_time == t.start_time) {
      sample(t, std::move(reader), s, &out);
    } else if (gone(pid, t.start_time)) {
      ended(t, s, &out);
    } else if (pg::stats::ProcessInfo st;
               t.reader != nullptr && pg::stats::read_process(pid, &st) && st.comm == t.comm) {
      // Exiting: its memory map, the segment with it, is gone from /proc before it is a zombie.
      // The segment kept attached still holds its figures: a sample from it, so that the
      // process does not vanish from a tick and come back for its last sample.
      sample(t, std::move(t.reader), s, &out);
    }
    // Otherwise it runs another program now, which has no segment yet (an exec, before the new
    // program's first allocation): no sample this tick.
  }
  first_tick_done_ = true;
  write_text(out);
}

void Recorder::sample(Tracked& t, std::unique_ptr<SegmentReader> reader, tl::Stamp s,
                      std::string* out) {
  pg::stats::Figures f;
  reader->read(&f);
  if (f.rss_bytes == 0 && t.have_last) f.rss_bytes = t.last.rss_bytes;  // exiting: statm is empty
  // An exec: the process runs another program now (the shell of a script, then its
  // interpreter); a process line again says which, and its geometry.
  if (reader->process().comm != t.comm) {
    t.comm = reader->process().comm;
    *out += tl::process_line(s, t.pid, t.ppid, t.comm, f);
  }
  tl::Sample v = tl::sample_of(f);
  *out += tl::sample_line(s, t.pid, v);
  ++samples_;
  tl::Sample before = t.have_last ? t.last : (t.counts_from_zero ? tl::Sample{} : v);
  for (const tl::CounterEvent& e : tl::events_between(before, v)) {
    *out += tl::event_line(s, t.pid, e.kind, e.count);
  }
  if (!t.have_last || v.live_bytes > t.peak_live) t.peak_at = s, t.peak_live = v.live_bytes;
  t.last = std::move(v);
  t.have_last = true;
  t.reader = std::move(reader);
  if (t.rule.sampled(s.t, t.last.live_bytes, last_tick_)) {
    copy_profile(t, nullptr, s.t, t.last.live_bytes);
  }
}

void Recorder::ended(Tracked& t, tl::Stamp s, std::string* out) {
  if (t.reader != nullptr && t.have_last) {
    // The figures as the process left them (after its exit handlers): a last sample, so that a
    // process seen once still has two, its start and its end. Its RSS is no longer readable:
    // the last one read while it lived stands.
    pg::stats::Figures f;
    t.reader->read(&f);
    f.rss_bytes = t.last.rss_bytes;
    tl::Sample v = tl::sample_of(f);
    *out += tl::sample_line(s, t.pid, v);
    ++samples_;
    if (v.live_bytes > t.peak_live) t.peak_at = s, t.peak_live = v.live_bytes;
    for (const tl::CounterEvent& e : tl::events_between(t.last, v)) {
      *out += tl::event_line(s, t.pid, e.kind, e.count);
    }
    if (t.profile_reader != nullptr && t.rule.last_chance(v.live_bytes)) {
      copy_profile(t, t.profile_reader.get(), s.t, v.live_bytes);
    }
  }
  *out += tl::event_line(s, t.pid, "exit", 1);
  t.reader.reset();
  t.profile_reader.reset();
  alive_.erase(t.pid);
}

void Recorder::copy_profile(Tracked& t, pg::stats::ProfileReader* kept, double at, uint64_t live) {
  if (t.has_profile == Tracked::HasProfile::kNo) return;
  std::unique_ptr<pg::stats::ProfileReader> opened;
  pg::stats::ProfileReader* from = kept;
  if (from == nullptr) {
    opened = std::make_unique<pg::stats::ProfileReader>();
    std::string why;
    OpenStatus st = opened->open(t.pid, &why);
    if (st != OpenStatus::kOk) {
      // A profile is set up just after the segment: a young process may not have it yet.
      if (st != OpenStatus::kNoSegment || process_age(opened->process()) >= kYoungSeconds) {
        t.has_profile = Tracked::HasProfile::kNo;
      }
      return;
    }
    from = opened.get();
  }
  t.has_profile = Tracked::HasProfile::kYes;
  from->copy(&t.profile);
  // Only the stacks a peak line lists are kept: a copy may hold thousands.
  if (t.profile.stacks.size() > tl::kPeakStacks) t.profile.stacks.resize(tl::kPeakStacks);
  // Read after the copy, so that a module loaded meanwhile is there; once the process is gone
  // the mappings of the last copy stand.
  if (kept == nullptr) t.maps = read_module_maps(t.pid);
  if (opened != nullptr) t.profile_reader = std::move(opened);
  t.have_profile = true;
  t.profile_t = at;
  t.profile_live = live;
  t.rule.copied(at, live);
}

void Recorder::finish(tl::Stamp s, int exit_status) {
  std::string out;
  RemoteSymbolizer symbolizer(root_);  // one for all: a module's frames are named once
  for (const auto& t : all_) {
    if (!t->have_last) continue;
    std::map<uint64_t, RemoteFrame> names;
    if (t->have_profile) names = name_frames(symbolizer, t->profile, tl::kPeakStacks, t->maps);
    tl::Peak peak{t->peak_at, t->peak_live, t->have_profile ? &t->profile : nullptr, t->profile_t,
                  t->profile_live};
    out += tl::peak_line(t->pid, peak, names);
  }
  out += tl::end_line(s, samples_, exit_status);
  write_text(out);
}

// Sleeps until the next tick of the schedule start + k * interval (ticks already missed are
// skipped, so the schedule does not drift), or until a signal ends the recording.
void sleep_until_next(uint64_t start_ns, uint64_t interval_ns) {
  uint64_t now = pg::stats::monotonic_ns();
  uint64_t next = start_ns + ((now - start_ns) / interval_ns + 1) * interval_ns;
  timespec ts{static_cast<time_t>(next / 1000000000u), static_cast<long>(next % 1000000000u)};
  while (!g_stop && !g_child_exited &&
         clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace

int cmd_record(const std::vector<std::string>& args) {
  double interval = kDefaultInterval;
  std::string output;
  Settings settings;
  bool pymalloc = false, have_pid = false, have_command = false;
  int pid = 0;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string a = args[i];
    std::string value;
    int status = 0;
    if (a == "--") {
      have_command = true;
      ++i;
      break;
    }
    if (is_help(a)) return help(kRecordUsage);
    if (a == "-i" || is_option(a, "--interval")) {
      if (!option_value(args, &i, &value)) return usage_error(kRecordUsage, a + " needs SECONDS");
      if (!parse_seconds(value, &interval) || interval < kMinInterval) {
        return usage_error(kRecordUsage,
                           a + ": not a number of seconds from 0.01 to 86400: '" + value + "'");
      }
    } else if (a == "-o" || is_option(a, "--output")) {
      if (!option_value(args, &i, &value) || value.empty()) {
        return usage_error(kRecordUsage, a + " needs FILE");
      }
      output = value;
    } else if (is_option(a, "--profile")) {
      if (!option_value(args, &i, &value)) {
        return usage_error(kRecordUsage, "--profile needs BYTES");
      }
      if (int bad = add_profile_setting(kRecordUsage, value, &settings)) return bad;
    } else if (a == "--pymalloc") {
      pymalloc = true;
    } else if (take_env_option(kRecordUsage, args, &i, &settings, &status)) {
      if (status != 0) return status;
    } else if (int bad = pid_argument(kRecordUsage, a, &pid, &have_pid); bad != 0) {
      return bad;
    }
  }
  if (have_command && have_pid) {
    return usage_error(kRecordUsage, "PID or -- CMD, not both");
  }
  if (have_command && i >= args.size()) return usage_error(kRecordUsage, "CMD missing after --");
  if (!have_command && !have_pid) return usage_error(kRecordUsage, "-- CMD or PID missing");
  if (have_pid && (!settings.empty() || pymalloc)) {
    return usage_error(kRecordUsage,
                       "--profile, --pymalloc and -e set up CMD; a running process keeps its own");
  }
  if (output.empty()) return usage_error(kRecordUsage, "-o FILE missing");

  uint64_t root_start = 0;
  if (have_pid) {
    SegmentReader check;  // the process must be readable now; the ticks read it anew
    if (open_published(pid, &check) != 0) return 1;
    root_start = check.process().start_time;
  } else if (set_preload_environment("record", settings, pymalloc) != 0) {
    return 1;
  }
  int fd = open_output(output);
  if (fd < 0) return 1;

  tl::Header header;
  header.unix_ns = realtime_ns();
  uint64_t start_ns = pg::stats::monotonic_ns();
  header.interval_s = interval;
  header.version = PG_VERSION;
  catch_signals();  // before the fork: no signal between it and the handlers is lost
  if (have_command) {
    header.has_command = true;
    header.command.assign(args.begin() + i, args.end());
    // What the command sees, whether from --profile, -e PROFILE= or the environment.
    const char* profile = getenv("POOLGUARD_PROFILE");
    if (profile == nullptr || !pg::option_parse("PROFILE", profile, &header.profile_bytes)) {
      header.profile_bytes = 0;
    }
    pid_t child = fork();
    if (child < 0) {
      fprintf(stderr, "poolguard record: fork: %s\n", strerror(errno));
      return 1;
    }
    if (child == 0) _exit(exec_command("record", header.command));  // handlers reset by exec
    pid = child;
    g_child = child;
  }
  header.pid = pid;

  Recorder rec(fd, output, pid, root_start, have_command, start_ns);
  rec.write_text(tl::header_line(header));
  uint64_t interval_ns = static_cast<uint64_t>(std::llround(interval * 1e9));
  int exit_status = -1;
  tl::Stamp last{};
  for (;;) {
    // The command's exit is seen before the tick: the tick after it is the last, and samples
    // whatever still runs. (With a command, SIGINT and SIGTERM are the command's to act on.)
    bool done = !have_command && g_stop != 0;
    if (have_command) {
      int status;
      pid_t r = waitpid(pid, &status, WNOHANG);
      g_child_exited = 0;
      if (r == pid) {
        exit_status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
        done = true;
      }
    }
    last = rec.stamp();
    rec.tick(last, done);
    if (done || (!have_command && rec.root_gone())) break;
    if (have_command && !rec.root_tracked() &&
        pg::stats::monotonic_ns() - start_ns < kFindCommandFor * 1e9) {
      // Until the command's segment is found (its first allocation, before main), ticks come
      // every millisecond or two, so that a command briefer than one interval is still seen;
      // for kYoungSeconds only: a command that publishes nothing by then (one without the
      // preload: static, setuid) is not polled that often for the rest of its run.
      timespec pause{0, kFindCommandNs};
      if (!g_child_exited) nanosleep(&pause, nullptr);
      continue;
    }
    sleep_until_next(start_ns, interval_ns);
  }
  signal(SIGCHLD, SIG_DFL);
  rec.finish(last, exit_status);
  close(fd);
  return have_command ? exit_status : 0;
}

}  // namespace pg::tool
