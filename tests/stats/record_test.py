#!/usr/bin/python3
"""Tests of `poolguard record`: the timeline (docs/TIMELINE.md) of pg_stats_ramp, a program whose
heap follows a known course, and of pg_stats_hold, which holds known blocks; its lines checked
against the blocks, against `poolguard stat --json` and against each other.

    record_test.py CASE --tool POOLGUARD --lib LIBPOOLGUARD --hold PG_STATS_HOLD --ramp PG_STATS_RAMP

CASE is one of the functions named case_*. Every wait is bounded (WAIT); processes started are
killed on the way out.
"""

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats_test import (Failure, Hold, Lines, WAIT, check, clean_env, run_tool,  # noqa: E402
                        stat_json, wait_for)

# What pg_stats_ramp's course holds at its peak (ramp.c): usable sizes are at least these.
SMALL, MEDIUM, LARGE = 20000 * 64, 500 * 4000, 8 * (1 << 20)
HELD = SMALL + MEDIUM + LARGE
TYPES = {"header", "process", "sample", "event", "peak", "end"}


def load(path, complete=True):
    """The recording's objects, in order. With complete=False the last line may be cut short
    (the recorder killed): it is left out if it does not end with a newline."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    check(lines[-1] == "" or not complete, "%s does not end with a newline" % path)
    lines = lines[:-1]  # the cut-short rest, or "" after the last newline
    objs = []
    for n, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise Failure("%s:%d is not a JSON object (%s): %r" % (path, n, e, line[:200]))
        check(isinstance(obj, dict) and obj.get("type") in TYPES,
              "%s:%d: no known type: %r" % (path, n, line[:200]))
        objs.append(obj)
    check(objs and objs[0]["type"] == "header", "%s does not start with the header" % path)
    return objs


def of(objs, kind, pid=None):
    return [o for o in objs if o["type"] == kind and (pid is None or o.get("pid") == pid)]


def check_timeline(objs, exit_status):
    """What every complete recording must satisfy; returns the objects by pid: {pid: samples}."""
    h = objs[0]
    check(h["format"] == "poolguard-record" and h["version"] == 1, "header: %s" % h)
    for key in ("poolguard", "time", "time_unix_ms", "interval_s", "command", "pid",
                "profile_bytes"):
        check(key in h, "header has no %r: %s" % (key, h))
    check([o["type"] for o in objs].count("header") == 1, "more than one header")
    end = objs[-1]
    check(end["type"] == "end" and [o["type"] for o in objs].count("end") == 1,
          "the last line is not the only end line: %s" % end)
    check(end["exit_status"] == exit_status, "end: exit_status %r, expected %r"
          % (end["exit_status"], exit_status))
    samples = of(objs, "sample")
    check(end["samples"] == len(samples), "end counts %d samples, the file has %d"
          % (end["samples"], len(samples)))
    # Peak lines come last but for the end, after every sample and event.
    first_peak = min([i for i, o in enumerate(objs) if o["type"] == "peak"] or [len(objs) - 1])
    check(all(o["type"] == "peak" for o in objs[first_peak:-1]), "peak lines are not together")
    check(all(o["type"] != "peak" for o in objs[:first_peak]), "a peak line before the others")
    by_pid = {}
    last_t = -1.0
    processes = {}
    for o in objs[1:first_peak]:
        check(o["t"] >= last_t, "t goes back: %s after t=%s" % (o, last_t))
        last_t = o["t"]
        if o["type"] == "process":
            check(o["pid"] not in processes, "two process lines for pid %d" % o["pid"])
            check(o["small_max"] == 256 and o["pool_max"] == 32768, "process: %s" % o)
            check(o["classes"] == sorted(o["classes"]) and 256 in o["classes"], "classes: %s" % o)
            processes[o["pid"]] = o
        elif o["type"] == "sample":
            check(o["pid"] in processes, "a sample of pid %d before its process line" % o["pid"])
            check_sample(o, processes[o["pid"]])
            prev = by_pid.setdefault(o["pid"], [])
            check(not prev or o["t"] > prev[-1]["t"], "two samples of pid %d at t=%s"
                  % (o["pid"], o["t"]))
            prev.append(o)
        elif o["type"] == "event":
            check(o["kind"] in ("guard", "limit_refused", "error", "start", "exit")
                  and o["count"] > 0, "event: %s" % o)
    # Every sample of a tick has the tick's t, and each tick samples every process it knows: a
    # process has a sample at every t of a sample between its first and its last.
    ticks = sorted({s["t"] for s in samples})
    for pid, ss in by_pid.items():
        ts = [s["t"] for s in ss]
        want = [t for t in ticks if ts[0] <= t <= ts[-1]]
        check(ts == want, "pid %d sampled at %s, the ticks meanwhile were %s" % (pid, ts, want))
    # One peak per process that had samples: its highest sample.
    peaks = {p["pid"]: p for p in of(objs, "peak")}
    check(sorted(peaks) == sorted(by_pid), "peaks for %s, samples of %s" % (sorted(peaks),
                                                                            sorted(by_pid)))
    for pid, ss in by_pid.items():
        top = max(ss, key=lambda s: s["live_bytes"])
        p = peaks[pid]
        check(p["live_bytes"] == top["live_bytes"] and p["t"] == top["t"],
              "peak of %d: %s, its highest sample is at t=%s with %d live bytes"
              % (pid, {k: p[k] for k in ("t", "live_bytes")}, top["t"], top["live_bytes"]))
        starts = of(objs, "event", pid)
        check(starts and starts[0]["kind"] == "start" and starts[0]["t"] <= ss[0]["t"],
              "pid %d: no start event before its first sample" % pid)
    return by_pid


def check_sample(s, proc):
    """The figures of one sample agree with each other."""
    classes = s["classes"]
    sizes = set(proc["classes"])
    for size, live, in_use, held in classes:
        check(size in sizes and in_use == size * live and (live or held),
              "class %s of sample %s" % ([size, live, in_use, held], s))
    small = [c for c in classes if c[0] <= 256]
    medium = [c for c in classes if c[0] > 256]
    check(sum(c[2] for c in small) == s["small_in_use"]
          and sum(c[2] for c in medium) == s["medium_in_use"]
          and sum(c[3] for c in small) == s["small_held"]
          and sum(c[3] for c in medium) == s["medium_held"],
          "the classes do not add up to the tiers: %s" % s)
    check(sum(c[2] for c in classes) == s["small_in_use"] + s["medium_in_use"],
          "classes' in_use != small_in_use + medium_in_use: %s" % s)
    check(s["live_bytes"] == s["small_in_use"] + s["medium_in_use"] + s["large_bytes"],
          "live_bytes is not small + medium + large: %s" % s)
    check(s["small_held"] >= s["small_in_use"] and s["medium_held"] >= s["medium_in_use"],
          "held below in use: %s" % s)
    check(s["arena_bytes"] == s["arenas_in_use"] * proc["arena_size"], "arena_bytes: %s" % s)


class Recorder(Lines):
    """`poolguard record ARGV` running; its stdout (the recorded program's too) read by line."""

    def __init__(self, args, *argv, env=None, new_session=False):
        self.proc = subprocess.Popen([args.tool, "record"] + list(argv), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env or clean_env(),
                                     start_new_session=new_session)

    def ended(self):
        status = self.proc.poll()
        err = self.proc.stderr.read().decode()[-500:] if status is not None else ""
        return "recorder status %s, stderr %r" % (status, err)

    def wait(self):
        try:
            out, err = self.proc.communicate(timeout=WAIT * 2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure("poolguard record did not end within %.0f s" % (WAIT * 2))
        return self.proc.returncode, (self.buf + out).decode(), err.decode()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def samples_in(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().count('"type":"sample"')
    except OSError:
        return 0


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- Cases -------------------------------------------------------------------------------------

def case_command(args):
    """record -- pg_stats_ramp ramp 7: the course over time, its peak equal to what stat --json
    says during the hold, the status passed through."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.pgrec")
        with Recorder(args, "-o", path, "--", args.ramp, "ramp", "7") as rec:
            pid = int(rec.expect("holding").split()[1])
            hold = stat_json(args, pid)
            rc, out, err = rec.wait()
        check(rc == 7, "record -- ramp 7: exit %d, expected 7: %s" % (rc, err))
        objs = load(path)
        by_pid = check_timeline(objs, 7)
        h = objs[0]
        check(h["command"] == [args.ramp, "ramp", "7"] and h["pid"] == pid
              and h["interval_s"] == 0.1 and h["profile_bytes"] == 0, "header: %s" % h)
        check(list(by_pid) == [pid], "processes recorded: %s, expected [%d]" % (list(by_pid), pid))
        proc = of(objs, "process", pid)[0]
        check(proc["comm"] == "pg_stats_ramp" and proc["ppid"] == rec.proc.pid,
              "process line: %s (recorder %d)" % (proc, rec.proc.pid))
        ss = by_pid[pid]
        check(len(ss) >= 10, "%d samples of a run of about 1.8 s every 0.1 s" % len(ss))
        peak = of(objs, "peak", pid)[0]
        live = hold["fragmentation"]["live_bytes"]
        check(peak["live_bytes"] >= HELD, "peak of %d live bytes, the program held %d at least"
              % (peak["live_bytes"], HELD))
        check(peak["live_bytes"] == live, "peak of %d live bytes, stat --json said %d in the hold"
              % (peak["live_bytes"], live))
        check(peak["profile"] is None and peak["stacks"] == [], "peak without a profile: %s" % peak)
        at_peak = [s for s in ss if s["t"] == peak["t"]][0]
        check(at_peak["large_bytes"] >= LARGE and at_peak["large_blocks"] >= 8
              and at_peak["medium_in_use"] >= MEDIUM and at_peak["small_in_use"] >= SMALL,
              "the peak's tiers: %s" % at_peak)
        c64 = [c for c in at_peak["classes"] if c[0] == 64]
        check(c64 and c64[0][1] >= 20000, "class 64 at the peak: %s" % c64)
        # The course: grows, holds, falls; counters only grow.
        check(ss[-1]["live_bytes"] < HELD // 10, "the last sample still holds %d bytes (freed)"
              % ss[-1]["live_bytes"])
        check(all(a["allocs"] <= b["allocs"] and a["frees"] <= b["frees"]
                  for a, b in zip(ss, ss[1:])), "allocs or frees went down")
        exits = [e for e in of(objs, "event", pid) if e["kind"] == "exit"]
        check(len(exits) == 1 and exits[0]["t"] >= ss[-1]["t"], "exit events: %s" % exits)
        check(not [e for e in of(objs, "event") if e["kind"] not in ("start", "exit")],
              "events of a program that hit nothing: %s" % of(objs, "event"))
    print("command: %d samples, peak %d live bytes = stat --json in the hold, exit 7"
          % (len(ss), peak["live_bytes"]))


def top_stack_names(peak):
    return [f["function"] for f in peak["stacks"][0]["frames"]]


def case_profile(args):
    """record --profile: the peak's largest stack is grow_phase's 1 MiB blocks, named."""
    with tempfile.TemporaryDirectory() as tmp:
        for profile, sample_bytes in (("1", 1), ("256K", 256 << 10)):
            path = os.path.join(tmp, "run.pgrec")
            rc, out, err = run_tool(args, "record", "--profile", profile, "-i", "0.05", "-o", path,
                                    "--", args.ramp, "ramp", "0")
            check(rc == 0, "record --profile %s: exit %d: %s" % (profile, rc, err))
            objs = load(path)
            by_pid = check_timeline(objs, 0)
            h = objs[0]
            check(h["profile_bytes"] == sample_bytes, "header: %s" % h)
            pid = h["pid"]
            peak = of(objs, "peak", pid)[0]
            p = peak["profile"]
            check(p is not None and p["sample_bytes"] == sample_bytes,
                  "--profile %s: peak profile %s" % (profile, p))
            # The copy kept is within 1% of the peak (docs/TIMELINE.md, the rule).
            check(p["live_bytes"] * 100 >= peak["live_bytes"] * 99
                  and p["live_bytes"] <= peak["live_bytes"],
                  "profile copied at %d live bytes, the peak is %d" % (p["live_bytes"],
                                                                      peak["live_bytes"]))
            check(any(s["t"] == p["t"] for s in by_pid[pid]), "profile t %s is no sample's"
                  % p["t"])
            stacks = peak["stacks"]
            check(0 < len(stacks) <= 20 and p["stacks_total"] >= len(stacks),
                  "%d stacks listed of %s" % (len(stacks), p["stacks_total"]))
            check(all(a["bytes"] >= b["bytes"] for a, b in zip(stacks, stacks[1:])),
                  "stacks not largest first")
            names = top_stack_names(peak)
            check("grow_phase" in names, "--profile %s: the largest stack at the peak does not "
                  "name grow_phase: %s" % (profile, names))
            frame = stacks[0]["frames"][names.index("grow_phase")]
            check(frame["module"] == os.path.realpath(args.ramp)
                  and "ramp.c:" in frame["file_line"] and frame["pc"].startswith("0x"),
                  "grow_phase's frame: %s" % frame)
            if sample_bytes == 1:
                # Exact: the eight 1 MiB blocks come from one stack.
                check(stacks[0]["bytes"] >= LARGE and stacks[0]["blocks"] == 8,
                      "the largest stack: %s" % {k: stacks[0][k] for k in ("bytes", "blocks")})
                check(p["bytes"] >= HELD, "exact profile of %d bytes at the peak" % p["bytes"])
    print("profile: the peak's largest stack names grow_phase (ramp.c), exact and sampled")


def case_children(args):
    """record -- ramp fork: the child appears with its own process line, start and exit; the
    refusal of the limit it inherits from its parent is no event of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.pgrec")
        with Recorder(args, "-e", "LIMIT=64M", "-o", path, "--", args.ramp, "fork") as rec:
            child = int(rec.expect("child").split()[1])
            rc, out, err = rec.wait()
        check(rc == 0, "record -- ramp fork: exit %d: %s" % (rc, err))
        objs = load(path)
        by_pid = check_timeline(objs, 0)
        parent = objs[0]["pid"]
        check(sorted(by_pid) == sorted([parent, child]), "pids recorded %s, expected %s"
              % (sorted(by_pid), sorted([parent, child])))
        check(of(objs, "process", child)[0]["ppid"] == parent, "the child's ppid: %s"
              % of(objs, "process", child)[0])
        for pid in (parent, child):
            kinds = [e["kind"] for e in of(objs, "event", pid)]
            check(kinds.count("start") == 1 and kinds.count("exit") == 1,
                  "events of %d: %s" % (pid, kinds))
        exit_t = {pid: [e["t"] for e in of(objs, "event", pid) if e["kind"] == "exit"][0]
                  for pid in (parent, child)}
        check(exit_t[child] <= exit_t[parent], "the child exits after its parent: %s" % exit_t)
        check(of(objs, "peak", child)[0]["live_bytes"] >= HELD,
              "the child's peak: %s" % of(objs, "peak", child)[0])
        check(of(objs, "peak", parent)[0]["live_bytes"] < HELD // 10,
              "the parent's peak: %s" % of(objs, "peak", parent)[0])
        # The parent was refused once, before the fork: its event, not the child's, though the
        # child's counter says 1 too.
        refused = {pid: [e["count"] for e in of(objs, "event", pid) if e["kind"] == "limit_refused"]
                   for pid in (parent, child)}
        check(refused == {parent: [1], child: []}, "limit_refused events: %s" % refused)
        check(by_pid[child][0]["limit_refused"] == 1, "the child's counter: %s" % by_pid[child][0])
    print("children: parent %d and child %d, each with its process line, start and exit"
          % (parent, child))


def case_pid(args):
    """record PID: a running pg_stats_hold until SIGINT (exit 0, it goes on), then until it exits;
    a process that cannot be read exits 1 and writes nothing."""
    with tempfile.TemporaryDirectory() as tmp, Hold(args) as h:
        h.send("alloc", "allocated")
        live = stat_json(args, h.pid)["fragmentation"]["live_bytes"]
        path = os.path.join(tmp, "a.pgrec")
        with Recorder(args, "-i", "0.05", "-o", path, str(h.pid)) as rec:
            wait_for(lambda: samples_in(path) >= 3, "3 samples in %s" % path)
            rec.proc.send_signal(signal.SIGINT)
            rc, out, err = rec.wait()
        check(rc == 0, "record PID stopped by SIGINT: exit %d: %s" % (rc, err))
        check(h.proc.poll() is None, "the recorded process ended with the recording")
        objs = load(path)
        by_pid = check_timeline(objs, None)
        check(objs[0]["command"] is None and objs[0]["pid"] == h.pid, "header: %s" % objs[0])
        check(list(by_pid) == [h.pid] and len(by_pid[h.pid]) >= 3, "samples: %s"
              % {p: len(s) for p, s in by_pid.items()})
        check(all(s["live_bytes"] == live for s in by_pid[h.pid]),
              "live bytes sampled %s, stat --json said %d"
              % (sorted({s["live_bytes"] for s in by_pid[h.pid]}), live))
        kinds = [e["kind"] for e in of(objs, "event", h.pid)]
        check(kinds == ["start"], "events of a process still running: %s" % kinds)

        # Until it exits.
        path = os.path.join(tmp, "b.pgrec")
        with Recorder(args, "-i", "0.05", "-o", path, str(h.pid)) as rec:
            wait_for(lambda: samples_in(path) >= 2, "2 samples in %s" % path)
            h.close()
            rc, out, err = rec.wait()
        check(rc == 0, "record PID of a process that exits: exit %d: %s" % (rc, err))
        objs = load(path)
        check_timeline(objs, None)
        kinds = [e["kind"] for e in of(objs, "event", h.pid)]
        check(kinds == ["start", "exit"], "events of a process that exited: %s" % kinds)

        # Nothing to read: exit 1 with the reader's message, no file.
        path = os.path.join(tmp, "c.pgrec")
        pid_max = int(open("/proc/sys/kernel/pid_max").read())
        unused = pid_max - 1
        while os.path.exists("/proc/%d" % unused):
            unused -= 1
        for pid, says in ((unused, "no process"), (os.getpid(), "does not run under poolguard")):
            rc, out, err = run_tool(args, "record", "-o", path, str(pid))
            check(rc == 1 and says in err and not os.path.exists(path),
                  "record %d: exit %d, stderr %r, file left: %s" % (pid, rc, err,
                                                                   os.path.exists(path)))
    print("pid: recorded until SIGINT (exit 0, the process goes on) and until it exits; "
          "an unreadable pid exits 1")


def case_usage(args):
    """Bad arguments exit 2 with the usage; a file that cannot be written exits 1; a command that
    is not found exits 127 with a complete recording."""
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "x.pgrec")
        for argv in (["-o", f], ["--", "true"], ["1"], ["-o", f, "-i", "0", "--", "true"],
                     ["-o", f, "-i", "0.001", "--", "true"], ["-o", f, "-i", "x", "--", "true"],
                     ["-o", f, "-i"], ["-o"], ["-o", f, "1234", "--", "true"],
                     ["--bogus", "-o", f, "--", "true"], ["-o", f, "--profile", "1", "1234"],
                     ["-o", f, "--profile", "lots", "--", "true"],
                     ["-o", f, "-e", "NO_SUCH_OPTION=1", "--", "true"], ["-o", f, "--"],
                     ["-o", f, "1", "2"], ["-o", f, "x1"]):
            rc, out, err = run_tool(args, "record", *argv)
            check(rc == 2 and "usage: poolguard record" in err,
                  "record %s: exit %d, stderr %r" % (" ".join(argv), rc, err[:300]))
            check(not os.path.exists(f), "record %s wrote %s" % (" ".join(argv), f))
        rc, out, err = run_tool(args, "record", "--help")
        check(rc == 0 and "usage: poolguard record" in out, "record --help: exit %d" % rc)
        rc, out, err = run_tool(args, "--help")
        check(rc == 0 and "  record " in out, "poolguard --help does not list record")
        rc, out, err = run_tool(args, "record", "-o", os.path.join(tmp, "no", "x"), "--", "true")
        check(rc == 1 and "cannot write" in err, "record -o into a missing directory: exit %d, %r"
              % (rc, err))
        if os.geteuid() == 0:
            # A link another user could have planted (as in /tmp) is not followed.
            target = os.path.join(tmp, "target.txt")
            with open(target, "w") as t:
                t.write("keep me\n")
            planted = os.path.join(tmp, "planted.pgrec")
            os.symlink(target, planted)
            os.lchown(planted, 65534, 65534)
            rc, out, err = run_tool(args, "record", "-o", planted, "--", "true")
            check(rc == 1 and "a symbolic link that belongs to another user" in err,
                  "record -o through another user's link: exit %d, %r" % (rc, err))
            with open(target) as t:
                check(t.read() == "keep me\n", "record -o through another user's link wrote it")
        rc, out, err = run_tool(args, "record", "-o", f, "--", "/nonexistent/program")
        check(rc == 127 and "not found" in err, "record of a missing program: exit %d, %r"
              % (rc, err))
        check_timeline(load(f), 127)
    print("usage: bad arguments exit 2 with the usage; unwritable file 1; missing program 127")


def case_events(args):
    """-e LIMIT=1M and a program the limit refuses 3 times, then twice more just before it exits:
    limit_refused events count all 5, the last ones from its counters as it left them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.pgrec")
        with Recorder(args, "-e", "LIMIT=1M", "-o", path, "--", args.ramp, "limit") as rec:
            rec.expect("refused")
            rc, out, err = rec.wait()
        check(rc == 0 and "refused 5" in out, "record -e LIMIT=1M -- ramp limit: exit %d, "
              "output %r: %s" % (rc, out, err))
        objs = load(path)
        by_pid = check_timeline(objs, 0)
        pid = objs[0]["pid"]
        ss = by_pid[pid]
        check(all(s["limit_bytes"] == 1 << 20 for s in ss), "limit_bytes: %s"
              % sorted({s["limit_bytes"] for s in ss}))
        check(max(s["limit_in_use"] for s in ss) > 0, "limit_in_use stays 0")
        refused = [e for e in of(objs, "event", pid) if e["kind"] == "limit_refused"]
        check(sum(e["count"] for e in refused) == 5,
              "limit_refused events %s, the program was refused 5 times" % refused)
        check(ss[-1]["limit_refused"] == sum(e["count"] for e in refused if e["t"] <= ss[-1]["t"]),
              "the events up to the last sample do not add up to its counter: %s, %s"
              % (refused, ss[-1]["limit_refused"]))
        check(refused[0]["t"] == [s for s in ss if s["limit_refused"]][0]["t"],
              "the first limit_refused event is not at the first sample that counts one")
    print("events: limit_refused events %s" % [(e["t"], e["count"]) for e in refused])


def case_bugs(args):
    """A guard report (an overflow found at free) and a double free, both survived: a `guard`
    event and an `error` event of the program's pid, each at the first sample that counts it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.pgrec")
        with Recorder(args, "-i", "0.05", "-e", "GUARD=redzone", "-e", "ON_ERROR=report", "-o",
                      path, "--", args.ramp, "bugs") as rec:
            rc, out, err = rec.wait()
        check(rc == 0 and "bugs 2" in out, "record -- ramp bugs: exit %d, output %r: %s"
              % (rc, out, err[-1500:]))
        check("heap-buffer-overflow" in err and "double-free" in err.replace(" ", "-"),
              "the program's reports are missing: %s" % err[-1500:])
        objs = load(path)
        by_pid = check_timeline(objs, 0)
        pid = objs[0]["pid"]
        ss = by_pid[pid]
        events = of(objs, "event", pid)
        for kind, field in (("guard", "guard_events"), ("error", "errors")):
            got = [e for e in events if e["kind"] == kind]
            check(sum(e["count"] for e in got) == ss[-1][field] >= 1,
                  "%s events %s, the last sample counts %d" % (kind, got, ss[-1][field]))
            check(got[0]["t"] == [s for s in ss if s[field]][0]["t"],
                  "the first %s event is not at the first sample that counts one" % kind)
    print("bugs: guard and error events at %s" % [(e["kind"], e["t"]) for e in events
                                                  if e["kind"] in ("guard", "error")])


def case_truncated(args):
    """A recorder killed with SIGKILL leaves a file of whole lines: every line parses."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cut.pgrec")
        prog = None
        with Recorder(args, "-i", "0.02", "-o", path, "--", args.ramp, "hold") as rec:
            try:
                prog = int(rec.expect("holding").split()[1])
                wait_for(lambda: samples_in(path) >= 5, "5 samples in %s" % path)
                rec.proc.kill()
                rec.proc.wait()
            finally:
                if prog is not None:
                    kill_quietly(prog)
        objs = load(path, complete=False)
        check(len(of(objs, "sample")) >= 5 and not of(objs, "end"),
              "%d samples, end line %s" % (len(of(objs, "sample")), of(objs, "end")))
        with open(path, encoding="utf-8") as f:
            whole = f.read().endswith("\n")
    print("truncated: %d lines parsed, %s" % (len(objs), "ends with a whole line" if whole
                                              else "the last line cut short"))


def case_peaks(args):
    """A spike of a few milliseconds between samples (ramp spike under -e LIMIT=512M): every sample
    carries the process's own high-water marks, which see it; and the chart says how much was held
    between samples when no sample caught the spike."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.pgrec")
        svg = os.path.join(tmp, "run.svg")
        with Recorder(args, "-i", "0.25", "-e", "LIMIT=512M", "-o", path, "--", args.ramp,
                      "spike") as rec:
            rec.expect("holding")
            rec.expect("spiked")
            rc, out, err = rec.wait()
        check(rc == 0, "record -- ramp spike: exit %d: %s" % (rc, err))
        objs = load(path)
        by_pid = check_timeline(objs, 0)
        pid = objs[0]["pid"]
        ss = by_pid[pid]
        proc = of(objs, "process", pid)[0]
        spike = 64 << 20
        for a, b in zip(ss, ss[1:]):
            check(b["pools_peak"] >= a["pools_peak"] and b["limit_peak"] >= a["limit_peak"],
                  "a high-water mark fell: %s then %s" % (a, b))
        for s in ss:
            check(s["pools_peak"] >= s["pools_in_use"] and s["limit_peak"] >= s["limit_in_use"],
                  "a high-water mark below its figure: %s" % s)
        last = ss[-1]
        # 120000 blocks of 64 bytes in pools at once, and the 64 MiB of large blocks on top.
        check(last["pools_peak"] * proc["pool_size"] >= 120000 * 64,
              "pools_peak %d units of %d bytes: below the 120000 x 64 bytes held at the spike"
              % (last["pools_peak"], proc["pool_size"]))
        check(last["limit_peak"] >= spike + 120000 * 64,
              "limit_peak %d: below the %d bytes held at the spike" % (last["limit_peak"],
                                                                       spike + 120000 * 64))
        rc = subprocess.run([args.tool, "plot", path, "-o", svg], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
        check(rc.returncode == 0, "plot: %s" % rc.stdout)
        text = open(svg, encoding="utf-8").read()
        sampled = max(s["limit_in_use"] for s in ss)
        caught = sampled * 101 // 100 >= last["limit_peak"]
        said = "between samples: up to" in text
        check(said != caught, "the chart %s the spike between samples (sampled %d, peak %d)"
              % ("names" if said else "does not name", sampled, last["limit_peak"]))
    print("peaks: limit_peak %d, highest sampled charge %d (%s)"
          % (last["limit_peak"], sampled, "a sample caught the spike" if caught
             else "between samples, named by the chart"))


def case_signals(args):
    """SIGINT sent to the recorder alone ends the command through it (130); a SIGINT to the
    whole group does too, the file finished; a command killed by a signal gives 128+N."""
    with tempfile.TemporaryDirectory() as tmp:
        for target in ("recorder", "group"):
            path = os.path.join(tmp, target + ".pgrec")
            with Recorder(args, "-o", path, "--", args.ramp, "hold", new_session=True) as rec:
                prog = int(rec.expect("holding").split()[1])
                try:
                    if target == "recorder":
                        rec.proc.send_signal(signal.SIGINT)
                    else:
                        os.killpg(rec.proc.pid, signal.SIGINT)
                    rc, out, err = rec.wait()
                finally:
                    kill_quietly(prog)
            check(rc == 130, "SIGINT to the %s: exit %d, expected 130: %s" % (target, rc, err))
            objs = load(path)
            check_timeline(objs, 130)
            kinds = [e["kind"] for e in of(objs, "event", prog)]
            check(kinds == ["start", "exit"], "SIGINT to the %s: events %s" % (target, kinds))
        path = os.path.join(tmp, "term.pgrec")
        rc, out, err = run_tool(args, "record", "-o", path, "--", "sh", "-c", "kill -TERM $$")
        check(rc == 128 + signal.SIGTERM, "a command killed by SIGTERM: exit %d" % rc)
        check_timeline(load(path), 128 + signal.SIGTERM)
    print("signals: SIGINT passed on (130), the file finished; SIGTERM death 143")


def main():
    cases = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(cases))
    ap.add_argument("--tool", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--hold", required=True)
    ap.add_argument("--ramp", required=True)
    args = ap.parse_args()
    args.tool, args.lib, args.hold, args.ramp = (
        os.path.abspath(p) for p in (args.tool, args.lib, args.hold, args.ramp))
    try:
        cases[args.case](args)
    except Failure as e:
        print("FAIL: stats.record_%s: %s" % (args.case, e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
