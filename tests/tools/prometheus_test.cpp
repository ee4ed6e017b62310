// The Prometheus exposition of hand-made figures (tools/prometheus.*): families grouped with one
// HELP and TYPE each, counters' names in each format, values from the figures, label escaping.
#include "tools/prometheus.h"

#include <gtest/gtest.h>

#include <map>
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
  return r;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
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

}  // namespace
}  // namespace pg::tool
