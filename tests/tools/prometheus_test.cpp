// The Prometheus exposition of hand-made figures (tools/prometheus.*): families grouped with one
// HELP and TYPE each, counters' names in each format, values from the figures, label escaping, and
// OpenMetrics's rules (UNIT, counter families, name clashes, # EOF) checked by a strict reader of
// its own that is shown to reject each kind of broken text.
#include "tools/prometheus.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace pg::tool {
namespace {

Reading make(int pid, const std::string& comm, uint64_t small_allocs) {
  Reading r;
  r.fig.pid = pid;
  r.proc.pid = pid;
  r.proc.comm = comm;
  r.fig.num_classes = 2;
  r.fig.pool_size = 65536;
  r.fig.classes[0].block_size = 16;
  r.fig.classes[0].allocs = small_allocs;
  r.fig.classes[0].frees = 1;
  r.fig.classes[0].live_blocks = small_allocs - 1;
  r.fig.classes[0].held_bytes = 16 * (small_allocs - 1);
  r.fig.classes[0].pools = 1;
  r.fig.classes[1].block_size = 32;  // never used: no series
  r.fig.small_allocs = small_allocs;
  r.fig.small_frees = 1;
  r.fig.large_allocs = 5;
  r.fig.large_frees = 2;
  r.fig.large_live_bytes = 3 << 20;
  r.fig.limit_bytes = 1 << 30;
  r.fig.double_frees = 7;
  r.fig.arenas_mapped = 4;
  r.fig.arenas_released = 1;
  r.fig.arenas_in_use = 3;
  r.fig.threads = 6;
  r.start_seconds = 1700000000.25;
  return r;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// --- A strict reader of OpenMetrics 1.0's text format ------------------------------------------
// The rules of the spec's text format that poolguard's output is subject to, one message per
// violation (empty: none). Line by line: only HELP, TYPE and UNIT metadata and samples, a family's
// metadata once each and before its samples, all of a family together, counters named without
// _total and sampled as NAME_total, a gauge sampled under its own name, a UNIT that is the name's
// suffix, no sample name that another family could produce, quoted and escaped UTF-8 label values,
// numbers as the ABNF writes them, and "# EOF" last.

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct OmFamily {
  std::string type, unit;
  int helps = 0, types = 0, units = 0;
  bool sampled = false;
  std::set<std::string> series;  // name and labels of each sample
};

std::vector<std::string> openmetrics_violations(const std::string& text) {
  static const std::regex meta(R"(^# (HELP|TYPE|UNIT) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$)");
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$)");
  static const std::regex number(
      R"(^([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|NaN|[+-]?Inf)$)");
  static const std::set<std::string> types = {"counter",  "gauge", "histogram", "gaugehistogram",
                                              "stateset", "info",  "summary",   "unknown"};
  std::vector<std::string> bad;
  std::map<std::string, OmFamily> fams;
  std::vector<std::string> order;  // families in the order they start
  if (!ends_with(text, "# EOF\n")) bad.push_back("does not end with \"# EOF\\n\"");
  std::istringstream in(text);
  std::string line, current;
  bool eof = false;
  // The family a sample name belongs to: its own for a gauge, NAME for NAME_total and
  // NAME_created of a counter.
  auto family_of = [&](const std::string& name) -> std::string {
    for (const char* suffix : {"_total", "_created"}) {
      if (ends_with(name, suffix)) {
        std::string base = name.substr(0, name.size() - strlen(suffix));
        if (fams.count(base) && fams[base].type == "counter") return base;
      }
    }
    return name;
  };
  auto enter = [&](const std::string& family, const std::string& l) {
    if (family == current) return;
    if (fams.count(family)) bad.push_back("family " + family + " split: " + l);
    current = family;
    order.push_back(family);
  };
  while (std::getline(in, line)) {
    std::smatch m;
    if (eof) {
      bad.push_back("a line after # EOF: " + line);
    } else if (line == "# EOF") {
      eof = true;
    } else if (std::regex_match(line, m, meta)) {
      std::string kind = m[1], family = m[2], rest = m[3];
      enter(family, line);
      OmFamily& f = fams[family];
      if (f.sampled) bad.push_back("metadata after the samples of " + family);
      if (kind == "HELP") {
        ++f.helps;
        for (size_t i = 0; i < rest.size(); ++i) {
          if (rest[i] == '\\' && (i + 1 == rest.size() || !strchr("\\\"n", rest[++i]))) {
            bad.push_back("bad escape in HELP of " + family);
          }
        }
        if (!valid_utf8(rest)) bad.push_back("HELP of " + family + " not UTF-8");
      } else if (kind == "TYPE") {
        ++f.types;
        f.type = rest;
        if (!types.count(rest)) bad.push_back("unknown type " + rest + " of " + family);
        if (rest == "counter" && ends_with(family, "_total")) {
          bad.push_back("counter family named with _total: " + family);
        }
      } else {
        ++f.units;
        f.unit = rest;
        if (!rest.empty() && !ends_with(family, "_" + rest)) {
          bad.push_back("unit " + rest + " not the suffix of " + family);
        }
      }
    } else if (std::regex_match(line, m, sample)) {
      std::string name = m[1], labels = m[2], value = m[3];
      std::string family = family_of(name);
      enter(family, line);
      OmFamily& f = fams[family];
      f.sampled = true;
      if (f.type.empty()) bad.push_back("sample before its family's TYPE: " + line);
      if (f.type == "counter" && name != family + "_total" && name != family + "_created") {
        bad.push_back("counter sample not NAME_total: " + line);
      }
      if (!std::regex_match(value, number)) bad.push_back("not a number: " + line);
      if (f.type == "counter" && (value == "NaN" || value[0] == '-')) {
        bad.push_back("counter below zero or NaN: " + line);
      }
      // Labels: name="value" pairs, comma separated, the value's escapes \\ \" \n only.
      std::set<std::string> names;
      size_t i = labels.empty() ? 0 : 1, end = labels.empty() ? 0 : labels.size() - 1;
      while (i < end) {
        size_t eq = labels.find('=', i);
        std::string lname = labels.substr(i, eq == std::string::npos ? eq : eq - i);
        if (!std::regex_match(lname, std::regex("[a-zA-Z_][a-zA-Z0-9_]*")) ||
            lname.rfind("__", 0) == 0 || !names.insert(lname).second) {
          bad.push_back("bad or repeated label name '" + lname + "': " + line);
          break;
        }
        if (eq == std::string::npos || eq + 1 >= end || labels[eq + 1] != '"') {
          bad.push_back("label " + lname + " not quoted: " + line);
          break;
        }
        std::string v;
        i = eq + 2;
        while (i < end && labels[i] != '"') {
          if (labels[i] == '\\') {
            if (i + 1 >= end || !strchr("\\\"n", labels[i + 1])) {
              bad.push_back("bad escape in label " + lname + ": " + line);
            }
            i += 2;
          } else {
            v += labels[i++];
          }
        }
        if (i >= end) {
          bad.push_back("label " + lname + " not closed: " + line);
          break;
        }
        if (!valid_utf8(v)) bad.push_back("label " + lname + " not UTF-8: " + line);
        ++i;
        if (i < end && labels[i++] != ',') {
          bad.push_back("no comma after label " + lname + ": " + line);
          break;
        }
      }
      if (!f.series.insert(name + labels).second) bad.push_back("repeated series: " + line);
    } else {
      bad.push_back("neither metadata nor a sample: '" + line + "'");
    }
  }
  for (const std::string& name : order) {
    const OmFamily& f = fams[name];
    if (f.helps > 1 || f.types > 1 || f.units > 1) bad.push_back("metadata repeated: " + name);
    if (f.types == 0) bad.push_back("no TYPE for " + name);
    // Names no other family may take: a counter's NAME_total and NAME_created.
    if (f.type == "counter") {
      for (const char* suffix : {"_total", "_created"}) {
        if (fams.count(name + suffix)) bad.push_back("family " + name + suffix + " clashes");
      }
    }
  }
  return bad;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += s + "\n";
  return out;
}

TEST(Prometheus, FamiliesAreGroupedWithOneHelpAndType) {
  std::string t =
      render_metrics({make(11, "a", 10), make(22, "b", 20)}, MetricsFormat::kPrometheus);
  std::map<std::string, int> helps, types;
  std::string current;  // the family of the last TYPE line
  for (const std::string& l : lines(t)) {
    ASSERT_FALSE(l.empty());
    if (l.rfind("# HELP ", 0) == 0) {
      ++helps[l.substr(7, l.find(' ', 7) - 7)];
    } else if (l.rfind("# TYPE ", 0) == 0) {
      current = l.substr(7, l.find(' ', 7) - 7);
      ++types[current];
    } else {
      // A sample of the family just declared, and of no other.
      std::string name = l.substr(0, l.find_first_of("{ "));
      EXPECT_EQ(name, current) << l;
    }
  }
  EXPECT_EQ(helps, types);
  for (const auto& [name, n] : types) EXPECT_EQ(n, 1) << name;
  EXPECT_EQ(types.count("poolguard_small_allocations_total"), 1u);
  EXPECT_NE(t.find("# TYPE poolguard_small_allocations_total counter\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE poolguard_large_live_bytes gauge\n"), std::string::npos);
  EXPECT_EQ(t.find("# EOF"), std::string::npos);
}

TEST(Prometheus, ValuesComeFromTheFigures) {
  std::string t =
      render_metrics({make(11, "a", 10), make(22, "b", 20)}, MetricsFormat::kPrometheus);
  EXPECT_NE(t.find("\npoolguard_processes 2\n"), std::string::npos);
  EXPECT_NE(t.find("\npoolguard_small_allocations_total{pid=\"11\",comm=\"a\"} 10\n"),
            std::string::npos);
  EXPECT_NE(t.find("\npoolguard_small_allocations_total{pid=\"22\",comm=\"b\"} 20\n"),
            std::string::npos);
  EXPECT_NE(t.find("\npoolguard_class_live_blocks{pid=\"22\",comm=\"b\",class=\"16\"} 19\n"),
            std::string::npos);
  EXPECT_NE(t.find("\npoolguard_class_held_bytes{pid=\"11\",comm=\"a\",class=\"16\"} 144\n"),
            std::string::npos);
  EXPECT_EQ(t.find("class=\"32\""), std::string::npos);  // a class never used
  EXPECT_NE(t.find("\npoolguard_large_live_blocks{pid=\"11\",comm=\"a\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("\npoolguard_large_live_bytes{pid=\"11\",comm=\"a\"} 3145728\n"),
            std::string::npos);
  EXPECT_NE(t.find("\npoolguard_limit_bytes{pid=\"11\",comm=\"a\"} 1073741824\n"),
            std::string::npos);
  EXPECT_NE(t.find("\npoolguard_double_frees_total{pid=\"22\",comm=\"b\"} 7\n"), std::string::npos);
}

TEST(Prometheus, NoProcessesStillSaysSo) {
  EXPECT_EQ(render_metrics({}, MetricsFormat::kPrometheus),
            "# HELP poolguard_processes Processes whose statistics this scrape read (the "
            "caller's, that publish them).\n# TYPE poolguard_processes gauge\n"
            "poolguard_processes 0\n");
}

TEST(Prometheus, OpenMetricsNamesCounterFamiliesWithoutTotalAndEnds) {
  std::string t = render_metrics({make(11, "a", 10)}, MetricsFormat::kOpenMetrics);
  EXPECT_NE(t.find("# TYPE poolguard_small_allocations counter\n"), std::string::npos);
  EXPECT_NE(t.find("\npoolguard_small_allocations_total{pid=\"11\",comm=\"a\"} 10\n"),
            std::string::npos);
  EXPECT_EQ(t.find("_total counter"), std::string::npos);
  ASSERT_GE(t.size(), 6u);
  EXPECT_EQ(t.substr(t.size() - 6), "# EOF\n");
}

TEST(Prometheus, LabelValuesAreEscapedAndUtf8) {
  EXPECT_EQ(metrics_label_value("plain"), "\"plain\"");
  EXPECT_EQ(metrics_label_value("a\\b\"c\nd"), "\"a\\\\b\\\"c\\nd\"");
  EXPECT_EQ(metrics_label_value("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // valid UTF-8 kept
  EXPECT_EQ(metrics_label_value("x\xff"
                                "y"),
            "\"x\xef\xbf\xbdy\"");                               // a stray byte
  EXPECT_EQ(metrics_label_value("x\xc3"), "\"x\xef\xbf\xbd\"");  // cut by the end
  EXPECT_EQ(metrics_label_value(std::string("a\0b", 3)),
            "\"a\xef\xbf\xbd"
            "b\"");
  std::string t = render_metrics({make(3, "we\"ird\\\n\xfe", 2)}, MetricsFormat::kPrometheus);
  EXPECT_NE(t.find("{pid=\"3\",comm=\"we\\\"ird\\\\\\n\xef\xbf\xbd\"}"), std::string::npos);
}

TEST(OpenMetrics, OutputKeepsTheSpecsRules) {
  Reading odd = make(3, "we\"ird\\\n\xfe", 2);
  odd.start_seconds = 0;  // unknown: no start time series
  std::string t =
      render_metrics({make(11, "a", 10), make(22, "b", 20), odd}, MetricsFormat::kOpenMetrics);
  EXPECT_EQ(joined(openmetrics_violations(t)), "") << t;
  EXPECT_EQ(joined(openmetrics_violations(render_metrics({}, MetricsFormat::kOpenMetrics))), "");
}

TEST(OpenMetrics, UnitLinesNameTheSuffix) {
  std::string t = render_metrics({make(11, "a", 10)}, MetricsFormat::kOpenMetrics);
  EXPECT_NE(t.find("# TYPE poolguard_large_live_bytes gauge\n"
                   "# UNIT poolguard_large_live_bytes bytes\n"),
            std::string::npos);
  // A counter's family, and so its UNIT line, is named without _total.
  EXPECT_NE(t.find("# TYPE poolguard_class_requested_bytes counter\n"
                   "# UNIT poolguard_class_requested_bytes bytes\n"),
            std::string::npos);
  EXPECT_NE(t.find("# UNIT poolguard_process_start_time_seconds seconds\n"), std::string::npos);
  // Every family whose name ends in a unit has its UNIT line; no other has one.
  std::set<std::string> with_unit, families;
  for (const std::string& l : lines(t)) {
    if (l.rfind("# TYPE ", 0) == 0) families.insert(l.substr(7, l.find(' ', 7) - 7));
    if (l.rfind("# UNIT ", 0) == 0) with_unit.insert(l.substr(7, l.find(' ', 7) - 7));
  }
  for (const std::string& f : families) {
    bool unit_named = ends_with(f, "_bytes") || ends_with(f, "_seconds");
    EXPECT_EQ(with_unit.count(f), unit_named ? 1u : 0u) << f;
  }
  EXPECT_GE(with_unit.size(), 15u);
  // The 0.0.4 text format has no UNIT line.
  EXPECT_EQ(render_metrics({make(11, "a", 10)}, MetricsFormat::kPrometheus).find("# UNIT"),
            std::string::npos);
}

// The reader above rejects each kind of broken text: it is not a check that passes anything.
TEST(OpenMetrics, TheStrictReaderRejectsBrokenText) {
  const char* ok =
      "# HELP a_bytes A.\n# TYPE a_bytes gauge\n# UNIT a_bytes bytes\na_bytes{x=\"1\"} 2\n"
      "# TYPE c counter\nc_total 3\n# EOF\n";
  EXPECT_EQ(joined(openmetrics_violations(ok)), "");
  const std::vector<std::pair<std::string, std::string>> broken = {
      {"# TYPE c counter\nc_total 1\n", "does not end"},
      {"# TYPE c counter\nc_total 1\n# EOF\nc_total 2\n", "after # EOF"},
      {"# TYPE c_total counter\nc_total_total 1\n# EOF\n", "counter family named with _total"},
      {"# TYPE c counter\nc 1\n# EOF\n", "counter sample not NAME_total"},
      {"# TYPE g gauge\ng_total 1\n# EOF\n", "no TYPE for g_total"},
      {"# TYPE a_bytes gauge\n# UNIT a_bytes seconds\na_bytes 1\n# EOF\n", "not the suffix"},
      {"# TYPE abytes gauge\n# UNIT abytes bytes\nabytes 1\n# EOF\n", "not the suffix"},
      {"g 1\n# TYPE g gauge\n# EOF\n", "before its family's TYPE"},
      {"# TYPE g gauge\ng 1\n# HELP g G.\n# EOF\n", "metadata after the samples"},
      {"# TYPE g gauge\ng{a=\"1\"} 1\n# TYPE h gauge\nh 1\ng{a=\"2\"} 1\n# EOF\n", "split"},
      {"# TYPE g gauge\n# TYPE g gauge\ng 1\n# EOF\n", "metadata repeated"},
      {"# TYPE c counter\nc_total 1\n# TYPE c_total gauge\n# EOF\n", "clashes"},
      {"# TYPE g gauge\ng{a=\"x\\ty\"} 1\n# EOF\n", "bad escape in label"},
      {"# TYPE g gauge\ng{a=\"\xff\"} 1\n# EOF\n", "not UTF-8"},
      {"# TYPE g gauge\ng{a=1} 1\n# EOF\n", "not quoted"},
      {"# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n# EOF\n", "repeated label"},
      {"# TYPE g gauge\ng 1\ng 2\n# EOF\n", "repeated series"},
      {"# TYPE g gauge\ng one\n# EOF\n", "not a number"},
      {"# TYPE c counter\nc_total -1\n# EOF\n", "below zero"},
      {"# TYPE g gauge\n# just a comment\ng 1\n# EOF\n", "neither metadata nor a sample"},
      {"# TYPE g nonsense\ng 1\n# EOF\n", "unknown type"},
      {"# HELP g a\\q\n# TYPE g gauge\ng 1\n# EOF\n", "bad escape in HELP"},
  };
  for (const auto& [text, why] : broken) {
    std::string found = joined(openmetrics_violations(text));
    EXPECT_NE(found.find(why), std::string::npos) << "text:\n" << text << "found:\n" << found;
  }
}

// The counters are the figures the segment keeps as totals since the start (base/segment.h),
// which never fall in a process's life; every other figure is a gauge.
TEST(Prometheus, CountersAreTheTotalsSinceTheStart) {
  std::string t = render_metrics({make(11, "a", 10)}, MetricsFormat::kPrometheus);
  std::set<std::string> counters;
  for (const std::string& l : lines(t)) {
    if (l.rfind("# TYPE ", 0) == 0 && ends_with(l, " counter")) {
      counters.insert(l.substr(7, l.find(' ', 7) - 7));
    }
  }
  EXPECT_EQ(counters,
            (std::set<std::string>{
                "poolguard_class_allocations_total", "poolguard_class_frees_total",
                "poolguard_class_requested_bytes_total", "poolguard_small_allocations_total",
                "poolguard_small_frees_total", "poolguard_large_allocations_total",
                "poolguard_large_frees_total", "poolguard_arenas_mapped_total",
                "poolguard_arenas_released_total", "poolguard_pools_purged_total",
                "poolguard_thread_heaps_total", "poolguard_limit_refused_total",
                "poolguard_guard_events_total", "poolguard_double_frees_total",
                "poolguard_invalid_frees_total", "poolguard_corruptions_total"}));
  EXPECT_NE(t.find("\npoolguard_arenas_mapped_total{pid=\"11\",comm=\"a\"} 4\n"),
            std::string::npos);
  EXPECT_NE(t.find("\npoolguard_arenas_in_use{pid=\"11\",comm=\"a\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("\npoolguard_thread_heaps_total{pid=\"11\",comm=\"a\"} 6\n"), std::string::npos);
}

TEST(Prometheus, StartTimeWhenKnown) {
  std::string t = render_metrics({make(11, "a", 10)}, MetricsFormat::kPrometheus);
  EXPECT_NE(t.find("# TYPE poolguard_process_start_time_seconds gauge\n"), std::string::npos);
  EXPECT_NE(t.find("\npoolguard_process_start_time_seconds{pid=\"11\",comm=\"a\"} "
                   "1700000000.25\n"),
            std::string::npos);
  Reading unknown = make(11, "a", 10);
  unknown.start_seconds = 0;
  EXPECT_EQ(render_metrics({unknown}, MetricsFormat::kPrometheus).find("start_time"),
            std::string::npos);
}

}  // namespace
}  // namespace pg::tool
