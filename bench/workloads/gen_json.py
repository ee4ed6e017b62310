"""Writes a JSON array of N objects for the jq workload of scripts/bench.sh (deterministic).

Usage: python3 bench/workloads/gen_json.py N SEED > items.json
Each object has a number, a name, a list of tags and a nested object: many small values, which is
what makes jq allocate.
"""
import json
import random
import sys


def main():
    n, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    out = sys.stdout
    out.write("[")
    for i in range(n):
        item = {
            "a": i,
            "name": "item-%d-%s" % (i, rng.choice(words)),
            "tags": [rng.choice(words) for _ in range(rng.randint(1, 6))],
            "pos": {"x": rng.random(), "y": rng.random(), "label": rng.choice(words) * rng.randint(1, 4)},
        }
        if i:
            out.write(",")
        out.write(json.dumps(item, separators=(",", ":")))
    out.write("]\n")


if __name__ == "__main__":
    main()
