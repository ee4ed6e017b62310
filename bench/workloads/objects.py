"""Object-heavy Python workload for allocator comparisons.

Run as: PYTHONMALLOC=malloc /usr/bin/python3 objects.py [SCALE]
With PYTHONMALLOC=malloc every object allocation goes to malloc/free (not pymalloc), so this is a
realistic stream of small, short- and long-lived blocks. Deterministic: fixed seed, no I/O except
one summary line on stdout.
"""

import collections
import json
import random
import sys


class Record:
    def __init__(self, ident, name, tags, score):
        self.ident = ident
        self.name = name
        self.tags = tags
        self.score = score
        self.children = []


def build_records(rng, n):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    records = []
    for i in range(n):
        name = "%s-%s-%d" % (rng.choice(words), rng.choice(words), i)
        tags = tuple(rng.sample(words, rng.randint(1, 4)))
        records.append(Record(i, name, tags, rng.random()))
    return records


def link_tree(rng, records):
    for i in range(1, len(records)):
        records[rng.randrange(i)].children.append(records[i])


def churn_dicts(rng, n):
    # Many short-lived dicts and lists, a few kept: a request-handling pattern.
    kept = []
    for i in range(n):
        d = {"id": i, "value": rng.random(), "label": "item%d" % i, "items": list(range(i % 17))}
        if i % 10 == 0:
            kept.append(d)
        elif i % 7 == 0:
            d["copy"] = dict(d)
    return kept


def strings(rng, n):
    parts = []
    for i in range(n):
        s = "".join(chr(97 + rng.randrange(26)) for _ in range(rng.randint(3, 40)))
        parts.append(s.upper() if i % 3 == 0 else s)
    counts = collections.Counter(p[:2] for p in parts)
    joined = ",".join(parts)
    return len(joined.split(",")), len(counts)


def json_roundtrip(kept):
    text = json.dumps(kept[:20000])
    back = json.loads(text)
    return len(text), len(back)


def fragment(rng, records):
    # Drop a random 90% of the long-lived objects, then build new ones of other shapes.
    survivors = [r for r in records if rng.random() < 0.1]
    for r in survivors:
        r.children = []
    fresh = [{"k": i, "t": (i, str(i), float(i))} for i in range(len(records) // 2)]
    return len(survivors), len(fresh)


def main():
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    rng = random.Random(12345)
    records = build_records(rng, scale)
    link_tree(rng, records)
    records.sort(key=lambda r: (r.score, r.name))
    index = {r.name: r for r in records}
    by_tag = collections.defaultdict(list)
    for r in records:
        for t in r.tags:
            by_tag[t].append(r.ident)
    kept = churn_dicts(rng, scale * 2)
    nparts, nprefix = strings(rng, scale)
    jlen, jcount = json_roundtrip(kept)
    del index, by_tag
    nsurv, nfresh = fragment(rng, records)
    print(
        "objects scale=%d records=%d kept=%d parts=%d prefixes=%d json=%d/%d survivors=%d fresh=%d"
        % (scale, len(records), len(kept), nparts, nprefix, jlen, jcount, nsurv, nfresh)
    )


if __name__ == "__main__":
    main()
