#!/usr/bin/env python3
"""The flame graph and timeline SVGs are well-formed XML whatever their text holds.

svg_wellformed.py TOOLS_TESTS: runs `TOOLS_TESTS --svg KIND` for a flame graph whose names hold
'<&"', invalid UTF-8 and control characters, for an empty profile, and for a timeline chart
(`poolguard plot`) with such names and title, and parses each output.
"""
import subprocess
import sys
import xml.dom.minidom


def check_timeline(root):
    """The chart's parts: the tiers' areas, the event ticks and stacks, each with its tooltip."""
    ids = {e.getAttribute("id") for e in root.getElementsByTagName("*") if e.getAttribute("id")}
    for part in ("small", "large", "rss", "limit", "peak", "events", "stacks"):
        if part not in ids:
            sys.exit("FAIL: timeline SVG: no element with id %r" % part)
    ticks = [e for e in root.getElementsByTagName("line") if e.getAttribute("class") == "ev"]
    stacks = [g for g in root.getElementsByTagName("g") if g.getAttribute("class") == "stack"]
    if not ticks or not stacks:
        sys.exit("FAIL: timeline SVG: %d event ticks, %d stacks" % (len(ticks), len(stacks)))
    for e in ticks + stacks:
        titles = [c for c in e.childNodes if getattr(c, "tagName", "") == "title"]
        if len(titles) != 1:
            sys.exit("FAIL: timeline SVG: an event tick or stack without exactly one title")
    return len(ticks)


def main():
    binary = sys.argv[1]
    for kind in ("sample", "empty", "timeline"):
        out = subprocess.run([binary, "--svg", kind], check=True, capture_output=True,
                             timeout=30).stdout
        try:
            doc = xml.dom.minidom.parseString(out)
        except Exception as e:  # ExpatError, with line and column
            sys.exit("FAIL: %s SVG is not well-formed XML: %s" % (kind, e))
        root = doc.documentElement
        if root.tagName != "svg":
            sys.exit("FAIL: %s SVG: root element <%s>" % (kind, root.tagName))
        if kind == "timeline":
            print("timeline SVG: well-formed, %d event ticks" % check_timeline(root))
            continue
        frames = [g for g in root.getElementsByTagName("g") if g.getAttribute("class") == "f"]
        for g in frames:
            rects = g.getElementsByTagName("rect")
            if len(rects) != 1 or len(rects[0].getElementsByTagName("title")) != 1:
                sys.exit("FAIL: %s SVG: a frame without exactly one rect and title" % kind)
        print("%s SVG: well-formed, %d frames" % (kind, len(frames)))


if __name__ == "__main__":
    main()
