#!/usr/bin/python3
"""Tests of `poolguard export`: the Prometheus metrics of a process holding known blocks equal
what `poolguard stat --json` says of it, printed, written as a textfile and served over HTTP;
`promtool check metrics` on them when promtool is installed.

    export_test.py CASE --tool POOLGUARD --lib LIBPOOLGUARD --hold PG_STATS_HOLD [--build DIR]
"""

import argparse
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


def compare(text, doc, comm):
    """Every figure of `stat --json` that the export carries (all but the resident size, which
    moves on its own) is the same in `text`."""
    samples, types = parse(text)
    pid = doc["pid"]
    for c in doc["classes"]:
        if c["allocs"] == 0 and c["pools"] == 0:
            continue
        cls = str(c["size"])
        for name, key in (("poolguard_class_allocations_total", "allocs"),
                          ("poolguard_class_frees_total", "frees"),
                          ("poolguard_class_requested_bytes_total", "requested_bytes"),
                          ("poolguard_class_live_blocks", "live_blocks"),
                          ("poolguard_class_held_bytes", "held_bytes"),
                          ("poolguard_class_pools", "pools"),
                          ("poolguard_class_free_blocks", "free_blocks")):
            got = value(samples, name, pid, comm, **{"class": cls})
            check(got == c[key], "class %s: %s %s, stat says %s %s" % (cls, name, got, key, c[key]))
    pairs = [("poolguard_small_allocations_total", doc["small"]["allocs"]),
             ("poolguard_small_frees_total", doc["small"]["frees"]),
             ("poolguard_small_live_blocks", doc["small"]["live_blocks"]),
             ("poolguard_small_held_bytes", doc["small"]["held_bytes"]),
             ("poolguard_small_peak_bytes", doc["small"]["peak_bytes"]),
             ("poolguard_large_allocations_total", doc["large"]["allocs"]),
             ("poolguard_large_frees_total", doc["large"]["frees"]),
             ("poolguard_large_live_blocks", doc["large"]["live_blocks"]),
             ("poolguard_large_live_bytes", doc["large"]["live_bytes"]),
             ("poolguard_arenas_in_use", doc["arenas"]["in_use"]),
             ("poolguard_pools_in_use", doc["arenas"]["pools_in_use"]),
             ("poolguard_limit_bytes", doc["process"]["limit_bytes"]),
             ("poolguard_limit_in_use_bytes", doc["process"]["limit_in_use"]),
             ("poolguard_guard_events_total", doc["process"]["guard_events"]),
             ("poolguard_double_frees_total", doc["errors"]["double_frees"]),
             ("poolguard_internal_fragmentation_bytes", doc["fragmentation"]["internal_bytes"]),
             ("poolguard_free_block_bytes", doc["fragmentation"]["free_block_bytes"]),
             ("poolguard_free_pool_bytes", doc["fragmentation"]["free_pool_bytes"]),
             ("poolguard_arena_bytes", doc["fragmentation"]["arena_bytes"]),
             ("poolguard_live_bytes", doc["fragmentation"]["live_bytes"])]
    for name, want in pairs:
        got = value(samples, name, pid, comm)
        check(got == want, "%s is %s, stat --json says %s" % (name, got, want))
    for name, kind in types.items():
        check(kind == ("counter" if name.endswith("_total") else "gauge"),
              "%s has TYPE %s" % (name, kind))
    return samples


def promtool_check(text):
    promtool = shutil.which("promtool")
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
        samples = compare(out, doc, "pg_stats_hold")
        check(value(samples, "poolguard_class_live_blocks", h.pid, "pg_stats_hold",
                    **{"class": "32"}) >= 1000, "class 32 holds fewer than the 1000 blocks")
        check(samples[("poolguard_processes", frozenset())] == 1, "poolguard_processes is not 1")
        promtool_check(out)
        rc, out, err = run_tool(args, "export", "--all")
        check(rc == 0, "export --all: exit %d: %s" % (rc, err))
        compare(out, doc, "pg_stats_hold")
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
            compare(f.read(), doc, "pg_stats_hold")
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
                compare(r.read().decode(), doc, "pg_stats_hold")
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


def case_usage(args):
    """Bad arguments exit 2 with the usage."""
    for argv in (["--bogus"], ["1", "--all"], ["--interval", "1"], ["--listen", "nowhere:x"],
                 ["--listen", "1", "--textfile", "/tmp"], ["--textfile"], ["1", "2"],
                 ["--textfile", "/tmp", "--interval", "0"]):
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
