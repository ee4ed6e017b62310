#!/usr/bin/python3
"""Tests of the live statistics: the segment every process under poolguard publishes, and the
`poolguard` tool that reads it (run, stat, ls, map).

    stats_test.py CASE --tool POOLGUARD --lib LIBPOOLGUARD --hold PG_STATS_HOLD [--build DIR]

CASE is one of the functions named case_*. Each waits for the processes it starts with bounded
waits (no timing assertions) and kills them on the way out. Uses only Debian's python3.
"""

import argparse
import ctypes
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

WAIT = 20.0  # seconds: the bound on every wait for a process to answer


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def clean_env(**extra):
    """The environment without inherited preloads or poolguard options, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("POOLGUARD_")}
    env.update(extra)
    return env


def run_tool(args, *argv, env=None, prefix=()):
    """Runs the tool; returns (status, stdout, stderr)."""
    p = subprocess.run(list(prefix) + [args.tool] + list(argv), capture_output=True, text=True,
                       env=env or clean_env(), timeout=60)
    return p.returncode, p.stdout, p.stderr


def stat_json(args, pid):
    rc, out, err = run_tool(args, "stat", "--json", str(pid))
    check(rc == 0, "stat --json %d: exit %d: %s" % (pid, rc, err.strip()))
    try:
        doc = json.loads(out)
    except ValueError as e:
        raise Failure("stat --json printed no JSON object (%s): %r" % (e, out[:300]))
    return doc


MAGIC = int.from_bytes(b"PGSTATS2", "little")


_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
_libc.shmat.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_libc.shmdt.argtypes = (ctypes.c_void_p,)
SHM_RDONLY = 0o10000


def sysv_ids(pid):
    """The ids of the System V segments pid has attached (their inode in /proc/PID/maps)."""
    ids = []
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 6 and fields[5].startswith("/SYSV") and int(fields[4]) not in ids:
                    ids.append(int(fields[4]))
    except OSError:
        pass
    return ids


def segment_head(shmid, n=24):
    """The first n bytes of segment shmid (attached read-only, as readers do), or None."""
    addr = _libc.shmat(shmid, None, SHM_RDONLY)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        return None
    try:
        return ctypes.string_at(addr, n)
    finally:
        _libc.shmdt(ctypes.c_void_p(addr))


def segment_id(pid):
    """The id of pid's stats segment once it is complete (its magic written), else None."""
    for shmid in sysv_ids(pid):
        head = segment_head(shmid)
        if head is not None and int.from_bytes(head[:8], "little") == MAGIC:
            return shmid
    return None


def segment_owner(pid):
    """The pid pid's segment names in its header (a fork child's becomes its own once its fork
    handler has run), or None."""
    shmid = segment_id(pid)
    head = segment_head(shmid) if shmid is not None else None
    return int.from_bytes(head[20:24], "little", signed=True) if head else None


def sysv_segments():
    """The ids of every System V segment that exists now (/proc/sysvipc/shm)."""
    with open("/proc/sysvipc/shm") as f:
        return sorted(int(line.split()[1]) for line in f.readlines()[1:] if line.strip())


def fds(pid):
    return sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def wait_for(predicate, what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise Failure("gave up after %.0f s waiting for %s" % (WAIT, what))


class Lines:
    """The lines a child process (self.proc) writes on its stdout, read as they come."""

    who = "the program"
    buf = b""

    def ended(self):
        """What to say when its output ends before the line expected."""
        return "status %s" % self.proc.poll()

    def expect(self, word):
        """The next line, which must start with `word` (within WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            check(left > 0, "%s did not say '%s' within %.0f s" % (self.who, word, WAIT))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                check(chunk, "%s ended (%s) before saying '%s'" % (self.who, self.ended(), word))
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.decode()
        check(line.split()[0] == word, "%s said %r, expected %r" % (self.who, line, word))
        return line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()  # each driver's own way of ending the process


class Hold(Lines):
    """pg_stats_hold under the preload, driven line by line."""

    who = "pg_stats_hold"

    def __init__(self, args, argv=None, env=None):
        cmd = argv or [args.hold]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env or clean_env(LD_PRELOAD=args.lib))
        self.pid = int(self.expect("ready").split()[1])
        # The segment exists from the first allocation, before main: it must be there already.
        check(segment_id(self.pid), "pid %d has no segment when main runs" % self.pid)

    def send(self, command, answer):
        self.proc.stdin.write((command + "\n").encode())
        self.proc.stdin.flush()
        return self.expect(answer)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"exit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=WAIT)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def classes_by_size(doc):
    return {c["size"]: c for c in doc["classes"]}


# --- Cases -------------------------------------------------------------------------------------

def case_exact(args):
    """A process holding 1000 x 24, 500 x 200 and 10 x 50000 bytes shows exactly those."""
    with Hold(args) as h:
        base = stat_json(args, h.pid)
        for key in ("pid", "classes", "arenas", "large", "fragmentation"):
            check(key in base, "stat --json has no %r: %s" % (key, sorted(base)))
        check(base["pid"] == h.pid, "pid %s, expected %d" % (base["pid"], h.pid))
        for c in base["classes"]:
            for key in ("size", "live_blocks", "pools"):
                check(key in c, "a class has no %r: %s" % (key, c))

        h.send("alloc", "allocated")
        held = stat_json(args, h.pid)
        b, a = classes_by_size(base), classes_by_size(held)
        want = {32: 1000, 208: 500}
        for size in a:
            delta = a[size]["live_blocks"] - b[size]["live_blocks"]
            check(delta == want.get(size, 0),
                  "class %d: live_blocks %d -> %d (+%d), expected +%d"
                  % (size, b[size]["live_blocks"], a[size]["live_blocks"], delta,
                     want.get(size, 0)))
        for size, n in want.items():
            capacity = (16384 - 128) // size
            check(a[size]["pools"] >= -(-a[size]["live_blocks"] // capacity),
                  "class %d: %d live blocks in %d pools" % (size, a[size]["live_blocks"],
                                                            a[size]["pools"]))
            check(a[size]["held_bytes"] == size * a[size]["live_blocks"],
                  "class %d: held_bytes %d" % (size, a[size]["held_bytes"]))
        large = held["large"]["live_blocks"] - base["large"]["live_blocks"]
        large_bytes = held["large"]["live_bytes"] - base["large"]["live_bytes"]
        check(large == 10, "large live_blocks +%d, expected +10" % large)
        # Large blocks count glibc's usable size: the request rounded up to its chunk, under 24
        # bytes more.
        check(500000 <= large_bytes < 10 * (50000 + 24),
              "large live_bytes +%d, expected +500000 (10 x 50000, usable)" % large_bytes)
        check(held["fragmentation"]["internal_bytes"] > base["fragmentation"]["internal_bytes"],
              "24-byte requests in 32-byte blocks added no internal fragmentation")
        check(held["process"]["rss_bytes"] > 0, "rss_bytes is 0")
        print("exact: +1000 blocks of 32, +500 of 208, +10 large (500000 bytes), nothing else")

        # The table says the same.
        rc, out, err = run_tool(args, "stat", str(h.pid))
        check(rc == 0, "stat: exit %d: %s" % (rc, err))
        row = [line.split() for line in out.splitlines() if line.split()[:1] == ["32"]]
        check(row and int(row[0][3]) == a[32]["live_blocks"],
              "stat table: class 32 row %s, expected %d live" % (row, a[32]["live_blocks"]))
        for word in ("fragmentation", "internal", "external", "rss/live", "arenas", "large"):
            check(word in out, "stat table has no %r:\n%s" % (word, out))

        h.send("free", "freed")
        after = stat_json(args, h.pid)
        f = classes_by_size(after)
        for size in (32, 208):
            check(f[size]["live_blocks"] == b[size]["live_blocks"],
                  "class %d after free: live_blocks %d, expected %d (the baseline)"
                  % (size, f[size]["live_blocks"], b[size]["live_blocks"]))
        check(after["large"]["live_blocks"] == base["large"]["live_blocks"] and
              after["large"]["live_bytes"] == base["large"]["live_bytes"],
              "large after free: %s, baseline %s" % (after["large"], base["large"]))
        print("exact: after free, back to the baseline (class 32: %d live, class 208: %d)"
              % (f[32]["live_blocks"], f[208]["live_blocks"]))


def case_other_user(args):
    """nobody cannot read root's statistics: the tool refuses, and the segment's mode forbids it."""
    check(os.geteuid() == 0, "this test needs root (it switches to nobody with setpriv)")
    as_nobody = AS_NOBODY
    with Hold(args) as h:
        shmid = segment_id(h.pid)
        rc, out, refusal = run_tool(args, "stat", str(h.pid), prefix=as_nobody)
        check(rc != 0, "nobody read root's statistics (exit 0):\n%s" % out)
        check("belongs to user root" in refusal, "no clear refusal on stderr: %r" % refusal)
        rc, out, err = run_tool(args, "map", str(h.pid), prefix=as_nobody)
        check(rc != 0 and "belongs to user root" in err, "map as nobody: exit %d, %r" % (rc, err))
        p = subprocess.run(as_nobody + ["/usr/bin/python3", "-c",
                                        "import ctypes, sys; l = ctypes.CDLL(None); "
                                        "l.shmat.restype = ctypes.c_void_p; "
                                        "sys.exit(0 if l.shmat(%d, None, 0o10000) not in "
                                        "(None, ctypes.c_void_p(-1).value) else 3)" % shmid],
                           capture_output=True, timeout=60)
        check(p.returncode == 3, "nobody could attach segment %d directly (exit %d)"
              % (shmid, p.returncode))
        rc, out, err = run_tool(args, "ls", prefix=as_nobody)
        check(rc == 0 and not re.search(r"^\s*%d\s" % h.pid, out, re.M),
              "ls as nobody lists root's process %d:\n%s" % (h.pid, out))
        print("other_user: refused with: %s" % refusal.strip())


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def hold_as_nobody(args):
    """pg_stats_hold as nobody. setpriv itself runs without the preload: it changes its user
    with per-thread capabilities, and glibc aborts a process whose threads disagree on the result
    of setresgid (docs/STATS.md, known effects)."""
    return Hold(args, argv=AS_NOBODY + ["env", "LD_PRELOAD=" + args.lib, args.hold],
                env=clean_env())


def case_stale(args):
    """Nothing is left behind, however a process ends (its segment is destroyed with its last
    attachment); a process that exec'd a program without poolguard is explained; a program that
    closes every descriptor it did not open can still be read (poolguard keeps none)."""
    def shm_names():
        return sorted(n for n in os.listdir("/dev/shm") if n.startswith("poolguard."))

    before = shm_names()
    h = Hold(args)
    pid = h.pid
    h.send("alloc", "allocated")
    shmid = segment_id(pid)
    check(shmid in sysv_segments(), "segment %d not in /proc/sysvipc/shm" % shmid)
    h.proc.kill()
    h.proc.wait()
    rc, out, err = run_tool(args, "stat", str(pid))
    check(rc == 1 and "no process" in err, "stat of a dead pid: exit %d, %r" % (rc, err))
    check(shmid not in sysv_segments(), "segment %d outlived its process" % shmid)
    check(shm_names() == before, "/dev/shm changed: %s -> %s" % (before, shm_names()))
    print("stale: SIGKILL leaves nothing behind")

    # An exec into a program without poolguard: said so.
    sh = subprocess.Popen(["sh", "-c", 'read x; exec env -u LD_PRELOAD sleep 60'],
                          stdin=subprocess.PIPE, env=clean_env(LD_PRELOAD=args.lib))
    try:
        wait_for(lambda: segment_id(sh.pid), "the segment of sh")
        sh.stdin.write(b"go\n")
        sh.stdin.flush()
        wait_for(lambda: open("/proc/%d/comm" % sh.pid).read().strip() == "sleep",
                 "sh to exec sleep")
        rc, out, err = run_tool(args, "stat", str(sh.pid))
        check(rc == 1 and "does not run under poolguard" in err,
              "stat after exec: exit %d, %r" % (rc, err))
        print("stale: an exec without poolguard: %s" % err.strip())
    finally:
        sh.kill()
        sh.wait()

    # A program that closes every descriptor it did not open, and lists the ones it has: it has
    # only its own, and its statistics can still be read.
    sh = subprocess.Popen(["/usr/bin/python3", "-c",
                           "import os, sys; sys.stdin.readline(); os.closerange(3, 1 << 16); "
                           "print(sorted(int(n) for n in os.listdir('/proc/self/fd')), "
                           "flush=True); sys.stdin.readline()"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          env=clean_env(LD_PRELOAD=args.lib))
    try:
        wait_for(lambda: segment_id(sh.pid), "the segment of python3")
        sh.stdin.write(b"go\n")
        sh.stdin.flush()
        listed = sh.stdout.readline().decode().strip()
        check(listed == "[0, 1, 2, 3]", "after closerange python3 lists descriptors %s (0-2 and "
              "the one listdir opens expected)" % listed)
        doc = stat_json(args, sh.pid)
        check(doc["pid"] == sh.pid, "stat after closerange: pid %s" % doc["pid"])
        print("stale: a program that closes its descriptors has only its own (%s) and is still "
              "read" % listed)
    finally:
        sh.kill()
        sh.wait()


class ExecHold(Hold):
    """sh under the preload, which publishes, then execs pg_stats_hold (also preloaded)."""

    def __init__(self, args):
        self.proc = subprocess.Popen(["sh", "-c", 'read x; exec "$0"', args.hold],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=clean_env(LD_PRELOAD=args.lib))
        self.buf = b""
        self.pid = self.proc.pid
        wait_for(lambda: segment_id(self.pid), "the segment of sh")
        self.sh_inode = segment_id(self.pid)
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()
        check(int(self.expect("ready").split()[1]) == self.pid, "the exec changed the pid")


def case_exec(args):
    """A program that execs another under poolguard: the new image replaces the segment."""
    with ExecHold(args) as h:
        wait_for(lambda: segment_id(h.pid) not in (None, h.sh_inode), "a new segment")
        doc = stat_json(args, h.pid)
        check(doc["pid"] == h.pid, "pid %s after exec, expected %d" % (doc["pid"], h.pid))
        check(doc["command"].startswith("pg_stats_hold"), "command %r" % doc["command"])
        print("exec: segment of pid %d replaced, now published by %s" % (h.pid, doc["command"]))


def case_fork(args):
    """A forked child publishes its own segment, with the blocks it inherited, and the figures of
    parent and child go their own ways from then on."""
    with Hold(args) as h:
        h.send("alloc", "allocated")
        parent = stat_json(args, h.pid)
        child_pid = int(h.send("fork", "child").split()[1])
        try:
            wait_for(lambda: segment_owner(child_pid) == child_pid, "the child's segment")
            check(segment_id(child_pid) != segment_id(h.pid),
                  "the child shares its parent's segment")
            child = stat_json(args, child_pid)
            check(child["pid"] == child_pid, "child's segment says pid %s" % child["pid"])
            p, c = classes_by_size(parent), classes_by_size(child)
            for size in (32, 208):
                check(c[size]["live_blocks"] == p[size]["live_blocks"],
                      "class %d: child has %d live blocks, parent had %d at the fork"
                      % (size, c[size]["live_blocks"], p[size]["live_blocks"]))
            h.send("free", "freed")
            again, child_again = stat_json(args, h.pid), stat_json(args, child_pid)
            check(again["pid"] == h.pid, "the parent's segment changed owner")
            a, ca = classes_by_size(again), classes_by_size(child_again)
            check(a[32]["live_blocks"] == p[32]["live_blocks"] - 1000,
                  "the parent's frees did not show: %d live" % a[32]["live_blocks"])
            check(ca[32]["live_blocks"] == c[32]["live_blocks"],
                  "the parent's frees showed in the child: %d live, was %d"
                  % (ca[32]["live_blocks"], c[32]["live_blocks"]))
        finally:
            os.kill(child_pid, signal.SIGTERM)
        print("fork: child %d published its own segment (class 32: %d live); the parent's frees "
              "showed in the parent only" % (child_pid, c[32]["live_blocks"]))


def case_map(args):
    """map draws one character per pool; the in-use ones match the pools in use."""
    with Hold(args) as h:
        h.send("alloc", "allocated")
        rc, out, err = run_tool(args, "map", str(h.pid))
        check(rc == 0, "map: exit %d: %s" % (rc, err))
        rows = [line.split()[1] for line in out.splitlines() if line.startswith("0x")]
        check(rows, "map printed no arena rows:\n%s" % out)
        check(all(len(r) == 64 for r in rows), "rows are not 64 pools wide:\n%s" % out)
        check(all(r[0] == "h" and "h" not in r[1:] for r in rows),
              "each arena's first pool (and only it) holds the headers, 'h':\n%s" % out)
        in_use = sum(len(re.findall(r"[0-9#+]", r)) for r in rows)
        check(not any("+" in r for r in rows) or os.geteuid() != 0,
              "root reads the process's memory, yet the fill is unknown:\n%s" % out)
        doc = stat_json(args, h.pid)
        check(in_use == doc["arenas"]["pools_in_use"],
              "map shows %d pools in use, stat says %d:\n%s"
              % (in_use, doc["arenas"]["pools_in_use"], out))
        check(in_use >= 9, "map shows %d pools in use, expected the 9+ holding the blocks" % in_use)
        check("legend" in out, "map has no legend")
        rc, out2, err = run_tool(args, "map", str(h.pid), "--classes")
        check(rc == 0 and "class" in out2 and "a 16" in out2 and "E 3584" in out2,
              "map --classes:\n%s" % out2)
        print("map: %d arena(s), %d pools in use\n%s" % (len(rows), in_use, out))


def case_watch(args):
    """stat --watch refreshes until SIGINT, then exits 0."""
    with Hold(args) as h:
        w = subprocess.Popen([args.tool, "stat", "--watch", "0.1", str(h.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
        try:
            frames, text = 0, b""
            deadline = time.monotonic() + WAIT
            while frames < 3:
                left = deadline - time.monotonic()
                check(left > 0, "stat --watch printed %d frames in %.0f s" % (frames, WAIT))
                ready, _, _ = select.select([w.stdout], [], [], left)
                if ready:
                    chunk = os.read(w.stdout.fileno(), 65536)
                    if not chunk:
                        raise Failure("stat --watch ended early: %s" % w.stderr.read().decode())
                    text += chunk
                    frames = text.count(b"poolguard stat: pid")
            w.send_signal(signal.SIGINT)
            rc = w.wait(timeout=WAIT)
            check(rc == 0, "stat --watch exited %d after SIGINT" % rc)
            print("watch: %d frames, then exit 0 on SIGINT" % frames)
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()


def case_usage(args):
    """Bad arguments exit 2 with usage; unknown pids and bad segments exit 1; --help exits 0."""
    for argv in ([], ["bogus"], ["stat"], ["stat", "abc"], ["stat", "1", "2"], ["stat", "-1"],
                 ["stat", "--watch", "x", "1"], ["stat", "--frob", "1"], ["map"], ["map", "x"],
                 ["ls", "extra"], ["run"], ["run", "--limit", "lots", "--", "true"],
                 ["run", "--frob", "--", "true"], ["run", "--stats"]):
        rc, out, err = run_tool(args, *argv)
        check(rc == 2, "poolguard %s: exit %d, expected 2" % (" ".join(argv), rc))
        check("usage:" in err, "poolguard %s: no usage on stderr: %r" % (" ".join(argv), err))
    rc, out, err = run_tool(args, "run", "--guard", "full", "--", "true")
    check(rc == 2 and "not a guard mode" in err, "run --guard full: exit %d, %r" % (rc, err))
    # An unknown command: usage, and the command it is nearest to, for every command.
    typos = {"stats": "stat", "sat": "stat", "rn": "run", "runn": "run", "sl": "ls", "lss": "ls",
             "mpa": "map", "maps": "map", "prof": "profile", "profiel": "profile",
             "hlep": "help", "--versoin": "--version", "--hepl": "--help"}
    for given, meant in typos.items():
        rc, out, err = run_tool(args, given)
        check(rc == 2 and "usage:" in err and "did you mean '%s'?" % meant in err,
              "poolguard %s: exit %d, %r" % (given, rc, err[:200]))
    rc, out, err = run_tool(args, "frobnicate")
    check(rc == 2 and "unknown command 'frobnicate'" in err and "did you mean" not in err,
          "poolguard frobnicate: exit %d, %r" % (rc, err[:200]))
    # run -e: a name that is not an option (with the nearest one), or a malformed setting.
    for argv, message in ((["-e", "LIMTI=5M"], "POOLGUARD_LIMTI is not an option (did you mean "
                                                "POOLGUARD_LIMIT?)"),
                          (["-e", "POOLGUARD_GAURD=page"], "did you mean POOLGUARD_GUARD?"),
                          (["-e", "NOSUCHTHING=1"], "POOLGUARD_NOSUCHTHING is not an option"),
                          (["-e", "BUILD_DIR=x"], "POOLGUARD_BUILD_DIR is not an option"),
                          (["-e", "LIMIT"], "-e needs NAME=VALUE"),
                          (["-e", "=5M"], "-e needs NAME=VALUE"),
                          (["--env=LIMIT=lots"], "not a valid value for POOLGUARD_LIMIT"),
                          (["-e", "ON_ERROR=maybe"], "expected abort|report"),
                          (["-e"], "-e needs NAME=VALUE")):
        full = ["run"] + argv + (["--", "true"] if argv != ["-e"] else [])
        rc, out, err = run_tool(args, *full)
        check(rc == 2 and "usage: poolguard run" in err and message in err,
              "poolguard %s: exit %d, %r" % (" ".join(full), rc, err[:300]))
    for argv in (["--help"], ["help"], ["run", "--help"], ["stat", "--help"], ["ls", "--help"],
                 ["map", "--help"], ["stat", "1", "-h"]):
        rc, out, err = run_tool(args, *argv)
        check(rc == 0 and "usage: poolguard" in out, "poolguard %s: exit %d, stdout %r"
              % (" ".join(argv), rc, out[:200]))
    # --help names --version, and a man page that exists (the source tree's, for a build tree).
    rc, out, err = run_tool(args, "--help")
    man = re.search(r"`man -l ([^`]+)` has the details", out)
    check("--version" in out and man and os.path.isfile(man.group(1))
          and ".TH POOLGUARD 1" in open(man.group(1)).read(),
          "poolguard --help: no --version or no man page that exists: %r" % out[-300:])
    rc, out, err = run_tool(args, "--version")
    check(rc == 0 and re.match(r"poolguard \S+ \(stats segment version \d+\)$", out.strip()),
          "poolguard --version: exit %d, %r" % (rc, out))

    # A pid with no process, a process without poolguard.
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    unused = next(p for p in range(pid_max - 1, 1, -1) if not os.path.exists("/proc/%d" % p))
    rc, out, err = run_tool(args, "stat", str(unused))
    check(rc == 1 and "no process with pid %d" % unused in err, "unknown pid: %d, %r" % (rc, err))
    rc, out, err = run_tool(args, "map", str(unused))
    check(rc == 1 and "no process" in err, "map of an unknown pid: %d, %r" % (rc, err))
    rc, out, err = run_tool(args, "stat", str(os.getpid()))
    check(rc == 1 and "does not run under poolguard" in err, "process without poolguard: %d, %r"
          % (rc, err))

    # Segments that are not what they claim: this very process makes a System V segment,
    # attaches it (so that its maps show it) and writes headers into it.
    import struct
    size = 1 << 20
    _libc.shmget.argtypes = (ctypes.c_int, ctypes.c_size_t, ctypes.c_int)
    shmid = _libc.shmget(0, size, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
    check(shmid >= 0, "shmget: errno %d" % ctypes.get_errno())
    addr = _libc.shmat(shmid, None, 0)
    _libc.shmctl(shmid, 0, None)  # IPC_RMID: gone when detached
    try:
        start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        bad = {
            "does not run under poolguard": struct.pack("<QQIi", 0x1234, size, 2, os.getpid()),
            "version 99": struct.pack("<QQIi", MAGIC, size, 99, os.getpid()),
            "geometry": struct.pack("<QQIiIIQ", MAGIC, size, 2, os.getpid(), os.geteuid(), 0,
                                    start),
            "shares the segment of process 1": struct.pack("<QQIi", MAGIC, size, 2, 1),
        }
        for what, data in bad.items():
            ctypes.memset(addr, 0, 4096)
            ctypes.memmove(addr, data, len(data))
            rc, out, err = run_tool(args, "stat", str(os.getpid()))
            check(rc == 1 and what in err, "segment with %s: exit %d, %r" % (what, rc, err))
    finally:
        _libc.shmdt(ctypes.c_void_p(addr))
    print("usage: exit 2 on bad arguments, 1 on unknown pid, no segment or bad segment, "
          "0 on --help")


def case_run(args):
    """poolguard run: preloads the library, sets the options, passes the exit status through."""
    rc, out, err = run_tool(args, "run", "--stats", "--", "true")
    check(rc == 0, "run --stats -- true: exit %d: %s" % (rc, err))
    lines = [line for line in err.splitlines() if line.startswith('{"poolguard":')]
    check(len(lines) == 1, "run --stats -- true printed %d summary lines:\n%s" % (len(lines), err))
    summary = json.loads(lines[0])
    check(summary["pid"] > 0 and "small_allocs" in summary, "summary: %s" % summary)
    rc, out, err = run_tool(args, "run", "--", "sh", "-c", "exit 3")
    check(rc == 3, "run -- sh -c 'exit 3': exit %d" % rc)
    rc, out, err = run_tool(args, "run", "--", "/nonexistent/program")
    check(rc == 127 and "not found" in err, "run of a missing program: exit %d, %r" % (rc, err))
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "pg.%p.log")
        rc, out, err = run_tool(args, "run", "--limit", "64M", "--log", log, "--guard", "redzone",
                                "--", "sh", "-c",
                                'echo "$LD_PRELOAD|$POOLGUARD_LIMIT|$POOLGUARD_LOG|'
                                '$POOLGUARD_GUARD|${POOLGUARD_STATS:-unset}"')
        check(rc == 0, "run --limit --log --guard: exit %d: %s" % (rc, err))
        preload, limit, logv, guard, stats = out.strip().split("|")
        check(os.path.samefile(preload.split(":")[0], args.lib),
              "LD_PRELOAD=%s, expected %s" % (preload, args.lib))
        check(limit == "64M" and logv == log and guard == "redzone" and stats == "unset",
              "environment: %s" % out.strip())
    # -e sets any option, with or without the prefix, in order (the last setting wins), and
    # together with the per-option flags.
    rc, out, err = run_tool(args, "run", "--stats", "-e", "POOLGUARD_ON_ERROR=report",
                            "-e", "STATS=off", "--env", "GUARD_SAMPLE=100", "--env=LIMIT_WARN=50,90",
                            "-eLEAKS_EXIT_CODE=3", "--limit", "1G", "-e", "LIMIT=2G", "--", "sh",
                            "-c", "env | grep ^POOLGUARD_ | sort")
    want = ["POOLGUARD_GUARD_SAMPLE=100", "POOLGUARD_LEAKS_EXIT_CODE=3", "POOLGUARD_LIMIT=2G",
            "POOLGUARD_LIMIT_WARN=50,90", "POOLGUARD_ON_ERROR=report", "POOLGUARD_STATS=off"]
    check(rc == 0 and out.split() == want, "run -e ...: exit %d, environment %r, expected %r (%s)"
          % (rc, out.split(), want, err))
    print("run: summary printed, status passed through, 127 for a missing program, "
          "options in the environment (flags and -e)")


def case_summary(args):
    """The exit summary names the process, shows the peak of everything held (a program of large
    blocks only has no small peak at all), and goes to POOLGUARD_LOG when that is set."""
    prog = ("import sys\nxs = [bytearray(100000) for _ in range(1000)]\ndel xs\n")
    env = clean_env(LD_PRELOAD=args.lib, POOLGUARD_STATS="exit", PYTHONMALLOC="malloc")
    p = subprocess.run(["/usr/bin/python3", "-c", prog], capture_output=True, env=env, timeout=120)
    check(p.returncode == 0, "python3: exit %d: %s" % (p.returncode, p.stderr[-500:]))
    err = p.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.startswith('{"poolguard":')]
    check(len(lines) == 1, "%d summary lines:\n%s" % (len(lines), err[-2000:]))
    doc = json.loads(lines[0])
    check(doc.get("comm") == "python3" and doc.get("argv0") == "/usr/bin/python3",
          "summary names %r / %r" % (doc.get("comm"), doc.get("argv0")))
    # 100 MB of large blocks at once: seen within 64 large operations (6.4 MB).
    peak = doc.get("peak_held_bytes", 0)
    check(peak >= 90 * 10**6, "peak_held_bytes %d, expected at least 90 MB" % peak)
    check(doc["peak_small_bytes"] < 50 * 10**6, "peak_small_bytes %d" % doc["peak_small_bytes"])
    text = [line for line in err.splitlines() if "summary of pid %d" % doc["pid"] in line]
    check(len(text) == 1 and "(python3), /usr/bin/python3: peak" in text[0],
          "no summary line naming the process: %s" % err[-1000:])
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "pg.%p.log")
        env = clean_env(LD_PRELOAD=args.lib, POOLGUARD_STATS="exit", POOLGUARD_LOG=log)
        p = subprocess.run(["/bin/true"], capture_output=True, env=env, timeout=60)
        check(p.returncode == 0 and b'{"poolguard":' not in p.stderr,
              "with POOLGUARD_LOG the summary still went to stderr: %r" % p.stderr[:300])
        logs = os.listdir(tmp)
        check(len(logs) == 1, "log files: %s" % logs)
        with open(os.path.join(tmp, logs[0])) as f:
            content = f.read()
        check('"comm":"true"' in content and "summary of pid" in content,
              "the log lacks the summary: %r" % content[:300])
    print("summary: %s (%s), peak %.1f MB held (small peak %.1f MB); to POOLGUARD_LOG when set"
          % (doc["comm"], doc["argv0"], peak / 1e6, doc["peak_small_bytes"] / 1e6))


def case_json_names(args):
    """stat --json is valid JSON whatever the process is called (a name with bytes that are not
    UTF-8), and each object says when it was read."""
    with tempfile.TemporaryDirectory() as tmp:
        name = os.path.join(os.fsencode(tmp), b"h\xff\xfe\xc3old")
        os.symlink(os.fsencode(args.hold), name)
        with Hold(args, argv=[name]) as h:
            before = time.time()
            rc = subprocess.run([args.tool, "stat", "--json", str(h.pid)], capture_output=True,
                                env=clean_env(), timeout=60)
            check(rc.returncode == 0, "stat --json: exit %d: %r" % (rc.returncode, rc.stderr))
            try:
                doc = json.loads(rc.stdout.decode("utf-8"))
            except ValueError as e:
                raise Failure("stat --json of a process named %r is not JSON (%s): %r"
                              % (name, e, rc.stdout[:200]))
            check(doc["command"] == "h\ufffd\ufffd\ufffdold", "command %r" % doc["command"])
            when = doc.get("time_unix_ms", 0) / 1000
            check(abs(when - before) < 30, "time_unix_ms %r, now %.0f" % (doc.get("time_unix_ms"),
                                                                         before))
            check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc.get("time", "")),
                  "time %r" % doc.get("time"))
            check(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(when)) == doc["time"][:16],
                  "time %r and time_unix_ms %r disagree" % (doc["time"], doc["time_unix_ms"]))
    print("json: valid for a process named %r (command %r), read at %s"
          % (name, doc["command"], doc["time"]))


def case_segment_off(args):
    """No thread of poolguard's in any process; POOLGUARD_SEGMENT=off: no segment either."""
    with Hold(args) as h:
        h.send("alloc", "allocated")
        check(threads(h.pid) == 1, "a single-threaded program has %d threads under poolguard"
              % threads(h.pid))
        stat_json(args, h.pid)
        check(threads(h.pid) == 1, "reading the statistics started a thread")
    with OffHold(args) as h:
        check(threads(h.pid) == 1, "%d threads with POOLGUARD_SEGMENT=off" % threads(h.pid))
        check(segment_id(h.pid) is None, "a segment exists with POOLGUARD_SEGMENT=off")
        rc, out, err = run_tool(args, "stat", str(h.pid))
        check(rc == 1 and "POOLGUARD_SEGMENT=off" in err, "stat: exit %d, %r" % (rc, err))
    print("segment_off: one thread, segment or not; none with POOLGUARD_SEGMENT=off")


class OffHold(Hold):
    """pg_stats_hold with POOLGUARD_SEGMENT=off (no segment to wait for)."""

    def __init__(self, args):
        self.proc = subprocess.Popen([args.hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=clean_env(LD_PRELOAD=args.lib, POOLGUARD_SEGMENT="off"))
        self.buf = b""
        self.pid = int(self.expect("ready").split()[1])


def case_install(args):
    """cmake --install puts the tool, library, man page, OPTIONS.md, header and pkg-config file in
    place."""
    check(args.build, "--build DIR is required")
    with tempfile.TemporaryDirectory() as prefix:
        p = subprocess.run(["cmake", "--install", args.build, "--prefix", prefix],
                           capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, "cmake --install failed:\n%s%s" % (p.stdout, p.stderr))
        files = []
        for root, _, names in os.walk(prefix):
            files += [os.path.relpath(os.path.join(root, n), prefix) for n in names]
        def one(pattern):
            hits = [f for f in files if re.fullmatch(pattern, f)]
            check(len(hits) == 1, "installed files matching %s: %s (all: %s)"
                  % (pattern, hits, files))
            return os.path.join(prefix, hits[0])
        tool = one(r"bin/poolguard")
        lib = one(r"lib(/[^/]+)?/libpoolguard\.so")
        man = one(r"share/man/man1/poolguard\.1")
        pc = one(r"lib(/[^/]+)?/pkgconfig/poolguard\.pc")
        one(r"include/poolguard/stats/segment\.h")
        options = one(r"share/doc/poolguard/OPTIONS\.md")
        page = open(man).read()
        check(page.startswith(".") and ".TH POOLGUARD 1" in page, "%s is not a man page" % man)
        # The man page's ENVIRONMENT lists every option of the installed OPTIONS.md table.
        names = re.findall(r"^\| `POOLGUARD_(\w+)`", open(options).read(), re.M)
        env = page[page.index(".SH ENVIRONMENT"):page.index(".SH FILES")]
        missing = [n for n in names if "\\fBPOOLGUARD_%s=" % n not in env]
        check(len(names) >= 10 and not missing, "%d options in OPTIONS.md; not in the man page: %s"
              % (len(names), missing))
        env = clean_env(PKG_CONFIG_PATH=os.path.dirname(pc))
        q = subprocess.run(["pkg-config", "--libs", "poolguard"], capture_output=True, text=True,
                           env=env, timeout=60)
        check(q.returncode == 0, "pkg-config --libs poolguard: %s" % q.stderr)
        libdir = [w[2:] for w in q.stdout.split() if w.startswith("-L")]
        check(libdir and os.path.samefile(libdir[0], os.path.dirname(lib))
              and "-lpoolguard" in q.stdout.split(), "pkg-config --libs: %r" % q.stdout)
        q = subprocess.run(["pkg-config", "--variable=preload", "poolguard"], capture_output=True,
                           text=True, env=env, timeout=60)
        check(q.returncode == 0 and os.path.samefile(q.stdout.strip(), lib),
              "pkg-config --variable=preload: %r" % q.stdout)
        # The installed tool finds the installed library.
        r = subprocess.run([tool, "run", "--", "sh", "-c", 'echo "$LD_PRELOAD"'],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        check(r.returncode == 0 and os.path.samefile(r.stdout.strip(), lib),
              "installed poolguard run preloads %r, expected %s (%s)" % (r.stdout, lib, r.stderr))
        print("install: %s" % ", ".join(sorted(files)))


def main():
    cases = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(cases))
    ap.add_argument("--tool", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--hold", required=True)
    ap.add_argument("--build")
    args = ap.parse_args()
    args.tool, args.lib, args.hold = (os.path.abspath(p) for p in (args.tool, args.lib, args.hold))
    try:
        cases[args.case](args)
    except Failure as e:
        print("FAIL: stats.%s: %s" % (args.case, e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
