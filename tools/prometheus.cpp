// Renders the figures of processes in the Prometheus text format or OpenMetrics
// (tools/prometheus.h). Families are collected first, in the order they are first met, so that
// every sample of a family follows its HELP and TYPE lines whatever the number of processes.
#include "tools/prometheus.h"

#include <cstdio>
#include <map>

#include "base/format.h"
#include "tools/text.h"

namespace pg::tool {

namespace {

enum class Kind { kGauge, kCounter };

// The unit OpenMetrics's UNIT line gives a family: the one its name ends in, since the spec wants
// the unit to be the name's suffix after an underscore (a counter's name taken without _total).
// Only bytes and seconds: a ratio is no unit here (resident_to_live_ratio exceeds 1).
const char* unit_of(const std::string& family) {
  for (const char* unit : {"bytes", "seconds"}) {
    std::string suffix = std::string("_") + unit;
    if (family.size() > suffix.size() &&
        family.compare(family.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return unit;
    }
  }
  return nullptr;
}

struct Family {
  std::string name;  // without _total for a counter
  Kind kind;
  const char* help;
  std::string samples;
};

class Families {
 public:
  // One sample of family `name` (a counter's name without _total) with labels `labels`
  // ("pid=\"1\",comm=\"x\"") and value `v`, integer or not.
  void add(const char* name, Kind kind, const char* help, const std::string& labels,
           const std::string& v) {
    auto [it, fresh] = index_.emplace(name, families_.size());
    if (fresh) families_.push_back(Family{name, kind, help, {}});
    Family& f = families_[it->second];
    f.samples += f.name + (kind == Kind::kCounter ? "_total" : "") +
                 (labels.empty() ? "" : "{" + labels + "}") + " " + v + "\n";
  }
  std::string render(MetricsFormat format) const {
    std::string out;
    bool om = format == MetricsFormat::kOpenMetrics;
    for (const Family& f : families_) {
      // 0.0.4 names a counter's family as its samples (what Prometheus's client libraries do);
      // OpenMetrics names it without the suffix.
      std::string family = f.name + (f.kind == Kind::kCounter && !om ? "_total" : "");
      out += "# HELP " + family + " " + f.help + "\n";
      out += "# TYPE " + family + (f.kind == Kind::kCounter ? " counter\n" : " gauge\n");
      // 0.0.4 has no UNIT line (Prometheus would read it as a comment, promtool as an error).
      if (const char* unit = unit_of(f.name); om && unit != nullptr) {
        out += "# UNIT " + family + " " + unit + "\n";
      }
      out += f.samples;
    }
    if (om) out += "# EOF\n";
    return out;
  }

 private:
  std::vector<Family> families_;
  std::map<std::string, size_t> index_;
};

std::string integer(uint64_t v) {
  return std::to_string(v);
}

std::string real(double v) {
  char b[32];
  snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// A time in seconds since the epoch, to the clock tick that /proc counts start times in.
std::string epoch_seconds(double v) {
  char b[32];
  snprintf(b, sizeof b, "%.2f", v);
  return b;
}

void add_process(Families& fams, const Reading& r) {
  const Figures& s = r.fig;
  Derived d = derive(s);
  std::string labels =
      "pid=\"" + std::to_string(s.pid) + "\",comm=" + metrics_label_value(r.proc.comm);
  auto gauge = [&](const char* name, const char* help, uint64_t v) {
    fams.add(name, Kind::kGauge, help, labels, integer(v));
  };
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    fams.add(name, Kind::kCounter, help, labels, integer(v));
  };
  auto ratio_gauge = [&](const char* name, const char* help, double v) {
    fams.add(name, Kind::kGauge, help, labels, real(v));
  };
  uint64_t large_live = s.large_allocs >= s.large_frees ? s.large_allocs - s.large_frees : 0;
  // Per size class: only the classes used so far (a class's series starts with its first block).
  for (uint32_t i = 0; i < s.num_classes; ++i) {
    const auto& c = s.classes[i];
    if (c.allocs == 0 && c.pools == 0) continue;
    std::string cl = labels + ",class=\"" + integer(c.block_size) + "\"";
    auto cg = [&](const char* name, const char* help, uint64_t v) {
      fams.add(name, Kind::kGauge, help, cl, integer(v));
    };
    auto cc = [&](const char* name, const char* help, uint64_t v) {
      fams.add(name, Kind::kCounter, help, cl, integer(v));
    };
    cc("poolguard_class_allocations",
       "Allocations served by the size class (label class: its block size in bytes).", c.allocs);
    cc("poolguard_class_frees", "Blocks of the size class freed.", c.frees);
    cc("poolguard_class_requested_bytes",
       "Bytes asked for by all the allocations of the size class.", c.requested_bytes);
    cg("poolguard_class_live_blocks", "Blocks of the size class in use.", c.live_blocks);
    cg("poolguard_class_held_bytes",
       "Bytes of the size class's blocks in use (block size times live blocks).", c.held_bytes);
    cg("poolguard_class_pools", "Pools carved for the size class.", c.pools);
    cg("poolguard_class_free_blocks", "Blocks not in use inside the size class's pools.",
       c.free_blocks);
  }
  counter("poolguard_small_allocations", "Allocations served from pools.", s.small_allocs);
  counter("poolguard_small_frees", "Pool blocks freed.", s.small_frees);
  gauge("poolguard_small_live_blocks", "Pool blocks in use.", d.small_live_blocks);
  gauge("poolguard_small_held_bytes", "Bytes of the pool blocks in use.", d.small_held);
  gauge("poolguard_small_peak_bytes", "Highest bytes held in pool blocks so far.",
        s.peak_small_bytes);
  counter("poolguard_large_allocations", "Large blocks allocated (mapped on their own).",
          s.large_allocs);
  counter("poolguard_large_frees", "Large blocks freed.", s.large_frees);
  gauge("poolguard_large_live_blocks", "Large blocks in use.", large_live);
  gauge("poolguard_large_live_bytes", "Usable bytes of the large blocks in use.",
        s.large_live_bytes);
  // arenas_mapped counts arenas brought into use since the start, a released one taken again
  // included (base/segment.h): a counter, of which in_use is mapped - released.
  counter("poolguard_arenas_mapped", "Arenas taken from the OS, a released one taken again too.",
          s.arenas_mapped);
  gauge("poolguard_arenas_in_use", "Arenas holding pools now, and the empty spare.",
        s.arenas_in_use);
  counter("poolguard_arenas_released", "Arenas given back to the OS.", s.arenas_released);
  // Arenas are never unmapped (a released one keeps its address for reuse), so this never falls;
  // still a gauge: how many of the arenas are outside the reservation now.
  gauge("poolguard_arenas_fallback", "Arenas outside the reserved address range.",
        s.fallback_arenas);
  gauge("poolguard_reserved_bytes", "Address space reserved for arenas.", s.reserved_bytes);
  gauge("poolguard_pools_in_use", "Pools carved for a size class.", s.pools_in_use);
  counter("poolguard_pools_purged", "Free pools whose pages were returned to the OS.",
          s.pools_purged);
  gauge("poolguard_resident_bytes", "Resident set size of the process.", s.rss_bytes);
  counter("poolguard_thread_heaps", "Thread heaps created (one per thread that allocated).",
          s.threads);
  // The standard process_start_time_seconds, per process. No _created for the counters: a fork
  // child's counts continue its parent's and an exec starts them again, so neither is this time;
  // and Prometheus 2.x stores _created lines as series of their own.
  if (r.start_seconds > 0) {
    fams.add("poolguard_process_start_time_seconds", Kind::kGauge,
             "When the process started, in seconds since the epoch.", labels,
             epoch_seconds(r.start_seconds));
  }
  gauge("poolguard_limit_bytes", "The heap limit (0: none).", s.limit_bytes);
  gauge("poolguard_limit_in_use_bytes", "Bytes charged against the limit.", s.limit_in_use);
  gauge("poolguard_limit_peak_bytes", "Highest bytes charged against the limit so far.",
        s.limit_peak);
  counter("poolguard_limit_refused", "Allocations refused by the limit.", s.limit_refused);
  counter("poolguard_guard_events", "Guard zone events (corrupted or touched guards).",
          s.guard_events);
  counter("poolguard_double_frees", "Double frees detected.", s.double_frees);
  counter("poolguard_invalid_frees", "Frees of pointers poolguard never returned.",
          s.invalid_frees);
  counter("poolguard_corruptions", "Corrupted blocks or metadata detected.", s.corruptions);
  gauge("poolguard_internal_fragmentation_bytes",
        "Bytes of pool blocks beyond their requests (mean request per class).", d.internal_bytes);
  ratio_gauge("poolguard_internal_fragmentation_ratio",
              "Internal fragmentation over the bytes held in pools.",
              ratio(d.internal_bytes, d.small_held));
  gauge("poolguard_free_block_bytes", "Bytes of free blocks inside pools in use.",
        d.free_block_bytes);
  gauge("poolguard_free_pool_bytes", "Bytes of free pools inside arenas in use.",
        d.free_pools * s.pool_size);
  gauge("poolguard_free_pools_resident", "Free pools in arenas in use whose pages are resident.",
        d.free_pools_dirty);
  gauge("poolguard_free_pools_returned", "Free pools in arenas in use returned to the OS.",
        d.free_pools_clean);
  gauge("poolguard_pool_overhead_bytes", "Pool headers and the tails no block fits in.",
        d.pool_overhead);
  gauge("poolguard_arena_bytes", "Bytes of the arenas in use.", d.arena_bytes);
  ratio_gauge("poolguard_external_fragmentation_ratio",
              "Free block and free pool bytes over the arena bytes.",
              ratio(d.free_block_bytes + d.free_pools * s.pool_size, d.arena_bytes));
  gauge("poolguard_live_bytes", "Bytes of pool and large blocks in use.", d.live_bytes);
  ratio_gauge("poolguard_resident_to_live_ratio", "Resident set size over the live bytes.",
              ratio(s.rss_bytes, d.live_bytes));
}

}  // namespace

const char* metrics_content_type(MetricsFormat f) {
  return f == MetricsFormat::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

std::string metrics_label_value(const std::string& s) {
  std::string out = "\"";
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.c_str());
  const unsigned char* end = p + s.size();
  while (p < end) {
    // utf8_sequence stops at the string's terminating NUL, so a sequence cut by the end is bad.
    size_t n = *p == 0 ? 0 : pg::utf8_sequence(p);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++p;
    } else if (*p == '\\') {
      out += "\\\\", ++p;
    } else if (*p == '"') {
      out += "\\\"", ++p;
    } else if (*p == '\n') {
      out += "\\n", ++p;
    } else {
      out.append(reinterpret_cast<const char*>(p), n);
      p += n;
    }
  }
  return out + "\"";
}

std::string render_metrics(const std::vector<Reading>& readings, MetricsFormat f) {
  Families fams;
  fams.add("poolguard_processes", Kind::kGauge,
           "Processes whose statistics this scrape read (the caller's, that publish them).", "",
           integer(readings.size()));
  for (const Reading& r : readings) add_process(fams, r);
  return fams.render(f);
}

}  // namespace pg::tool
