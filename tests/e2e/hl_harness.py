"""Shared helpers for the end-to-end and real-program tests (stdlib only).

Runs a program plainly, under LD_PRELOAD, or under `heapledger run`, and queries the JSON reports
it leaves. Leak assertions look at the entries attributed to one function (stack[0].function),
never at the totals, which also count the C and C++ runtimes' one-off allocations.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

SCHEMA = "heapledger/1"
SKIP_EXIT_CODE = 77  # ctest's SKIP_RETURN_CODE for these tests

# Paths of the build outputs, set by main() from the command line.
LIB = None
CLI = None
BINDIR = None
DEMO = None  # the demo lives in bin/, next to the CLI, where scripts/run.sh runs it


class Result:
    """One finished process: its pid, exit status and captured output."""

    def __init__(self, argv, pid, returncode, stdout, stderr):
        self.argv = argv
        self.pid = pid
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def describe(self):
        tail = self.stderr[-3000:]
        return (f"command {self.argv!r}: pid {self.pid}, exit {self.returncode}\n"
                f"--- stderr (tail) ---\n{tail}")


def clean_env(extra=None):
    """The test's environment without any heapledger settings inherited from the caller."""
    env = dict(os.environ)
    for key in ("LD_PRELOAD", "HEAPLEDGER_OPTIONS"):
        env.pop(key, None)
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


def run(argv, env=None, cwd=None, stdin_bytes=None, timeout=100):
    """Runs argv to completion; output is decoded leniently so binary noise cannot crash a test."""
    stdin = subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL
    # In a process group of its own, so that a timeout ends its children too: one left running
    # would hold the output pipes open, and the wait for them would never end.
    proc = subprocess.Popen(argv, env=env if env is not None else clean_env(), cwd=cwd,
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin_bytes, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # the whole group ended just now
            pass
        out, err = proc.communicate()
        raise AssertionError(f"timed out after {timeout}s: {argv!r}\n"
                             f"stderr tail: {err.decode(errors='replace')[-2000:]}")
    return Result(argv, proc.pid, proc.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"))


def run_plain(argv, extra_env=None, **kw):
    return run(argv, env=clean_env(extra_env), **kw)


def preload_env(options=None, extra_env=None):
    env = clean_env(extra_env)
    env["LD_PRELOAD"] = LIB
    if options is not None:
        env["HEAPLEDGER_OPTIONS"] = options
    return env


def run_preloaded(argv, options=None, extra_env=None, **kw):
    """Runs argv with LD_PRELOAD=libheapledger.so and HEAPLEDGER_OPTIONS=options (unset if None)."""
    return run(argv, env=preload_env(options, extra_env), **kw)


def run_cli(cli_args, argv, extra_env=None, **kw):
    """`heapledger run CLI_ARGS -- ARGV`."""
    return run([CLI, "run", *cli_args, "--", *argv], env=clean_env(extra_env), **kw)


def load_report(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise AssertionError(f"no JSON report at {path}: {e}")
    try:
        return json.loads(text)
    except ValueError as e:
        raise AssertionError(f"report {path} is not valid JSON ({e}); starts with {text[:300]!r}")


def reports_in(directory, prefix="report."):
    """Every JSON report in directory whose name starts with prefix, as (path, report)."""
    names = sorted(n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(".json"))
    return [(os.path.join(directory, n), load_report(os.path.join(directory, n))) for n in names]


def find_json_document(text):
    """The first heapledger JSON report embedded in free text (e.g. stderr), or None."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            doc, _ = decoder.raw_decode(text, start)
            if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
                return doc
        except ValueError:
            pass
        start = text.find("{", start + 1)
    return None


def base_name(function):
    """`ns::f(int) const` -> `ns::f`: what a C++ test matches without spelling the arguments."""
    if function is None:
        return None
    paren = function.find("(")
    return function[:paren] if paren > 0 else function


def function_matches(frame, function):
    name = frame.get("function")
    return name is not None and (name == function or base_name(name) == function)


def same_file(a, b):
    return a is not None and b is not None and os.path.realpath(a) == os.path.realpath(b)


def leaks_at(report, function):
    """Leak entries whose innermost frame (the caller of the allocation function) is `function`."""
    return [e for e in report.get("leaks", []) if e.get("stack") and
            function_matches(e["stack"][0], function)]


def describe_leaks(report, limit=25):
    """A compact listing of a report's leak entries, for failure messages."""
    lines = []
    for e in report.get("leaks", [])[:limit]:
        stack = e.get("stack") or []
        frames = " <- ".join(
            f"{f.get('function') or '?'} [{os.path.basename(f.get('module') or '?')}]"
            for f in stack[:4])
        lines.append(f"  {e.get('bytes')} B / {e.get('blocks')} blocks ({e.get('kind')}): {frames}")
    more = len(report.get("leaks", [])) - limit
    if more > 0:
        lines.append(f"  ... {more} more")
    return "\n".join(lines) if lines else "  (no leak entries)"


class HeapledgerTest(unittest.TestCase):
    """Base class: a private temporary directory per test and report-level assertions."""

    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=f"hl-{self._testMethodName}-")
        if not os.environ.get("HEAPLEDGER_KEEP_TMP"):
            self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def program(self, name):
        """Absolute path of a test program; fails (not skips) when it was not built."""
        path = DEMO if name == "demo" and DEMO else os.path.join(BINDIR, name)
        self.assertTrue(os.access(path, os.X_OK), f"test program {path} was not built")
        return path

    def traced(self, name, *args, options="", **kw):
        """Runs a program plainly and preloaded (JSON to a file); returns (plain, traced, report).

        Asserts that stdout and exit status are unchanged and that the report is the program's.
        """
        argv = [self.program(name), *args]
        plain = run_plain(argv, **kw)
        json_path = self.path("report.json")
        opts = f"json={json_path}" + (f":{options}" if options else "")
        traced = run_preloaded(argv, opts, **kw)
        self.assertSameBehaviour(plain, traced)
        report = load_report(json_path)
        self.assertValidReport(report, pid=traced.pid)
        return plain, traced, report

    def assertSameBehaviour(self, plain, traced):
        """stdout and exit status are the same with and without the library."""
        self.assertEqual(plain.returncode, traced.returncode,
                         f"exit status changed under heapledger\n{traced.describe()}")
        self.assertEqual(plain.stdout, traced.stdout,
                         f"stdout changed under heapledger\n{traced.describe()}")

    def assertValidReport(self, report, pid=None):
        self.assertEqual(report.get("schema"), SCHEMA, f"bad schema field: {str(report)[:300]}")
        for key in ("process", "summary", "leaks"):
            self.assertIn(key, report, f"report has no '{key}'")
        self.assertIsInstance(report["leaks"], list)
        if pid is not None:
            self.assertEqual(report["process"].get("pid"), pid,
                             "process.pid is not the program's pid")
        # Every time within the run, in order: a library constructor's free before heapledger's
        # start once stamped a point with the machine's uptime (a user trial's curl --version).
        duration = report["process"].get("duration_ms")
        times = [p["t_ms"] for p in report.get("timeline", [])]
        self.assertEqual(times, sorted(times), f"timeline not in time order: {times[:8]}")
        if duration is not None:
            forked = report["process"].get("forked_ms")
            if forked is not None:
                self.assertTrue(0 <= forked <= duration, f"forked at {forked} ms of {duration} ms")
            late = [t for t in times if t > duration]
            self.assertEqual(late, [], f"timeline points after the run's {duration} ms")
            for key in ("peak_time_ms",):
                self.assertLessEqual(report["summary"].get(key, 0), duration, key)

    def assertLeak(self, report, function, nbytes, nblocks, kind=None):
        """The leak entries at `function` (of `kind`, if given) sum to exactly nbytes in nblocks."""
        entries = [e for e in leaks_at(report, function) if kind is None or e.get("kind") == kind]
        listing = describe_leaks(report)
        if not entries:
            self.fail(f"no {kind or 'leak'} entry with stack[0] = {function}; leaks:\n{listing}")
        got = (sum(e["bytes"] for e in entries), sum(e["blocks"] for e in entries))
        self.assertEqual(got, (nbytes, nblocks),
                         f"leak at {function}: (bytes, blocks) = {got}, expected "
                         f"{(nbytes, nblocks)}; leaks:\n{listing}")
        return entries

    def assertNoLeakAt(self, report, *functions):
        for function in functions:
            if leaks_at(report, function):
                self.fail(f"freed memory reported as leaked at {function}:\n"
                          f"{describe_leaks(report)}")

    def assertNoLeakFrameNamed(self, report, function):
        """No leak entry has `function` anywhere in its stack."""
        for e in report.get("leaks", []):
            for frame in e.get("stack") or []:
                if function_matches(frame, function):
                    self.fail(f"a leak entry has {function} in its stack:\n"
                              f"{describe_leaks(report)}")

    def assertNoOwnLeaks(self, report, program, innermost_only=False):
        """No leak entry (other than 'reachable' runtime memory) runs through the program's module.

        With innermost_only, only stack[0] is looked at: the program's own calls to the allocator.
        """
        own = []
        for e in report.get("leaks", []):
            if e.get("kind") == "reachable":
                continue
            stack = e.get("stack") or []
            frames = stack[:1] if innermost_only else stack
            if any(same_file(f.get("module"), program) for f in frames):
                own.append(e)
        if own:
            self.fail(f"{len(own)} leak entries run through {program}:\n"
                      f"{describe_leaks({'leaks': own})}")


def main(test_class, description):
    """Command line: --lib L --cli C --bindir D NAME|--list. Exit 0 pass, 1 fail, 77 skipped."""
    global LIB, CLI, BINDIR, DEMO
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--lib", help="path of libheapledger.so")
    parser.add_argument("--cli", help="path of the heapledger executable")
    parser.add_argument("--bindir", help="directory of the test programs")
    parser.add_argument("--demo", help="path of the demo program (default: BINDIR/demo)")
    parser.add_argument("--list", action="store_true", help="print the test names and exit")
    parser.add_argument("names", nargs="*", help="tests to run (default: all)")
    args = parser.parse_args()
    loader = unittest.TestLoader()
    all_names = [n[len("test_"):] for n in loader.getTestCaseNames(test_class)]
    if args.list:
        print("\n".join(all_names))
        return 0
    LIB = os.path.abspath(args.lib) if args.lib else None
    CLI = os.path.abspath(args.cli) if args.cli else None
    BINDIR = os.path.abspath(args.bindir) if args.bindir else None
    DEMO = os.path.abspath(args.demo) if args.demo else None
    names = args.names or all_names
    unknown = [n for n in names if n not in all_names]
    if unknown:
        parser.error(f"unknown tests: {', '.join(unknown)}")
    suite = unittest.TestSuite(test_class(f"test_{n}") for n in names)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.skipped and len(result.skipped) == result.testsRun:
        return SKIP_EXIT_CODE
    return 0
