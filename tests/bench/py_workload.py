"""Whole-process workload for python3: dicts, lists and JSON built and torn down repeatedly.

Run by bench.py under each allocator, unmodified (pymalloc serves objects up to 512 bytes from
its own arenas; dict tables, list arrays, long strings and JSON text come from malloc).
    python3 py_workload.py ROUNDS
"""
import json
import sys


def one_round(seed, n):
    records = []
    for i in range(n):
        k = (i * 7919 + seed) % (4 * n)
        records.append({
            "id": k,
            "name": "user-%d-%s" % (k, "x" * (k % 40)),
            "tags": ["t%d" % (k % (j + 3)) for j in range(k % 12)],
            "score": k * 0.5,
            "attrs": {"a%d" % j: j * k for j in range(k % 20)},
        })
    index = {r["name"]: r for r in records}
    by_tag = {}
    for r in records:
        for t in r["tags"]:
            by_tag.setdefault(t, []).append(r["id"])
    text = json.dumps(records)
    back = json.loads(text)
    total = sum(len(v) for v in by_tag.values()) + len(index) + len(back)
    words = " ".join(r["name"] for r in back).split()
    words.sort()
    total += len(words) + len(set(words))
    return total + len(text)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    total = 0
    for seed in range(rounds):
        total += one_round(seed, 20000)
    print("py_workload rounds=%d checksum=%d" % (rounds, total))


if __name__ == "__main__":
    main()
