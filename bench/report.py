"""Summarises the raw results of scripts/bench.sh: medians, ratios, target checks, chart data.

Usage: python3 bench/report.py OUT_DIR [ALLOCATOR ...]

Reads OUT_DIR/raw/... as written by scripts/bench.sh:
  raw/micro/<alloc>.<run>.json        Google Benchmark JSON (--benchmark_out_format=json)
  raw/frag/<alloc>.<run>.txt          pg_frag's lines ("frag phase=... rss_kb=...")
  raw/<workload>/<alloc>.<run>.time   "/usr/bin/time -f '%U %S %e %M'" output: user and system
                                      CPU seconds, wall seconds, peak RSS in KiB (older runs:
                                      '%e %M')
  callgrind.json                      from scripts/callgrind.sh, when present
Writes OUT_DIR/results.md (Markdown tables), OUT_DIR/results.json (medians and every raw value),
OUT_DIR/chart_micro.dat and OUT_DIR/chart_work.dat (ratios to glibc, for gnuplot).

Only the standard library is used, so Debian's /usr/bin/python3 runs it as it is.
"""

import glob
import json
import os
import re
import statistics
import sys

PEERS = ["jemalloc", "mimalloc", "tcmalloc"]
SUBJECT = "poolguard"
BASE = "glibc"

# Micro rows drawn in the chart (the rest are in the table only).
CHART_MICRO = [
    "BM_Pair/32",
    "BM_Pair/128",
    "BM_Pair/256",
    "BM_Pair/1024",
    "BM_PairThreads/32/real_time/threads:2",
    "BM_BatchRandom/32",
    "BM_MixedBatch/real_time/threads:1",
    "BM_MixedBatch/real_time/threads:2",
    "BM_ReallocAcross",
    "BM_Calloc/256",
    "BM_ProducerConsumer/32/real_time/threads:2",
    "BM_Churn/real_time/threads:1",
    "BM_Churn/real_time/threads:2",
]


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(x, digits=3):
    if x is None:
        return "n/a"
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return ("%." + str(digits) + "g") % x


def fr(x):
    """A ratio, always with two decimals (a ratio of 1.004 must not print as 1)."""
    return "n/a" if x is None else "%.2f" % x


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def run_index(path):
    m = re.search(r"\.(\d+)\.[a-z]+$", path)
    return int(m.group(1)) if m else 0


def load_micro(out, allocs):
    """{bench name: {alloc: [ns per item, ...]}}, plus the order benchmarks first appeared in."""
    data, order, failures = {}, [], []
    for alloc in allocs:
        for path in sorted(glob.glob(os.path.join(out, "raw/micro/%s.*.json" % alloc)), key=run_index):
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError) as e:
                failures.append("%s: %s" % (os.path.basename(path), e))
                continue
            for b in doc.get("benchmarks", []):
                if b.get("run_type", "iteration") != "iteration":
                    continue
                name = b["name"]
                if name not in data:
                    data[name] = {}
                    order.append(name)
                ips = b.get("items_per_second")
                if b.get("error_occurred") or not ips:
                    failures.append("%s %s: %s" % (alloc, name, b.get("error_message", "no items")))
                    continue
                data[name].setdefault(alloc, []).append(1e9 / ips)
    return data, order, failures


def parse_kv(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def load_frag(out, allocs):
    """{metric: {alloc: [value, ...]}} for pg_frag runs."""
    metrics = {}
    for alloc in allocs:
        for path in sorted(glob.glob(os.path.join(out, "raw/frag/%s.*.txt" % alloc)), key=run_index):
            phases = {}
            with open(path) as f:
                lines = f.read().splitlines()
            for line in lines:
                if line.startswith("frag phase="):
                    kv = parse_kv(line)
                    phases[kv["phase"]] = kv
            if "end" not in phases:
                continue  # crashed or timed out: counted as a failure by bench.sh
            base = int(phases["start"]["rss_kb"])
            vals = {
                "frag peak RSS MiB (net)": (int(phases["end"]["hwm_kb"]) - base) / 1024,
                "frag RSS after free90 MiB (net)": (int(phases["free90"]["rss_kb"]) - base) / 1024,
                "frag RSS after free90 / live": (int(phases["free90"]["rss_kb"]) - base)
                * 1024
                / max(1, int(phases["free90"]["live_bytes"])),
                "frag RSS at end MiB (net)": (int(phases["end"]["rss_kb"]) - base) / 1024,
                "frag time s": sum(float(p["ms"]) for p in phases.values()) / 1000,
            }
            for k, v in vals.items():
                metrics.setdefault(k, {}).setdefault(alloc, []).append(v)
    return metrics


def load_workloads(out, allocs):
    """{metric: {alloc: [value, ...]}} for the /usr/bin/time workloads."""
    metrics = {}
    names = sorted(
        d
        for d in os.listdir(os.path.join(out, "raw"))
        if d not in ("micro", "frag") and os.path.isdir(os.path.join(out, "raw", d))
    )
    for w in names:
        for alloc in allocs:
            for path in sorted(glob.glob(os.path.join(out, "raw", w, "%s.*.time" % alloc)), key=run_index):
                with open(path) as f:
                    fields = f.read().split()
                if len(fields) < 2:
                    continue
                try:
                    secs, kb = float(fields[-2]), int(fields[-1])
                    # "%U %S %e %M" since user and system time were added; "%e %M" before.
                    cpu = float(fields[-4]) + float(fields[-3]) if len(fields) >= 4 else None
                except ValueError:
                    continue
                metrics.setdefault("%s time s" % w, {}).setdefault(alloc, []).append(secs)
                if cpu is not None:
                    metrics.setdefault("%s CPU s" % w, {}).setdefault(alloc, []).append(cpu)
                metrics.setdefault("%s peak RSS MiB" % w, {}).setdefault(alloc, []).append(kb / 1024)
    return metrics


def table(rows, allocs, unit_note):
    """Markdown table of medians with poolguard's ratios to glibc and to the best peer."""
    peers = [a for a in PEERS if a in allocs]
    head = "| %s | %s | pg/glibc | pg/best peer |" % (unit_note, " | ".join(allocs))
    lines = [head, "|" + "---|" * (len(allocs) + 3)]
    summary = {}
    for name, per_alloc in rows:
        med = {a: median(per_alloc.get(a, [])) for a in allocs}
        peer_vals = [(med[p], p) for p in peers if med[p] is not None]
        best = min(peer_vals) if peer_vals else (None, None)
        r_base = ratio(med.get(SUBJECT), med.get(BASE))
        r_peer = ratio(med.get(SUBJECT), best[0])
        summary[name] = {
            "median": med,
            "runs": {a: per_alloc.get(a, []) for a in allocs},
            "pg_vs_glibc": r_base,
            "pg_vs_best_peer": r_peer,
            "best_peer": best[1],
        }
        cells = [fmt(med[a]) if med[a] is not None else "FAIL" for a in allocs]
        lines.append(
            "| %s | %s | %s | %s |"
            % (
                name,
                " | ".join(cells),
                fr(r_base),
                ("%s (%s)" % (fr(r_peer), best[1])) if r_peer is not None else "n/a",
            )
        )
    return "\n".join(lines), summary


def verdict(ok, measured):
    return "not measured" if not measured else ("met" if ok else "MISSED")


def check_targets(micro, other, callgrind):
    """The issue's targets, each as (description, verdict, detail)."""
    out = []

    def get(summary, name, alloc):
        return summary.get(name, {}).get("median", {}).get(alloc)

    for name in [
        "BM_Pair/32",
        "BM_PairThreads/32/real_time/threads:1",
        "BM_PairThreads/32/real_time/threads:2",
        "BM_Churn/real_time/threads:1",
        "BM_Churn/real_time/threads:2",
    ]:
        if name not in micro:
            continue
        s = micro[name]
        rb, rp = s["pg_vs_glibc"], s["pg_vs_best_peer"]
        ok = rb is not None and rp is not None and rb <= 0.5 and rp <= 1.0
        out.append(
            (
                "%s: <= 0.5x glibc and <= 1.0x best peer" % name,
                verdict(ok, rb is not None and rp is not None),
                "%sx glibc, %sx %s" % (fr(rb), fr(rp), s["best_peer"]),
            )
        )
    for name in [n for n in micro if n.startswith("BM_ProducerConsumer/")]:
        pg, mi = get(micro, name, SUBJECT), get(micro, name, "mimalloc")
        r = ratio(pg, mi)
        out.append(
            (
                "%s: no slower than mimalloc" % name,
                verdict(r is not None and r <= 1.0, r is not None),
                "%sx mimalloc" % fr(r),
            )
        )
    for name in ["python3 peak RSS MiB", "frag peak RSS MiB (net)"]:
        if name not in other:
            continue
        r = ratio(get(other, name, SUBJECT), get(other, name, "jemalloc"))
        out.append(
            (
                "%s: no higher than jemalloc" % name,
                verdict(r is not None and r <= 1.0, r is not None),
                "%sx jemalloc" % fr(r),
            )
        )
    name = "frag RSS after free90 / live"
    if name in other:
        v = get(other, name, SUBJECT)
        out.append(
            (
                "frag: RSS after the big free within 1.5x live bytes",
                verdict(v is not None and v <= 1.5, v is not None),
                "%sx live (net of the program's own arrays)" % fr(v),
            )
        )
    if callgrind and SUBJECT in callgrind.get("per_pair", {}):
        v = callgrind["per_pair"][SUBJECT]
        out.append(
            (
                "callgrind: <= 40 instructions per malloc(32)+free pair",
                "met" if v <= 40 else "MISSED",
                "%.1f per pair (loop and calls included; %.1f net of the empty-loop baseline)"
                % (v, v - callgrind.get("baseline", 0.0)),
            )
        )
    return out


def main():
    out = sys.argv[1]
    allocs = sys.argv[2:] or [BASE] + PEERS + [SUBJECT]
    micro_raw, order, failures = load_micro(out, allocs)
    other_raw = {}
    other_raw.update(load_workloads(out, allocs))
    other_raw.update(load_frag(out, allocs))
    callgrind = None
    cg_path = os.path.join(out, "callgrind.json")
    if os.path.exists(cg_path):
        with open(cg_path) as f:
            callgrind = json.load(f)
    fail_path = os.path.join(out, "failures.txt")
    if os.path.exists(fail_path):
        with open(fail_path) as f:
            failures += [l for l in f.read().splitlines() if l.strip()]

    md = []
    micro_md, micro_sum = table([(n, micro_raw[n]) for n in order], allocs, "micro (median ns per op)")
    other_order = sorted(other_raw, key=lambda k: (k.split()[0] == "frag", k))
    other_md, other_sum = table([(n, other_raw[n]) for n in other_order], allocs, "workload (median)")
    runs = max([len(v) for d in list(micro_raw.values()) + list(other_raw.values()) for v in d.values()] or [0])
    md.append("Medians of %d run(s) per allocator; lower is better everywhere. Ratios are poolguard's "
              "median over glibc's and over the best of %s." % (runs, "/".join(PEERS)))
    md.append("")
    md.append("### Micro-benchmarks (ns per malloc+free pair, or per op named by the benchmark)")
    md.append("")
    md.append(micro_md)
    md.append("")
    md.append("### Whole programs and fragmentation (seconds, MiB)")
    md.append("")
    md.append(other_md)
    md.append("")
    if callgrind:
        md.append("### Instructions per malloc(32)+free pair (callgrind, exact)")
        md.append("")
        md.append("| allocator | Ir per pair | net of loop baseline |")
        md.append("|---|---|---|")
        base = callgrind.get("baseline", 0.0)
        for a in allocs:
            v = callgrind.get("per_pair", {}).get(a)
            md.append("| %s | %s | %s |" % (a, "%.1f" % v if v is not None else "FAIL",
                                            "%.1f" % (v - base) if v is not None else "n/a"))
        md.append("| (empty loop baseline) | %.1f | 0 |" % base)
        md.append("")
    targets = check_targets(micro_sum, other_sum, callgrind)
    if targets:
        md.append("### Targets")
        md.append("")
        md.append("| target | verdict | measured |")
        md.append("|---|---|---|")
        for t in targets:
            md.append("| %s | %s | %s |" % t)
        md.append("")
    if failures:
        md.append("### Failures")
        md.append("")
        for f in failures:
            md.append("- " + f)
        md.append("")
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"allocators": allocs, "micro": micro_sum, "workloads": other_sum,
                   "callgrind": callgrind, "targets": targets, "failures": failures}, f, indent=1)

    # Chart data: ratio to glibc of each non-glibc allocator, one row per benchmark.
    shown = [a for a in allocs if a != BASE]

    def write_dat(path, names, summary):
        with open(path, "w") as f:
            f.write("name " + " ".join(shown) + "\n")
            for n in names:
                if n not in summary:
                    continue
                med = summary[n]["median"]
                vals = [ratio(med.get(a), med.get(BASE)) for a in shown]
                label = n.replace("BM_", "").replace("/real_time", "").replace("threads:", "t")
                for long, short in ((" MiB", ""), (" (net)", ""), (" time s", " time")):
                    label = label.replace(long, short)
                f.write('"%s" %s\n' % (label, " ".join("%.4f" % v if v else "NaN" for v in vals)))

    write_dat(os.path.join(out, "chart_micro.dat"), CHART_MICRO, micro_sum)
    work_names = [n for n in other_order if n.endswith(" time s") or "peak RSS" in n
                  or "after free90 MiB" in n or "at end MiB" in n]
    write_dat(os.path.join(out, "chart_work.dat"), work_names, other_sum)
    print("\n".join(md))


if __name__ == "__main__":
    main()
