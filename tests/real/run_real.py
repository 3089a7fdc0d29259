#!/usr/bin/env python3
"""Real, unmodified programs under the preload: python3, sqlite3, git, perl, g++.

Each runs the same workload plainly and with LD_PRELOAD=libheapledger.so; stdout and exit status
must be identical, and every process (children included, via %p in the JSON path) must leave a
heapledger/1 report that counted allocations. One ctest test per method (real_<name>); a program
that is not installed skips its test.
"""

import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import hl_harness as hl  # noqa: E402

WORKLOADS = os.path.join(HERE, "workloads")

# git must not read the user's or the system's configuration, nor depend on the clock.
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Heap Ledger", "GIT_AUTHOR_EMAIL": "hl@example.invalid",
    "GIT_COMMITTER_NAME": "Heap Ledger", "GIT_COMMITTER_EMAIL": "hl@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+0000",
    "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+0000",
    "GIT_PAGER": "cat", "PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "TZ": "UTC",
}
GIT_CONFIG = ["-c", "init.defaultBranch=main", "-c", "gc.auto=0", "-c", "maintenance.auto=false",
              "-c", "core.autocrlf=false", "-c", "user.name=Heap Ledger",
              "-c", "user.email=hl@example.invalid"]


class Real(hl.HeapledgerTest):

    def setUp(self):
        super().setUp()
        os.makedirs(self.path("home"))

    def tool(self, *candidates):
        for c in candidates:
            if os.path.isabs(c) and os.access(c, os.X_OK):
                return c
            if not os.path.isabs(c) and shutil.which(c):
                return shutil.which(c)
        self.skipTest(f"{candidates[0]} is not installed")

    def compare(self, argv, tag, cwd_plain=None, cwd_traced=None, extra_env=None, stdin_bytes=None):
        """Runs argv plainly and preloaded (reports in tmp/<tag>/); returns the reports as a list,
        the process's own report first. stdout and exit status must match."""
        reports_dir = self.path(tag)
        os.makedirs(reports_dir)
        env = {"HOME": self.path("home")}
        env.update(extra_env or {})
        plain = hl.run_plain(argv, extra_env=env, cwd=cwd_plain, stdin_bytes=stdin_bytes)
        traced = hl.run_preloaded(argv, f"json={reports_dir}/report.%p.json:log=none",
                                  extra_env=env, cwd=cwd_traced, stdin_bytes=stdin_bytes)
        self.assertSameBehaviour(plain, traced)
        reports = [r for _, r in hl.reports_in(reports_dir)]
        own = [r for r in reports if r.get("process", {}).get("pid") == traced.pid]
        self.assertEqual(len(own), 1, f"no report of pid {traced.pid} among "
                         f"{sorted(os.listdir(reports_dir))}\n{traced.describe()}")
        for r in reports:
            self.assertValidReport(r)
        self.assertGreater(own[0]["summary"].get("allocations", 0), 0, own[0].get("summary"))
        return own + [r for r in reports if r is not own[0]], plain

    def test_python(self):
        python = self.tool("/usr/bin/python3", sys.executable)
        argv = [python, "-I", "-B", os.path.join(WORKLOADS, "workload.py")]
        self.compare(argv, "python", extra_env={"PYTHONHASHSEED": "0"})

    def test_openssl(self):
        """Programs linked with OpenSSL: symbolizing their stacks at exit, after OpenSSL's own
        clean-up, went through libdw's debuginfod fallback, which initialised libcurl, libssh2 and
        OpenSSL's engines again: a crash in every one of them (a user's trial; the buffered
        output was lost too). The symbolizer searches for debug information locally only."""
        openssl = self.tool("openssl")
        data = self.path("data.txt")
        with open(data, "w", encoding="utf-8") as f:
            f.write("heapledger\n" * 1000)
        self.compare([openssl, "version"], "openssl_version")
        self.compare([openssl, "sha256", data], "openssl_sha256")
        python = self.tool("/usr/bin/python3", sys.executable)
        self.compare([python, "-I", "-B", "-c",
                      "import ssl; ssl.create_default_context(); print('context made')"], "python_ssl")

    def test_sqlite(self):
        sqlite = self.tool("sqlite3")
        with open(os.path.join(WORKLOADS, "workload.sql"), "rb") as f:
            sql = f.read()
        # Same argv for both runs: the database path is relative to each run's directory.
        os.makedirs(self.path("p"))
        os.makedirs(self.path("t"))
        _, plain = self.compare([sqlite, "-batch", "items.db"], "sqlite",
                                      cwd_plain=self.path("p"), cwd_traced=self.path("t"),
                                      stdin_bytes=sql)
        self.assertIn("1000|625625.0|625.625|item-1|item-999", plain.stdout)

    def test_git(self):
        git = self.tool("git")
        repos = {mode: self.path(mode, "repo") for mode in ("plain", "traced")}
        for repo in repos.values():
            os.makedirs(repo)

        def write(name, text):
            for repo in repos.values():
                with open(os.path.join(repo, name), "w", encoding="utf-8") as f:
                    f.write(text)

        def both(tag, *args):
            return self.compare([git, *GIT_CONFIG, *args], tag, cwd_plain=repos["plain"],
                                cwd_traced=repos["traced"], extra_env=GIT_ENV)

        both("init", "init", "-q", ".")
        write("a.txt", "".join(f"line {i}\n" for i in range(200)))
        write("b.txt", "hello\n")
        both("add1", "add", ".")
        both("commit1", "commit", "-q", "-m", "initial import")
        write("a.txt", "".join(f"line {i * 2}\n" for i in range(200)))
        write("c.txt", "a new file\n")
        both("diff", "diff")
        both("add2", "add", "-A")
        both("commit2", "commit", "-q", "-m", "second commit")
        _, log = both("log", "log", "--stat", "--format=%H %an %s")
        self.assertIn("second commit", log.stdout)
        both("diffstat", "diff", "--stat", "HEAD~1", "HEAD")
        both("show", "show", "HEAD:c.txt")
        both("status", "status", "--short")

    def test_perl(self):
        perl = self.tool("perl")
        argv = [perl, os.path.join(WORKLOADS, "workload.pl")]
        self.compare(argv, "perl", extra_env={"PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0"})

    def test_unwind_verified(self):
        """Every stack the fast unwinder takes in python3, sqlite3, perl and g++ (and the compiler,
        assembler and linker it starts) is the one libunwind finds (unwind=verify)."""
        with open(os.path.join(WORKLOADS, "workload.sql"), "rb") as f:
            sql = f.read()
        runs = [
            ([self.tool("/usr/bin/python3", sys.executable), "-I", "-B",
              os.path.join(WORKLOADS, "workload.py")], None),
            ([self.tool("sqlite3"), "-batch", ":memory:"], sql),
            ([self.tool("perl"), os.path.join(WORKLOADS, "workload.pl")], None),
            ([self.tool("g++"), "-O1", "-o", self.path("hello"), os.path.join(WORKLOADS, "hello.cc")],
             None),
        ]
        for argv, stdin_bytes in runs:
            traced = hl.run_preloaded(argv, "unwind=verify:log=none", stdin_bytes=stdin_bytes,
                                      extra_env={"HOME": self.path("home"), "TMPDIR": self.tmp})
            self.assertEqual(traced.returncode, 0, traced.describe())
            lines = [l for l in traced.stderr.splitlines() if "unwind=verify" in l]
            self.assertTrue(lines, traced.describe())
            for line in lines:
                m = re.search(r"verify: (\d+) stacks taken by CFI rules, (\d+) differed", line)
                self.assertIsNotNone(m, line)
                self.assertGreater(int(m.group(1)), 0, line)
                self.assertEqual(int(m.group(2)), 0, f"{argv[0]}: {line}")

    def test_gxx(self):
        """g++ spawns cc1plus, as and collect2/ld: each writes its own report; the binary works."""
        gxx = self.tool("g++")
        source = os.path.join(WORKLOADS, "hello.cc")
        for d in ("p", "t"):
            os.makedirs(self.path(d))
        argv = [gxx, "-O1", "-o", "hello", source]
        reports, _ = self.compare(argv, "gxx", cwd_plain=self.path("p"), cwd_traced=self.path("t"),
                                  extra_env={"TMPDIR": self.tmp})
        # x86_64-linux-gnu-ld.bfd -> ld, x86_64-linux-gnu-as -> as
        exes = [os.path.basename(r["process"].get("exe", "")) for r in reports]
        tools = {e.rsplit("-", 1)[-1].split(".")[0] for e in exes}
        for child in ("cc1plus", "as", "collect2", "ld"):
            self.assertIn(child, tools, f"no report from {child}: {exes}")
        cc1 = [r for r in reports if "cc1plus" in r["process"].get("exe", "")]
        self.assertGreater(cc1[0]["summary"].get("allocations", 0), 0)
        built_plain = hl.run_plain([self.path("p", "hello")])
        built_traced = hl.run_plain([self.path("t", "hello")])
        self.assertEqual(built_plain.returncode, 0, built_plain.describe())
        self.assertSameBehaviour(built_plain, built_traced)


if __name__ == "__main__":
    sys.exit(hl.main(Real, __doc__))
