#!/usr/bin/env python3
"""What a short process costs under each configuration, measured interleaved.

    tests/bench/per_process.py ROUNDS 'LABEL=[VAR=VALUE ...] COMMAND ARGS' ...

Each round runs every command once, in a shuffled order (so that a machine that slows down or
speeds up part way through weighs on all of them alike), started with posix_spawn (no fork of
this interpreter to copy) and its stdout and stderr sent to /dev/null. Prints per label the
median and mean wall time, the mean CPU time (user + system, from wait4) and the median of minor
page faults, in milliseconds. hyperfine runs one command's runs together, so a drift of the
machine (this VM's come and go by the minute) lands on one command only.

Example (what tracking costs a sed, with no report and with one):
    L=build/lib/libheapledger.so
    tests/bench/per_process.py 300 "plain=sed s/a/b/ FILE" \\
        "none=HEAPLEDGER_OPTIONS=log=none LD_PRELOAD=$L sed s/a/b/ FILE" \\
        "report=LD_PRELOAD=$L sed s/a/b/ FILE"
"""
import os
import random
import shlex
import statistics
import sys
import time


def parse(spec):
    label, command = spec.split("=", 1)
    words = shlex.split(command)
    env = dict(os.environ)
    while words and "=" in words[0] and not words[0].startswith("/"):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    if not words:
        sys.exit("per_process.py: no command for %s" % label)
    return label, words, env


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    specs = [parse(s) for s in sys.argv[2:]]
    runs = {label: [] for label, _, _ in specs}
    devnull = os.open(os.devnull, os.O_WRONLY)
    quiet = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    for _ in range(rounds):
        order = list(specs)
        random.shuffle(order)
        for label, words, env in order:
            start = time.perf_counter()
            pid = os.posix_spawnp(words[0], words, env, file_actions=quiet)
            _, status, usage = os.wait4(pid, 0)
            wall = time.perf_counter() - start
            if status != 0:
                print("%s: exit status %#x" % (label, status), file=sys.stderr)
            runs[label].append((wall * 1e3, (usage.ru_utime + usage.ru_stime) * 1e3, usage.ru_minflt))
    for label, r in runs.items():
        wall = [x[0] for x in r]
        print("%-12s wall median %.3f ms  mean %.3f ms  cpu mean %.3f ms  page faults %d" %
              (label, statistics.median(wall), statistics.mean(wall),
               statistics.mean(x[1] for x in r), statistics.median(x[2] for x in r)))


if __name__ == "__main__":
    main()
