#!/usr/bin/python3
"""`poolguard plot` on recordings: the checked-in example (tests/tools/example.pgrec), a huge one,
and broken ones. The figures the chart must show are worked out here from the recording itself.

    plot_test.py POOLGUARD_TOOL EXAMPLE_PGREC EXAMPLE_PGREC_PY

Checks: exit 0 and a well-formed SVG with the peak label, one tick per event and the stacks'
names; the default output name, stdin and stdout, --pid and --title; a last line cut short is
left out with a note; files that are not recordings exit 1 with a message and write nothing; bad
arguments exit 2 with the usage; a recording of 100000 ticks gives a small SVG that keeps its
peak.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.dom.minidom

TOOL, EXAMPLE, GENERATOR = sys.argv[1:4]
KINDS = ("start", "exit", "guard", "limit_refused", "error")


def fail(message):
    sys.exit("FAIL: plot_test: " + message)


def run(args, stdin=None, timeout=60):
    return subprocess.run([TOOL] + args, input=stdin, capture_output=True, timeout=timeout)


def human(n):
    """bytes() of tools/text.cpp: "512 B", "1.5 KiB", "84.2 MiB"."""
    if n < 1024:
        return "%d B" % n
    v, units = n / 1024, ["KiB", "MiB", "GiB", "TiB"]
    u = 0
    while v >= 1024 and u < 3:
        v /= 1024
        u += 1
    return "%.1f %s" % (v, units[u])


def seconds(t, interval):
    """time_label() of tools/timeline_chart.cpp for an interval of 0.1 or 0.01 s."""
    s = "%.*f" % (len(("%g" % interval).split(".")[1]) if "." in "%g" % interval else 0, t)
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s + " s"


def expected(path, pid=None):
    """The peak label, the event ticks and the stacks' innermost functions the chart must show."""
    live, events, peaks, interval = {}, 0, [], None
    with open(path, encoding="utf-8") as f:
        for text in f:
            line = json.loads(text)
            kind = line["type"]
            if kind == "header":
                interval = line["interval_s"]
            if pid is not None and line.get("pid", pid) != pid:
                continue
            if kind == "sample":
                tick = live.setdefault(line["t"], 0)
                live[line["t"]] = tick + line["small_in_use"] + line["medium_in_use"] + \
                    line["large_bytes"]
            elif kind == "event" and line["kind"] in KINDS:
                events += 1
            elif kind == "peak":
                peaks.append(line)
    pids = {p["pid"] for p in peaks}
    if len(pids) == 1 and peaks:
        t, value = peaks[0]["t"], peaks[0]["live_bytes"]
    else:
        t = max(live, key=lambda k: (live[k], -k))
        value = live[t]
    top = max(peaks, key=lambda p: p["live_bytes"])
    functions = [s["frames"][0]["function"] for s in top["stacks"]]
    return "peak %s at %s" % (human(value), seconds(t, interval)), events, functions


def parse_svg(data, what):
    try:
        return xml.dom.minidom.parseString(data).documentElement
    except Exception as e:  # ExpatError, with line and column
        fail("%s: not well-formed XML: %s" % (what, e))


def texts(root, cls=None):
    return ["".join(n.data for n in t.childNodes if n.nodeType == n.TEXT_NODE)
            for t in root.getElementsByTagName("text")
            if cls is None or t.getAttribute("class") == cls]


def check_chart(root, path, what, pid=None):
    label, events, functions = expected(path, pid)
    if root.tagName != "svg":
        fail("%s: root element <%s>" % (what, root.tagName))
    all_text = texts(root)
    if label not in all_text:
        fail("%s: no %r among the texts: %s" % (what, label, [t for t in all_text if "peak" in t]))
    ticks = [e for e in root.getElementsByTagName("line") if e.getAttribute("class") == "ev"]
    if len(ticks) != events:
        fail("%s: %d event ticks for %d events" % (what, len(ticks), events))
    # The in-use area (its top is the "large" polygon's) reaches the peak marker: downsampling
    # kept the maximum. With --pid or one process the marker is at the peak line's bytes, which
    # are the highest sample's.
    marker = [c for c in root.getElementsByTagName("circle") if c.getAttribute("r") == "5"]
    area = [p for p in root.getElementsByTagName("polygon") if p.getAttribute("id") == "large"]
    if len(marker) != 1 or len(area) != 1:
        fail("%s: %d peak markers, %d in-use areas" % (what, len(marker), len(area)))
    top = min(float(xy.split(",")[1]) for xy in area[0].getAttribute("points").split())
    if abs(top - float(marker[0].getAttribute("cy"))) > 0.11:
        fail("%s: the in-use area peaks at y=%s, the marker is at y=%s" %
             (what, top, marker[0].getAttribute("cy")))
    rows = texts(root, "mono")  # the stacks' frames
    for fn in functions:
        short = fn.split("(")[0].split("<")[0] if fn else ""
        if short and not any(short in r for r in rows):
            fail("%s: stack function %r not in the rows %s" % (what, short, rows))
    return all_text


def expect_status(args, status, message, stdin=None, tmp=None):
    r = run(args, stdin=stdin)
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != status:
        fail("poolguard %s: exit %d, expected %d; stderr: %s" % (" ".join(args), r.returncode,
                                                                  status, err))
    if message not in err:
        fail("poolguard %s: no %r in stderr: %s" % (" ".join(args), message, err))
    return r


def main():
    tmp = tempfile.mkdtemp(prefix="plot_test.")
    try:
        # The example: exit 0, well-formed, the peak, events and stacks of the recording.
        out = os.path.join(tmp, "example.svg")
        r = expect_status(["plot", EXAMPLE, "-o", out], 0, "poolguard: wrote " + out)
        with open(out, "rb") as f:
            data = f.read()
        check_chart(parse_svg(data, "example"), EXAMPLE, "example")
        if b'Exif::parse&lt;Tags &amp; &quot;Flags&quot;&gt;' not in data:
            fail("example: the stack name with '<&\"' is not escaped as expected")

        # Default output: FILE with .svg; stdin to stdout.
        rec = os.path.join(tmp, "run.pgrec")
        shutil.copy(EXAMPLE, rec)
        expect_status(["plot", rec], 0, "wrote " + os.path.join(tmp, "run.svg"))
        if not os.path.exists(os.path.join(tmp, "run.svg")):
            fail("plot run.pgrec did not write run.svg")
        with open(EXAMPLE, "rb") as f:
            r = expect_status(["plot", "-"], 0, "", stdin=f.read())
        check_chart(parse_svg(r.stdout, "stdin"), EXAMPLE, "stdin")

        # --pid and --title.
        for pid in (4242, 4251):
            r = expect_status(["plot", EXAMPLE, "--pid", str(pid), "-o", "-"], 0, "")
            check_chart(parse_svg(r.stdout, "--pid"), EXAMPLE, "--pid %d" % pid, pid)
        r = expect_status(["plot", EXAMPLE, "--title=Heap of <a> & \"b\"", "-o", "-"], 0, "")
        if "Heap of <a> & \"b\"" not in texts(parse_svg(r.stdout, "--title")):
            fail("--title: the heading is not the title given")
        expect_status(["plot", EXAMPLE, "--pid", "999"], 1,
                      "no samples of pid 999 in the recording (it has pids 4242 (imgconv), "
                      "4251 (imgconv-thumb))")

        # A last line cut short: left out, with a note.
        with open(EXAMPLE, "rb") as f:
            whole = f.read()
        cut = whole[:whole.rindex(b'{"type":"peak"') + 60]
        r = expect_status(["plot", "-", "-o", "-"], 0, "is cut short", stdin=cut)
        if b"no end line" not in r.stderr:
            fail("a recording without its end line: no note: %s" % r.stderr)
        parse_svg(r.stdout, "cut short")

        # Not recordings: exit 1 with a reason, nothing written.
        bad = os.path.join(tmp, "bad.svg")
        header = whole[:whole.index(b"\n") + 1]
        cases = [
            ("missing", None, "cannot read"),
            ("empty", b"", "not a poolguard recording: empty"),
            ("text", b"hello, world\n", "not a poolguard recording: line 1, column 1"),
            ("png", b"\x89PNG\r\n\x1a\n\x00\x00", "not a poolguard recording"),
            ("header-cut", whole[:50], "not a poolguard recording"),
            ("header-only", header, "no samples"),
            ("version", whole.replace(b'"version":1', b'"version":2', 1),
             "a recording of format version 2; this poolguard reads version 1"),
            ("broken", whole.replace(b'{"type":"sample"', b'{"type":"sample",,', 1),
             "line 4, column 18"),
        ]
        for name, content, message in cases:
            path = os.path.join(tmp, name + ".pgrec")
            if content is not None:
                with open(path, "wb") as f:
                    f.write(content)
            expect_status(["plot", path, "-o", bad], 1, message)
            if os.path.exists(bad):
                fail("plot %s wrote %s" % (name, bad))
        expect_status(["plot", EXAMPLE, "-o", os.path.join(tmp, "no", "such", "dir.svg")], 1,
                      "cannot write")

        # Symbolic links at -o: one of the user's own is followed; one another user could have
        # planted (as in /tmp) is not, and what it points to is left alone.
        target = os.path.join(tmp, "target.txt")
        with open(target, "w") as f:
            f.write("keep me\n")
        own = os.path.join(tmp, "own-link.svg")
        with open(os.path.join(tmp, "via-link.svg"), "w") as f:
            f.write("an older chart, longer than nothing\n" * 10000)  # truncated, not kept
        os.symlink(os.path.join(tmp, "via-link.svg"), own)
        expect_status(["plot", EXAMPLE, "-o", own], 0, "wrote")
        with open(os.path.join(tmp, "via-link.svg"), "rb") as f:
            parse_svg(f.read(), "the chart written through the user's own link")
        if os.geteuid() == 0:
            planted = os.path.join(tmp, "planted.svg")
            os.symlink(target, planted)
            os.lchown(planted, 65534, 65534)  # nobody's
            expect_status(["plot", EXAMPLE, "-o", planted], 1,
                          "a symbolic link that belongs to another user")
            with open(target) as f:
                if f.read() != "keep me\n":
                    fail("plot -o through another user's link wrote its target")

        # Bad arguments: exit 2 with the usage; --help exits 0.
        for args, message in [
                (["plot"], "FILE missing"),
                (["plot", EXAMPLE, EXAMPLE], "one FILE only"),
                (["plot", EXAMPLE, "--pid"], "--pid needs PID"),
                (["plot", EXAMPLE, "--pid", "x"], "--pid: not a process id: 'x'"),
                (["plot", EXAMPLE, "--pid=0"], "--pid: not a process id: '0'"),
                (["plot", EXAMPLE, "-o"], "-o needs OUT.svg"),
                (["plot", EXAMPLE, "--title"], "--title needs TEXT"),
                (["plot", EXAMPLE, "--bogus"], "unknown option '--bogus'"),
        ]:
            r = expect_status(args, 2, message)
            if b"usage: poolguard plot" not in r.stderr:
                fail("poolguard %s: no usage on stderr" % " ".join(args))
        for args in (["plot", "--help"], ["plot", EXAMPLE, "-h"]):
            r = run(args)
            if r.returncode != 0 or b"usage: poolguard plot" not in r.stdout:
                fail("poolguard %s: exit %d: %s" % (" ".join(args), r.returncode, r.stdout))
        r = run(["--help"])
        if b"plot FILE" not in r.stdout:
            fail("poolguard --help does not list plot")

        # A huge recording: a small SVG that still shows its peak.
        huge = os.path.join(tmp, "huge.pgrec")
        with open(huge, "wb") as f:
            subprocess.run([sys.executable, GENERATOR, "--ticks", "100000", "--spike"], stdout=f,
                           check=True, timeout=120)
        out = os.path.join(tmp, "huge.svg")
        expect_status(["plot", huge, "-o", out], 0, "wrote")
        size = os.path.getsize(out)
        if size > 1024 * 1024:
            fail("a recording of 100000 ticks made an SVG of %d bytes" % size)
        with open(out, "rb") as f:
            check_chart(parse_svg(f.read(), "huge"), huge, "huge")
        print("plot_test: example, stdin, --pid, --title, cut short, 9 bad files, 8 bad argument "
              "lists, 100000 ticks in %d KiB of SVG" % (size // 1024))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
