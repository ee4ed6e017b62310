#!/usr/bin/python3
"""Checks docs/FLEET.md, docs/poolguard-rules.yml and docs/grafana-dashboard.json against a real
`poolguard export` (of pg_stats_hold holding blocks under the preload) and Debian's promtool:

- every PromQL expression (FLEET.md's ```promql blocks, where blank lines separate expressions;
  the rules' expr:; the dashboard's targets and variable queries, Grafana's variables replaced by
  values) parses (`promtool check rules` on a file recording each one), and every metric it names
  is one the export emits (or a rule of the rules file records);
- FLEET.md's metric table lists exactly the metrics the export emits, each with its type;
- the ```yaml block headed "# prometheus.yml" passes `promtool check config` with the rules file
  next to it; the rules pass `promtool check rules` and `promtool test rules` of
  tests/docs/poolguard-rules.test.yml;
- the dashboard is JSON that takes its data source as the input DS_PROMETHEUS and has the
  variables comm and pid;
- the ```ini blocks headed "# /etc/systemd/system/NAME" pass `systemd-analyze verify` without a
  word (skipped when systemd-analyze is missing).

    fleet_docs_test.py SOURCE_DIR --tool POOLGUARD --lib LIBPOOLGUARD --hold PG_STATS_HOLD

Without promtool it fails in CI (CI=true: scripts/deps.sh installs Debian's prometheus) and exits
77 (skipped) elsewhere.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
# Metrics of other exporters the docs may name (node_exporter's textfile collector).
OTHER_METRICS = {"node_textfile_mtime_seconds"}
# PromQL words that look like metric names.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "atan2", "inf", "nan"}
# Values for Grafana's variables, so that promtool can parse the queries.
GRAFANA_VARIABLES = {"comm": "x", "pid": "1", "__rate_interval": "5m", "__interval": "1m",
                     "__range": "1h"}


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


# --- What poolguard export emits ---------------------------------------------------------------

def exported_metrics(args, source):
    """{name: type} of every metric `poolguard export PID` prints for pg_stats_hold holding its
    blocks (its TYPE lines: in the text format 0.0.4 the families are named as their samples)."""
    sys.path.insert(0, os.path.join(source, "tests", "stats"))
    from stats_test import Hold, run_tool  # noqa: E402
    with Hold(args) as h:
        h.send("alloc", "allocated")
        rc, out, err = run_tool(args, "export", str(h.pid))
    check(rc == 0, "poolguard export %d: exit %d: %s" % (h.pid, rc, err))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", out, re.M))
    samples = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", out, re.M))
    check(samples == set(types), "samples %s without TYPE, TYPE %s without samples"
          % (sorted(samples - set(types)), sorted(set(types) - samples)))
    check(any(n.startswith("poolguard_class_") for n in types), "no per-class metric exported")
    return types


# --- Reading the documents ---------------------------------------------------------------------

def fenced_blocks(path):
    """[(language, first line number, text)] of the fenced blocks of a Markdown file."""
    blocks, lang, start, body = [], None, 0, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"^```(\w*)\s*$", line)
            if m and lang is None:
                lang, start, body = m.group(1), n + 1, []
            elif m and not m.group(1):
                blocks.append((lang, start, "".join(body)))
                lang = None
            elif lang is not None:
                body.append(line)
    check(lang is None, "%s: a block opened at line %d is not closed" % (path, start))
    return blocks


def promql_of_block(text):
    """The expressions of a ```promql block: separated by blank lines, comment lines dropped."""
    exprs = []
    for chunk in re.split(r"\n\s*\n", text):
        lines = [l for l in chunk.splitlines() if l.strip() and not l.lstrip().startswith("#")]
        if lines:
            exprs.append("\n".join(lines))
    return exprs


def rules_exprs(path):
    """[(rule line, expr)] and the names recorded, from a rules file (expr: as a plain or quoted
    scalar, or a block scalar | or >)."""
    exprs, records = [], set()
    with open(path) as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:- )?(expr|record):\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        key, value = m.group(2), m.group(3).strip()
        if key == "record":
            records.add(value.strip("'\""))
            continue
        line = i
        if value in ("|", ">", "|-", ">-"):
            indent = len(m.group(1)) + 1
            body = []
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip()) > indent):
                body.append(lines[i].strip())
                i += 1
            value = "\n".join(b for b in body if b)
        elif value[:1] in "'\"":
            value = value[1:-1]
        exprs.append((line, value))
    return exprs, records


def grafana_exprs(dashboard):
    """[(where, expr)] of the dashboard's targets and variable queries, Grafana's variables
    replaced by values and label_values(SELECTOR, LABEL) by its selector."""
    out = []
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            out.append(("panel %r target %s" % (panel["title"], t.get("refId")), t["expr"]))
    for v in dashboard["templating"]["list"]:
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.match(r"^label_values\((.*),\s*\w+\)$", q)
        out.append(("variable %s" % v["name"], m.group(1) if m else q))
    replaced = []
    for where, e in out:
        for name, val in GRAFANA_VARIABLES.items():
            e = e.replace("${%s}" % name, val)
            e = re.sub(r"\$%s\b" % re.escape(name), val, e)
        check("$" not in e, "%s: a Grafana variable without a test value: %s" % (where, e))
        replaced.append((where, e))
    return replaced


def metric_names(expr):
    """The metric names an expression uses: its identifiers outside strings, label matchers,
    ranges and label lists, that are not functions, keywords or number suffixes."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"#[^\n]*", "", e)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = []
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        before = e[m.start() - 1] if m.start() else " "
        if before.isdigit() or before == ".":
            continue  # 1e3, 5m
        if e[m.end():].lstrip().startswith("(") or m.group(0).lower() in KEYWORDS:
            continue
        names.append(m.group(0))
    return names


# --- Checks ------------------------------------------------------------------------------------

def check_promql(promtool, exprs, known, tmp):
    """Every (where, expr) parses with promtool and names only known metrics, one at least."""
    for where, e in exprs:
        names = metric_names(e)
        check(names, "%s names no metric: %s" % (where, e))
        unknown = [n for n in names if n not in known]
        check(not unknown, "%s names %s, which poolguard export does not emit (nor a rule "
              "records): %s" % (where, ", ".join(unknown), e))

    def rules_file(items):
        path = os.path.join(tmp, "exprs.rules.yml")
        with open(path, "w") as f:
            f.write("groups:\n  - name: fleet-docs-test\n    rules:\n")
            for i, (_, e) in enumerate(items):
                f.write("      - record: fleet_docs_test:expr_%d\n        expr: |\n" % i)
                f.write("".join("          %s\n" % l for l in e.splitlines()))
        return path

    p = run([promtool, "check", "rules", rules_file(exprs)])
    if p.returncode != 0:
        # Which ones: each alone.
        bad = []
        for where, e in exprs:
            q = run([promtool, "check", "rules", rules_file([(where, e)])])
            if q.returncode != 0:
                bad.append("%s: %s\n  %s" % (where, e, (q.stdout + q.stderr).strip()))
        raise Failure("promtool rejects:\n" + "\n".join(bad or [p.stdout + p.stderr]))


def check_table(fleet, types):
    """FLEET.md's metric table: exactly the exported metrics, each with its type."""
    listed = {}
    with open(fleet) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[0].startswith("`poolguard_"):
                for name in re.findall(r"`([a-z_]+)`", cells[0]):
                    check(name not in listed, "FLEET.md's table lists %s twice" % name)
                    listed[name] = cells[1]
    missing = sorted(set(types) - set(listed))
    extra = sorted(set(listed) - set(types))
    check(not missing and not extra, "FLEET.md's table: missing %s, not exported %s"
          % (missing, extra))
    wrong = ["%s: %s, exported as %s" % (n, listed[n], types[n]) for n in sorted(listed)
             if listed[n] != types[n]]
    check(not wrong, "FLEET.md's table gives wrong types:\n" + "\n".join(wrong))
    return len(listed)


def check_dashboard(dashboard):
    inputs = {i["name"]: i for i in dashboard.get("__inputs", [])}
    check(inputs.get("DS_PROMETHEUS", {}).get("pluginId") == "prometheus",
          "the dashboard has no Prometheus input DS_PROMETHEUS: %s" % inputs)
    names = {v["name"] for v in dashboard["templating"]["list"]}
    check({"comm", "pid"} <= names, "dashboard variables %s, expected comm and pid" % names)
    want = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for v in dashboard["templating"]["list"]:
        check(v.get("datasource") == want, "variable %s: data source %s" % (v["name"],
                                                                           v.get("datasource")))
    ids = set()
    for p in dashboard["panels"]:
        check(p.get("datasource") == want, "panel %r: data source %s" % (p["title"],
                                                                         p.get("datasource")))
        check(p["id"] not in ids, "panel id %s twice" % p["id"])
        ids.add(p["id"])
        check(p.get("targets"), "panel %r has no query" % p["title"])
        for t in p["targets"]:
            check(t.get("datasource", want) == want, "panel %r: a target's data source %s"
                  % (p["title"], t.get("datasource")))
            # Grafana's $__rate_interval is the range for rate() and increase() over a panel.
            for fn in re.findall(r"\b(rate|increase|irate)\(([^\[]*)\[([^\]]*)\]", t["expr"]):
                check(fn[2] in ("$__rate_interval", "1h"),
                      "panel %r: %s over [%s]" % (p["title"], fn[0], fn[2]))
    return len(ids)


def check_units(blocks, tool, tmp):
    """The systemd units of FLEET.md pass `systemd-analyze verify` without a word."""
    analyze = shutil.which("systemd-analyze")
    units = []
    for lang, line, text in blocks:
        m = re.match(r"^# /etc/systemd/system/([\w.-]+\.(service|timer))\n", text)
        if lang == "ini" and m:
            path = os.path.join(tmp, m.group(1))
            with open(path, "w") as f:
                f.write(text.replace("/usr/local/bin/poolguard", tool))
            units.append(path)
    check(len(units) >= 3, "FLEET.md has %d systemd units, expected the service, the textfile "
          "service and the timer's" % len(units))
    if not analyze:
        print("SKIPPED: systemd-analyze verify (systemd is not installed)")
        return len(units)
    p = run([analyze, "verify", "--man=no"] + units, cwd=tmp)
    said = (p.stdout + p.stderr).strip()
    check(p.returncode == 0 and not said, "systemd-analyze verify: exit %d:\n%s"
          % (p.returncode, said))
    return len(units)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--tool", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--hold", required=True)
    args = ap.parse_args()
    source = os.path.abspath(args.source)
    fleet = os.path.join(source, "docs", "FLEET.md")
    rules = os.path.join(source, "docs", "poolguard-rules.yml")
    rules_test = os.path.join(source, "tests", "docs", "poolguard-rules.test.yml")
    dashboard_path = os.path.join(source, "docs", "grafana-dashboard.json")
    promtool = shutil.which("promtool") or (
        "/usr/bin/promtool" if os.access("/usr/bin/promtool", os.X_OK) else None)
    try:
        if not promtool:
            check(os.environ.get("CI") != "true", "promtool is not installed (scripts/deps.sh "
                  "installs Debian's prometheus package, which has it)")
            print("SKIPPED: promtool is not installed (Debian's prometheus)")
            return SKIP
        types = exported_metrics(args, source)
        n = check_table(fleet, types)
        print("table: the %d metrics poolguard export emits, with their types" % n)

        with tempfile.TemporaryDirectory(prefix="pg-fleet-docs-") as tmp:
            for argv in (["check", "rules", rules], ["test", "rules", rules_test]):
                p = run([promtool] + argv)
                check(p.returncode == 0, "promtool %s: exit %d:\n%s%s"
                      % (" ".join(argv), p.returncode, p.stdout, p.stderr))
            print("rules: promtool check rules and test rules pass")

            blocks = fenced_blocks(fleet)
            configs = [t for lang, _, t in blocks if lang == "yaml" and
                       t.startswith("# prometheus.yml\n")]
            check(len(configs) == 1, "FLEET.md has %d prometheus.yml blocks" % len(configs))
            shutil.copy(rules, os.path.join(tmp, "poolguard-rules.yml"))
            with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
                f.write(configs[0])
            p = run([promtool, "check", "config", os.path.join(tmp, "prometheus.yml")])
            check(p.returncode == 0, "promtool check config of FLEET.md's prometheus.yml: exit "
                  "%d:\n%s%s" % (p.returncode, p.stdout, p.stderr))
            print("config: FLEET.md's prometheus.yml passes promtool check config")

            with open(dashboard_path) as f:
                try:
                    dashboard = json.load(f)
                except ValueError as e:
                    raise Failure("docs/grafana-dashboard.json is not JSON: %s" % e)
            panels = check_dashboard(dashboard)

            exprs, records = rules_exprs(rules)
            exprs = [("poolguard-rules.yml line %d" % line, e) for line, e in exprs]
            for lang, line, text in blocks:
                if lang == "promql":
                    exprs += [("FLEET.md block at line %d" % line, e)
                              for e in promql_of_block(text)]
            grafana = grafana_exprs(dashboard)
            exprs += grafana
            check(sum(1 for w, _ in exprs if w.startswith("FLEET.md")) >= 8,
                  "FLEET.md has few ```promql expressions")
            check_promql(promtool, exprs, set(types) | records | OTHER_METRICS, tmp)
            print("promql: %d expressions (%d of the dashboard, %d panels) parse and name only "
                  "exported metrics" % (len(exprs), len(grafana), panels))

            units = check_units(blocks, os.path.abspath(args.tool), tmp)
            print("systemd: %d units" % units)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
