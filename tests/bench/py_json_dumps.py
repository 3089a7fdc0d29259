"""json.dumps of a 2,000-key dict, ROUNDS times (a user trial's program): python3 grows its
output buffer with realloc, a quarter at a time from 29 KB to 351 KB, then frees it. Before
large blocks could grow into kept mappings this took 3x longer under heapledger's pools only
than under glibc (docs/internals.md, Pools).
    python3 tests/bench/py_json_dumps.py ROUNDS"""
import hashlib
import json
import sys


def work(i):
    d = {str(k): [k] * ((k * i) % 17) for k in range(2000)}
    return hashlib.sha256(json.dumps(d).encode()).hexdigest()[:8]


print(hashlib.md5("".join(work(i) for i in range(int(sys.argv[1]))).encode()).hexdigest())
