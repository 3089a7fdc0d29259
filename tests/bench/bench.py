#!/usr/bin/env python3
"""The issue-4 benchmark driver: runs every whole-process workload under every allocator
configuration, paired and interleaved, then the tracker-memory/exit-report measurement and the
microbenchmarks, and writes one table to tests/bench/RESULTS.md. scripts/bench.sh builds first
and then calls this; run it directly only against an existing build:
    bench.py --build build [--reps N] [--quick] [--heaptrack-reps N] [--no-micro]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = {  # LD_PRELOAD paths of the allocators compared against (Debian packages)
    "mimalloc": ("libmimalloc-dev", LIBDIR + "/libmimalloc.so.2"),
    "jemalloc": ("libjemalloc-dev", LIBDIR + "/libjemalloc.so.2"),
    "tcmalloc": ("libgoogle-perftools-dev", LIBDIR + "/libtcmalloc_minimal.so.4"),
}
CONFIGS = ["glibc", "hl-pools", "hl-full", "hl-full-q0", "hl-full-libunwind", "glibc-delay", "mimalloc",
           "jemalloc", "tcmalloc", "heaptrack"]
CONFIG_TITLES = {
    "glibc": "glibc (plain)",
    "hl-pools": "heapledger track=0",
    "hl-full": "heapledger full",
    "hl-full-q0": "heapledger full, quarantine_mb=0 (diagnostic)",
    "hl-full-libunwind": "heapledger full, unwind=libunwind (diagnostic)",
    "glibc-delay": "glibc, frees held back 16 MiB (diagnostic)",
    "mimalloc": "mimalloc",
    "jemalloc": "jemalloc",
    "tcmalloc": "tcmalloc",
    "heaptrack": "heaptrack",
}
RUN_TIMEOUT_S = 120      # any single run; a hang is reported, not waited out
HEAPTRACK_TIMEOUT_S = 400


# ---------------------------------------------------------------------------------------------
# Measuring one run

class Run:
    """Outcome of one process (tree) run: wall seconds, peak RSS KiB, how it ended, CPU seconds
    (user + system, of every process of the tree)."""

    def __init__(self, wall, rss_kb, status, detail="", cpu=0.0):
        self.wall, self.rss_kb, self.status, self.detail = wall, rss_kb, status, detail
        self.cpu = cpu

    @property
    def ok(self):
        return self.status == "ok"


def measure(tool, argv, env_extra, stdout_path, stderr_path, timeout, tree=False):
    """Runs argv under the `measure` helper (tests/bench/measure.c): wall time until it exits
    (with tree, until every process it started has exited) and peak RSS (with tree, of the
    whole process tree). env_extra reaches only the program, never the helper."""
    cmd = [tool, "--timeout", str(timeout), "--stdout", stdout_path, "--stderr", stderr_path]
    if tree:
        cmd.append("--tree")
    for k, v in env_extra.items():
        cmd += ["--env", "%s=%s" % (k, v)]
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "HEAPLEDGER_OPTIONS")}
    out = subprocess.run(cmd + ["--"] + argv, capture_output=True, text=True, env=env,
                         timeout=timeout + 60)
    fields = out.stdout.split()
    if out.returncode != 0 or len(fields) != 4:
        return Run(0.0, 0, "error", "measure failed: %s" % (out.stderr.strip() or out.stdout))
    wall, rss, what, cpu = float(fields[0]), int(fields[1]), fields[2], float(fields[3])
    if what == "ok":
        return Run(wall, rss, "ok", cpu=cpu)
    if what == "hang":
        return Run(wall, rss, "hang", "no exit after %d s (killed)" % timeout, cpu)
    kind, num = what.split(":")
    if kind == "signal":
        return Run(wall, rss, "crash", "killed by signal %s (%s)" % (
            num, signal.Signals(int(num)).name), cpu)
    return Run(wall, rss, "crash", "exit status %s" % num, cpu)


# ---------------------------------------------------------------------------------------------
# Workloads and configurations

def write_sql(path, rows):
    """A script of inserts and queries for sqlite3: many small statements (parsing allocates),
    an in-memory page cache, group-by scans, joins, updates, deletes and point lookups."""
    with open(path, "w") as f:
        w = f.write
        w("PRAGMA cache_size=-65536;\nPRAGMA journal_mode=MEMORY;\nPRAGMA synchronous=OFF;\n")
        w("CREATE TABLE groups(grp INTEGER PRIMARY KEY, label TEXT);\n")
        w("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, note TEXT);\n")
        w("CREATE INDEX items_grp ON items(grp);\nCREATE INDEX items_name ON items(name);\n")
        w("BEGIN;\n")
        for g in range(100):
            w("INSERT INTO groups VALUES(%d,'group-%d');\n" % (g, g))
        for i in range(rows):
            k = (i * 7919) % rows
            w("INSERT INTO items VALUES(%d,'name-%d',%d,%.2f,'note %s');\n"
              % (i, k, k % 100, k * 0.37, "n" * (k % 50)))
        w("COMMIT;\n")
        for q in range(20):
            w("SELECT grp, count(*), avg(val), max(length(note)) FROM items GROUP BY grp;\n")
            w("SELECT g.label, sum(i.val) FROM items i JOIN groups g USING(grp) "
              "WHERE i.name LIKE 'name-%d%%' GROUP BY g.label ORDER BY 2 DESC LIMIT 10;\n" % q)
        w("UPDATE items SET val = val * 1.1 WHERE grp % 3 = 0;\n")
        w("DELETE FROM items WHERE id % 7 = 0;\n")
        for q in range(rows // 20):
            w("SELECT name, val FROM items WHERE id = %d;\n" % ((q * 104729) % rows))
        w("SELECT count(*) FROM items WHERE note LIKE '%nnnn%';\n")
        w("SELECT name FROM items ORDER BY note DESC, name LIMIT 5;\n")


class Workload:
    def __init__(self, name, title, argv, before=None, env=None, skip=()):
        self.name, self.title, self.argv, self.before = name, title, argv, before
        self.env = env or {}  # for every configuration, glibc included
        self.skip = set(skip)  # configurations that would not measure the same work ("not run")


def write_shell_script(path, tmp, pipelines):
    """A shell script of short processes, as a build or a configure script runs them: each
    pipeline four small programs over a 200-line file. What it measures is each process's start
    and exit under the configuration."""
    text = os.path.join(tmp, "lines.txt")
    with open(text, "w") as f:
        f.writelines("line %d of words %s\n" % (i, "abc " * (i % 7)) for i in range(200))
    with open(path, "w") as f:
        f.write("i=0\nwhile [ $i -lt %d ]; do\n" % pipelines)
        f.write("  sed s/words/w/ %s | tr a-z A-Z | sort | uniq -c > /dev/null\n" % text)
        f.write("  i=$((i + 1))\ndone\n")


def compiler_argv(tmp):
    """g++'s compiler proper on cpp_objects.cc, -O2, as `g++ -O2 -c` runs it (the driver's own
    part is small; heaptrack traces only the process it starts, so the compiler is started
    directly). None if g++ or its cc1plus is missing."""
    gxx = shutil.which("g++")
    if not gxx:
        return None
    ask = lambda *flags: subprocess.run([gxx] + list(flags), capture_output=True, text=True).stdout.strip()
    cc1plus, multiarch = ask("-print-prog-name=cc1plus"), ask("-print-multiarch")
    if not os.path.isabs(cc1plus) or not os.path.exists(cc1plus):
        return None
    source = os.path.join(HERE, "cpp_objects.cc")
    return ([cc1plus, "-quiet"] + (["-imultiarch", multiarch] if multiarch else []) +
            ["-D_GNU_SOURCE", source, "-quiet", "-dumpbase", "cpp_objects.cc", "-mtune=generic",
             "-march=x86-64", "-O2", "-o", os.path.join(tmp, "cpp_objects.s")])


def make_workloads(bench_bin, tmp, quick, python, sqlite):
    churn_ops = 2_000_000 if quick else 20_000_000
    cpp_rounds = 2 if quick else 20
    sql_rows = 6_000 if quick else 60_000
    py_rounds = 1 if quick else 4
    pym_rounds = 1 if quick else 2  # every object through malloc: ~2x the time per round
    pipelines = 10 if quick else 60
    sql = os.path.join(tmp, "workload.sql")
    db = os.path.join(tmp, "workload.db")
    write_sql(sql, sql_rows)
    script = os.path.join(tmp, "pipelines.sh")
    write_shell_script(script, tmp, pipelines)

    def fresh_db():
        if os.path.exists(db):
            os.unlink(db)

    return [
        Workload("churn-1t", "churn, 1 thread (%dM ops)" % (churn_ops // 1_000_000),
                 [os.path.join(bench_bin, "churn"), "1", str(churn_ops), "10000"]),
        Workload("churn-2t", "churn, 2 threads, cross-thread frees (%dM ops)" % (churn_ops // 1_000_000),
                 [os.path.join(bench_bin, "churn"), "2", str(churn_ops), "10000"]),
        Workload("cpp", "C++ objects (map/unordered_map/list, %d rounds)" % cpp_rounds,
                 [os.path.join(bench_bin, "cpp_objects"), str(cpp_rounds), "20000"]),
        Workload("sqlite3", "sqlite3 (%dk-row script)" % (sql_rows // 1000),
                 [sqlite, db, ".read " + sql], before=fresh_db),
        Workload("python3", "python3 dict/list/json (%d rounds)" % py_rounds,
                 [python, os.path.join(HERE, "py_workload.py"), str(py_rounds)]),
        # What a memory tool's user sets so that every object reaches the allocator.
        Workload("python3-malloc", "python3, PYTHONMALLOC=malloc (%d rounds)" % pym_rounds,
                 [python, os.path.join(HERE, "py_workload.py"), str(pym_rounds)],
                 env={"PYTHONMALLOC": "malloc"}),
    ] + ([Workload("cc1plus", "g++ -O2 compiling cpp_objects.cc (cc1plus)", compiler)]
         if (compiler := compiler_argv(tmp)) else []) + [
        # heaptrack traces the process it starts and none of its children: not the same work.
        Workload("shell", "sh: %d pipelines of sed, tr, sort, uniq (%d processes)" % (pipelines, 4 * pipelines),
                 ["/bin/sh", script], skip={"heaptrack"}),
    ]


def config_env(config, lib):
    """Environment additions for the program under one configuration."""
    env = {}
    if config == "hl-pools":
        env.update(LD_PRELOAD=lib, HEAPLEDGER_OPTIONS="track=0:log=none")
    elif config == "hl-full":
        env.update(LD_PRELOAD=lib, HEAPLEDGER_OPTIONS="log=none")
    elif config == "hl-full-q0":  # what the double-free quarantine costs, by difference
        env.update(LD_PRELOAD=lib, HEAPLEDGER_OPTIONS="log=none:quarantine_mb=0")
    elif config == "hl-full-libunwind":  # what the fast unwinder saves, by difference
        env.update(LD_PRELOAD=lib, HEAPLEDGER_OPTIONS="log=none:unwind=libunwind")
    elif config == "glibc-delay":  # what holding freed memory back costs the program itself
        env.update(LD_PRELOAD=os.path.normpath(os.path.join(os.path.dirname(lib), "..", "tests", "bench", "delay_free.so")))
    elif config in PEERS:
        env.update(LD_PRELOAD=PEERS[config][1])
    return env


def config_argv(config, argv, heaptrack_out):
    if config == "heaptrack":
        return [shutil.which("heaptrack"), "-o", heaptrack_out] + argv
    return argv


def shell_command(env, argv):
    """How to reproduce one run by hand."""
    return " ".join(["%s=%s" % (k, _quote(v)) for k, v in env.items()] + [_quote(a) for a in argv])


def _quote(arg):
    return arg if arg and all(c.isalnum() or c in "/._-=:,+" for c in arg) else "'%s'" % arg


# ---------------------------------------------------------------------------------------------
# The session

class Session:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.lib = os.path.join(self.build, "lib", "libheapledger.so")
        self.bench_bin = os.path.join(self.build, "tests", "bench")
        self.tmp = tempfile.mkdtemp(prefix="heapledger-bench-")
        self.tool = os.path.join(self.bench_bin, "measure")
        self.failures = []   # (workload, config, Run, command, stderr tail)
        self.log = open(os.path.join(self.tmp, "runs.tsv"), "w")

    def run_one(self, label, config, argv, env, timeout, command, tree=False, stdout_path=None):
        """One measured run; a crash or hang is remembered with its command and stderr."""
        out = stdout_path or os.devnull
        err = os.path.join(self.tmp, "stderr.txt")
        r = measure(self.tool, argv, env, out, err, timeout, tree=tree)
        self.log.write("%s\t%s\t%.4f\t%.4f\t%d\t%s\n" % (label, config, r.wall, r.cpu, r.rss_kb,
                                                       r.status))
        self.log.flush()
        if not r.ok:
            with open(err, errors="replace") as f:
                tail = f.read()[-1500:]
            self.failures.append((label, config, r, tail, command))
        return r

    def progress(self, text):
        print(text, file=sys.stderr, flush=True)


def run_workloads(s, workloads, configs):
    """reps x workloads x configs, configs in a rotated order each rep. Returns
    results[workload][config] = list of Run or None per rep (None: not run)."""
    reps, ht_reps = s.args.reps, min(s.args.heaptrack_reps, s.args.reps)
    results = {w.name: {c: [None] * reps for c in configs} for w in workloads}
    broken = set()  # (workload, config) that crashed or hung: not run again
    commands = {}
    ht_out = os.path.join(s.tmp, "heaptrack", "run")
    for w in workloads:  # one untimed run each, so files are in the page cache
        if w.before:
            w.before()
        measure(s.tool, w.argv, w.env, os.devnull, os.devnull, RUN_TIMEOUT_S)
    for rep in range(reps):
        order = configs[rep % len(configs):] + configs[:rep % len(configs)]
        for w in workloads:
            line = []
            for c in order:
                if (w.name, c) in broken or c in w.skip or (c == "heaptrack" and rep >= ht_reps):
                    continue
                if w.before:
                    w.before()
                argv = config_argv(c, w.argv, ht_out)
                env = dict(w.env, **config_env(c, s.lib))
                commands[(w.name, c)] = shell_command(env, argv)
                timeout = HEAPTRACK_TIMEOUT_S if c == "heaptrack" else RUN_TIMEOUT_S
                r = s.run_one(w.name, c, argv, env, timeout, commands[(w.name, c)],
                              tree=(c == "heaptrack"))
                if c == "heaptrack":
                    shutil.rmtree(os.path.dirname(ht_out), ignore_errors=True)
                results[w.name][c][rep] = r
                if not r.ok:
                    broken.add((w.name, c))
                line.append("%s %.2fs%s" % (c, r.wall, "" if r.ok else " " + r.status.upper()))
            s.progress("rep %d/%d %-9s %s" % (rep + 1, reps, w.name, "  ".join(line)))
    return results


def paired_ratios(results, workload, config):
    """Median over reps of time(config)/time(glibc), of rss(config)/rss(glibc) and of
    cpu(config)/cpu(glibc), using only reps where both ran."""
    base, runs = results[workload]["glibc"], results[workload][config]
    t, m, c = [], [], []
    for b, r in zip(base, runs):
        if b and r and b.ok and r.ok:
            t.append(r.wall / b.wall)
            m.append(r.rss_kb / b.rss_kb)
            c.append(r.cpu / b.cpu if b.cpu > 0 else float("nan"))
    if not t:
        return None
    return statistics.median(t), statistics.median(m), len(t), statistics.median(c)


# ---------------------------------------------------------------------------------------------
# Tracker memory per live block, and the exit report for many live blocks

def run_live_blocks(s, n):
    prog = os.path.join(s.bench_bin, "live_blocks")
    json_path = os.path.join(s.tmp, "live.json")
    text_path = os.path.join(s.tmp, "live.txt")
    variants = {  # name: (HEAPLEDGER_OPTIONS or None for glibc, how the program leaves, N)
        "glibc": (None, "_exit", n),
        "pools": ("track=0:log=none", "_exit", n),
        "full-noreport": ("log=none", "_exit", n),
        "full-json": ("json=%s:log=none" % json_path, "exit", n),
        "full-text": ("log=%s" % text_path, "exit", n),
        # No blocks at all: what starting (and leaving) costs in time and resident memory.
        "glibc-empty": (None, "exit", 0),
        "pools-empty": ("track=0:log=none", "exit", 0),
        "full-empty": ("log=none", "exit", 0),
    }
    names = list(variants)
    data = {v: [] for v in names}
    for rep in range(s.args.reps):
        for v in names[rep % len(names):] + names[:rep % len(names)]:
            opts, how, count = variants[v]
            env = {}
            if opts is not None:
                env.update(LD_PRELOAD=s.lib, HEAPLEDGER_OPTIONS=opts)
            argv = [prog, str(count), how]
            out = os.path.join(s.tmp, "live.out")
            if os.path.exists(json_path):
                os.unlink(json_path)
            r = s.run_one("live_blocks", v, argv, env, RUN_TIMEOUT_S, shell_command(env, argv),
                          stdout_path=out)
            if not r.ok:
                data[v].append(None)
                continue
            rss = None
            with open(out) as f:
                for tok in f.read().split():
                    if tok.startswith("rss_kb="):
                        rss = int(tok[7:])
            r.program_rss_kb = rss
            if v == "full-json":
                r.detail = check_live_json(json_path, n)
            data[v].append(r)
        s.progress("rep %d/%d live_blocks %s" % (rep + 1, s.args.reps, "  ".join(
            "%s %.2fs" % (v, data[v][-1].wall) for v in names if data[v][-1])))
    return data


def check_live_json(path, n):
    try:
        with open(path) as f:
            summary = json.load(f)["summary"]
    except (OSError, ValueError, KeyError) as e:
        return "JSON report unreadable: %s" % e
    live = summary.get("live_blocks", 0)
    if live < n:
        return "JSON report has live_blocks=%d, expected >= %d" % (live, n)
    return ""


def summarize_live_blocks(data, n):
    def paired(a, b, f):
        vals = [f(x, y) for x, y in zip(data[a], data[b]) if x and y]
        return statistics.median(vals) if vals else None

    per_block = paired("full-noreport", "pools",
                       lambda x, y: (x.program_rss_kb - y.program_rss_kb) * 1024.0 / n
                       if x.program_rss_kb and y.program_rss_kb else float("nan"))
    json_s = paired("full-json", "full-noreport", lambda x, y: x.wall - y.wall)
    text_s = paired("full-text", "full-noreport", lambda x, y: x.wall - y.wall)
    med = {v: statistics.median([r.wall for r in runs if r]) if any(runs) else None
           for v, runs in data.items()}
    rss = {v: statistics.median([r.program_rss_kb for r in runs if r and r.program_rss_kb])
           if any(r and r.program_rss_kb for r in runs) else None for v, runs in data.items()}
    peak = {v: statistics.median([r.rss_kb for r in runs if r]) if any(runs) else None
            for v, runs in data.items()}
    json_issue = next((r.detail for r in data["full-json"] if r and r.detail), "")
    return dict(per_block=per_block, json_s=json_s, text_s=text_s, wall=med, rss=rss,
                peak=peak, json_issue=json_issue)


# ---------------------------------------------------------------------------------------------
# Microbenchmarks

MICROS = ["micro_pool", "micro_unwind", "micro_stack_table", "micro_ledger", "micro_clock"]


def run_micros(s):
    rows = []
    for name in MICROS:
        exe = os.path.join(s.bench_bin, name)
        if not os.path.exists(exe):
            rows.append((name, None, "not built (Google Benchmark missing?)"))
            continue
        out = os.path.join(s.tmp, name + ".json")
        argv = [exe, "--benchmark_min_time=%s" % s.args.micro_min_time,
                "--benchmark_out=" + out, "--benchmark_out_format=json"]
        s.progress("running %s" % name)
        r = s.run_one(name, "micro", argv, {}, 600, " ".join(argv),
                      stdout_path=os.path.join(s.tmp, name + ".txt"))
        if not r.ok:
            rows.append((name, None, r.status + ": " + r.detail))
            continue
        with open(out) as f:
            for b in json.load(f)["benchmarks"]:
                if b.get("run_type", "iteration") != "iteration":
                    continue
                extra = []
                if "frames" in b:
                    extra.append("frames=%d" % b["frames"])
                if b.get("label"):
                    extra.append(b["label"])
                rows.append((name, b, ", ".join(extra)))
    return rows


def to_ns(value, unit):
    return value * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]


# ---------------------------------------------------------------------------------------------
# Report

def fmt_ratio(cell):
    if cell is None:
        return "n/a"
    return "%.2fx (rss %.2fx)" % (cell[0], cell[1])


def cpu_table(results, workloads, configs):
    """CPU time (user + system, whole process tree) ratios: heaptrack's interpreter works on the
    second core, so its wall time hides part of its cost."""
    head = ["workload", "glibc: CPU s"] + [CONFIG_TITLES[c] for c in configs if c != "glibc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in workloads:
        base = [r.cpu for r in results[w.name]["glibc"] if r and r.ok]
        cells = [w.title, "%.2f" % statistics.median(base) if base else "n/a"]
        for c in configs:
            if c != "glibc":
                cell = paired_ratios(results, w.name, c)
                cells.append("%.2fx" % cell[3] if cell else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def workload_table(results, workloads, configs, reps, ht_reps):
    titles = dict(CONFIG_TITLES)
    if ht_reps < reps:
        titles["heaptrack"] += " (%d reps)" % ht_reps
    head = ["workload", "glibc: time, peak RSS"] + [titles[c] for c in configs if c != "glibc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in workloads:
        base = [r for r in results[w.name]["glibc"] if r and r.ok]
        cells = [w.title]
        if base:
            cells.append("%.2f s, %.1f MB" % (statistics.median(r.wall for r in base),
                                              statistics.median(r.rss_kb for r in base) / 1024))
        else:
            cells.append("FAILED")
        for c in configs:
            if c == "glibc":
                continue
            runs = results[w.name][c]
            bad = next((r for r in runs if r and not r.ok), None)
            cell = paired_ratios(results, w.name, c)
            text = fmt_ratio(cell) if cell else ("not run" if not any(runs) else "n/a")
            if bad:
                text = "**%s**" % bad.status.upper() + ("" if not cell else " / " + text)
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def evaluate_targets(results, workloads, live):
    """The issue-4 targets: (target, measured, verdict) rows."""
    names = [w.name for w in workloads]

    def r(w, c, i=0):
        if w not in names or c not in results[w]:
            return None
        cell = paired_ratios(results, w, c)
        return cell[i] if cell else None

    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "**NOT MET**")

    def le(a, b):
        return None if a is None or b is None else a <= b

    rows = []
    for w in ("churn-1t", "churn-2t", "cpp"):
        a, b = r(w, "hl-pools"), r(w, "mimalloc")
        rows.append(("pools only <= mimalloc on %s" % w,
                     "%s vs %s" % (_x(a), _x(b)), verdict(le(a, b))))
    worst = max(((r(w, "hl-pools"), w) for w in names if r(w, "hl-pools") is not None),
                default=(None, None))
    rows.append(("pools only never slower than glibc (every workload)",
                 "worst %s (%s)" % (_x(worst[0]), worst[1]), verdict(le(worst[0], 1.0))))
    worst_m = max(((r(w, "hl-pools", 1), w) for w in names if r(w, "hl-pools", 1) is not None),
                  default=(None, None))
    rows.append(("pools only peak RSS <= 1.5x glibc (every workload)",
                 "worst %s (%s)" % (_x(worst_m[0]), worst_m[1]), verdict(le(worst_m[0], 1.5))))
    limits = [("churn-1t", 3.0), ("cpp", 2.0), ("sqlite3", 2.0), ("python3", 2.0),
              ("python3-malloc", 2.0), ("cc1plus", 2.0), ("shell", 2.0)]
    for w, lim in limits:
        a = r(w, "hl-full")
        rows.append(("full tracking <= %.0fx glibc on %s" % (lim, w), _x(a), verdict(le(a, lim))))
    a, b = r("churn-2t", "hl-full"), r("churn-1t", "hl-full")
    rows.append(("full tracking: 2-thread ratio <= 1-thread ratio", "%s vs %s" % (_x(a), _x(b)),
                 verdict(le(a, b))))
    if live:
        pb = live["per_block"]
        rows.append(("tracker memory <= 48 B per live block",
                     "%.1f B" % pb if pb is not None else "n/a", verdict(le(pb, 48.0))))
        js = live["json_s"]
        rows.append(("exit report (JSON) for %s live blocks < 1 s" % format(live["n"], ","),
                     "%.2f s" % js if js is not None else "n/a", verdict(le(js, 1.0))))
    return rows


def scaling_note(results, configs):
    """The 2-thread target is relative to plain glibc, whose cross-thread frees are slow; the
    absolute scaling (same total operations on 2 threads vs 1) is shown beside it."""
    if "churn-1t" not in results or "churn-2t" not in results:
        return []
    parts = []
    for c in configs:
        one = [r.wall for r in results["churn-1t"][c] if r and r.ok]
        two = [r.wall for r in results["churn-2t"][c] if r and r.ok]
        if one and two:
            parts.append("%s %.2f" % (c, statistics.median(two) / statistics.median(one)))
    return ["", "Wall time of churn-2t over churn-1t (same total operations; 0.5 would be "
            "perfect scaling on 2 cores, above 1 the second thread costs more than it brings): "
            + ", ".join(parts) + "."]


def quarantine_note(results):
    """What part of the full-tracking overhead the double-free quarantine accounts for."""
    shares = []
    for w in results:
        if "hl-full-q0" not in results[w] or "hl-pools" not in results[w]:
            continue
        cells = {c: paired_ratios(results, w, c) for c in ("hl-pools", "hl-full", "hl-full-q0")}
        if all(cells.values()) and cells["hl-full"][0] > cells["hl-pools"][0] * 1.05:
            share = (cells["hl-full"][0] - cells["hl-full-q0"][0]) / (
                cells["hl-full"][0] - cells["hl-pools"][0])
            shares.append("%s %.0f%%" % (w, 100 * share))
    if not shares:
        return []
    return ["", "Share of the full-tracking overhead that the double-free quarantine (default "
            "quarantine_mb=16) accounts for, (full - full with quarantine_mb=0) / (full - "
            "track=0), where full tracking costs more than 5%: " + ", ".join(shares) + "."]


def _x(v):
    return "n/a" if v is None else "%.2fx" % v


def machine_info():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    versions = {}
    for pkg in ("libc6", "libmimalloc2.0", "libjemalloc2", "libtcmalloc-minimal4", "heaptrack",
                "libunwind8", "sqlite3", "python3"):
        try:
            versions[pkg] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                                           capture_output=True, text=True).stdout or "?"
        except OSError:
            versions[pkg] = "?"
    gxx = subprocess.run(["g++", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    return dict(nproc=os.cpu_count(), cpu=cpu, mem_gib=mem_kb / 1024 / 1024,
                kernel=platform.release(), gxx=gxx, versions=versions)


def git_commit():
    def git(*a):
        return subprocess.run(["git", "-C", ROOT] + list(a), capture_output=True,
                              text=True).stdout.strip()
    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return commit + (" (with uncommitted changes)" if dirty else "")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def memory_latency(s):
    """The machine's memory latency now (mem_latency.c): one thread over 8 MiB (in the last-level
    cache when the host leaves it that much) and over 64 MiB, two threads over 8 MiB each."""
    prog = os.path.join(s.bench_bin, "mem_latency")
    if not os.path.exists(prog):
        return "n/a"
    out = []
    for args in (("1", "8"), ("2", "8"), ("1", "64")):
        r = subprocess.run([prog, *args], capture_output=True, text=True)
        ns = r.stdout.split(":")[-1].replace(" a step", "").strip() if r.returncode == 0 else "?"
        out.append("%s thread%s x %s MiB %s" % (args[0], "" if args[0] == "1" else "s", args[1], ns))
    return ", ".join(out)


def write_report(s, workloads, configs, results, live, micro_rows, meta):
    a = s.args
    lines = ["# heapledger benchmark results (issue 4)", ""]
    lines += ["Written by `scripts/bench.sh`; rerun it to refresh. Do not edit by hand.", ""]
    lines += ["- command: `%s`" % meta["command"],
              "- date: %s" % meta["date"],
              "- commit: %s" % meta["commit"],
              "- machine: %d CPUs, %s, %.1f GiB RAM, Linux %s, g++ %s" % (
                  meta["machine"]["nproc"], meta["machine"]["cpu"], meta["machine"]["mem_gib"],
                  meta["machine"]["kernel"], meta["machine"]["gxx"]),
              "- packages: " + ", ".join("%s %s" % kv for kv in meta["machine"]["versions"].items()),
              "- load average (1/5/15 min) at start: %s; at end: %s" % (meta["load_start"],
                                                                         meta["load_end"]),
              "- memory latency (`tests/bench/mem_latency`, a pointer chase) at start: %s; at "
              "end: %s" % (meta["latency_start"], meta["latency_end"]),
              "- repetitions: %d per configuration (heaptrack: %d)%s; total time %.0f s" % (
                  a.reps, min(a.heaptrack_reps, a.reps), " — QUICK smoke run, smaller inputs"
                  if a.quick else "", meta["elapsed"]),
              ""]
    lines += ["## Whole-process workloads", "",
              "Each cell: median over repetitions of (wall time under the configuration) / (wall "
              "time of plain glibc in the same repetition), and the same median ratio of peak RSS. "
              "The glibc column is the absolute median. heapledger full tracking is default "
              "options with `log=none`.", ""]
    lines += workload_table(results, workloads, configs, a.reps, min(a.heaptrack_reps, a.reps))
    lines += ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % row for row in evaluate_targets(results, workloads, live)]
    lines += scaling_note(results, configs) + quarantine_note(results)
    if workloads:
        lines += ["", "CPU time (user + system of every process of the run), median ratio to "
                  "plain glibc; heaptrack's interpreter runs beside the program on the second core:",
                  ""]
        lines += cpu_table(results, workloads, configs)
    if live:
        lines += ["", "## Tracker memory and exit report, %s live blocks of 32 bytes" % format(live["n"], ","),
                  "",
                  "`live_blocks N exit|_exit` allocates N blocks from four call sites, keeps "
                  "them, prints its VmRSS, then leaves through exit (report runs) or _exit (no "
                  "report). Medians of paired differences over %d repetitions." % a.reps, "",
                  "| measurement | value |", "|---|---|"]
        w, rss = live["wall"], live["rss"]

        def mb(v):
            return "%.1f MB" % (v / 1024) if v else "n/a"

        def sec(v):
            return "%.3f s" % v if v is not None else "n/a"

        lines += ["| VmRSS after allocating: glibc / track=0 / full | %s / %s / %s |" % (
                      mb(rss["glibc"]), mb(rss["pools"]), mb(rss["full-noreport"])),
                  "| tracker memory per live block: (RSS full - RSS track=0) / N | %s |" % (
                      "%.1f bytes" % live["per_block"] if live["per_block"] is not None else "n/a"),
                  "| wall, no report (_exit): glibc / track=0 / full | %s / %s / %s |" % (
                      sec(w["glibc"]), sec(w["pools"]), sec(w["full-noreport"])),
                  "| exit report, JSON (`json=PATH:log=none`) minus no report | %s |" % sec(live["json_s"]),
                  "| exit report, text (`log=PATH`) minus no report | %s |" % sec(live["text_s"]),
                  "| no allocations (`live_blocks 0 exit`), wall: glibc / track=0 / full | "
                  "%s / %s / %s |" % (sec(w["glibc-empty"]), sec(w["pools-empty"]),
                                      sec(w["full-empty"])),
                  "| no allocations, peak RSS: glibc / track=0 / full | %s / %s / %s |" % (
                      mb(live["peak"]["glibc-empty"]), mb(live["peak"]["pools-empty"]),
                      mb(live["peak"]["full-empty"]))]
        if live["json_issue"]:
            lines += ["| JSON report check | **%s** |" % live["json_issue"]]
    if micro_rows:
        lines += ["", "## Microbenchmarks (Google Benchmark, `--benchmark_min_time=%s`)" % a.micro_min_time,
                  "", "Time per iteration (one alloc+free pair, one capture, one intern, one "
                  "insert+erase); `threads:2` runs two threads at once, time per thread.", "",
                  "| binary | benchmark | real ns | cpu ns | note |", "|---|---|---|---|---|"]
        for name, b, note in micro_rows:
            if b is None:
                lines.append("| %s | | | | **%s** |" % (name, note))
            else:
                lines.append("| %s | %s | %.1f | %.1f | %s |" % (
                    name, b["name"], to_ns(b["real_time"], b["time_unit"]),
                    to_ns(b["cpu_time"], b["time_unit"]), note))
    lines += ["", "## Failures", ""]
    if not s.failures:
        lines += ["None: every run exited with status 0."]
    for f in s.failures:
        label, config, r, tail, cmd = f
        lines += ["- **%s / %s: %s** (%s) — `%s`" % (label, config, r.status, r.detail, cmd)]
        if tail.strip():
            lines += ["", "  ```", *["  " + l for l in tail.strip().splitlines()[-12:]], "  ```"]
    lines += ["", "## How it is measured", "",
              "- Every configuration of a workload runs once per repetition, in an order rotated "
              "each repetition, so drift on the machine affects all of them alike; one untimed "
              "warm-up run per workload comes first. Ratios are paired per repetition, then the "
              "median is taken.",
              "- Each run goes through `measure` (tests/bench/measure.c), a small C parent that "
              "sets the configuration's environment in the child only. Wall time: fork to exit "
              "(`wait4`). Peak RSS: the kernel's `ru_maxrss` of the process (about 1 MB of it is "
              "the forked parent's, as with GNU time). heaptrack runs the program beside its "
              "interpreter and compressor, which outlive the heaptrack script: for it, time runs "
              "until every process it started has exited (measure is their subreaper), and peak "
              "RSS is the larger of the biggest single process and the largest sampled sum "
              "(every 50 ms) over the whole process group.",
              "- Preloads: heapledger `%s` with `HEAPLEDGER_OPTIONS=track=0:log=none` or "
              "`log=none`; %s." % (s.lib, "; ".join("%s `%s`" % (k, v[1]) for k, v in PEERS.items())),
              "- heaptrack: `heaptrack -o TMPDIR/run PROG ARGS`, its output deleted after each "
              "run; fewer repetitions (it is 10-20x slower).",
              "- Real programs: `sqlite3 DB '.read SCRIPT'` on a fresh temporary database each run "
              "(script generated by bench.py); `%s tests/bench/py_workload.py ROUNDS`, once with "
              "the default pymalloc (objects up to 512 bytes never reach malloc: few calls) and "
              "once with `PYTHONMALLOC=malloc`, as a memory tool's user runs it (every object "
              "through malloc)." % meta["python"],
              "- Compiler: g++'s cc1plus started as `g++ -O2 -c tests/bench/cpp_objects.cc` starts "
              "it (the command line `g++ -###` shows; output to the temporary directory). Its "
              "syntax trees live in GCC's own garbage-collected pages (mmap), not the heap: the "
              "heap sees ~540,000 allocations, nearly all freed before it exits.",
              "- Shell: `/bin/sh SCRIPT`, a loop of pipelines `sed s/words/w/ FILE | tr a-z A-Z | "
              "sort | uniq -c > /dev/null` over a 200-line file (script and file generated by "
              "bench.py): short processes, as a build or configure script runs them, so what it "
              "measures is each process's start and exit (under heapledger with `log=none`: no "
              "report is written). Every process inherits the preload. Peak RSS is the largest "
              "single process's. heaptrack is not run on it: it traces the process it starts and "
              "none of its children.",
              "- Raw per-run data of this session: `runs.tsv` in the temporary directory (removed "
              "unless --keep-tmp)."]
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--heaptrack-reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 repetition, smaller inputs")
    p.add_argument("--no-micro", action="store_true")
    p.add_argument("--micro-min-time", default="0.2")
    p.add_argument("--only", help="comma-separated workloads (churn-1t,churn-2t,cpp,sqlite3,python3,python3-malloc,cc1plus,shell,live)")
    p.add_argument("--configs", help="comma-separated configurations (glibc always runs)")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--command", help="the command line to record in RESULTS.md")
    p.add_argument("--keep-tmp", action="store_true")
    a = p.parse_args()
    if a.quick:
        a.reps, a.heaptrack_reps = 1, 1
    start = time.time()
    meta = dict(date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                commit=git_commit(), machine=machine_info(), load_start=loadavg(),
                command=a.command or " ".join(sys.argv))
    s = Session(a)
    if not os.path.exists(s.lib):
        sys.exit("bench: %s not found; build first (scripts/bench.sh does)" % s.lib)
    meta["latency_start"] = memory_latency(s)
    s.progress("bench: memory latency %s" % meta["latency_start"])
    configs = list(CONFIGS)
    for name, (pkg, path) in PEERS.items():
        if not os.path.exists(path):
            s.progress("bench: %s missing (install %s); skipped" % (path, pkg))
            configs.remove(name)
    if not shutil.which("heaptrack"):
        s.progress("bench: heaptrack not installed; skipped")
        configs.remove("heaptrack")
    if a.configs:
        keep = set(a.configs.split(",")) | {"glibc"}
        configs = [c for c in configs if c in keep]
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    meta["python"] = python

    only = set(a.only.split(",")) if a.only else None
    workloads = [w for w in make_workloads(s.bench_bin, s.tmp, a.quick, python,
                                           shutil.which("sqlite3") or "/usr/bin/sqlite3")
                 if only is None or w.name in only]
    s.progress("bench: %d workloads x %s, %d reps (heaptrack %d); scratch %s" % (
        len(workloads), ",".join(configs), a.reps, min(a.heaptrack_reps, a.reps), s.tmp))
    results = run_workloads(s, workloads, configs) if workloads else {}
    live = None
    if only is None or "live" in only:
        n = 200_000 if a.quick else 1_000_000
        data = run_live_blocks(s, n)
        live = summarize_live_blocks(data, n)
        live["n"] = n
    micro_rows = [] if a.no_micro else run_micros(s)
    meta["load_end"] = loadavg()
    meta["latency_end"] = memory_latency(s)
    meta["elapsed"] = time.time() - start
    lines = write_report(s, workloads, configs, results, live, micro_rows, meta)
    # The one table (and the targets) on stdout.
    start_i = lines.index("## Whole-process workloads")
    end_i = next((i for i, l in enumerate(lines) if l.startswith("## Tracker memory")
                  or l.startswith("## Microbenchmarks")), len(lines))
    print("\n".join(lines[start_i:end_i]))
    if live:
        print("tracker memory: %s bytes per live block; exit report (JSON) for %s live blocks: %s s" % (
            "%.1f" % live["per_block"] if live["per_block"] is not None else "n/a",
            format(live["n"], ","), "%.3f" % live["json_s"] if live["json_s"] is not None else "n/a"))
    for f in s.failures:
        print("FAILED: %s / %s: %s (%s): %s" % (f[0], f[1], f[2].status, f[2].detail, f[4]))
    print("wrote %s" % a.out)
    s.log.close()
    if a.keep_tmp:
        print("scratch kept: %s" % s.tmp)
    else:
        shutil.rmtree(s.tmp, ignore_errors=True)
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(main())
