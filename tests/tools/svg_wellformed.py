#!/usr/bin/env python3
"""The flame graph SVG is well-formed XML whatever the frame names hold.

svg_wellformed.py TOOLS_TESTS: runs `TOOLS_TESTS --svg KIND` for a sample whose names hold
'<&"', invalid UTF-8 and control characters, and for an empty profile, and parses each output.
"""
import subprocess
import sys
import xml.dom.minidom


def main():
    binary = sys.argv[1]
    for kind in ("sample", "empty"):
        out = subprocess.run([binary, "--svg", kind], check=True, capture_output=True,
                             timeout=30).stdout
        try:
            doc = xml.dom.minidom.parseString(out)
        except Exception as e:  # ExpatError, with line and column
            sys.exit("FAIL: %s SVG is not well-formed XML: %s" % (kind, e))
        root = doc.documentElement
        if root.tagName != "svg":
            sys.exit("FAIL: %s SVG: root element <%s>" % (kind, root.tagName))
        frames = [g for g in root.getElementsByTagName("g") if g.getAttribute("class") == "f"]
        for g in frames:
            rects = g.getElementsByTagName("rect")
            if len(rects) != 1 or len(rects[0].getElementsByTagName("title")) != 1:
                sys.exit("FAIL: %s SVG: a frame without exactly one rect and title" % kind)
        print("%s SVG: well-formed, %d frames" % (kind, len(frames)))


if __name__ == "__main__":
    main()
