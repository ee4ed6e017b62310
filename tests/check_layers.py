#!/usr/bin/env python3
"""The layer rule of docs/DESIGN.md: every #include "folder/file" in the source folders names its
own folder or one the layer table lets it include. The table in DESIGN.md is the rule (read
between its <!-- layers --> and <!-- end layers --> markers), so the two cannot drift.

    check_layers.py [REPO_ROOT]

Prints each forbidden include (file:line: include) and exits 1 if there is any; exits 2 if the
table cannot be read.
"""
import os
import re
import sys


def read_table(design):
    rules = {}
    inside = False
    with open(design, encoding="utf-8") as f:
        for line in f:
            if line.startswith("<!-- layers"):
                inside = True
                continue
            if line.startswith("<!-- end layers"):
                break
            if not inside or not line.startswith("| `"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            folder = cells[0].strip("`").rstrip("/")
            allowed = set() if cells[1] == "-" else {x.strip() for x in cells[1].split(",")}
            rules[folder] = allowed
    return rules


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    rules = read_table(os.path.join(root, "docs", "DESIGN.md"))
    if not rules:
        print("check_layers: no layer table in docs/DESIGN.md", file=sys.stderr)
        return 2
    for folder, allowed in rules.items():
        unknown = allowed - set(rules)
        if unknown:
            print(f"check_layers: {folder} may include unknown folders {sorted(unknown)}",
                  file=sys.stderr)
            return 2
    include = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"')
    bad = 0
    checked = 0
    for folder, allowed in sorted(rules.items()):
        top = os.path.join(root, folder)
        if not os.path.isdir(top):
            print(f"check_layers: the table names {folder}/, which does not exist", file=sys.stderr)
            return 2
        for dirpath, _, files in os.walk(top):
            for name in sorted(files):
                if not re.search(r"\.(h|hpp|cpp|cc|c|inc)$", name):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        m = include.match(line)
                        if not m:
                            continue
                        checked += 1
                        target = m.group(1)
                        if target != folder and target not in allowed:
                            rel = os.path.relpath(path, root)
                            print(f"{rel}:{n}: {line.strip()}  ({folder}/ may not include {target}/)")
                            bad += 1
    # Source folders with code that the table does not name are a gap in the rule.
    for entry in sorted(os.listdir(root)):
        p = os.path.join(root, entry)
        if entry in rules or entry.startswith(".") or not os.path.isdir(p):
            continue
        if entry in ("tests", "bench", "scripts", "docs") or entry.startswith("build"):
            continue
        if any(re.search(r"\.(h|cpp|c)$", f) for _, _, fs in os.walk(p) for f in fs):
            print(f"check_layers: folder {entry}/ holds sources but is not in the layer table")
            bad += 1
    if bad:
        print(f"check_layers: {bad} include(s) break the layer rule of docs/DESIGN.md")
        return 1
    print(f"check_layers: {checked} includes follow the layer table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
