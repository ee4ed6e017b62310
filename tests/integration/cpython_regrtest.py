#!/usr/bin/env python3
"""Runs CPython's own regression tests (Debian's libpython3.11-testsuite, "python3 -m test") with
and without libpoolguard.so preloaded and compares them test by test. Used by
tests/integration/cpython.sh (the ctest entry: a subset) and scripts/cpython_tests.sh (all of it).

    cpython_regrtest.py --lib LIBPOOLGUARD --out DIR [--modes MODE,...] [--timeout SECONDS]
                        [--known-bugs exclude|check] [--json FILE] SPEC...

SPEC is a test module, optionally with regrtest patterns: MODULE[:PATTERN,...]; a PATTERN is
passed as "-m PATTERN" (run only the matching tests), or as "-i PATTERN" (leave them out) when it
starts with '!'. Each module runs in an interpreter of its own ("python3 -m test -u none
--timeout SECONDS --junit-xml FILE [-m/-i PATTERN...] MODULE": no resources, so no network, no
audio, no big memory), under an outer timeout 60 s longer, once without the preload for each
PYTHONMALLOC setting the modes need (the baselines) and once per MODE with LD_PRELOAD:

    pymalloc  PYTHONMALLOC unset: pymalloc serves objects, poolguard the rest  (baseline: pymalloc)
    malloc    PYTHONMALLOC=malloc: every Python object comes from poolguard    (baseline: malloc)
    redzone   PYTHONMALLOC=malloc POOLGUARD_GUARD=redzone                      (baseline: malloc)
    leaks     PYTHONMALLOC=malloc POOLGUARD_LEAKS=1                            (baseline: malloc)

(redzone and leaks write their reports to files, POOLGUARD_LOG, so that stderr, which many tests
compare, stays as it is.)

Verdict: every test that passes in the baseline must pass under the preload; a test that fails or
is skipped in the baseline is reported, not held against poolguard. A module regrtest calls OK in
the baseline must be OK under the preload (this also catches crashes, hangs, errors in setUpClass
and changes of the environment); a selection that runs no test is an error; a guard report
(redzone) fails the run. Tests listed in KNOWN_BUGS are set aside, and said so: one that hangs is
left out of every run (with --known-bugs check it also runs alone, under a short timeout), one
that fails runs, and its result in the modes listed is not held against poolguard; in both
cases a known-bug test that passes under the preload fails the run (its entry must go). Prints one line per run (module, mode, tests run, passed, failed, skipped,
seconds, regrtest's verdict), the differences, and exits 1 on any regression, 2 on a usage error
or when the preload does not take effect.

Run by Debian's /usr/bin/python3 itself, never preloaded: the harness is not under test.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

PYTHON = "/usr/bin/python3"
TESTSUITE = "/usr/lib/python3.11/test"

# mode -> (baseline PYTHONMALLOC setting, environment added under the preload)
MODES = {
    "pymalloc": ("pymalloc", {}),
    "malloc": ("malloc", {"PYTHONMALLOC": "malloc"}),
    "redzone": ("malloc", {"PYTHONMALLOC": "malloc", "POOLGUARD_GUARD": "redzone"}),
    "leaks": ("malloc", {"PYTHONMALLOC": "malloc", "POOLGUARD_LEAKS": "1"}),
}
BASELINE_ENV = {"pymalloc": {}, "malloc": {"PYTHONMALLOC": "malloc"}}

# Tests that fail under the preload because of a known poolguard bug: module -> test method ->
# (kind, modes, why). "hangs": left out of every run (regrtest -i; the baseline is shared by the
# modes), run alone under a short timeout by --known-bugs check. "fails": runs; in the modes
# listed its result is reported, not compared. Either way a known-bug test that passes under the
# preload fails the run: remove its entry once the bug is fixed.
ALL_MODES = tuple(MODES)
# (Fixed since: test_threading's fork from a non-main thread that ends with pthread_exit() was
# kept alive by poolguard's statistics thread, which is gone.)
UNWIND_PIPE = (
    "with stack capture on (guard and leak modes), every process keeps libunwind's "
    "memory-validation pipe open, two descriptors placed at 100 and above (base/unwind.h): the "
    "child that should see only fds 0-2 and those passed lists them too")
LEAK_REPORT = (
    "the fork child's leak report (POOLGUARD_LEAKS) goes to its stderr, which the test requires "
    "empty; blocks only the parent's other threads pointed to are unreachable in the child")
KNOWN_BUGS = {
    "test_subprocess": {
        "test_pass_fds_redirected": ("fails", ("redzone", "leaks"), UNWIND_PIPE),
    },
    "test_threading": {
        "test_main_thread_after_fork_from_nonmain_thread": ("fails", ("leaks",), LEAK_REPORT),
    },
}
KNOWN_BUG_TIMEOUT = 20  # seconds for one known-bug test run alone (--known-bugs check)

# Allocations (small and large: the guard modes count every block as large) poolguard must have
# served by the exit of "python3 -c pass" under the preload (the interpreter's start): checks
# that LD_PRELOAD takes effect (ld.so only warns when it cannot preload a library, and the tests
# would then pass without it). With pymalloc the objects do not reach malloc, but the
# interpreter's own raw allocations do.
MIN_ALLOCS = {"pymalloc": 300, "malloc": 10000}


def die(msg, code=2):
    print("cpython_regrtest: " + msg, file=sys.stderr)
    sys.exit(code)


def parse_spec(spec):
    module, _, pats = spec.partition(":")
    if not re.fullmatch(r"test_[A-Za-z0-9_]+", module):
        die("not a test module: %r" % spec)
    args = []
    for p in filter(None, pats.split(",")):
        args += ["-i", p[1:]] if p.startswith("!") else ["-m", p]
    return module, args


def base_env(workdir):
    """A fixed environment for every run, plain or preloaded: no inherited preload, poolguard
    option or PYTHON* setting; Debian's directories only on PATH (not pyenv's python3); a scratch
    HOME and TMPDIR (regrtest makes its working directory there)."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("POOLGUARD_", "PYTHON", "PYENV", "VIRTUAL_ENV", "CONDA"))
                   or k in ("LD_PRELOAD", "LD_LIBRARY_PATH", "LANGUAGE"))}
    home = os.path.join(workdir, "home")
    tmp = os.path.join(workdir, "tmp")
    os.makedirs(home, exist_ok=True)
    os.makedirs(tmp, exist_ok=True)
    env.update(PATH="/usr/sbin:/usr/bin:/sbin:/bin", HOME=home, TMPDIR=tmp, LC_ALL="C.UTF-8",
               LANG="C.UTF-8", TZ="UTC", PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    return env


def preload_env(env0, lib, mode, outdir, tag):
    e = dict(env0, LD_PRELOAD=lib, **MODES[mode][1])
    if mode in ("redzone", "leaks"):
        e["POOLGUARD_LOG"] = os.path.join(outdir, "%s.%s.%%p.log" % (tag, mode))
    return e


def check_faulthandler(env):
    """regrtest --timeout relies on faulthandler.dump_traceback_later(exit=True)."""
    p = subprocess.run([PYTHON, "-c", "import faulthandler, time; "
                        "faulthandler.dump_traceback_later(0.2, exit=True); time.sleep(30)"],
                       env=env, capture_output=True, text=True, timeout=60)
    if p.returncode != 1 or "Timeout (0:00:00.200000)!" not in p.stderr:
        die("faulthandler.dump_traceback_later does not work here (exit %d): %s"
            % (p.returncode, p.stderr[-500:]))


def preflight(lib, mode, env0):
    """Fails unless a preloaded interpreter in this mode reports poolguard's statistics."""
    e = dict(env0, LD_PRELOAD=lib, POOLGUARD_STATS="exit", **MODES[mode][1])
    e.pop("POOLGUARD_LEAKS", None)  # its report is not needed here
    p = subprocess.run([PYTHON, "-c", "pass"], env=e, capture_output=True, text=True, timeout=120)
    stats = [json.loads(m) for m in re.findall(r'\{"poolguard":.*\}', p.stderr)]
    n = max((s.get("small_allocs", 0) + s.get("large_allocs", 0) for s in stats), default=0)
    if p.returncode != 0 or not stats or n < MIN_ALLOCS[MODES[mode][0]]:
        sys.stderr.write(p.stderr[-3000:])
        die("mode %s: the preload does not take effect (exit %d, %d statistics lines, "
            "%d allocations, expected at least %d)"
            % (mode, p.returncode, len(stats), n, MIN_ALLOCS[MODES[mode][0]]))
    return n


def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    pids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return sorted(pids)


def backtraces(pgid, path):
    """Native backtraces of every thread of every process of a hung run (gdb, when installed)."""
    if not shutil.which("gdb"):
        return
    with open(path, "w") as f:
        for pid in group_pids(pgid):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as c:
                    cmd = c.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                cmd = "?"
            f.write("==== pid %d: %s\n" % (pid, cmd))
            f.flush()
            try:
                subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                                "thread apply all bt"], stdout=f, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=120)
            except subprocess.TimeoutExpired:
                f.write("(gdb timed out)\n")


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def parse_xml(path):
    """{test id: (passed|failed|skipped, detail)} and the errors and failures unittest counted
    (which include those of setUpClass and module fixtures, not in any testcase)."""
    tests, counted = {}, 0
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return tests, counted
    for suite in root.iter("testsuite"):
        counted += int(suite.get("errors", 0)) + int(suite.get("failures", 0))
    for case in root.iter("testcase"):
        bad = case.find("error")
        if bad is None:
            bad = case.find("failure")
        if bad is not None:
            lines = (bad.get("message") or "").strip().splitlines()
            tests[case.get("name")] = ("failed", lines[-1] if lines else "")
        elif case.find("skipped") is not None:
            tests[case.get("name")] = ("skipped", (case.find("skipped").text or "").strip())
        elif case.find("outcome") is not None:  # an unexpected success
            tests[case.get("name")] = ("failed", "unexpected success")
        else:  # passed, or an expected failure (unittest counts it as a success too)
            tests[case.get("name")] = ("passed", "")
    return tests, counted


def verdict(text, rc):
    """regrtest's verdict on a module from its output and exit status, or how it ended: OK,
    FAILED, ENV CHANGED, SKIPPED, NO TESTS, CRASHED (signal), TIMED OUT (faulthandler: regrtest's
    --timeout, or its own 2 minutes for the interpreter's exit after the tests), ERROR (exit)."""
    def said(line):
        return re.search("^" + re.escape(line) + "$", text, re.M)

    timeout = re.search(r"(^|\.\.\. )Timeout \((\d+:\d\d:\d\d(\.\d+)?)\)!$", text, re.M)
    if rc < 0:
        status = "CRASHED (%s)" % signal.Signals(-rc).name
    elif timeout:
        status = "TIMED OUT (faulthandler, %s)" % timeout.group(2)
        if re.search(r"^Tests result: ", text[:timeout.start()], re.M):
            return status + " at exit, after the tests ended"
    elif said("1 test OK.") and rc == 0:
        return "OK"
    elif said("1 test failed:"):
        return "FAILED"
    elif said("1 test altered the execution environment:"):
        return "ENV CHANGED"
    elif said("1 test skipped:"):
        return "SKIPPED"
    elif said("1 test run no tests:"):
        return "NO TESTS"
    else:
        status = "ERROR (exit %d)" % rc
    return status + last_started(text)


def last_started(text):
    """-v: unittest prints each test's id as it starts (a docstring's first line may follow)."""
    started = re.findall(r"^\w+ \(([\w.]+)\)$|^\w+ \(([\w.]+)\) \.\.\. ", text, re.M)
    return ", last test started: " + "".join(started[-1]).split(".", 1)[-1] if started else ""


def run_module(module, pat_args, label, env, timeout, outdir, tag=None):
    """Runs one module once; its files are OUTDIR/TAG.LABEL.{out,xml,gdb} (TAG: the module).
    Returns a dict: status (regrtest's verdict, or the crash or hang), seconds, tests {id:
    (status, detail)}, failed (tests failed plus errors outside any test), out (the output)."""
    stem = os.path.join(outdir, "%s.%s" % (tag or module, label.replace("/", ".")))
    xml_path, out_path = stem + ".xml", stem + ".out"
    for p in (xml_path, out_path, stem + ".gdb"):
        if os.path.exists(p):
            os.unlink(p)
    cwd = os.path.join(outdir, "cwd")
    shutil.rmtree(cwd, ignore_errors=True)
    os.makedirs(cwd)
    # -v: unittest names each test as it starts, and output is not captured, so a crash or a
    # hang shows which test it was in, with faulthandler's traceback.
    cmd = [PYTHON, "-B", "-m", "test", "-v", "-u", "none", "--timeout", str(timeout),
           "--junit-xml", xml_path] + pat_args + [module]
    shown = " ".join("%s=%s" % kv for kv in sorted(env.items())
                     if kv[0] in ("LD_PRELOAD", "PYTHONMALLOC") or kv[0].startswith("POOLGUARD_"))
    start = time.monotonic()
    hung = False
    with open(out_path, "w") as out:
        out.write("$ %s %s\n" % (shown, " ".join(cmd)))
        out.flush()
        # A session of its own, so that the run and whatever it started can be killed together.
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout + 60)
        except subprocess.TimeoutExpired:
            hung = True
            backtraces(proc.pid, stem + ".gdb")
            kill_group(proc.pid)
            rc = proc.wait()
    seconds = time.monotonic() - start
    kill_group(proc.pid)  # children a crashed or timed-out run left behind (the hung ones)
    shutil.rmtree(cwd, ignore_errors=True)

    with open(out_path, errors="replace") as f:
        text = f.read()

    if hung:
        status = "HUNG (killed after %d s, backtraces in %s.gdb)%s" % (
            timeout + 60, os.path.basename(stem), last_started(text))
    else:
        status = verdict(text, rc)

    tests, counted = parse_xml(xml_path)
    failed = sum(1 for st, _ in tests.values() if st == "failed")
    in_tests = sum(1 for st, d in tests.values() if st == "failed" and d != "unexpected success")
    outside = max(0, counted - in_tests)
    return {"status": status, "seconds": seconds, "tests": tests, "outside": outside,
            "failed": failed + outside, "out": out_path}


def counts(r):
    t = r["tests"].values()
    return (len(r["tests"]), sum(1 for s, _ in t if s == "passed"), r["failed"],
            sum(1 for s, _ in t if s == "skipped"))


ROW = "%-18s %-14s %6s %6s %6s %7s %8s  %s"


def row(module, label, r):
    return ROW % ((module, label) + counts(r) + ("%.1f" % r["seconds"], r["status"]))


def compare(where, base, pg, problems, notes, known=None):
    """Adds to problems what the preloaded run `pg` lost against its baseline `base`; `known`:
    {test method: why} whose results are reported instead (known bugs of this mode)."""
    known = known or {}
    if not base["tests"]:
        problems.append("%s: no test ran without the preload (%s): a selection that tests "
                        "nothing" % (where, base["out"]))
        return
    if base["status"] != "OK":
        notes.append("%s: without the preload regrtest says %s (%s)"
                     % (where, base["status"], base["out"]))
    elif pg["status"] != "OK" and not (pg["status"] == "FAILED" and known and all(
            name.rsplit(".", 1)[-1] in known
            for name, (st, _) in pg["tests"].items() if st == "failed")):
        problems.append("%s: regrtest says %s under the preload, OK without (%s)"
                        % (where, pg["status"], pg["out"]))
    if pg["outside"] > base["outside"]:
        problems.append("%s: %d errors outside any test (setUpClass, module fixtures) under the "
                        "preload, %d without" % (where, pg["outside"], base["outside"]))
    no_result, skipped_both = [], 0
    for name, (st, detail) in sorted(base["tests"].items()):
        got, why = pg["tests"].get(name, ("without result", ""))
        method = name.rsplit(".", 1)[-1]
        if method in known:
            if st == "passed" and got == "passed":
                problems.append("%s: %s, a known bug, passes under the preload now: remove it "
                                "from KNOWN_BUGS" % (where, name))
            else:
                notes.append("%s: %s is %s without the preload, %s with it%s (known bug: %s)"
                             % (where, name, st, got, ": " + why[:200] if why else "",
                                known[method]))
            continue
        if st == "passed":
            if got == "without result":
                no_result.append(name)
            elif got != "passed":
                problems.append("%s: %s passes without the preload, is %s with it%s"
                                % (where, name, got, ": " + why[:300] if why else ""))
        elif st == "skipped" and got == "skipped":
            skipped_both += 1
        else:
            notes.append("%s: %s is %s without the preload (%s), %s with it"
                         % (where, name, st, detail[:160], got))
    if no_result:
        problems.append("%s: %d tests that pass without the preload have no result with it "
                        "(e.g. %s)" % (where, len(no_result), ", ".join(no_result[:3])))
    if skipped_both:
        notes.append("%s: %d tests skipped with and without the preload" % (where, skipped_both))


def check_logs(where, outdir, tag, mode, problems, notes):
    """redzone and leaks: the reports poolguard wrote to POOLGUARD_LOG files."""
    errors, summaries = 0, []
    for f in sorted(os.listdir(outdir)):
        if f.startswith("%s.%s." % (tag, mode)) and f.endswith(".log"):
            with open(os.path.join(outdir, f), errors="replace") as fh:
                t = fh.read()
            errors += len(re.findall(r"^poolguard: ERROR", t, re.M))
            summaries += [json.loads(j)
                          for j in re.findall(r"^poolguard: leak-summary (\{.*\})$", t, re.M)]
    if errors:
        problems.append("%s: %d poolguard error reports in %s/%s.%s.*.log"
                        % (where, errors, outdir, tag, mode))
    if mode == "leaks":
        leaky = [x for x in summaries if x["direct"]["blocks"] + x["indirect"]["blocks"]]
        notes.append("%s: %d leak reports (processes that exited normally), %d with leaks: %d "
                     "direct blocks, %d indirect" % (
                         where, len(summaries), len(leaky),
                         sum(x["direct"]["blocks"] for x in summaries),
                         sum(x["indirect"]["blocks"] for x in summaries)))


def remove_logs(outdir, tag, mode):
    for f in os.listdir(outdir):
        if f.startswith("%s.%s." % (tag, mode)) and f.endswith(".log"):
            os.unlink(os.path.join(outdir, f))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", required=True, help="libpoolguard.so")
    ap.add_argument("--out", required=True, help="directory for outputs (created)")
    ap.add_argument("--modes", default="pymalloc,malloc", help="comma-separated: " + ",".join(MODES))
    ap.add_argument("--timeout", type=int, default=600,
                    help="regrtest --timeout per module (faulthandler); the outer one is 60 s more")
    ap.add_argument("--known-bugs", choices=("exclude", "check"), default="exclude")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("specs", nargs="+")
    a = ap.parse_args()

    lib = os.path.abspath(a.lib)
    if not os.path.isfile(lib):
        die("library not found: " + lib)
    if not os.path.isfile(os.path.join(TESTSUITE, "libregrtest", "main.py")):
        die("CPython's test suite is missing: %s (scripts/deps.sh installs "
            "libpython3.11-testsuite)" % TESTSUITE)
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            die("unknown mode %r (known: %s)" % (m, ", ".join(MODES)))
    baselines = []
    for m in modes:
        if MODES[m][0] not in baselines:
            baselines.append(MODES[m][0])
    specs = [parse_spec(s) for s in a.specs]
    for module, _ in specs:
        if not (os.path.isfile(os.path.join(TESTSUITE, module + ".py"))
                or os.path.isdir(os.path.join(TESTSUITE, module))):
            die("no such test module in %s: %s" % (TESTSUITE, module))
    outdir = os.path.abspath(a.out)
    os.makedirs(outdir, exist_ok=True)
    env0 = base_env(outdir)

    check_faulthandler(env0)
    for m in modes:
        print("preload check, mode %s: python3 -c pass made %d allocations in poolguard"
              % (m, preflight(lib, m, env0)))
    header = ROW % ("module", "mode", "run", "passed", "failed", "skipped", "seconds", "regrtest")
    print(header)
    sys.stdout.flush()

    results, problems, notes = {}, [], []
    for module, pat_args in specs:
        known = KNOWN_BUGS.get(module, {})
        for name in sorted(known):
            if known[name][0] == "hangs":
                pat_args = pat_args + ["-i", name]
                notes.append("%s: %s left out of every run, known poolguard bug (hangs): %s"
                             % (module, name, known[name][2]))
        runs = [("plain/" + b, dict(env0, **BASELINE_ENV[b])) for b in baselines]
        runs += [("pg/" + m, preload_env(env0, lib, m, outdir, module)) for m in modes]
        for label, env in runs:
            remove_logs(outdir, module, label[3:])
            r = run_module(module, pat_args, label, env, a.timeout, outdir)
            results[(module, label)] = r
            print(row(module, label, r))
            sys.stdout.flush()
        for m in modes:
            where = "%s, mode %s" % (module, m)
            fails = {name: why for name, (kind, ms, why) in known.items()
                     if kind == "fails" and m in ms}
            compare(where, results[(module, "plain/" + MODES[m][0])], results[(module, "pg/" + m)],
                    problems, notes, fails)
            if m in ("redzone", "leaks"):
                check_logs(where, outdir, module, m, problems, notes)

    print("-" * len(header))
    totals = {}
    for (_, label), r in results.items():
        t = totals.setdefault(label, [0, 0, 0, 0, 0, 0.0])
        t[0] += 1
        for i, c in enumerate(counts(r)):
            t[i + 1] += c
        t[5] += r["seconds"]
    for label, t in totals.items():
        print(ROW % ("%d modules" % t[0], label, t[1], t[2], t[3], t[4], "%.1f" % t[5], ""))

    if a.known_bugs == "check":
        # Each known-bug test alone, with a short timeout: it must still pass without the preload
        # and still fail with it; one that passes now is a stale entry.
        for module, _ in specs:
            for name in sorted(n for n, (kind, _, _) in KNOWN_BUGS.get(module, {}).items()
                               if kind == "hangs"):
                tag = "known.%s.%s" % (module, name)
                runs = [("plain/" + b, dict(env0, **BASELINE_ENV[b])) for b in baselines]
                runs += [("pg/" + m, preload_env(env0, lib, m, outdir, tag)) for m in modes]
                got = {}
                for label, env in runs:
                    remove_logs(outdir, tag, label[3:])
                    got[label] = run_module(module, ["-m", name], label, env, KNOWN_BUG_TIMEOUT,
                                            outdir, tag)
                    print(row(module, label, got[label]) + "; known bug: " + name)
                for m in modes:
                    base, pg = got["plain/" + MODES[m][0]], got["pg/" + m]
                    where = "%s.%s, mode %s" % (module, name, m)
                    if base["status"] != "OK":
                        problems.append("%s: the known-bug test does not pass without the "
                                        "preload (%s)" % (where, base["status"]))
                    elif pg["status"] == "OK":
                        problems.append("%s: the known-bug test passes under the preload now: "
                                        "remove it from KNOWN_BUGS" % where)
                    else:
                        notes.append("%s: known bug still there (%s)" % (where, pg["status"]))

    if a.json:
        with open(a.json, "w") as f:
            json.dump([dict(zip(("module", "mode", "run", "passed", "failed", "skipped"),
                                (mod, label) + counts(r)),
                            seconds=round(r["seconds"], 1), status=r["status"])
                       for (mod, label), r in results.items()], f, indent=1)
    for n in notes:
        print("note: " + n)
    for p in problems:
        print("REGRESSION: " + p)
    if problems:
        print("%d problems under the preload (outputs in %s)" % (len(problems), outdir))
        return 1
    print("every test that passes without the preload passes with it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
