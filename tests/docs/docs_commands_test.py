#!/usr/bin/python3
"""Runs the command blocks of README.md and the docs, in order, in a fresh clone, as a new user
would, and checks each command's exit status and what it printed.

    docs_commands_test.py SOURCE_DIR [--keep]

SOURCE_DIR must be a git checkout: the test clones its HEAD (committed work only, as a user gets
it). A block is run when it is fenced as ```sh, or when its lines start with a "$ " prompt (then
only those lines run; the others are sample output). Placeholders stand for programs the test
provides: `prog` (allocates, frees everything, exits), `server` (allocates and stays up until
its block ends, for the commands that read a running process), `app` (= prog); `./prog`, `./server` and
`./app` too; `--pid 1234` of `poolguard plot FILE` is the pid of FILE's header. `args...` and optional groups such as `[-- CMD [ARGS...]]` are dropped, a trailing
`...` (the rest of a command shown above it) becomes the preload and `prog`; `scripts/test.sh` is skipped (it is the suite this test runs in). A command documented as
running "until Ctrl-C" gets SIGINT after 3 seconds and must then exit 0. Every other command must
exit 0, and the ones in EXPECT must print what they promise.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.dom.minidom

# The documents, in the order a user reads them.
DOCS = ["README.md", "docs/STATS.md", "docs/GUARD.md", "docs/LIMITS.md", "docs/LEAKS.md",
        "docs/TIMELINE.md"]

# (regex on the command as run, regex its output must match). Output is stdout and stderr.
EXPECT = [
    (r"^scripts/run\.sh$", r'\{"poolguard":"[0-9.]+","pid":\d+'),
    (r"POOLGUARD_STATS=exit .*prog", r'\{"poolguard":'),
    (r"poolguard stat \$!$", r"poolguard stat: pid \d+"),
    (r"poolguard stat --json \$!$", r'^\{"pid":\d+'),
    (r"poolguard stat --json --watch", r'^\{"pid":\d+'),
    (r"poolguard stat --watch", r"poolguard stat: pid \d+"),
    (r"poolguard map \$!", r"\S"),
    (r"poolguard ls$", r"\d+"),
    (r"poolguard export \$!$", r'\npoolguard_small_held_bytes\{pid="\d+",comm="[^"]*"\} \d+\n'),
    (r"poolguard stat \$! --profile", r"heap profile"),
    (r"POOLGUARD_LEAKS=1 .*prog|run --leaks", r"poolguard: leak-summary \{"),
]

PROG_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* prog: allocates blocks of every tier and frees them all. server: holds them a while. */
int main(int argc, char** argv) {
  int hold = strstr(argv[0], "server") != NULL ? 30 : 0; /* the block's end stops it */
  enum { N = 20000 };
  static void* p[N];
  for (int i = 0; i < N; i++) {
    size_t n = (size_t)(i % 7 == 0 ? 3000 : 16 + i % 200);
    if (i % 1000 == 0) n = 100000;
    p[i] = malloc(n);
    memset(p[i], 1, n);
  }
  if (hold) sleep(hold);
  for (int i = 0; i < N; i++) free(p[i]);
  (void)argc;
  return 0;
}
"""


class Failure(Exception):
    pass


def blocks(path):
    """The runnable command lines of each block of path: [(first line number, [command, ...])]."""
    out = []
    lines = open(path).read().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start, body = m.group(1), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        prompted = [l[2:] for l in body if l.startswith("$ ")]
        if lang == "sh":
            cmds = body
        elif prompted:
            cmds = prompted
        else:
            continue
        joined, cur = [], ""
        for line in cmds:
            if line.rstrip().endswith("\\"):
                cur += line.rstrip()[:-1] + " "
                continue
            joined.append(cur + line)
            cur = ""
        out.append((start + 1, [c for c in joined if c.strip() and not c.strip().startswith("#")]))
    return out


def split_comment(cmd):
    """(command, comment): a '#' preceded by blanks starts the comment."""
    m = re.search(r"\s+#\s?(.*)$", cmd)
    return (cmd[:m.start()].strip(), m.group(1)) if m else (cmd.strip(), "")


def rewrite(cmd):
    """The command as the test runs it, or None to skip it (with the reason)."""
    if re.match(r"^scripts/test\.sh\b", cmd):
        return None, "the suite this test runs in"
    cmd = re.sub(r"\s\[-- [^\[\]]*(\[[^\[\]]*\])?[^\[\]]*\]", "", cmd)  # [-- CMD [ARGS...]]
    cmd = re.sub(r"\s+args\.\.\.", "", cmd)
    if re.search(r"\s\.\.\.$", cmd):
        # "...": the rest of a command shown above; the test supplies the preload and program.
        cmd = re.sub(r"\s\.\.\.$", " LD_PRELOAD=$PWD/build/preload/libpoolguard.so prog", cmd)
    cmd = cmd.replace("LD_PRELOAD=.../", "LD_PRELOAD=$PWD/build/preload/")
    # `plot FILE --pid 1234`: the pid the recording's header names.
    cmd = re.sub(r"(poolguard plot (\S+) .*--pid )1234\b",
                 lambda m: m.group(1) + "$(sed -n '1s/.*\"pid\":\\([0-9]*\\).*/\\1/p' %s)" % m.group(2),
                 cmd)
    return cmd, ""


def run_block(clone, env, doc, line, cmds, log):
    """Runs one block's commands in one shell (so that `$!` refers to the block's own background
    job), each followed by a status marker; returns [(command, status, output)]."""
    work = os.path.join(clone, ".docs-test")
    os.makedirs(work, exist_ok=True)
    script, plan = ["cd %s" % clone], []
    for n, raw in enumerate(cmds):
        cmd, comment = split_comment(raw)
        run, why = rewrite(cmd)
        if run is None:
            log("  skipped: %s (%s)" % (cmd, why))
            continue
        out = os.path.join(work, "out.%d.%d" % (line, n))
        background = run.endswith("&")
        if background:
            script.append("%s >%s 2>&1" % (run, out))  # `$!` is this job
        elif "until Ctrl-C" in comment:
            # SIGINT to the tool alone, as Ctrl-C would; its own status, not timeout's 124. Not
            # in the background: `$!` must still name the block's server.
            script.append("timeout --preserve-status -s INT 3 %s >%s 2>&1 </dev/null; "
                          "echo $? >%s.status" % (run, out, out))
        else:
            script.append("{ %s ; } >%s 2>&1 </dev/null; echo $? >%s.status" % (run, out, out))
        plan.append((run, out, background))
    script.append("kill $(jobs -p) 2>/dev/null; wait")  # the block's servers
    sh = os.path.join(work, "block.%d.sh" % line)
    with open(sh, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["bash", sh], env=env, timeout=1500, cwd=clone)
    results = []
    for run, out, background in plan:
        text = open(out, errors="replace").read() if os.path.exists(out) else ""
        if background:
            status = 0
        else:
            try:
                status = int(open(out + ".status").read())
            except (OSError, ValueError):
                status = -1
        results.append((run, status, text))
    return results


def check_output(run, text, clone):
    for cmd_re, out_re in EXPECT:
        if re.search(cmd_re, run) and not re.search(out_re, text, re.M):
            raise Failure("`%s` printed no /%s/:\n%s" % (run, out_re, text[-1500:]))
    if run.startswith("build/tools/poolguard stat --json") or "stat --json $!" in run:
        first = text.splitlines()[0] if text else ""
        try:
            json.loads(first)
        except ValueError as e:
            raise Failure("`%s`: not JSON (%s): %r" % (run, e, first[:200]))
    m = re.search(r"--svg (\S+)", run) or re.search(r"poolguard plot .*-o (\S+\.svg)", run)
    if m:
        xml.dom.minidom.parse(os.path.join(clone, m.group(1)))
    m = re.search(r"poolguard record .*-o (\S+)", run)
    if m:
        # A whole recording: a header first, an end line last, samples between.
        lines = [json.loads(x) for x in open(os.path.join(clone, m.group(1))).read().splitlines()]
        kinds = [x["type"] for x in lines]
        if kinds[:1] != ["header"] or kinds[-1:] != ["end"] or "sample" not in kinds:
            raise Failure("`%s`: not a whole recording: %s" % (run, kinds[:5] + ["..."] + kinds[-3:]))


def main():
    src = os.path.abspath(sys.argv[1])
    keep = "--keep" in sys.argv
    if subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True).returncode:
        print("SKIP: %s is not a git checkout: no clone to start from" % src)
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="pg-docs-")
    failures = []

    def log(msg):
        print(msg, flush=True)

    try:
        clone = os.path.join(tmp, "poolguard")
        subprocess.run(["git", "clone", "-q", "--no-local", "--no-hardlinks", src, clone],
                       check=True, timeout=300)
        bindir = os.path.join(tmp, "bin")
        os.makedirs(bindir)
        cfile = os.path.join(tmp, "prog.c")
        with open(cfile, "w") as f:
            f.write(PROG_C)
        prog = os.path.join(bindir, "prog")
        subprocess.run(["cc", "-O1", "-g", "-o", prog, cfile], check=True, timeout=120)
        for name in ("server", "app"):
            shutil.copy(prog, os.path.join(bindir, name))
        for name in ("prog", "server", "app"):
            os.symlink(os.path.join(bindir, name), os.path.join(clone, name))
        env = {k: v for k, v in os.environ.items()
               if k != "LD_PRELOAD" and not k.startswith("POOLGUARD_")}
        env["PATH"] = "%s:%s:%s" % (bindir, os.path.join(clone, "build", "tools"), env["PATH"])
        env.pop("POOLGUARD_BUILD_DIR", None)
        ran = 0
        for doc in DOCS:
            for line, cmds in blocks(os.path.join(clone, doc)):
                log("%s:%d" % (doc, line))
                for run, status, text in run_block(clone, env, doc, line, cmds, log):
                    ran += 1
                    tail = text.strip().splitlines()[-1][:100] if text.strip() else ""
                    log("  [%s] %s   -> %s" % (status, run, tail))
                    try:
                        if status != 0:
                            raise Failure("`%s` exited %d:\n%s" % (run, status, text[-2000:]))
                        check_output(run, text, clone)
                    except Failure as e:
                        failures.append("%s:%d: %s" % (doc, line, e))
        log("%d commands run from %d documents" % (ran, len(DOCS)))
        if ran < 20:
            failures.append("only %d commands found: did the block format change?" % ran)
    finally:
        if keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        for f in failures:
            print("FAIL: " + f, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
