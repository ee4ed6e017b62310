#!/usr/bin/python3
"""Tests of `poolguard export`: the Prometheus metrics of a process holding known blocks equal
what `poolguard stat --json` says of it, printed, written as a textfile, served over HTTP (IPv4 and
IPv6) and as a real Prometheus stores them after scraping; `promtool check metrics` on them. The
cases that need Debian's prometheus (prometheus, promtool) fail without it in CI (CI=true, where
scripts/deps.sh installs it) and are skipped elsewhere (exit 77 for a whole case).

    export_test.py CASE --tool POOLGUARD --lib LIBPOOLGUARD --hold PG_STATS_HOLD [--build DIR]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats_test import (Failure, Hold, WAIT, check, clean_env, run_tool, stat_json,  # noqa: E402
                        wait_for)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def parse_labels(text):
    """'pid="1",comm="a\\"b"' -> {"pid": "1", "comm": 'a"b'}."""
    labels, i = {}, 0
    while i < len(text):
        eq = text.index("=", i)
        name, i, value = text[i:eq], eq + 2, ""
        check(text[eq + 1] == '"', "label %s not quoted in %r" % (name, text))
        while text[i] != '"':
            if text[i] == "\\":
                value += {"n": "\n"}.get(text[i + 1], text[i + 1])
                i += 2
            else:
                value += text[i]
                i += 1
        labels[name] = value
        i += 1
        if i < len(text):
            check(text[i] == ",", "no comma after label %s in %r" % (name, text))
            i += 1
    return labels


def parse(text):
    """Exposition text -> ({(name, frozenset(labels)): value}, {family: type})."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ")
            types[family] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, "not a sample line: %r" % line)
        labels = parse_labels(m.group(2) or "")
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return samples, types


def value(samples, name, pid, comm, **extra):
    labels = {"pid": str(pid), "comm": comm}
    labels.update(extra)
    key = (name, frozenset(labels.items()))
    check(key in samples, "no sample %s%s" % (name, labels))
    return samples[key]


# Every metric `poolguard export` emits per process, and the figure of `stat --json` it carries
# (a path in the document), or None for the start time (from /proc, checked on its own). A metric
# missing here fails compare(): a new one must be checked too.
PROCESS_METRICS = {
    "poolguard_small_allocations_total": "small.allocs",
    "poolguard_small_frees_total": "small.frees",
    "poolguard_small_live_blocks": "small.live_blocks",
    "poolguard_small_held_bytes": "small.held_bytes",
    "poolguard_small_peak_bytes": "small.peak_bytes",
    "poolguard_large_allocations_total": "large.allocs",
    "poolguard_large_frees_total": "large.frees",
    "poolguard_large_live_blocks": "large.live_blocks",
    "poolguard_large_live_bytes": "large.live_bytes",
    "poolguard_arenas_mapped_total": "arenas.mapped",
    "poolguard_arenas_in_use": "arenas.in_use",
    "poolguard_arenas_released_total": "arenas.released",
    "poolguard_arenas_fallback": "arenas.fallback",
    "poolguard_reserved_bytes": "arenas.reserved_bytes",
    "poolguard_pools_in_use": "arenas.pools_in_use",
    "poolguard_pools_purged_total": "arenas.pools_purged",
    "poolguard_resident_bytes": "process.rss_bytes",
    "poolguard_thread_heaps_total": "process.threads",
    "poolguard_limit_bytes": "process.limit_bytes",
    "poolguard_limit_in_use_bytes": "process.limit_in_use",
    "poolguard_limit_peak_bytes": "process.limit_peak",
    "poolguard_limit_refused_total": "process.limit_refused",
    "poolguard_guard_events_total": "process.guard_events",
    "poolguard_double_frees_total": "errors.double_frees",
    "poolguard_invalid_frees_total": "errors.invalid_frees",
    "poolguard_corruptions_total": "errors.corruptions",
    "poolguard_internal_fragmentation_bytes": "fragmentation.internal_bytes",
    "poolguard_internal_fragmentation_ratio": "fragmentation.internal_ratio",
    "poolguard_free_block_bytes": "fragmentation.free_block_bytes",
    "poolguard_free_pool_bytes": "fragmentation.free_pool_bytes",
    "poolguard_free_pools_resident": "fragmentation.free_pools_resident",
    "poolguard_free_pools_returned": "fragmentation.free_pools_returned",
    "poolguard_pool_overhead_bytes": "fragmentation.pool_overhead_bytes",
    "poolguard_arena_bytes": "fragmentation.arena_bytes",
    "poolguard_external_fragmentation_ratio": "fragmentation.external_ratio",
    "poolguard_live_bytes": "fragmentation.live_bytes",
    "poolguard_resident_to_live_ratio": "fragmentation.rss_to_live",
    "poolguard_process_start_time_seconds": None,
}
CLASS_METRICS = {
    "poolguard_class_allocations_total": "allocs",
    "poolguard_class_frees_total": "frees",
    "poolguard_class_requested_bytes_total": "requested_bytes",
    "poolguard_class_live_blocks": "live_blocks",
    "poolguard_class_held_bytes": "held_bytes",
    "poolguard_class_pools": "pools",
    "poolguard_class_free_blocks": "free_blocks",
}
# The resident size moves on its own (the kernel's accounting), even in an idle process: these
# are compared within 10%. The ratios are rounded in stat --json (3 or 4 decimals).
VOLATILE = {"poolguard_resident_bytes", "poolguard_resident_to_live_ratio"}
RATIOS = {"poolguard_internal_fragmentation_ratio", "poolguard_external_fragmentation_ratio"}


def json_figure(doc, path):
    for key in path.split("."):
        doc = doc[key]
    return doc


def start_seconds(pid):
    """When pid started, in seconds since the epoch, as poolguard computes it: its start in clock
    ticks after boot (/proc/PID/stat) plus the time of the boot (CLOCK_REALTIME - BOOTTIME)."""
    with open("/proc/%d/stat" % pid) as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    booted = time.clock_gettime(time.CLOCK_REALTIME) - time.clock_gettime(time.CLOCK_BOOTTIME)
    return booted + ticks / os.sysconf("SC_CLK_TCK")


def compare(samples, doc, comm):
    """Every figure of `stat --json` that the export carries is the same in `samples`
    ({(name, frozenset(labels)): value}, as parse() makes them); the resident size within 10%,
    the start time within a second of /proc's. Every series of the process is one of those
    checked. Returns how many were compared."""
    pid = doc["pid"]
    mine = {k: v for k, v in samples.items() if ("pid", str(pid)) in k[1]}
    seen = set()
    for c in doc["classes"]:
        if c["allocs"] == 0 and c["pools"] == 0:
            continue
        cls = str(c["size"])
        for name, key in CLASS_METRICS.items():
            got = value(samples, name, pid, comm, **{"class": cls})
            seen.add((name, cls))
            check(got == c[key], "class %s: %s %s, stat says %s %s" % (cls, name, got, key, c[key]))
    for name, path in PROCESS_METRICS.items():
        got = value(samples, name, pid, comm)
        seen.add((name, None))
        if path is None:
            want = start_seconds(pid)
            check(abs(got - want) <= 1, "%s is %s, /proc says %.2f" % (name, got, want))
            continue
        want = json_figure(doc, path)
        if name in VOLATILE:
            ok = abs(got - want) <= 0.1 * max(abs(want), 1)
        elif name in RATIOS:
            ok = abs(got - want) <= 1e-3
        else:
            ok = got == want
        check(ok, "%s is %s, stat --json says %s %s" % (name, got, path, want))
    for name, labels in mine:
        cls = dict(labels).get("class")
        check((name, cls) in seen, "%s%s is not checked against stat --json"
              % (name, dict(labels)))
    return len(seen)


def compare_text(text, doc, comm):
    """compare() on exposition text, whose TYPE lines must say counter for every name ending in
    _total and gauge for the others. Returns the samples."""
    samples, types = parse(text)
    compare(samples, doc, comm)
    for name, kind in types.items():
        check(kind == ("counter" if name.endswith("_total") else "gauge"),
              "%s has TYPE %s" % (name, kind))
    return samples


def in_ci():
    return os.environ.get("CI") == "true"


def prometheus_tool(name):
    """The path of Debian's `name` (prometheus, promtool), or None when it is not installed. In
    CI (CI=true), where scripts/deps.sh installs it, its absence is a failure."""
    path = shutil.which(name) or ("/usr/bin/" + name if os.access("/usr/bin/" + name, os.X_OK)
                                  else None)
    check(path or not in_ci(), "%s is not installed (scripts/deps.sh installs Debian's "
          "prometheus package, which has it)" % name)
    return path


def promtool_check(text):
    promtool = prometheus_tool("promtool")
    if not promtool:
        print("SKIPPED: promtool check metrics (promtool is not installed: Debian's prometheus)")
        return
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0, "promtool check metrics: exit %d: %s%s"
          % (p.returncode, p.stdout, p.stderr))
    print("promtool check metrics: ok")


# --- Cases -------------------------------------------------------------------------------------

def case_stdout(args):
    """export PID and export --all print what stat --json says of a process holding blocks."""
    with Hold(args) as h:
        h.send("alloc", "allocated")
        doc = stat_json(args, h.pid)
        rc, out, err = run_tool(args, "export", str(h.pid))
        check(rc == 0, "export %d: exit %d: %s" % (h.pid, rc, err))
        samples = compare_text(out, doc, "pg_stats_hold")
        check(value(samples, "poolguard_class_live_blocks", h.pid, "pg_stats_hold",
                    **{"class": "32"}) >= 1000, "class 32 holds fewer than the 1000 blocks")
        check(samples[("poolguard_processes", frozenset())] == 1, "poolguard_processes is not 1")
        promtool_check(out)
        rc, out, err = run_tool(args, "export", "--all")
        check(rc == 0, "export --all: exit %d: %s" % (rc, err))
        compare_text(out, doc, "pg_stats_hold")
        print("stdout: export PID and --all carry stat --json's figures (%d samples)" % len(samples))
    rc, out, err = run_tool(args, "export", str(h.pid))
    check(rc == 1, "export of an exited process: exit %d, expected 1" % rc)


def case_textfile(args):
    """--textfile DIR writes DIR/poolguard.prom (nothing else left behind), with --interval until
    SIGTERM; a missing DIR fails."""
    with Hold(args) as h, tempfile.TemporaryDirectory() as d:
        h.send("alloc", "allocated")
        doc = stat_json(args, h.pid)
        rc, out, err = run_tool(args, "export", str(h.pid), "--textfile", d)
        check(rc == 0 and out == "", "export --textfile: exit %d, stdout %r: %s" % (rc, out, err))
        check(os.listdir(d) == ["poolguard.prom"], "DIR holds %s" % os.listdir(d))
        with open(os.path.join(d, "poolguard.prom")) as f:
            compare_text(f.read(), doc, "pg_stats_hold")
        # --interval rewrites it until SIGTERM, which leaves the last file whole and no other.
        os.unlink(os.path.join(d, "poolguard.prom"))
        writer = subprocess.Popen([args.tool, "export", "--textfile", d, "--interval", "0.1"],
                                  env=clean_env())
        try:
            wait_for(lambda: os.path.exists(os.path.join(d, "poolguard.prom")), "poolguard.prom")
            writer.send_signal(signal.SIGTERM)
            rc = writer.wait(timeout=WAIT)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        check(rc == 0, "export --textfile --interval after SIGTERM: exit %d" % rc)
        check(os.listdir(d) == ["poolguard.prom"], "DIR holds %s" % os.listdir(d))
        with open(os.path.join(d, "poolguard.prom")) as f:
            text = f.read()
        check('pid="%d"' % h.pid in text, "--interval's file has no pid %d" % h.pid)
        rc, out, err = run_tool(args, "export", "--textfile", os.path.join(d, "missing"))
        check(rc == 1 and "cannot create" in err, "missing DIR: exit %d: %s" % (rc, err))
        print("textfile: DIR/poolguard.prom carries stat --json's figures; a missing DIR exits 1")


def case_listen(args):
    """--listen 127.0.0.1:0 answers GET /metrics (text 0.0.4, or OpenMetrics when asked) and 404
    otherwise, is not held by a silent client, drops a process that exits; SIGTERM ends it."""
    with Hold(args) as h:
        h.send("alloc", "allocated")
        doc = stat_json(args, h.pid)
        server = subprocess.Popen([args.tool, "export", "--listen", "127.0.0.1:0"],
                                  stderr=subprocess.PIPE, text=True, env=clean_env())
        try:
            line = server.stderr.readline()  # the server's first line, once it listens
            m = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
            check(m, "export --listen said %r" % line)
            url = "http://127.0.0.1:%s/metrics" % m.group(1)
            with urllib.request.urlopen(url, timeout=WAIT) as r:
                check(r.status == 200, "GET /metrics: %d" % r.status)
                ctype = r.headers["Content-Type"]
                check(ctype == "text/plain; version=0.0.4; charset=utf-8", "Content-Type %r" % ctype)
                compare_text(r.read().decode(), doc, "pg_stats_hold")
            req = urllib.request.Request(url, headers={
                "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
            with urllib.request.urlopen(req, timeout=WAIT) as r:
                ctype = r.headers["Content-Type"]
                check(ctype.startswith("application/openmetrics-text"), "Content-Type %r" % ctype)
                body = r.read().decode()
                check(body.endswith("# EOF\n"), "OpenMetrics without # EOF: %r" % body[-40:])
                check("# TYPE poolguard_small_allocations counter\n" in body,
                      "OpenMetrics counter family named with _total")
            try:
                urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=WAIT)
                raise Failure("GET /other answered 200")
            except urllib.error.HTTPError as e:
                check(e.code == 404, "GET /other: %d, expected 404" % e.code)
            # A client that connects and sends nothing holds the server 5 seconds at most.
            idle = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=WAIT)
            started = time.monotonic()
            with urllib.request.urlopen(url, timeout=WAIT) as r:
                check(r.status == 200, "GET /metrics after an idle client: %d" % r.status)
            idle.close()
            print("listen: a silent client held the server %.1f s" % (time.monotonic() - started))
            # A process that exits leaves the next scrape.
            h.close()
            with urllib.request.urlopen(url, timeout=WAIT) as r:
                body = r.read().decode()
            check('pid="%d"' % h.pid not in body, "pid %d still exported after its exit" % h.pid)
            server.send_signal(signal.SIGTERM)
            rc = server.wait(timeout=WAIT)
            check(rc == 0, "export --listen after SIGTERM: exit %d" % rc)
            print("listen: /metrics as text and OpenMetrics, 404 elsewhere, an exited process"
                  " gone, SIGTERM ends it")
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()


SKIP = 77  # ctest's SKIP_RETURN_CODE for these cases


def serve(args, *argv):
    """`poolguard export ARGV --listen ...` started; returns (process, host, port) once it
    listens, from the first line it prints."""
    server = subprocess.Popen([args.tool, "export"] + list(argv), stderr=subprocess.PIPE,
                              text=True, env=clean_env())
    line = server.stderr.readline()
    m = re.search(r"serving metrics on http://(\S+):(\d+)/metrics$", line.strip())
    if not m:
        server.kill()
        server.wait()
        raise Failure("export %s said %r" % (" ".join(argv), line))
    return server, m.group(1), int(m.group(2))


def stop(server):
    """SIGTERM ends the server with status 0 (killed and waited for if it does not)."""
    try:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout=WAIT)
        check(rc == 0, "export --listen after SIGTERM: exit %d" % rc)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def case_listen6(args):
    """--listen [::1]:PORT serves IPv6 loopback only, [::]:PORT both families, a bare PORT
    127.0.0.1; skipped when the machine has no IPv6 loopback."""
    if not has_ipv6_loopback():
        print("SKIPPED: no IPv6 loopback (::1 cannot be bound)")
        sys.exit(SKIP)
    with Hold(args) as h:
        h.send("alloc", "allocated")
        doc = stat_json(args, h.pid)
        for listen, host, reach in (("[::1]:0", "[::1]", ["[::1]"]),
                                    ("[::]:0", "[::]", ["[::1]", "127.0.0.1"]),
                                    ("0", "127.0.0.1", ["127.0.0.1"])):
            server, said, port = serve(args, str(h.pid), "--listen", listen)
            try:
                check(said == host, "--listen %s: serving on %s, expected %s" % (listen, said, host))
                for to in reach:
                    url = "http://%s:%d/metrics" % (to, port)
                    with urllib.request.urlopen(url, timeout=WAIT) as r:
                        check(r.status == 200, "GET %s: %d" % (url, r.status))
                        compare_text(r.read().decode(), doc, "pg_stats_hold")
                # [::1] only: 127.0.0.1 on that port is refused (unless another program holds
                # the same port number on IPv4 by chance: unlikely enough for a test).
                if listen == "[::1]:0":
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
                        raise Failure("--listen [::1] answered on 127.0.0.1:%d" % port)
                    except ConnectionRefusedError:
                        pass
            finally:
                stop(server)
            print("listen6: --listen %s serves on %s (reached over %s)" % (listen, said,
                                                                            ", ".join(reach)))


class Group:
    """A program started in a process group of its own, which stop() ends: SIGTERM to the group,
    SIGKILL after `grace` seconds, then waits for the leader. Its output goes to a file kept for
    messages."""

    def __init__(self, argv, log_path, env=None):
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env or clean_env(),
                                         start_new_session=True)

    def log(self, tail=2000):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-tail:]

    def stop(self, grace=WAIT):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        # What is left of the group, the leader included if it ignored SIGTERM.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def free_port():
    """A port of 127.0.0.1 that was free a moment ago (bound with port 0, then closed). Someone
    may take it before our server binds it: start_prometheus() then tries another."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        doc = json.loads(r.read().decode())
    check(doc.get("status") == "success", "%s: %s" % (url, doc))
    return doc["data"]


PROMETHEUS_WAIT = 45.0  # seconds: its start, then its first scrapes (1 s apart), on a loaded machine


def start_prometheus(prometheus, target, tmp):
    """Debian's prometheus scraping `target` (host:port) every second, its storage in tmp,
    serving its API on 127.0.0.1 only (a free port: another one when that is taken before it
    binds). Returns (Group, base URL) once it is ready."""
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: poolguard\n"
                "    static_configs:\n      - targets: ['%s']\n" % target)
    for attempt in range(5):
        port = free_port()
        data = os.path.join(tmp, "data%d" % attempt)
        prom = Group([prometheus, "--config.file=" + config, "--storage.tsdb.path=" + data,
                      "--web.listen-address=127.0.0.1:%d" % port,
                      "--web.console.templates=" + tmp, "--web.console.libraries=" + tmp],
                     os.path.join(tmp, "prometheus%d.log" % attempt))
        base = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + PROMETHEUS_WAIT
        try:
            while time.monotonic() < deadline and prom.proc.poll() is None:
                try:
                    with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                        if r.status == 200:
                            return prom, base
                except (urllib.error.URLError, ConnectionError, socket.timeout):
                    pass
                time.sleep(0.2)
        except BaseException:
            prom.stop()
            raise
        prom.stop()
        log = prom.log()
        if "address already in use" not in log:
            raise Failure("prometheus did not become ready within %.0f s (exit %s):\n%s"
                          % (PROMETHEUS_WAIT, prom.proc.returncode, log))
        print("prometheus: port %d was taken meanwhile, another one" % port)
    raise Failure("prometheus found no free port in 5 tries")


def wait_scraped(base, pid):
    """Waits until Prometheus's target is up and it has stored pid's series; returns the
    target."""
    deadline = time.monotonic() + PROMETHEUS_WAIT
    target, result = None, []
    while time.monotonic() < deadline:
        targets = get_json(base + "/api/v1/targets")["activeTargets"]
        target = targets[0] if targets else None
        if target and target["health"] == "up":
            result = query(base, 'poolguard_live_bytes{pid="%d"}' % pid)
            if result:
                return target
        time.sleep(0.25)
    raise Failure("Prometheus did not scrape pid %d within %.0f s: target %s, query %s"
                  % (pid, PROMETHEUS_WAIT, target, result))


def query(base, promql):
    """The instant vector Prometheus gives for `promql` now."""
    data = get_json(base + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    check(data["resultType"] == "vector", "%s: a %s" % (promql, data["resultType"]))
    return data["result"]


def case_prometheus(args):
    """A real Prometheus (Debian's 2.x) scrapes `poolguard export PID --listen` every second: the
    target is up, it read OpenMetrics (units and types in its metadata), and every series it
    stored for the process equals `stat --json` (as the export itself does), none missing.
    Skipped when prometheus is not installed, except in CI, where that fails."""
    prometheus = prometheus_tool("prometheus")
    if not prometheus:
        print("SKIPPED: prometheus is not installed (Debian's prometheus; scripts/deps.sh)")
        sys.exit(SKIP)
    started = time.monotonic()
    with Hold(args) as h, tempfile.TemporaryDirectory(prefix="pg-prometheus-") as tmp:
        h.send("alloc", "allocated")
        doc = stat_json(args, h.pid)
        server, host, port = serve(args, str(h.pid), "--listen", "127.0.0.1:0")
        prom = None
        try:
            prom, base = start_prometheus(prometheus, "%s:%d" % (host, port), tmp)
            target = wait_scraped(base, h.pid)
            print("prometheus: %s up after %.1f s, scraping %s"
                  % (base, time.monotonic() - started, target["scrapeUrl"]))
            # Everything Prometheus holds of the process, in one query.
            series = query(base, '{__name__=~"poolguard_.+",pid="%d"}' % h.pid)
            stored = {}
            for s in series:
                labels = dict(s["metric"])
                name = labels.pop("__name__")
                check(labels.pop("job", None) == "poolguard" and "instance" in labels,
                      "%s without job and instance: %s" % (name, s["metric"]))
                labels.pop("instance")
                stored[(name, frozenset(labels.items()))] = float(s["value"][1])
            n = compare(stored, doc, "pg_stats_hold")
            # No series lost: as many as the export serves for the process, the same values.
            with urllib.request.urlopen("http://%s:%d/metrics" % (host, port),
                                        timeout=WAIT) as r:
                served, _ = parse(r.read().decode())
            served = {k: v for k, v in served.items() if ("pid", str(h.pid)) in k[1]}
            check(set(served) == set(stored), "Prometheus stored %d series, the export serves %d:"
                  " only stored %s, only served %s" % (len(stored), len(served),
                                                       sorted(set(stored) - set(served))[:5],
                                                       sorted(set(served) - set(stored))[:5]))
            up = query(base, 'up{job="poolguard"}')
            check(len(up) == 1 and up[0]["value"][1] == "1", "up{job=poolguard}: %s" % up)
            # The scrape was OpenMetrics: units come only from its UNIT lines, and a counter's
            # metadata is its family's, named without _total.
            meta = get_json(base + "/api/v1/metadata")
            for family, kind, unit in (("poolguard_large_live_bytes", "gauge", "bytes"),
                                       ("poolguard_class_requested_bytes", "counter", "bytes"),
                                       ("poolguard_process_start_time_seconds", "gauge",
                                        "seconds"),
                                       ("poolguard_small_allocations", "counter", ""),
                                       ("poolguard_class_live_blocks", "gauge", "")):
                got = meta.get(family, [{}])[0]
                check(got.get("type") == kind and got.get("unit") == unit,
                      "metadata of %s: %s, expected type %s unit %r" % (family, got, kind, unit))
            print("prometheus: %d series of pid %d stored as stat --json says (%d figures),"
                  " OpenMetrics units and types in its metadata" % (len(stored), h.pid, n))
        finally:
            if prom is not None:
                prom.stop()
            stop(server)
    print("prometheus: done in %.1f s" % (time.monotonic() - started))


def case_usage(args):
    """Bad arguments exit 2 with the usage."""
    for argv in (["--bogus"], ["1", "--all"], ["--interval", "1"], ["--listen", "nowhere:x"],
                 ["--listen", "1", "--textfile", "/tmp"], ["--textfile"], ["1", "2"],
                 ["--textfile", "/tmp", "--interval", "0"], ["--listen", "[::1]"],
                 ["--listen", "::1:9464"], ["--listen", "[::1]9464"],
                 ["--listen", "[127.0.0.1]:9464"], ["--listen", "localhost:9464"],
                 ["--listen", "127.0.0.1:65536"], ["--listen=[::1]:"], ["--listen", "[]:9464"]):
        rc, out, err = run_tool(args, "export", *argv)
        check(rc == 2 and "usage: poolguard export" in err,
              "export %s: exit %d, stderr %r" % (" ".join(argv), rc, err[:200]))
    rc, out, err = run_tool(args, "export", "--help")
    check(rc == 0 and "--textfile" in out, "export --help: exit %d" % rc)
    print("usage: bad arguments exit 2 with the usage")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--tool", required=True)
    p.add_argument("--lib", required=True)
    p.add_argument("--hold", required=True)
    p.add_argument("--build")
    args = p.parse_args()
    try:
        globals()["case_" + args.case](args)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
