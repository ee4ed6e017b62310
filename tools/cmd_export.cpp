// `poolguard export`: the figures of the caller's processes (or one) in the Prometheus text
// format, printed once, written for node_exporter's textfile collector, or served over HTTP to a
// scraper (a minimal blocking server, one connection at a time, each given 5 seconds).
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "stats/reader.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/listen_address.h"
#include "tools/prometheus.h"
#include "tools/reading.h"

namespace pg::tool {

namespace {

const char kExportUsage[] =
    "usage: poolguard export [PID | --all] [--listen [ADDR:]PORT | --textfile DIR [--interval "
    "SECONDS]]\n"
    "\n"
    "Exports the statistics of every process of yours (all of them, for root) that publishes\n"
    "them, or of process PID only, as Prometheus metrics: one series per process (labels pid,\n"
    "comm) and size class (label class). Each output reads the processes anew.\n"
    "  (no mode)             print them once on stdout\n"
    "  --listen [ADDR:]PORT  serve them over HTTP at /metrics until interrupted (ADDR: an IPv4\n"
    "                        address, or an IPv6 one in brackets: [::1]; [::] is every\n"
    "                        interface, IPv4 too; 127.0.0.1 when omitted; --listen alone:\n"
    "                        127.0.0.1:9464; PORT 0: any free port, which the first line on\n"
    "                        stderr names); OpenMetrics when the scraper asks for it\n"
    "  --textfile DIR        write them to DIR/poolguard.prom (a temporary file renamed over it)\n"
    "                        for node_exporter's textfile collector\n"
    "  --interval SECONDS    with --textfile: rewrite it every SECONDS until interrupted\n"
    "Exit status 1 when PID cannot be read, DIR cannot be written or ADDR:PORT cannot be bound.\n";

constexpr int kDefaultPort = 9464;
// A request's line and headers larger than this are refused; scrapers send a few hundred bytes.
constexpr size_t kMaxRequest = 16384;
constexpr int kSocketTimeoutSeconds = 5;

volatile sig_atomic_t g_stop = 0;

void on_stop(int) {
  g_stop = 1;
}

// SIGINT and SIGTERM end the command; without SA_RESTART, accept and sleeps return at once.
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Reads one process without retrying or printing: it may have just exited.
bool read_quietly(int pid, Reading* r) {
  SegmentReader reader;
  std::string why;
  if (reader.open(pid, &why) != OpenStatus::kOk) return false;
  read_open(reader, r);
  return true;
}

// The readings of process `pid` (when > 0) or of every readable publisher.
std::vector<Reading> collect(int pid) {
  std::vector<Reading> out;
  for (int p : pid > 0 ? std::vector<int>{pid} : pg::stats::segment_pids()) {
    Reading r;
    if (read_quietly(p, &r)) out.push_back(std::move(r));
  }
  return out;
}

void sleep_seconds(double s) {
  timespec ts{static_cast<time_t>(s), static_cast<long>((s - std::floor(s)) * 1e9)};
  while (!g_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Writes `text` to DIR/poolguard.prom through a temporary file in DIR renamed over it, so the
// collector never reads half a file. 0 on success, else 1 (message printed).
int write_textfile(const std::string& dir, const std::string& text) {
  std::string final_path = dir + "/poolguard.prom";
  // Not ending in .prom: the collector ignores it while it is written.
  std::string tmp = dir + "/.poolguard.prom." + std::to_string(getpid()) + ".tmp";
  int fd = -1;
  for (int attempt = 0; attempt < 2 && fd < 0; ++attempt) {
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    // Left by an earlier run with our pid that was killed mid-write: ours to replace.
    if (fd < 0 && errno == EEXIST && attempt == 0) unlink(tmp.c_str());
  }
  if (fd < 0) {
    fprintf(stderr, "poolguard: cannot create %s: %s\n", tmp.c_str(), strerror(errno));
    return 1;
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  int write_errno = errno;
  if (close(fd) != 0 && done == text.size()) done = 0, write_errno = errno;
  if (done != text.size() || rename(tmp.c_str(), final_path.c_str()) != 0) {
    if (done == text.size()) write_errno = errno;
    fprintf(stderr, "poolguard: cannot write %s: %s\n", final_path.c_str(), strerror(write_errno));
    unlink(tmp.c_str());
    return 1;
  }
  return 0;
}

bool send_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR && !g_stop) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::string response(const char* status, const char* type, const std::string& body) {
  return std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

// Whether the request's headers carry an Accept that names OpenMetrics.
bool wants_openmetrics(const std::string& head) {
  size_t line = head.find("\r\n");
  while (line != std::string::npos && line + 2 < head.size()) {
    size_t next = head.find("\r\n", line + 2);
    std::string h = head.substr(line + 2, next == std::string::npos ? next : next - line - 2);
    if (strncasecmp(h.c_str(), "accept:", 7) == 0 &&
        h.find("application/openmetrics-text") != std::string::npos) {
      return true;
    }
    line = next;
  }
  return false;
}

// Answers one connection: reads the request line and headers (with a cap and a timeout), then
// GET /metrics gets the metrics read now, anything else 404 (400 for a request not understood).
void serve_one(int fd, int pid) {
  timeval tv{kSocketTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // One deadline for the whole request: a client sending a byte at a time cannot hold the
  // server (the only one serving) longer than that.
  uint64_t deadline = pg::stats::monotonic_ns() + kSocketTimeoutSeconds * 1000000000ull;
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < kMaxRequest) {
    uint64_t now = pg::stats::monotonic_ns();
    if (now >= deadline) return;
    uint64_t left_us = (deadline - now) / 1000 + 1;
    tv = timeval{static_cast<time_t>(left_us / 1000000),
                 static_cast<suseconds_t>(left_us % 1000000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR && !g_stop) continue;
    if (n <= 0) return;  // closed, timed out or interrupted: nothing to answer
    head.append(buf, static_cast<size_t>(n));
  }
  const char* text = "text/plain; charset=utf-8";
  size_t end = head.find("\r\n\r\n");
  if (end == std::string::npos) {
    send_all(fd, response("431 Request Header Fields Too Large", text, "request too large\n"));
    return;
  }
  head.resize(end + 2);
  size_t sp1 = head.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : head.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || head.compare(sp2 + 1, 5, "HTTP/") != 0) {
    send_all(fd, response("400 Bad Request", text, "bad request\n"));
    return;
  }
  std::string method = head.substr(0, sp1), target = head.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string path = target.substr(0, target.find('?'));
  if (method != "GET" || path != "/metrics") {
    send_all(fd, response("404 Not Found", text, "poolguard serves GET /metrics\n"));
    return;
  }
  MetricsFormat f =
      wants_openmetrics(head) ? MetricsFormat::kOpenMetrics : MetricsFormat::kPrometheus;
  send_all(fd, response("200 OK", metrics_content_type(f), render_metrics(collect(pid), f)));
}

int serve(const ListenAddress& at, int pid) {
  int ls = socket(at.sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0;
  // [::] means every interface, IPv4 included (as for other exporters), whatever the system's
  // default (net.ipv6.bindv6only); for a specific IPv6 address it changes nothing.
  bool ok = ls >= 0 && setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            (at.sa.ss_family != AF_INET6 ||
             setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) == 0) &&
            bind(ls, reinterpret_cast<const sockaddr*>(&at.sa), at.len) == 0 && listen(ls, 16) == 0;
  if (!ok) {
    fprintf(stderr, "poolguard: cannot listen on %s:%d: %s\n", at.host.c_str(), at.port,
            strerror(errno));
    if (ls >= 0) close(ls);
    return 1;
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(ls, reinterpret_cast<sockaddr*>(&bound), &len);
  int port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  fprintf(stderr, "poolguard: serving metrics on http://%s:%d/metrics\n", at.host.c_str(), port);
  fflush(stderr);
  catch_stop_signals();
  while (!g_stop) {
    int fd = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {  // out of descriptors: try again a little later
        sleep_seconds(0.1);
        continue;
      }
      fprintf(stderr, "poolguard: accept: %s\n", strerror(errno));
      close(ls);
      return 1;
    }
    serve_one(fd, pid);
    close(fd);
  }
  close(ls);
  return 0;
}

}  // namespace

int cmd_export(const std::vector<std::string>& args) {
  int pid = 0;
  bool have_pid = false, all = false, listen = false;
  std::string listen_at = "127.0.0.1:" + std::to_string(kDefaultPort), textfile;
  double interval = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string a = args[i];
    std::string value;
    if (is_help(a)) return help(kExportUsage);
    if (a == "--all") {
      all = true;
    } else if (is_option(a, "--listen")) {
      listen = true;
      // The address is optional: "--listen=ADDR", or a next argument that is not an option.
      std::string name;
      if (split_eq(a, &name, &value)) {
        listen_at = value;
      } else if (i + 1 < args.size() && !args[i + 1].empty() && args[i + 1][0] != '-') {
        listen_at = args[++i];
      }
    } else if (is_option(a, "--textfile")) {
      if (!option_value(args, &i, &value) || value.empty()) {
        return usage_error(kExportUsage, "--textfile needs DIR");
      }
      textfile = value;
    } else if (is_option(a, "--interval")) {
      if (!option_value(args, &i, &value)) {
        return usage_error(kExportUsage, "--interval needs SECONDS");
      }
      if (!parse_seconds(value, &interval)) {
        return usage_error(kExportUsage, "--interval: not a number of seconds: '" + value + "'");
      }
    } else if (int status = pid_argument(kExportUsage, a, &pid, &have_pid); status != 0) {
      return status;
    }
  }
  if (have_pid && all) return usage_error(kExportUsage, "PID or --all, not both");
  if (listen && !textfile.empty()) {
    return usage_error(kExportUsage, "--listen or --textfile, not both");
  }
  if (interval > 0 && textfile.empty()) {
    return usage_error(kExportUsage, "--interval goes with --textfile");
  }
  ListenAddress at;
  if (listen && !parse_listen_address(listen_at, &at)) {
    return usage_error(kExportUsage,
                       "--listen: not [ADDR:]PORT (IPv4-ADDR or [IPv6-ADDR]): '" + listen_at + "'");
  }
  // A process named on the command line must be readable to begin with; later it may exit.
  if (have_pid) {
    Reading r;
    if (read_one(pid, &r) != 0) return 1;
  }
  if (listen) return serve(at, have_pid ? pid : 0);
  if (textfile.empty()) {
    fputs(render_metrics(collect(have_pid ? pid : 0), MetricsFormat::kPrometheus).c_str(), stdout);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  if (interval > 0) catch_stop_signals();
  do {
    std::string text = render_metrics(collect(have_pid ? pid : 0), MetricsFormat::kPrometheus);
    if (write_textfile(textfile, text) != 0) return 1;
    if (interval > 0) sleep_seconds(interval);
  } while (interval > 0 && !g_stop);
  return 0;
}

}  // namespace pg::tool
