"""Object-heavy, deterministic Python workload for the poolguard integration test.

Run with PYTHONMALLOC=malloc so that every object allocation goes through malloc (and so through
an LD_PRELOAD allocator). Prints checksums that must not depend on the allocator.
"""

import collections
import gc
import hashlib
import json
import random


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm1(self):
        return abs(self.x) + abs(self.y)


class Record:
    def __init__(self, ident, name, tags, parent=None):
        self.ident = ident
        self.name = name
        self.tags = tags
        self.parent = parent  # reference chains (and cycles below) keep the gc busy
        self.children = []

    def to_dict(self):
        return {"id": self.ident, "name": self.name, "tags": sorted(self.tags),
                "children": [c.ident for c in self.children]}


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def main():
    rng = random.Random(20240101)
    out = []

    # Dicts and strings: a word index.
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 8)))
             for _ in range(60000)]
    counts = collections.Counter(words)
    index = collections.defaultdict(list)
    for pos, w in enumerate(words):
        index[w[:2]].append(pos)
    out.append(("words", len(counts), counts.most_common(3), len(index),
                sum(len(v) for v in index.values())))

    # Lists, tuples, sorting with keys.
    points = [Point(rng.randint(-1000, 1000), rng.randint(-1000, 1000)) for _ in range(50000)]
    points.sort(key=lambda p: (p.norm1(), p.x, p.y))
    pairs = sorted(((p.x, p.y) for p in points[:5000]), reverse=True)
    out.append(("points", [(p.x, p.y) for p in points[:3]], pairs[:2], digest(pairs)))

    # Classes with reference cycles, collected by the gc.
    records = []
    for i in range(20000):
        parent = records[rng.randrange(len(records))] if records and i % 4 else None
        r = Record(i, "rec%05d" % i, {words[rng.randrange(len(words))] for _ in range(3)}, parent)
        if parent is not None:
            parent.children.append(r)
        records.append(r)
    dumped = [r.to_dict() for r in records if r.children]
    del records
    collected = gc.collect()
    out.append(("records", len(dumped), digest(dumped[:100]), collected >= 0))

    # JSON round trip of nested structures.
    doc = {"records": dumped[:2000], "meta": {"n": len(dumped), "words": counts.most_common(50)}}
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    # json turns tuples into lists: compare against a normalised copy.
    assert back == json.loads(json.dumps(doc)), "json round trip changed the document"
    out.append(("json", len(text), digest(text)))

    # String building, splitting, joining, formatting.
    lines = ["%d:%s:%x" % (i, words[i % len(words)], i * 2654435761 % 2**32) for i in range(40000)]
    blob = "\n".join(lines)
    fields = [line.split(":") for line in blob.splitlines()]
    joined = ",".join(f[1].upper() for f in fields if int(f[2], 16) % 7 == 0)
    out.append(("strings", len(blob), len(joined), digest(joined)))

    # Sets and frozensets, dict comprehensions, deletions.
    groups = {}
    for w in words[:30000]:
        groups.setdefault(frozenset(w), set()).add(w)
    for key in [k for k in groups if len(k) % 2]:
        del groups[key]
    out.append(("sets", len(groups), sum(len(v) for v in groups.values())))

    for item in out:
        print(item)
    print("objects.py ok")


if __name__ == "__main__":
    main()
