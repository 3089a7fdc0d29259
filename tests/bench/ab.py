#!/usr/bin/env python3
"""Paired comparison of heapledger builds (or other preloads) on the bench workloads.

Each repetition runs the workload plainly (glibc) and then under every LIB in turn; the cell is
the median over repetitions of (wall time under LIB) / (wall time plain, same repetition).
The before/after figures for single changes (README, docs/internals.md, tests/bench/HISTORY.md) come
from this, with two builds' libraries:
  tests/bench/ab.py --reps 5 --options log=none OLD/libheapledger.so NEW/libheapledger.so
  tests/bench/ab.py --only cpp,pym --options track=0:log=none build-bench/lib/libheapledger.so \\
                    /usr/lib/x86_64-linux-gnu/libmimalloc.so.2
Copy a build's lib/ directory (libheapledger.so with its two private modules) before rebuilding.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (write_sql)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("libs", nargs="+", help="libraries to preload, one column each")
    p.add_argument("--build", default=os.path.join(HERE, "..", "..", "build-bench"))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--options", default="log=none", help="HEAPLEDGER_OPTIONS for every run")
    p.add_argument("--only", default="churn1,cpp,sqlite,pym",
                   help="comma-separated: churn1, churn2, cpp, sqlite, py, pym, cc1plus, shell")
    a = p.parse_args()
    bin_dir = os.path.join(a.build, "tests", "bench")
    tmp = tempfile.mkdtemp(prefix="heapledger-ab-")
    sql, db = os.path.join(tmp, "w.sql"), os.path.join(tmp, "w.db")
    bench.write_sql(sql, 60_000)
    py = ["/usr/bin/python3", os.path.join(HERE, "py_workload.py")]  # as bench.py runs it
    workloads = {
        "churn1": ([os.path.join(bin_dir, "churn"), "1", "20000000", "10000"], {}),
        "churn2": ([os.path.join(bin_dir, "churn"), "2", "20000000", "10000"], {}),
        "cpp": ([os.path.join(bin_dir, "cpp_objects"), "20", "20000"], {}),
        "sqlite": (["sqlite3", db, ".read " + sql], {}),
        "py": (py + ["4"], {}),
        "pym": (py + ["2"], {"PYTHONMALLOC": "malloc"}),
    }
    script = os.path.join(tmp, "pipelines.sh")
    bench.write_shell_script(script, tmp, 60)  # as bench.py writes it
    workloads["shell"] = (["/bin/sh", script], {})
    compiler = bench.compiler_argv(tmp)  # as bench.py runs it
    if compiler:
        workloads["cc1plus"] = (compiler, {})

    def run(argv, env_extra, lib):
        env = dict(os.environ, **env_extra)
        if lib:
            env.update(LD_PRELOAD=lib, HEAPLEDGER_OPTIONS=a.options)
        if os.path.exists(db):
            os.unlink(db)
        t = time.monotonic()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        return time.monotonic() - t

    for name in a.only.split(","):
        argv, env_extra = workloads[name]
        ratios = {lib: [] for lib in a.libs}
        for _ in range(a.reps):
            plain = run(argv, env_extra, None)
            for lib in a.libs:
                ratios[lib].append(run(argv, env_extra, lib) / plain)
        cells = ["%s %.2fx" % (lib, statistics.median(r)) for lib, r in ratios.items()]
        print(name + ": " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
