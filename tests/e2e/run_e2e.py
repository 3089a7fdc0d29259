#!/usr/bin/env python3
"""End-to-end tests: preload libheapledger.so into the programs of tests/programs and check the
reports with exact numbers. One ctest test per method (e2e_<name>); run one by hand with
  run_e2e.py --lib build/lib/libheapledger.so --cli build/bin/heapledger \
             --bindir build/tests/programs leak_malloc
"""

import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hl_harness as hl  # noqa: E402

STRESS_TIMEOUT = 280  # seconds; the ctest TIMEOUT of e2e_stress_threads is 300


class E2E(hl.HeapledgerTest):

    # --- helpers -------------------------------------------------------------------------------

    def leak_site_line(self, source, tag):
        """The line of `source` carrying the comment `HL_LEAK_SITE tag`."""
        path = os.path.join(os.path.dirname(__file__), "..", "programs", source)
        with open(path, encoding="utf-8") as f:
            for number, text in enumerate(f, 1):
                if f"HL_LEAK_SITE {tag}" in text:
                    return number
        self.fail(f"no HL_LEAK_SITE {tag} in {path}")

    def fork_reports(self, directory=None):
        """The two reports of a forking program in `directory` (self.tmp), as (parent, child),
        checked for pid lineage."""
        directory = directory or self.tmp
        reports = [r for _, r in hl.reports_in(directory)]
        self.assertEqual(len(reports), 2, f"expected a parent and a child report, got "
                         f"{sorted(os.listdir(directory))}")
        for r in reports:
            self.assertValidReport(r)
        a, b = reports
        parent, child = (a, b) if b["process"]["ppid"] == a["process"]["pid"] else (b, a)
        self.assertNotEqual(parent["process"]["pid"], child["process"]["pid"])
        self.assertEqual(child["process"]["ppid"], parent["process"]["pid"],
                         "neither report is the child of the other")
        return parent, child

    def check_fork_leaks(self, parent, child):
        self.assertLeak(parent, "parent_leak", 111, 1)
        self.assertNoLeakAt(parent, "child_leak", "churn")
        self.assertLeak(child, "child_leak", 222, 1)
        self.assertNoLeakAt(child, "parent_leak", "churn")

    # --- one program each: exact leaks, unchanged stdout and exit status ------------------------

    def test_leak_malloc(self):
        _, _, report = self.traced("leak_malloc")
        entries = self.assertLeak(report, "leak_malloc", 300, 3)
        self.assertLeak(report, "leak_other", 50, 1)
        self.assertNoLeakAt(report, "churn", "main")
        for e in entries:  # unwinding goes past the first frame
            self.assertGreaterEqual(len(e["stack"]), 2)
            self.assertEqual(e["stack"][1].get("function"), "main")
            self.assertTrue(hl.same_file(e["stack"][0].get("module"), self.program("leak_malloc")),
                            f"module of leak_malloc frame: {e['stack'][0].get('module')}")

    def test_leak_large_blocks(self):
        """Blocks over 32 KiB (a mapping each) from malloc, calloc, realloc and posix_memalign,
        lost: definite, with exact counts, and a large buffer whose only pointer was in a lost
        node indirect. The scan's own table of exclusions, which holds every large block's
        address, was mapped after it had listed heapledger's memory, so it counted as a root:
        every large block came out "still reachable", whatever it was (a user's trial)."""
        _, _, report = self.traced("leak_large")
        self.assertLeak(report, "large_malloc_site", 280000, 7, kind="definite")
        self.assertLeak(report, "large_calloc_site", 200000, 1, kind="definite")
        self.assertLeak(report, "large_realloc_site", 100000, 1, kind="definite")
        self.assertLeak(report, "large_memalign_site", 50000, 1, kind="definite")
        self.assertLeak(report, "node_with_large_buffer_site", 24, 1, kind="definite")
        self.assertLeak(report, "large_buffer_site", 200000, 1, kind="indirect")
        self.assertEqual((report["summary"]["leaked_bytes"], report["summary"]["leaked_blocks"]),
                         (830024, 12))
        # main's own: the block a global holds (the one it freed is not listed)
        entries = self.assertLeak(report, "main", 65536, 1)
        self.assertEqual(entries[0]["kind"], "reachable")

    def test_debug_information_in_a_separate_file(self):
        """A program whose debug information objcopy moved to a file of its own, named by its
        .gnu_debuglink: file and line come from there (the symbolizer's own search, which
        leaves out libdw's debuginfod fallback: see real_openssl)."""
        _, _, report = self.traced("leak_debuglink")
        entries = self.assertLeak(report, "leak_malloc", 300, 3)
        for e in entries:
            frame = e["stack"][0]
            self.assertTrue((frame.get("file") or "").endswith("leak_malloc.c"), frame)
            self.assertIsInstance(frame.get("line"), int, frame)

    def test_dropped_blocks_definite(self):
        """Blocks whose last pointer was dropped are never classified as reachable or possible."""
        for name, functions in (("leak_malloc", ("leak_malloc", "leak_other")),
                                ("leak_new", ("leak_new", "leak_new_array", "app::leak_named"))):
            with self.subTest(program=name):
                _, _, report = self.traced(name)
                for function in functions:
                    for e in hl.leaks_at(report, function):
                        self.assertIn(e["kind"], ("unknown", "definite"),
                                      f"{function}: {hl.describe_leaks(report)}")

    def test_leak_kinds(self):
        """One block of each kind, as valgrind classifies them (see leak_kinds.c)."""
        _, _, report = self.traced("leak_kinds")
        self.assertLeak(report, "new_head", 40, 1, kind="definite")
        self.assertLeak(report, "new_node", 120, 3, kind="indirect")
        self.assertLeak(report, "keep_global", 64, 1, kind="reachable")
        self.assertLeak(report, "keep_interior", 96, 1, kind="possible")
        s = report["summary"]
        self.assertEqual((s["leaked_bytes"], s["leaked_blocks"]), (160, 4),
                         "leaked = definite + indirect")
        self.assertEqual(s["possible_bytes"], 96)
        self.assertGreaterEqual(s["reachable_bytes"], 64)

    def test_leak_new(self):
        _, _, report = self.traced("leak_new")
        self.assertLeak(report, "leak_new", 96, 2)
        self.assertLeak(report, "leak_new_array", 100, 1)
        entries = self.assertLeak(report, "app::leak_named", 48, 1)
        self.assertEqual(entries[0]["stack"][0]["function"], "app::leak_named(int)",
                         "C++ names are demangled with their parameters")
        self.assertNoLeakAt(report, "churn_new")

    def test_leak_aligned(self):
        plain, _, report = self.traced("leak_aligned")
        self.assertEqual(plain.returncode, 0, plain.describe())
        self.assertLeak(report, "leak_posix_memalign", 200, 1)
        self.assertLeak(report, "leak_aligned_alloc", 4096, 1)
        self.assertLeak(report, "leak_memalign", 300, 1)
        self.assertLeak(report, "leak_valloc", 1000, 1)
        self.assertNoLeakAt(report, "churn_aligned")

    def test_leak_aligned_new(self):
        plain, _, report = self.traced("leak_aligned_new")
        self.assertEqual(plain.returncode, 0, plain.describe())
        self.assertLeak(report, "leak_aligned_new", 192, 1)
        self.assertLeak(report, "leak_aligned_new_array", 512, 1)
        self.assertNoLeakAt(report, "churn_aligned_new")

    def test_leak_realloc(self):
        plain, _, report = self.traced("leak_realloc")
        self.assertEqual(plain.returncode, 0, plain.describe())
        # Only the final size counts, at the call site of the last realloc.
        self.assertLeak(report, "shrink_block", 3000, 1)
        self.assertNoLeakAt(report, "start_block", "grow_block", "free_realloc", "leak_realloc")

    def test_a_signal_handlers_stack_ends_at_the_trampoline(self):
        # The default unwinder stops at the signal trampoline: walking on through the kernel's
        # saved registers went to libunwind, slower than a 20 us timer when the signal had
        # landed in the dynamic linker's lazy binding (signal_thread_exit hung under load).
        _, _, report = self.traced("leak_in_signal_handler")
        (leak,) = self.assertLeak(report, "leak_in_handler", 77, 1)
        self.assertEqual(len(leak["stack"]), 2, leak["stack"])  # the handler, the trampoline
        self.assertIn("libc", leak["stack"][1].get("module", ""), leak["stack"])
        self.assertEqual(leak["stack"][1].get("function"), "<signal handler called>", leak["stack"])
        # unwind=libunwind (and verify) still walks into the interrupted code.
        _, _, report = self.traced("leak_in_signal_handler", options="unwind=libunwind")
        (leak,) = self.assertLeak(report, "leak_in_handler", 77, 1)
        self.assertIn("raise_it", [f.get("function") for f in leak["stack"]], leak["stack"])

    def test_realloc_of_a_split_mapping(self):
        # The kernel would not move the block's mapping in one piece (its middle pages have other
        # advice): realloc returned NULL; it must copy instead, with tracking and pools only.
        for options in ("log=none", "track=0"):
            res = hl.run_preloaded([self.program("realloc_split")], options)
            self.assertEqual((res.returncode, res.stdout), (0, "ok\n"), f"{options}: {res.describe()}")

    def test_descriptor_numbers_are_the_programs(self):
        # libunwind opens a pipe when it starts (it checks addresses through it): it took
        # descriptors 3 and 4, so the program's first open() got 5, a program that closed stdout
        # before starting had the pipe there, and one that closed every descriptor and opened its
        # own files had libunwind read from its input and write memory into its output.
        plain, _, _ = self.traced("fd_numbers", "first")
        self.assertEqual(plain.stdout, "first descriptor: 3\n")
        source = self.path("in.txt")
        with open(source, "w", encoding="utf-8") as f:
            f.write("ABCDEF\n")
        for options in ("log=none", "log=none:unwind=libunwind"):
            sink = self.path("out.txt")
            res = hl.run_preloaded([self.program("fd_numbers"), "clobber", source, sink], options)
            self.assertEqual((res.returncode, res.stdout), (0, "descriptors 3 4, read 7, wrote 4\n"),
                             (options, res.describe()))
            with open(sink, "rb") as f:
                self.assertEqual(f.read(), b"OUT\n", options)
        # Under a descriptor limit too low to move the pipe out of the way, libunwind gets none:
        # it kept the numbers it was refused (the program's 3 and 4) as its pipe.
        sink = self.path("out-low.txt")
        res = hl.run(["sh", "-c", 'ulimit -n 16 && exec "$0" clobber "$1" "$2"', self.program("fd_numbers"),
                      source, sink], env=hl.preload_env("log=none"))
        self.assertEqual((res.returncode, res.stdout), (0, "descriptors 3 4, read 7, wrote 4\n"), res.describe())
        with open(sink, "rb") as f:
            self.assertEqual(f.read(), b"OUT\n")
        closed = ["sh", "-c", "exec /bin/echo hi >&-"]
        plain = hl.run_plain(closed)
        res = hl.run(closed, env=hl.preload_env("log=none"))
        self.assertEqual(plain.returncode, 1, plain.describe())
        self.assertEqual(res.returncode, 1, res.describe())

    def test_leak_calloc(self):
        plain, _, report = self.traced("leak_calloc")
        self.assertEqual(plain.returncode, 0, plain.describe())
        self.assertLeak(report, "leak_calloc", 300, 1)
        self.assertNoLeakAt(report, "dirty_free", "churn_calloc")

    def test_leak_thread(self):
        _, _, report = self.traced("leak_thread")
        for e in self.assertLeak(report, "thread_leak", 369, 3):
            self.assertEqual(e["stack"][1].get("function"), "thread_main")
        self.assertNoLeakAt(report, "thread_churn")

    def test_leak_dlopen(self):
        plain, _, report = self.traced("leak_dlopen")
        self.assertIn("still loaded: no", plain.stdout, "the plugin must really be unloaded")
        entries = self.assertLeak(report, "plugin_leak", 777, 1)
        plugin = self.program("libleaky_plugin.so")
        self.assertTrue(hl.same_file(entries[0]["stack"][0].get("module"), plugin),
                        f"module {entries[0]['stack'][0].get('module')!r} is not {plugin}")
        self.assertNoLeakAt(report, "plugin_churn")

    def test_leak_fork(self):
        argv = [self.program("leak_fork")]
        plain = hl.run_plain(argv)
        traced = hl.run_preloaded(argv, f"json={self.path('report.%p.json')}")
        self.assertSameBehaviour(plain, traced)
        parent, child = self.fork_reports()
        self.assertEqual(parent["process"]["pid"], traced.pid)
        self.check_fork_leaks(parent, child)
        # The child's times count from the parent's start, as its inherited blocks' do; it says
        # when it was forked (a PostgreSQL backend that lived 0.07 s said 3.38 s and no more).
        self.assertIsNone(parent["process"]["forked_ms"])
        forked = child["process"]["forked_ms"]
        self.assertGreater(forked, 0)
        self.assertLessEqual(forked, child["process"]["duration_ms"])
        self.assertLessEqual(child["process"]["duration_ms"], parent["process"]["duration_ms"])
        first_ms = [e["first_ms"] for e in hl.leaks_at(child, "child_leak")]
        self.assertGreaterEqual(min(first_ms), forked)
        child_json = next(path for path, r in hl.reports_in(self.tmp)
                          if r["process"]["pid"] == child["process"]["pid"])
        header = hl.run([hl.CLI, "report", child_json], env=hl.clean_env()).stdout.splitlines()[0]
        self.assertRegex(header, r"\(pid %d, [0-9.]+ m?s, forked at [0-9.]+ m?s\)$" % child["process"]["pid"])

    def test_a_forked_child_lists_only_its_own_reachable_sites(self):
        """fork_reachable: the child's report lists the still-reachable sites it allocated from
        after the fork (hold_shared's, with the block it inherited, and hold_after's), not those
        it only inherited (hold_before's: its parent's report lists them); its summary counts
        them all, and show_reachable=1 lists them all. (A bash `$(...)` subshell listed the
        shell's few hundred reachable sites again: 1 MB of JSON each, a user trial.)"""
        argv = [self.program("fork_reachable")]
        plain = hl.run_plain(argv)
        for options, inherited_listed in (("", False), (":show_reachable=1", True)):
            with self.subTest(options=options):
                directory = self.path(f"show_reachable{int(inherited_listed)}")
                os.mkdir(directory)
                traced = hl.run_preloaded(argv, f"json={directory}/report.%p.json:log=none{options}")
                self.assertSameBehaviour(plain, traced)
                parent, child = self.fork_reports(directory)
                self.assertLeak(parent, "hold_before", 300, 3, kind="reachable")
                self.assertLeak(parent, "hold_shared", 200, 1, kind="reachable")
                self.assertNoLeakAt(parent, "hold_after")
                self.assertLeak(child, "hold_shared", 400, 2, kind="reachable")
                self.assertLeak(child, "hold_after", 300, 1, kind="reachable")
                if inherited_listed:
                    self.assertLeak(child, "hold_before", 300, 3, kind="reachable")
                else:  # counted: the 300 bytes are the only ones of the summary's not listed
                    self.assertNoLeakAt(child, "hold_before")
                listed = sum(e["bytes"] for e in child["leaks"] if e["kind"] == "reachable")
                self.assertEqual(child["summary"]["reachable_bytes"] - listed,
                                 0 if inherited_listed else 300)
                self.assertEqual(child["reachable_sites_omitted"], 0 if inherited_listed else 1)
                self.assertEqual(parent["reachable_sites_omitted"], 0)

    def test_no_leak(self):
        _, _, report = self.traced("no_leak")
        self.assertNoOwnLeaks(report, self.program("no_leak"))

    def test_misc_api(self):
        plain, traced, report = self.traced("misc_api")
        self.assertEqual(plain.returncode, 0, f"misc_api fails without heapledger:\n{plain.stdout}")
        self.assertEqual(traced.returncode, 0, f"misc_api under heapledger:\n{traced.stdout}")
        self.assertNoOwnLeaks(report, self.program("misc_api"), innermost_only=True)
        self.assertSameBehaviour(plain, hl.run_preloaded([self.program("misc_api")], "track=0"))

    def test_c_library_frames_are_named_from_its_symbol_table(self):
        # Every stack has frames in the C library; with its debug information installed (setup.sh
        # installs libc6-dbg, as valgrind's package does) reading it for their file and line
        # inflated its compressed sections whole at every exit, about 0.1 s per process. Its
        # frames carry the public name (strdup, not __strdup or the local __GI_ aliases), no file.
        _, _, r = self.traced("libc_frames")
        lost = [e for e in r["leaks"] if e["kind"] == "definite"]
        self.assertEqual([(e["bytes"], e["blocks"]) for e in lost], [(11, 1)], hl.describe_leaks(r))
        stack = lost[0]["stack"]
        self.assertEqual([f["function"] for f in stack[:5]],
                         ["strdup", "keep_name", "main", "__libc_start_call_main", "__libc_start_main"])
        for f in stack:
            in_libc = os.path.basename(f["module"]).startswith("libc.so")
            self.assertEqual(in_libc, f["function"] not in ("keep_name", "main", "_start"), f)
            if in_libc:
                self.assertEqual((f["file"], f["line"]), (None, None), f)
        self.assertEqual((os.path.basename(stack[1]["file"]), stack[1]["line"]), ("libc_frames.c", 8))

    def test_new_handler(self):
        plain, traced, _ = self.traced("new_handler")
        self.assertIn("nothrow with throwing handler: (nil) after 3 handler calls", traced.stdout)
        self.assertIn("throwing new: bad_alloc after 3 handler calls", traced.stdout)

    def test_misc_new(self):
        plain, traced, report = self.traced("misc_new")
        self.assertEqual(plain.returncode, 0, f"misc_new fails without heapledger:\n{plain.stdout}")
        self.assertEqual(traced.returncode, 0, f"misc_new under heapledger:\n{traced.stdout}")
        self.assertNoOwnLeaks(report, self.program("misc_new"), innermost_only=True)

    def test_stress_threads(self):
        plain, traced, report = self.traced("stress_threads", timeout=STRESS_TIMEOUT)
        self.assertEqual(plain.returncode, 0, plain.describe())
        self.assertEqual(traced.returncode, 0, traced.describe())
        self.assertNoOwnLeaks(report, self.program("stress_threads"), innermost_only=True)
        summary = report["summary"]
        # 16 x 200000 operations, about half of them allocations (1.66 million when written).
        self.assertGreaterEqual(summary.get("allocations", 0), 1_000_000, summary)
        self.assertGreaterEqual(summary.get("frees", 0), 1_000_000, summary)

    # --- the fast unwinder: same stacks as libunwind, exactly -----------------------------------

    def unwind_paths_leaks(self, options):
        """unwind_paths' definite leaks as {caller chain: (bytes, blocks)}, plus the run."""
        _, traced, report = self.traced("unwind_paths", options=options)
        self.assertEqual(traced.returncode, 0, traced.describe())  # 3: a case's setup did not hold
        leaks = {}
        for e in report["leaks"]:
            if e.get("kind") != "definite":
                continue
            chain = []
            for frame in e["stack"]:
                name = frame.get("function")
                if name == "main" or name is None:
                    break
                chain.append(name)
                if name == "<signal handler called>":  # the default unwinder stops there
                    break
            got = leaks.get(tuple(chain), (0, 0))
            leaks[tuple(chain)] = (got[0] + e["bytes"], got[1] + e["blocks"])
        return leaks, traced

    def test_fast_unwinder(self):
        """Every stack the fast unwinder (and its memo) takes equals libunwind's, including a leaf
        reached at one stack pointer from two callers, recursion, VLA frames, callers told apart
        by rbp alone, signal handlers, a coroutine and a thread; the leaks land on the right
        caller chains to the byte."""
        verified, traced = self.unwind_paths_leaks("unwind=verify")
        line = [l for l in traced.stderr.splitlines() if "unwind=verify" in l]
        self.assertEqual(len(line), 1, traced.describe())
        m = re.search(r"verify: (\d+) stacks taken by CFI rules, (\d+) differed .*; (\d+) taken by "
                      r"libunwind", line[0])
        self.assertIsNotNone(m, line[0])
        by_rules, differed, by_libunwind = map(int, m.groups())
        self.assertEqual(differed, 0, line[0])
        self.assertNotIn("warning", line[0])  # a check that passed is not a warning
        self.assertGreaterEqual(by_rules, 3000, line[0])
        # The signal handlers (10) and the coroutine (10) are libunwind's here: under
        # unwind=verify the fast path does not walk through signal frames (by default it ends
        # the stack there), nor stacks it does not know the bounds of.
        self.assertGreaterEqual(by_libunwind, 20, line[0])
        expected = {
            ("alloc_here", "via_x"): (24 * 500, 500),
            ("alloc_here", "via_y"): (40 * 500, 500),
            ("alloc_here", "with_vla", "vla_caller_a"): (56 * 50, 50),
            ("alloc_here", "with_vla", "vla_caller_b"): (56 * 50, 50),
            ("alloc_here", "via_y", "thread_main", "start_thread", "clone3"): (120 * 20, 20),
            ("alloc_here", "via_x", "coroutine"): (88 * 10, 10),
            # Told apart by rbp alone (see the program): a walk that took the other caller's
            # frames over would put all 60 of a leaf's blocks on one of them.
            ("rbp_leaf_plain", "pad_frame", "rbp_stale_a"): (152 * 30, 30),
            ("rbp_leaf_plain", "pad_frame", "rbp_stale_b"): (136 * 30, 30),
            ("rbp_leaf_saving", "pad_frame", "rbp_stale_a"): (168 * 30, 30),
            ("rbp_leaf_saving", "pad_frame", "rbp_stale_b"): (152 * 30, 30),
        }
        for depth in range(8):
            expected[("alloc_here",) + ("recurse",) * (depth + 1)] = (32 * 20, 20)
        for chain, want in expected.items():
            self.assertEqual(verified.get(chain), want, f"{chain}: {verified}")
        # The default (fast) and libunwind give the same report.
        fast, _ = self.unwind_paths_leaks("")
        slow, _ = self.unwind_paths_leaks("unwind=libunwind")
        self.assertEqual(fast, slow)
        self.assertEqual(fast, verified)

    def test_a_program_with_its_own_operator_new_or_delete_has_no_mismatched_frees(self):
        """A program that defines operator new (on malloc) but not delete, or delete (on free)
        but not new: its own new hands malloc's blocks to the library's delete, or its delete
        hands the library's to free. Every delete was reported a mismatched free (109 in a user
        trial's program; memcheck reports none), and on_error=abort ended the program."""
        for name in ("own_operator_new", "own_operator_delete", "own_operator_new_array"):
            with self.subTest(program=name):
                for options in ("", "on_error=abort"):
                    _, traced, report = self.traced(name, options=options)
                    self.assertEqual(traced.returncode, 0, traced.describe())
                    self.assertEqual(report["summary"]["errors"], 0, report["errors"][:3])
                    self.assertLeak(report, "leak_site", 120, 3)
        # A non-PIE executable that takes operator delete's address: dlsym names its PLT entry,
        # but the operators are still ours, and its mismatches are reported (a review's: the
        # checks went off).
        _, traced, report = self.traced("operator_address")
        self.assertEqual(traced.returncode, 0, traced.describe())
        self.assertEqual(sorted(e["detail"] for e in report["errors"]),
                         ["allocated with malloc, released with delete", "allocated with new, released with free"])

    def test_a_program_that_replaces_only_the_base_operators_gets_them_from_every_form(self):
        """A program with operator new(size_t) and delete(void*) of its own (and their aligned
        forms), each with a size header: every other form (new[], nothrow, sized and array
        deletes) must reach them, as libstdc++'s do. heapledger's own served them: the program's
        delete read a header in front of heapledger's blocks (std::stable_sort's nothrow buffer:
        a crash), and sized deletes gave the program's blocks to free (false invalid frees, and
        leaks the program's count showed: a review's)."""
        # _statics: a C++ library's static objects allocate before heapledger's constructor runs
        # (a new[] kept to exit, a vector freed by sized delete); heapledger's forms served them
        # (a false leak), then, with the forms chosen in the constructor, its delete[] at exit gave
        # the library's block to the program's delete (a crash; both a review's).
        for name in ("own_operator_header", "own_operator_header_unsized", "own_operator_header_statics"):
            for options in ("", "on_error=abort"):
                with self.subTest(program=name, options=options):
                    plain, traced, report = self.traced(name, options=options)
                    self.assertRegex(plain.stdout, r"^(statics=500500\n)?sorted=1 news=\d+ deletes=\d+ live=\d+ foreign=0\n$")
                    self.assertEqual(report["summary"]["errors"], 0, report["errors"][:3])
                    self.assertLeak(report, "leak_site", 120, 3)
                    self.assertEqual(report["summary"]["leaked_blocks"], 3, hl.describe_leaks(report))
            with self.subTest(program=name, options="track=0"):
                plain = hl.run_plain([self.program(name)])
                pools = hl.run_preloaded([self.program(name)], "track=0")
                self.assertSameBehaviour(plain, pools)

    def test_a_program_that_sandboxes_itself_is_not_killed_by_the_allocator(self):
        """A seccomp filter that kills on mincore (glibc's malloc never makes it), installed by the
        program through prctl: a calloc that took a freed large mapping asked mincore which pages
        to clear, and the process died of SIGSYS (a review's), pools only too."""
        for options in ("log=none:track=0", "log=none:quarantine_mb=0", "log=none"):
            with self.subTest(options=options):
                res = hl.run_preloaded([self.program("sandboxed_calloc")], options)
                self.assertEqual(res.returncode, 0, res.describe())
                self.assertEqual(res.stdout, "round 0: 0\nround 1: 0\nround 2: 0\n")
        # mlockall under a filter goes to the kernel: the walk's capget killed it (SIGSYS). As
        # root: CAP_IPC_LOCK, so that it succeeds (under a limit, heapledger's reservations
        # count: Known limits).
        for options in ("log=none:track=0", "log=none") if os.geteuid() == 0 else ():
            with self.subTest(options=options, call="mlockall"):
                res = hl.run_preloaded([self.program("sandboxed_calloc"), "mlockall"], options)
                self.assertEqual((res.returncode, res.stdout), (0, "mlockall: 0\n"), res.describe())
        # A filter that refuses to create files (man-db's, for col and groff: ENOSYS): the report
        # goes to stderr, and the warning says why the error is "Function not implemented" (it
        # did not: a user trial's man -P cat ls).
        report_path = self.path("sandboxed.json")
        res = hl.run_preloaded([self.program("sandboxed_calloc"), "create"], f"json={report_path}:log=none")
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertFalse(os.path.exists(report_path))
        self.assertEqual(self.warning_lines(res.stderr, report_path),
                         [f"heapledger: warning: cannot write the JSON report of pid {res.pid} "
                          f"(sandboxed_calloc) to {report_path}: Function not implemented (the "
                          "process runs under a seccomp filter); writing it to stderr"])
        self.assertLeak(hl.find_json_document(res.stderr), "leak_site", 100, 1)

    def test_unwind_modes_count_the_same_blocks(self):
        # unwind=verify used to count the reporter module's loading (to print its verdict) as
        # the program's allocations: 12 blocks "still reachable" from the exit path. And it loaded
        # the reporter before the leak scan: at exit, after the libraries' destructors, that load
        # runs libstdc++'s constructors again, and its new exception arena replaced the one the
        # program's libstdc++ made at start, which became a 72,704-byte "definite" leak in every
        # C++ program (a user trial: leak_exitcode failed CI under unwind=verify only).
        keys = ("allocations", "frees", "bytes_allocated", "leaked_bytes", "reachable_bytes", "live_blocks")
        for program in ("leak_discarded", "leak_new"):
            summaries = {}
            for options in ("", "unwind=libunwind", "unwind=verify"):
                _, _, report = self.traced(program, options=options)
                summaries[options] = {k: report["summary"][k] for k in keys}
            if program == "leak_discarded":
                self.assertEqual(summaries[""]["allocations"], 1, summaries)
            self.assertEqual(summaries[""], summaries["unwind=libunwind"], program)
            self.assertEqual(summaries[""], summaries["unwind=verify"], program)

    def test_short_c_names(self):
        _, _, report = self.traced("short_names")
        self.assertLeak(report, "g", 24, 1)

    def test_rust_names(self):
        # Both of Rust's manglings, read by libiberty's rust_demangle: the v0 scheme was shown
        # as the symbol, the legacy one with its escapes and hash (a user trial's rustc leaks).
        _, traced, report = self.traced("rust_names")
        self.assertLeak(report, "mycrate::example", 11, 1)
        self.assertLeak(report, "mycrate::legacy", 22, 1)
        self.assertLeak(report, "<alloc::alloc::Global as core::alloc::Allocator>::allocate", 33, 1)
        self.assertIn("<alloc::alloc::Global as core::alloc::Allocator>::allocate", traced.stderr)
        # A name whose back-references would expand to gigabytes stays the symbol it is.
        nested = "_RINvC1a1fTllETB7_B7_ETBb_Bb_ETBj_Bj_ETBr_Br_ETBz_Bz_ETBH_BH_ETBP_BP_ETBX_BX_ETB15_B15_ETB1d_B1d_ETB1n_B1n_ETB1x_B1x_ETB1H_B1H_ETB1R_B1R_ETB21_B21_ETB2b_B2b_ETB2l_B2l_ETB2v_B2v_ETB2F_B2F_ETB2P_B2P_ETB2Z_B2Z_ETB39_B39_ETB3j_B3j_ETB3t_B3t_ETB3D_B3D_ETB3N_B3N_EE"
        self.assertLeak(report, nested, 44, 1)
        self.assertLess(len(traced.stderr), 20000)

    def test_tiny_thread_stacks(self):
        """Threads with 16 KiB stacks run as they do without the library (its static TLS and its
        allocation path fit), and each one's leak is found."""
        for options in ("", "unwind=verify"):
            _, traced, report = self.traced("tiny_stacks", options=options)
            self.assertEqual(traced.returncode, 0, traced.describe())
            self.assertLeak(report, "tiny_leak", 8 * 40, 8)
        self.assertIn(" 0 differed", traced.stderr)

    def test_tiny_thread_stacks_nearly_full(self):
        """A malloc with 6,000 of a 16 KiB thread's bytes in use (plain glibc copes up to about
        8,000). Rules for frames are not learned with that little room left, and the walk went to
        libunwind, which needs more still: a crash. It takes the frames whose rules it has."""
        argv = [self.program("tiny_stacks"), "6000"]
        report_path = self.path("tiny_deep.json")
        res = hl.run_preloaded(argv, f"json={report_path}:log=none")
        self.assertSameBehaviour(hl.run_plain(argv), res)
        report = hl.load_report(report_path)
        self.assertLeak(report, "deep_leak", 8 * 24, 8)
        self.assertLeak(report, "tiny_leak", 8 * 40, 8)

    def test_demo(self):
        _, _, report = self.traced("demo")
        self.assertLeak(report, "demo::Cache::put", 256, 1)
        self.assertLeak(report, "demo::make_scratch", 160, 1)
        self.assertLeak(report, "demo::worker_step", 512, 1)
        self.assertNoLeakAt(report, "demo::load_batch", "demo::process_batches")

    def test_demo_peak(self):
        _, _, report = self.traced("demo")
        self.assertGreaterEqual(report["summary"].get("peak_bytes", 0), 64 * 65536)
        sites = [p for p in report.get("peak", []) if p.get("stack") and
                 hl.function_matches(p["stack"][0], "demo::load_batch")]
        self.assertTrue(sites, f"no peak entry at demo::load_batch: "
                               f"{str(report.get('peak'))[:1500]}")
        self.assertEqual((sum(p["bytes"] for p in sites), sum(p["blocks"] for p in sites)),
                         (64 * 65536, 64))

    # (program and arguments, leaked bytes, leaked blocks): the whole program's definite +
    # indirect leaks, the same as valgrind's "definitely lost" for these programs.
    EXACT_TOTALS = [
        (("leak_malloc",), 350, 4), (("leak_new",), 244, 4), (("leak_aligned",), 5596, 4),
        (("leak_aligned_new",), 704, 2), (("leak_realloc",), 3000, 1), (("leak_calloc",), 300, 1),
        (("leak_thread",), 369, 3), (("leak_dlopen",), 777, 1), (("no_leak",), 0, 0),
        (("demo",), 928, 3), (("misc_api",), 0, 0), (("misc_new",), 0, 0),
        (("exit_paths", "return"), 642, 2), (("exit_paths", "thread_exit"), 642, 2),
        (("exit_paths", "quick_exit"), 642, 2),
    ]

    def test_exact_totals(self):
        """Once runtime one-offs are classified reachable, summary.leaked_* is the program's own
        leaks and nothing else, and nothing is merely 'possibly' lost."""
        for argv, nbytes, nblocks in self.EXACT_TOTALS:
            with self.subTest(program=" ".join(argv)):
                _, _, report = self.traced(*argv)
                s = report["summary"]
                self.assertEqual((s["leaked_bytes"], s["leaked_blocks"]), (nbytes, nblocks),
                                 hl.describe_leaks(report))
                self.assertEqual(s["possible_bytes"], 0, hl.describe_leaks(report))

    def test_timeline_follows_frees_and_shows_the_peak(self):
        # Frees used to add no points (the free path runs inside the tracker's re-entry guard),
        # so the curve never came down; and the peak could fall between sampled points.
        _, _, report = self.traced("timeline_steps")
        mib = 1 << 20
        levels = ["up" if p["bytes"] >= mib else "down" for p in report["timeline"]]
        steps = [lvl for i, lvl in enumerate(levels) if i == 0 or lvl != levels[i - 1]]
        self.assertGreaterEqual(steps.count("up"), 3, report["timeline"])
        self.assertGreaterEqual(steps.count("down"), 3, report["timeline"])
        self.assertEqual(max(p["bytes"] for p in report["timeline"]), report["summary"]["peak_bytes"])
        peak = [p for p in report["timeline"] if p["bytes"] == report["summary"]["peak_bytes"]]
        self.assertIn(report["summary"]["peak_time_ms"], [p["t_ms"] for p in peak])

    def test_the_timeline_dates_changes_that_come_within_one_tick(self):
        # Only the first change in a tick of the clock made a point: 32 blocks of 1 MiB freed
        # one after the other read 31 MiB until the next allocation, 150 ms later, dated 0 there
        # (a user trial's: xz's 282 MiB, flat from 66 ms on, read as 198 MiB creeping up to
        # 296 MiB over 37 s). With other threads about, the frees are counted below the peak in
        # slots (tracker/live_totals.h); a version that read every slot for at most 8 of a
        # burst's changes still lost the end of a longer burst (a review's).
        mib = 1 << 20
        for mode in ("burst", "burst_threads"):
            _, _, report = self.traced("timeline_steps", mode, options="log=none")
            points = report["timeline"]
            end = report["process"]["duration_ms"]
            full = [p for p in points if p["bytes"] >= 32 * mib]
            empty = [p for p in points if p["bytes"] < mib and full and p["t_ms"] > full[0]["t_ms"]]
            self.assertTrue(full and empty, (mode, points))
            # All 32 blocks live at the burst's time, within a few ticks of it, and none of
            # them live once they were freed: 150 ms before the end, not at the small block.
            self.assertLess(full[0]["t_ms"] - points[0]["t_ms"], 120, (mode, points))
            self.assertLess(empty[0]["t_ms"], end - 100, (mode, points))
            self.assertGreater(empty[0]["t_ms"] - full[0]["t_ms"], 100, (mode, points))
            self.assertEqual([p["t_ms"] for p in points], sorted(p["t_ms"] for p in points))

    def test_the_timeline_counts_what_other_threads_hold_in_their_slots(self):
        # Threads count in slots of their own below the peak (tracker/live_totals.h); a point
        # taken from one thread's own slot alone was 18 KB while 50 idle threads held 2.5 MB,
        # and up to 65 MB where one thread allocated and another freed 256,000 bytes at a time
        # (a review's programs).
        _, _, report = self.traced("threads_timeline", "idle", options="log=none")
        held = [p["bytes"] for p in report["timeline"] if 2_500_000 <= p["bytes"] < 2_520_000]
        self.assertGreaterEqual(len(held), 10, report["timeline"])  # main's 20 steps, 15 ms apart
        _, _, report = self.traced("threads_timeline", "handoff", options="log=none")
        after_spike = [p["bytes"] for p in report["timeline"][1:]]
        self.assertEqual(report["timeline"][0]["bytes"], 64 << 20, report["timeline"])
        self.assertLessEqual(max(after_spike), 256_000 + 8_192, report["timeline"])

    # --- ways out of the process ---------------------------------------------------------------

    def test_exit_return(self):
        _, _, report = self.traced("exit_paths", "return")
        self.assertLeak(report, "exit_leak", 642, 2)

    def test_exit_code(self):
        plain, _, report = self.traced("exit_paths", "exit", "7")
        self.assertEqual(plain.returncode, 7)
        self.assertLeak(report, "exit_leak", 642, 2)

    def test_exit_from_thread(self):
        plain, _, report = self.traced("exit_paths", "thread_exit")
        self.assertEqual(plain.returncode, 5)
        self.assertLeak(report, "exit_leak", 642, 2)

    def test_quick_exit(self):
        plain, _, report = self.traced("exit_paths", "quick_exit")
        self.assertEqual(plain.returncode, 6)
        self.assertLeak(report, "exit_leak", 642, 2)

    def test_a_program_that_ends_with_underscore_exit_gets_its_report(self):
        # dash ends every `sh -c` with _exit(): there was no report, and leak_exitcode was never
        # applied (a user trial). Now the started process's _exit() writes it, and its buffered
        # stdout is still dropped; forked and vforked children that _exit() write none.
        for mode in ("", "fork", "vfork"):
            with self.subTest(mode=mode):
                argv = [self.program("exit_immediately")] + ([mode] if mode else [])
                plain = hl.run_plain(argv)
                self.assertEqual((plain.returncode, plain.stdout), (3, ""))
                json_path = self.path(f"r{mode}.%p.json")
                traced = hl.run_preloaded(argv, f"log=none:json={json_path}")
                self.assertSameBehaviour(plain, traced)
                reports = hl.reports_in(self.tmp, prefix=f"r{mode}.")
                self.assertEqual([r["process"]["pid"] for _, r in reports], [traced.pid],
                                 "one report, the started process's")
                r = reports[0][1]
                self.assertLeak(r, "lost_at_exit", 123, 1, kind="definite")
                self.assertNoLeakAt(r, "child_leak")
        res = hl.run_preloaded([self.program("exit_immediately")], "log=stderr:leak_exitcode=23")
        self.assertEqual((res.returncode, res.stdout), (23, ""), res.describe())
        self.assertIn("123 bytes in 1 block definitely lost", res.stderr)
        # _exit() while exit() is on its way (its own exit handler's, another thread's), and
        # from a handler on a small signal stack under unwind=verify: a review's three.
        for mode, options in (("atexit", ""), ("thread", ""), ("altstack", "unwind=verify")):
            with self.subTest(mode=mode):
                argv = [self.program("exit_immediately"), mode]
                self.assertEqual(hl.run_plain(argv).returncode, 3)
                json_path = self.path(f"{mode}.json")
                traced = hl.run_preloaded(argv, f"log=none:json={json_path}:{options}".rstrip(":"))
                self.assertEqual(traced.returncode, 3, traced.describe())
                self.assertLeak(hl.load_report(json_path), "lost_at_exit", 123, 1, kind="definite")
        res = hl.run_preloaded([self.program("exit_immediately"), "atexit"],
                               "log=none:leak_exitcode=23")
        self.assertEqual(res.returncode, 23, res.describe())

    def test_exit_with_little_stack_left(self):
        """exit() from a thread made with a 16 KiB or 32 KiB stack, and from a handler on an 8 KiB
        alternate signal stack: the report ran on that stack and overran it (a crash in the scan
        at 16 KiB; at 32 KiB libdw wrote past the guard page into the pools' tables, a crash or
        a hang in the next allocation; the handler crashed). It has a stack of its own now. The
        leak_exitcode it decides there still ends the process. signal_timer: SA_ONSTACK signals
        arriving while the report runs off the alternate stack were delivered at its top, over
        the exiting handler's live frames (a crash once the report was written, a review's)."""
        for args in (("thread", "16"), ("thread", "32"), ("signal",), ("signal_timer",)):
            with self.subTest(args=args):
                plain, _, report = self.traced("exit_small_stack", *args, timeout=60)
                self.assertEqual(plain.returncode, 7)
                self.assertLeak(report, "small_stack_leak_site", 300, 3, kind="definite")
        res = hl.run_preloaded([self.program("exit_small_stack"), "thread", "16"],
                               "log=stderr:leak_exitcode=23", timeout=60)
        self.assertEqual(res.returncode, 23, res.describe())
        self.assertIn("300 bytes in 3 blocks definitely lost", res.stderr)

    # --- the report itself ---------------------------------------------------------------------

    def test_a_program_that_retitles_itself_is_shown_by_its_title(self):
        # A server that writes a new title over its command line (setproctitle) was shown cut at
        # the old words' bounds, a letter lost at each: nginx's worker came out as "/usr/sbin/nginx
        # ' w' 'rker process is shutti' 'g ' own" (a user trial's). Its title now, as ps shows it,
        # beside the executable.
        prog = self.program("argv_rewrite")
        log = self.path("report.txt")
        _, _, r = self.traced("argv_rewrite", "title", "--config", "/etc/some.conf", "-x",
                              options=f"log={log}")
        self.assertEqual(r["process"]["argv"], ["argv_rewrite: worker process"])
        self.assertLeak(r, "main", 42, 1)
        with open(log, encoding="utf-8") as f:
            header = f.readline()
        self.assertIn(f"— {prog} (as 'argv_rewrite: worker process') (pid ", header)
        rendered = hl.run([hl.CLI, "report", self.path("report.json")], env=hl.clean_env())
        self.assertEqual(rendered.stdout.splitlines()[0], header.rstrip("\n"))
        # Started by a short name (nginx's "nginx"), the title runs across the old words' bounds.
        json_path = self.path("short.json")
        env = hl.clean_env({"LD_PRELOAD": hl.LIB, "HEAPLEDGER_OPTIONS": f"json={json_path}:log=none"})
        res = subprocess.run(["ar", "title", "--config", "/etc/some.conf", "-x"], executable=prog,
                             env=env, capture_output=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(hl.load_report(json_path)["process"]["argv"], ["argv_rewrite: worker process"])

    def test_argv_keeps_its_words_and_what_the_program_hid(self):
        # Read at exit, a word blanked with NULs (openssl's -k password) came back as one empty
        # word per byte; taken at start, a password the program had hidden (curl writes spaces
        # over -u's) was in the report (a user trial). The words now keep their count and read
        # as the program left them.
        _, _, r = self.traced("argv_rewrite", "keep", "secret-word", "pass", "last")
        self.assertEqual(r["process"]["argv"],
                         [self.program("argv_rewrite"), "keep", "", "xxxx", "last"])
        with open(self.path("report.json"), encoding="utf-8") as f:
            text = f.read()
        self.assertNotIn("secret-word", text)
        self.assertNotIn('"pass"', text)
        self.assertLeak(r, "main", 42, 1)

    def test_schema(self):
        """Every field of heapledger/1 (DESIGN.md) with its type, for a simple leaking program."""
        prog = self.program("leak_malloc")
        _, traced, report = self.traced("leak_malloc")
        num = (int, float)
        self.assertEqual(report["tool"], {"name": "heapledger", "version": "0.1.0"})
        proc = report["process"]
        self.assertEqual(proc["pid"], traced.pid)
        self.assertEqual(proc["ppid"], os.getpid())
        self.assertTrue(hl.same_file(proc["exe"], prog), proc["exe"])
        self.assertEqual(proc["argv"], [prog])
        self.assertIsInstance(proc["duration_ms"], num)
        self.assertGreaterEqual(proc["duration_ms"], 0)
        summary = report["summary"]
        for key in ("allocations", "frees", "bytes_allocated", "peak_bytes", "peak_blocks",
                    "live_bytes", "live_blocks", "leaked_bytes", "leaked_blocks", "possible_bytes",
                    "possible_blocks", "reachable_bytes", "reachable_blocks", "suppressed_bytes",
                    "suppressed_blocks", "errors"):
            self.assertIsInstance(summary.get(key), int, f"summary.{key}")
            self.assertGreaterEqual(summary[key], 0, f"summary.{key}")
        self.assertIsInstance(summary.get("peak_time_ms"), num)
        self.assertGreaterEqual(summary["allocations"], 4 + 64 + 1)  # at least the program's own
        self.assertGreaterEqual(summary["frees"], 64 + 1)
        self.assertGreaterEqual(summary["peak_bytes"], 300000)  # churn's big block
        self.assertGreaterEqual(summary["live_bytes"], 350)
        self.assertGreaterEqual(summary["leaked_bytes"], 350)
        self.assertEqual(summary["errors"], 0)
        self.assertEqual(report["errors"], [])
        self.check_summary(report)
        leaks = report["leaks"]
        self.assertEqual([e["bytes"] for e in leaks],
                         sorted((e["bytes"] for e in leaks), reverse=True),
                         "leaks not largest first")
        for e in leaks:
            self.assertIn(e["kind"], ("unknown", "definite", "indirect", "possible", "reachable"))
            self.assertGreater(e["bytes"], 0)
            self.assertGreater(e["blocks"], 0)
            self.assertLessEqual(0, e["first_ms"])
            self.assertLessEqual(e["first_ms"], e["last_ms"])
            self.assertLessEqual(e["last_ms"], proc["duration_ms"])
            # Blocks made before the library initialised have no stack; they must be runtime
            # one-offs still reachable at exit, never a leak the user is asked to fix.
            if not e["stack"]:
                self.assertEqual(e["kind"], "reachable", f"a {e['kind']} leak without a stack")
            for frame in e["stack"]:
                self.check_frame(frame)
        peak = report["peak"]
        self.assertIsInstance(peak, list)
        self.assertEqual([p["bytes"] for p in peak],
                         sorted((p["bytes"] for p in peak), reverse=True), "peak not largest first")
        for p in peak:
            self.assertIsInstance(p["blocks"], int)
            for frame in p["stack"]:
                self.check_frame(frame)
        for point in report["timeline"]:
            self.assertIsInstance(point["t_ms"], num)
            self.assertIsInstance(point["bytes"], int)
            self.assertLessEqual(point["bytes"], summary["peak_bytes"])
        times = [point["t_ms"] for point in report["timeline"]]
        self.assertEqual(times, sorted(times), "timeline not in time order")
        self.assertLessEqual(summary["peak_time_ms"], proc["duration_ms"])

    def check_summary(self, report):
        """The summary agrees with itself and with the leak entries."""
        s = report["summary"]
        counted = [e for e in report["leaks"] if e["kind"] in ("unknown", "definite", "indirect")]
        self.assertEqual(sum(e["bytes"] for e in counted), s["leaked_bytes"],
                         "leaked_bytes is not the sum of the leak entries")
        self.assertEqual(sum(e["blocks"] for e in counted), s["leaked_blocks"],
                         "leaked_blocks is not the sum of the leak entries")
        self.assertLessEqual(s["leaked_bytes"], s["live_bytes"])
        self.assertLessEqual(s["leaked_blocks"], s["live_blocks"])
        self.assertLessEqual(s["live_bytes"], s["peak_bytes"])
        self.assertLessEqual(s["peak_bytes"], s["bytes_allocated"])
        self.assertLessEqual(s["frees"], s["allocations"])
        self.assertLessEqual(s["live_blocks"], s["allocations"])

    def test_summary_consistency(self):
        """Summary invariants after realloc chains, failed allocations and zero-size reallocs."""
        for name in ("leak_realloc", "misc_api", "leak_aligned"):
            with self.subTest(program=name):
                _, _, report = self.traced(name)
                self.check_summary(report)

    def check_frame(self, frame):
        self.assertEqual(set(frame) & {"address", "module", "offset", "function", "file", "line"},
                         {"address", "module", "offset", "function", "file", "line"}, frame)
        self.assertRegex(frame["address"], r"^0x[0-9a-f]+$")
        self.assertRegex(frame["offset"], r"^0x[0-9a-f]+$")
        self.assertTrue(frame["module"].startswith("/"), frame)
        for key in ("function", "file"):
            self.assertTrue(frame[key] is None or isinstance(frame[key], str), frame)
        self.assertTrue(frame["line"] is None or isinstance(frame["line"], int), frame)
        # DESIGN.md: "/abs/path.cc or null". A name recorded relative to an absolute build
        # directory is joined to it; the test programs are built that way. (A build that
        # remapped its paths, as Debian's glibc, has only its relative names: kept as recorded.)
        if frame["file"] is not None and "/tests/programs/" in frame["module"]:
            self.assertTrue(frame["file"].startswith("/"), frame)
        if "heapledger" in os.path.basename(frame["module"]):
            self.fail(f"a heapledger frame in a reported stack: {frame}")

    def test_source_lines(self):
        """Frames of programs built with -g carry file and line of the allocating call."""
        _, _, report = self.traced("leak_malloc")
        frame = self.assertLeak(report, "leak_malloc", 300, 3)[0]["stack"][0]
        self.assertTrue((frame.get("file") or "").endswith("tests/programs/leak_malloc.c"), frame)
        self.assertEqual(frame.get("line"), self.leak_site_line("leak_malloc.c", "leak_malloc"))
        _, _, report = self.traced("leak_realloc")
        frame = self.assertLeak(report, "shrink_block", 3000, 1)[0]["stack"][0]
        self.assertTrue((frame.get("file") or "").endswith("tests/programs/leak_realloc.c"), frame)
        self.assertEqual(frame.get("line"), self.leak_site_line("leak_realloc.c", "shrink_block"))

    def test_source_files_compiled_by_relative_name(self):
        """A file compiled as `cc -g rel.c` records its name relative to the build directory: the
        report joins the two into an absolute path. A build that remapped the directory away
        (-ffile-prefix-map=DIR=.) has only the relative name, which is kept, with the line."""
        src_dir = self.path("src")
        os.makedirs(src_dir)
        with open(os.path.join(src_dir, "rel.c"), "w", encoding="utf-8") as f:
            f.write("#include <stdlib.h>\n"
                    "__attribute__((noinline)) void* made_here(void) { return malloc(77); }\n"
                    "int main(void) { void* volatile p = made_here(); p = 0; return 0; }\n")
        for flags, want_file in (([], os.path.join(os.path.realpath(src_dir), "rel.c")),
                                 ([f"-ffile-prefix-map={os.path.realpath(src_dir)}=."], "./rel.c")):
            exe = os.path.join(src_dir, "rel")
            subprocess.run(["cc", "-g", "-O0", *flags, "rel.c", "-o", "rel"], cwd=src_dir, check=True)
            json_path = self.path("rel.json")
            hl.run_preloaded([exe], f"json={json_path}:log=none")
            [leak] = hl.leaks_at(hl.load_report(json_path), "made_here")
            frame = leak["stack"][0]
            self.assertEqual((frame["file"], frame["line"]), (want_file, 2), frame)

    def write_source(self, name, text):
        """A source file in the test's scratch src/ directory; returns its path."""
        src_dir = self.path("src")
        os.makedirs(src_dir, exist_ok=True)
        path = os.path.join(src_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def built(self, source, name, compiler="g++", flags=("-O2", "-g")):
        """Builds source (see write_source) into an executable beside it; returns its path."""
        exe = os.path.join(os.path.dirname(source), name)
        subprocess.run([compiler, *flags, source, "-o", exe], check=True)
        return exe

    def built_and_run(self, source, name, compiler="g++", flags=("-O2", "-g"), options="log=none"):
        """Builds source with compiler and runs it preloaded with a JSON report; returns the run's
        result and the report."""
        exe = self.built(source, name, compiler, flags)
        json_path = self.path(name + ".json")
        res = hl.run_preloaded([exe], f"json={json_path}:{options}")
        return res, hl.load_report(json_path)

    def test_inlined_call_chains(self):
        """Optimised code with calls inlined three deep: every inlined call is a frame of its own,
        named and at the line of its call, down to the function it was inlined into, whether GCC
        or clang built it (clang emits no .debug_aranges, which Debian 12's libdw needs to find
        the unit of an address on its own)."""
        source = self.write_source("chain.cc",
                    "#include <cstdlib>\n"
                    "namespace outer { namespace inner {\n"
                    "static inline __attribute__((always_inline)) void* level3(int n) { return std::malloc(n * 3); }\n"
                    "static inline __attribute__((always_inline)) void* level2(int n) { void* p = level3(n + 1); return p; }\n"
                    "struct Maker { __attribute__((always_inline)) void* level1(int n) { return level2(n + 2); } };\n"
                    "__attribute__((noinline)) void* entry(int n) { Maker m; void* p = m.level1(n); static_cast<char*>(p)[0] = 1; return p; }\n"
                    "}}\n"
                    "int main(int argc, char**) { void* p = outer::inner::entry(argc); return p == nullptr; }\n")
        for compiler in ("g++", "clang++"):
            with self.subTest(compiler=compiler):
                _, report = self.built_and_run(source, "chain-" + compiler, compiler)
                # GCC names a static function by its bare name, clang with its namespaces.
                short = lambda f: (hl.base_name(f.get("function")) or "").split("::")[-1]
                [leak] = [e for e in report.get("leaks", []) if e.get("stack") and short(e["stack"][0]) == "level3"]
                self.assertEqual((leak["bytes"], leak["blocks"]), (12, 1), leak)
                frames = [(short(f), f.get("line")) for f in leak["stack"][:5]]
                self.assertEqual(frames, [("level3", 3), ("level2", 4), ("level1", 5), ("entry", 6), ("main", 8)],
                                 leak["stack"][:6])
                for f in leak["stack"][:5]:
                    self.assertTrue(hl.same_file(f.get("file"), source), f)

    def test_inlined_lambdas_are_named_by_where_they_are(self):
        """GCC gives a lambda's call operator no linkage name in main or inside another lambda:
        DWARF calls it "operator()" alone, and so did every inlined lambda frame. Named with its
        enclosing scopes and where the lambda is; clang's linkage names are kept as they are."""
        source = self.write_source("lambdas.cc",
                    "#include <cstdlib>\n"
                    "void* volatile sink;\n"
                    "namespace ns {\n"
                    "void go(int n) {\n"
                    "  auto outer = [n](int k) {\n"
                    "    auto inner = [k](int m) { sink = std::malloc(m + k); };\n"
                    "    inner(n);\n"
                    "  };\n"
                    "  outer(3);\n"
                    "}\n"
                    "}  // namespace ns\n"
                    "int main(int argc, char**) {\n"
                    "  auto make = [](int n) { sink = std::malloc(n); };\n"
                    "  make(argc + 40);\n"
                    "  ns::go(argc + 20);\n"
                    "  sink = nullptr;\n"
                    "  return 0;\n"
                    "}\n")
        for compiler in ("g++", "clang++"):
            with self.subTest(compiler=compiler):
                _, report = self.built_and_run(source, "lambdas-" + compiler, compiler)
                leaks = {e["bytes"]: e for e in report.get("leaks", []) if e.get("kind") == "definite"}
                self.assertEqual(sorted(leaks), [24, 41], leaks)
                names = {n: [f.get("function") for f in leaks[n]["stack"][:3]] for n in leaks}
                if compiler == "g++":
                    self.assertEqual(names[41][:2], ["main::{lambda at lambdas.cc:13}::operator()", "main"])
                    self.assertEqual(names[24], [
                        "ns::go(int)::{lambda at lambdas.cc:5}::operator()::{lambda at lambdas.cc:6}::operator()",
                        "ns::go(int)::{lambda at lambdas.cc:5}::operator()", "ns::go(int)"])
                else:
                    self.assertTrue(names[41][0].startswith("main::"), names[41])
                    self.assertTrue(names[24][0].startswith("ns::go(int)::"), names[24])
                self.assertEqual([leaks[41]["stack"][0].get("line"), leaks[24]["stack"][0].get("line")], [13, 6])

    def test_mallopt_and_malloc_trim_leave_the_program_no_block(self):
        """heapledger looks the C library's mallopt and malloc_trim up at start: looked up at the
        program's first call, the dlopen's 40 bytes stayed, charged to the program's line."""
        source = self.write_source("tunables.c",
                                   "#include <malloc.h>\n"
                                   "int main(void) { return mallopt(M_ARENA_MAX, 2) == 1 && malloc_trim(0) >= 0 ? 0 : 1; }\n")
        res, report = self.built_and_run(source, "tunables", "gcc", ("-O0", "-g"),
                                         "log=none:show_reachable=1")
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertEqual((report["summary"]["live_blocks"], report["leaks"]), (0, []), hl.describe_leaks(report))

    def test_realloc_of_a_new_block_says_so_whichever_way_it_resizes(self):
        """realloc of a block from operator new: grown by a copy it said "released with free",
        remapped "realloc of a block from operator new" (for new[] too); each now names both
        ends, once (a user trial)."""
        source = self.write_source("realloc_new.cc",
                                   "#include <cstdlib>\n"
                                   "int main() {\n"
                                   "  void* x = std::realloc(new int(1), 64);\n"
                                   "  void* y = std::realloc(new char[100000], 200000);\n"
                                   "  void* z = std::realloc(new char[10], 5);\n"
                                   "  std::free(x);\n  std::free(y);\n  std::free(z);\n  return 0;\n}\n")
        res, report = self.built_and_run(source, "realloc_new", flags=("-O0", "-g"))
        self.assertEqual(res.returncode, 0, res.describe())
        details = [(e["kind"], e["detail"], e["stack"][0].get("line")) for e in report["errors"]]
        self.assertEqual(details, [("mismatched_free", "allocated with new, passed to realloc", 3),
                                   ("mismatched_free", "allocated with new[], passed to realloc", 4),
                                   ("mismatched_free", "allocated with new[], passed to realloc", 5)], report["errors"])
        self.assertEqual(report["summary"]["leaked_bytes"], 0, hl.describe_leaks(report))

    def test_a_report_to_the_file_stdout_is_on_follows_the_programs_output_only_on_exit(self):
        """With stderr on stdout's file (`> out 2>&1`) the report came before the output stdio
        still held, which exit() writes after it (a user trial). It is written first now, as for
        log=/dev/stdout; after _exit() neither writes it, as plainly (with log=/dev/stdout the
        report wrote it)."""
        source = self.write_source("held_output.c",
                                   "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n"
                                   "void* volatile sink;\n"
                                   "int main(int argc, char** argv) {\n"
                                   "  printf(\"held by stdio\\n\");\n"
                                   "  sink = malloc(77);\n  sink = 0;\n"
                                   "  if (argc > 1 && strcmp(argv[1], \"_exit\") == 0) _exit(0);\n"
                                   "  return 0;\n}\n")
        exe = self.built(source, "held_output", "gcc", ("-O0", "-g"))
        for how in ("return", "_exit"):
            for options in ("", "log=/dev/stdout"):
                with self.subTest(how=how, options=options):
                    out_path = self.path(f"out-{how}-{len(options)}.txt")
                    with open(out_path, "w", encoding="utf-8") as out:
                        res = subprocess.run([exe, how], stdout=out, stderr=subprocess.STDOUT,
                                             env=hl.preload_env(options), timeout=60)
                    self.assertEqual(res.returncode, 0)
                    lines = open(out_path, encoding="utf-8").read().splitlines()
                    if how == "return":
                        self.assertEqual(lines[0], "held by stdio", lines)
                        self.assertIn("heapledger", lines[1], lines)
                    else:
                        self.assertIn("heapledger", lines[0], lines)
                        self.assertNotIn("held by stdio", lines, "_exit drops what stdio holds")
                    self.assertTrue(any("77 bytes in 1 block definitely lost" in l for l in lines), lines)

    def test_a_report_to_stdout_outlives_a_program_closing_it(self):
        """A program that closes stdout at exit, as coreutils do: `log=stdout` sent every such
        program's report to stderr, with a warning naming neither pid nor program (a user trial's
        dash script: 172 of them). Into a file the shell shares, the report now goes through a
        copy of stdout kept for it, at the shell's offset: after the program's output, before the
        shell's next line. So does a report to the file itself (`log=out` with `> out`). Into a
        pipe, of which no copy is kept (its reader would wait for its end), the report goes to
        stderr after a warning that names the process and says why."""
        source = self.write_source("closes_stdout.c",
                                   "#include <stdio.h>\n#include <stdlib.h>\n"
                                   "void* volatile sink;\n"
                                   "static void close_stdout(void) { fclose(stdout); }\n"
                                   "int main(void) {\n  atexit(close_stdout);\n"
                                   "  printf(\"printed\\n\");\n"
                                   "  sink = malloc(77);\n  sink = 0;\n  return 0;\n}\n")
        exe = self.built(source, "closes_stdout", "gcc", ("-O0", "-g"))
        out = self.path("out.txt")
        env = hl.clean_env({"HL_LIB": hl.LIB})
        in_file = '{ LD_PRELOAD="$HL_LIB" HEAPLEDGER_OPTIONS="$1" "$0"; echo after; } > "$2"'
        for options in ("log=stdout", "log=" + out, "json=stdout:log=none"):
            with self.subTest(options=options):
                res = hl.run(["sh", "-c", in_file, exe, options, out], env=env)
                self.assertEqual((res.returncode, res.stderr), (0, ""))
                with open(out, encoding="utf-8") as f:
                    printed, rest = f.read().split("\n", 1)
                self.assertEqual(printed, "printed")
                report, after = rest.rsplit("\n", 2)[0], rest.rsplit("\n", 2)[1]
                self.assertEqual(after, "after")
                if options.startswith("json"):
                    self.assertLeak(json.loads(report), "main", 77, 1)
                else:
                    self.assertIn("77 bytes in 1 block definitely lost", report)
        in_pipe = 'LD_PRELOAD="$HL_LIB" HEAPLEDGER_OPTIONS=log=stdout "$0" | cat > "$1"'
        res = hl.run(["sh", "-c", in_pipe, exe, out], env=env)
        self.assertEqual(res.returncode, 0, res.describe())
        with open(out, encoding="utf-8") as f:
            self.assertEqual(f.read(), "printed\n")
        warning, report = res.stderr.split("\n", 1)
        self.assertRegex(warning, r"^heapledger: warning: cannot write the text report of pid "
                         r"[0-9]+ \(closes_stdout\) to /dev/stdout: the program closed its "
                         r"stdout \(no copy is kept of a pipe or socket\); writing it to stderr$")
        self.assertIn("77 bytes in 1 block definitely lost", report)

    def test_a_json_report_on_stdout_is_one_piece_while_a_thread_still_prints(self):
        """The JSON report on the program's stdout ended with its newline in a write of its own,
        and a thread that still printed as the process exited landed between the closing brace
        and it ("}PING" then a lone newline: the JSON no longer parsed, 2 runs in 3 of a user
        trial's). A report this small is one write now, so a line the thread writes comes
        before it or after it, whole."""
        source = self.write_source(
            "printer.c",
            "#include <pthread.h>\n#include <stdlib.h>\n#include <unistd.h>\n"
            "void* volatile sink;\n"
            "static void* tick(void* arg) {\n  (void)arg;\n"
            "  for (;;) { write(1, \"PING\\n\", 5); usleep(200); }\n  return 0;\n}\n"
            "int main(void) {\n  pthread_t t;\n  pthread_create(&t, 0, tick, 0);\n"
            "  sink = malloc(77);\n  sink = 0;\n  usleep(20000);\n  return 0;\n}\n")
        exe = self.built(source, "printer", "gcc", ("-O0", "-g", "-pthread"))
        for n in range(16):  # the old layout lost it in about 1 run in 6 here
            with self.subTest(run=n):
                out_path = self.path(f"out-{n}.txt")  # a file, as the trial's (a pipe: rarer)
                with open(out_path, "w", encoding="utf-8") as out:
                    res = subprocess.run([hl.CLI, "run", "--json", "-", "--log", "none", "--", exe],
                                         stdout=out, stderr=subprocess.PIPE, text=True,
                                         env=dict(hl.clean_env(), HEAPLEDGER_LIBRARY=hl.LIB),
                                         timeout=60)
                self.assertEqual(res.returncode, 0, res.stderr)
                with open(out_path, encoding="utf-8") as f:
                    printed = f.read()
                self.assertNotIn("}PING", printed)
                start = printed.index("{\n")
                end = printed.index("\n}\n", start) + 3
                body = printed[start:end]
                self.assertNotIn("PING", body)
                self.assertLeak(json.loads(body), "main", 77, 1)
                self.assertEqual(set(printed[:start].split()) | set(printed[end:].split()), {"PING"})

    def test_stdout_and_dash_name_the_programs_stdout(self):
        """log=stdout and json=- (and --json - of heapledger run) went into files named "stdout"
        and "-" in the current directory, silently (a user trial): they are the program's stdout,
        as /dev/stdout is. A report into the file stdout is on follows the program's output with
        no warning: that the program wrote the file while it ran does not make it another
        process's report (it said "another process wrote /dev/stdout while this one ran"; the
        sleep puts the write past the file clock's coarse tick)."""
        source = self.write_source("prints.c",
                                   "#include <stdio.h>\n#include <stdlib.h>\n"
                                   "void* volatile sink;\n"
                                   "#include <unistd.h>\n"
                                   "int main(void) {\n  usleep(30000);\n  printf(\"printed\\n\");\n  fflush(stdout);\n"
                                   "  sink = malloc(77);\n  sink = 0;\n  return 0;\n}\n")
        exe = self.built(source, "prints", "gcc", ("-O0", "-g"))
        runs = [("log=" + name, None) for name in ("stdout", "-", "/dev/stdout")]
        runs += [("json=" + name + ":log=none", None) for name in ("stdout", "-")]
        runs += [(None, ["--json", name, "--log", "none"]) for name in ("stdout", "-")]
        for n, (options, cli_args) in enumerate(runs):
            with self.subTest(options=options, cli=cli_args):
                cwd = self.path(f"cwd-{n}")
                os.makedirs(cwd)
                out_path = self.path(f"out-{n}.txt")
                with open(out_path, "w", encoding="utf-8") as out:
                    if cli_args is None:
                        res = subprocess.run([exe], stdout=out, stderr=subprocess.PIPE, text=True,
                                             cwd=cwd, env=hl.preload_env(options), timeout=60)
                    else:
                        res = subprocess.run([hl.CLI, "run", *cli_args, "--", exe], stdout=out,
                                             stderr=subprocess.PIPE, text=True, cwd=cwd,
                                             env=hl.clean_env(), timeout=60)
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertEqual(res.stderr, "")
                self.assertEqual(os.listdir(cwd), [])
                with open(out_path, encoding="utf-8") as f:
                    printed, report = f.read().split("\n", 1)
                self.assertEqual(printed, "printed")
                if "json" in (options or "") or cli_args:
                    self.assertLeak(json.loads(report), "main", 77, 1)
                else:
                    self.assertIn("77 bytes in 1 block definitely lost", report)

    def test_on_error_abort_with_log_none_names_both_ends_of_a_mismatched_free(self):
        """on_error=abort with log=none writes one line; for a mismatched free it said only
        "released through the wrong family", where the report names both ends (a user trial)."""
        source = self.write_source("mismatch_abort.cc",
                                   "#include <cstdlib>\n#include <cstring>\n"
                                   "int main(int argc, char** argv) {\n"
                                   "  char* p = new char[10];\n"
                                   "  if (argc > 1 && std::strcmp(argv[1], \"realloc\") == 0) p = static_cast<char*>(std::realloc(p, 20));\n"
                                   "  else delete p;\n  return p == nullptr;\n}\n")
        exe = self.built(source, "mismatch_abort", "g++", ("-O0", "-Wno-mismatched-new-delete"))
        for how, detail in (("delete", "allocated with new[], released with delete"),
                            ("realloc", "allocated with new[], passed to realloc")):
            with self.subTest(how=how):
                res = hl.run_preloaded([exe, how], "log=none:on_error=abort")
                self.assertEqual(res.returncode, -signal.SIGABRT, res.describe())
                self.assertRegex(res.stderr, r"^heapledger: mismatched free of 0x[0-9a-f]+ \(" +
                                 re.escape(detail) + r"\); aborting \(on_error=abort; log=none "
                                 r"leaves out the stacks\)\n$")

    def test_ld_debug_shows_no_failed_lookup_of_ours(self):
        """Looking for libunwind in the reporter module (which does not link it) failed, harmlessly,
        and LD_DEBUG=libs showed every run a "symbol lookup error ... (fatal)" of the reporter's,
        confusing to anyone debugging their program's loading (a user trial)."""
        res = hl.run_preloaded([self.program("leak_malloc")], "log=/dev/null",
                               extra_env={"LD_DEBUG": "libs"})
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertIn("libheapledger_reporter.so", res.stderr)  # the report did load it
        self.assertNotIn("error", res.stderr)

    def test_the_runtimes_libraries_are_loaded_by_path_not_searched_for(self):
        """libunwind and liblzma, found through the runtime module's run path, were each looked for
        in eight subdirectories of it first (glibc-hwcaps/x86-64-v4 .. tls/x86_64): twenty failed
        system calls in every tracked process. libheapledger.so loads them by their full paths
        first (the build names them, tracker/CMakeLists.txt), and the loader finds them loaded."""
        res = hl.run_preloaded([self.program("leak_malloc")], "log=none",
                               extra_env={"LD_DEBUG": "libs"})
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertRegex(res.stderr, r"calling init: \S*/libunwind\.so\.8\n")  # it was loaded
        self.assertNotRegex(res.stderr, r"find library=(libunwind|liblzma)\S* \[\d+\]; searching")
        self.assertNotRegex(res.stderr, r"trying file=\S*/(libunwind|liblzma)")

    def test_a_library_found_through_an_empty_search_path_element_is_named(self):
        """An object found through an empty element of a search path (LD_LIBRARY_PATH=":", as
        `export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/opt/lib` leaves it when it was unset) is named
        "libfoo.so" by the loader, without a slash; taken for the vDSO's kind of name, it was left
        relative, and once the program changed its directory its frames had no function, file or
        line (a review's)."""
        lib_src = self.write_source("foo.c", "#include <stdlib.h>\n"
                                    "void* foo_leak(void) { return malloc(123); }\n")
        main_src = self.write_source("main_foo.c", "#include <unistd.h>\n"
                                     "void* foo_leak(void);\n"
                                     "int main(void) { void* volatile p = foo_leak(); p = 0;\n"
                                     "  return chdir(\"/\") != 0; }\n")
        work = os.path.dirname(lib_src)
        subprocess.run(["gcc", "-O0", "-g", "-shared", "-fPIC", lib_src, "-o",
                        os.path.join(work, "libfoo.so")], check=True)
        exe = os.path.join(work, "main_foo")
        subprocess.run(["gcc", "-O0", "-g", main_src, "-o", exe, "-L" + work, "-lfoo"], check=True)
        json_path = self.path("empty_element.json")
        res = hl.run_preloaded([exe], f"log=none:json={json_path}", cwd=work,
                               extra_env={"LD_LIBRARY_PATH": ":"})
        self.assertEqual(res.returncode, 0, res.describe())
        leaks = [l for l in hl.load_report(json_path)["leaks"] if l["bytes"] == 123]
        self.assertEqual(len(leaks), 1, hl.load_report(json_path)["leaks"])
        frame = leaks[0]["stack"][0]
        self.assertEqual(frame["module"], os.path.join(os.path.realpath(work), "libfoo.so"), frame)
        self.assertEqual((frame["function"], os.path.basename(frame["file"] or ""), frame["line"]),
                         ("foo_leak", "foo.c", 2), frame)

    def test_the_reporter_never_calls_the_programs_operator_new(self):
        """A program's own global operator new/delete served the reporter module's allocations
        too (it bound to the program's libstdc++ symbols): called while the report was written,
        after the program's static destructors had torn down whatever they use (a review's
        program printed about 1,270 lines from them). The reporter carries its own libstdc++
        now, whose operator new is malloc, heapledger's."""
        source = self.write_source("own_new.cc",
                                   "#include <cstdio>\n#include <cstdlib>\n#include <new>\n#include <string>\n"
                                   "static bool g_done;\nstatic long g_calls;\n"
                                   "void* operator new(std::size_t n) {\n"
                                   "  if (g_done) std::fprintf(stderr, \"own operator new after main\\n\");\n"
                                   "  ++g_calls;\n  if (void* p = std::malloc(n ? n : 1)) return p;\n"
                                   "  throw std::bad_alloc();\n}\n"
                                   "void operator delete(void* p) noexcept {\n"
                                   "  if (p && g_done) std::fprintf(stderr, \"own operator delete after main\\n\");\n"
                                   "  std::free(p);\n}\n"
                                   "void operator delete(void* p, std::size_t) noexcept { operator delete(p); }\n"
                                   "struct Done { ~Done() { g_done = true; std::fprintf(stderr, \"calls %ld\\n\", g_calls); } } done;\n"
                                   "void* volatile sink;\n"
                                   "int main() {\n  delete new std::string(100, 'a');\n"
                                   "  sink = std::malloc(101);\n  sink = nullptr;\n  return 0;\n}\n")
        exe = self.built(source, "own_new", "g++", ("-O1", "-g"))
        plain = hl.run_plain([exe])
        json_path = self.path("own_new.json")
        # A bad option has the reporter loaded at start, before main, to say so.
        for options in (f"json={json_path}", f"json={json_path}:leak_exitcode=300"):
            with self.subTest(options=options):
                res = hl.run_preloaded([exe], options)
                self.assertEqual(res.returncode, 0, res.describe())
                self.assertNotIn("after main", res.stderr)
                self.assertIn(plain.stderr.strip(), res.stderr)  # the program's own count, as plain
                self.assertLeak(hl.load_report(json_path), "main", 101, 1)

    def test_code_outside_any_unit_has_no_line(self):
        """crt1.o's _start has no debug information, and at -O2 GCC places main.cold before it, so
        _start lies between the ranges of the program's unit: libdwfl gives it to that unit and
        the line of the row before it (it was shown at std_thread.h:142). No file, no line."""
        source = self.write_source("cold.cc",
                                   "#include <cstdlib>\n#include <thread>\nvoid* volatile sink;\n"
                                   "int main() {\n  std::thread t([] { sink = nullptr; });\n  t.join();\n"
                                   "  sink = std::malloc(41);\n  sink = nullptr;\n  return 0;\n}\n")
        exe = self.built(source, "cold", "g++", ("-O2", "-g"))
        symbols = subprocess.run(["nm", "-n", exe], capture_output=True, text=True, check=True).stdout.split()
        self.assertLess(symbols.index("main.cold"), symbols.index("_start"),
                        "the layout this test needs (main.cold before _start) did not come out")
        json_path = self.path("cold.json")
        hl.run_preloaded([exe], f"json={json_path}:log=none")
        leak = self.assertLeak(hl.load_report(json_path), "main", 41, 1)[0]
        [start] = [f for f in leak["stack"] if f.get("function") == "_start"]
        self.assertEqual((start.get("file"), start.get("line")), (None, None), start)
        self.assertEqual(leak["stack"][0].get("line"), 7, leak["stack"][0])

    def test_the_interposed_sigwait_calls_answer_as_the_c_librarys(self):
        """sigwait, sigwaitinfo and sigtimedwait are heapledger's (they drop the leak scan's stop
        requests: classify test a_thread_asleep_with_the_stop_signal_blocked_is_held_not_waited_for):
        the program must get the same answers as from the C library's, siginfo, timeout, EINTR
        and sigwait's waiting through it included."""
        argv = [self.program("sigwait_calls")]
        plain = hl.run_plain(argv, timeout=30)
        self.assertEqual(plain.returncode, 0, plain.describe())
        self.assertEqual(plain.stdout.splitlines(), [
            "sigwait: 0, signal 10",
            "sigwaitinfo: 12, signo 12, code SI_QUEUE, value 4242",
            "sigtimedwait, nothing pending: -1, EAGAIN, waited at least 50 ms: yes",
            "sigtimedwait, one pending, no info: 10",
            "sigtimedwait, interrupted: -1, EINTR",
            "sigwait after an interruption: 0, signal 12",
        ], plain.describe())
        for options in ("log=none", "track=0:log=none"):
            self.assertSameBehaviour(plain, hl.run_preloaded(argv, options, timeout=30))
        # They are the library's own, not the C library's, or this proves nothing.
        exported = hl.run(["nm", "-D", "--defined-only", hl.LIB]).stdout.split()
        for name in ("sigwait", "sigwaitinfo", "sigtimedwait"):
            self.assertIn(name, exported)

    def test_signals_while_threads_exit(self):
        """Threads exiting under a 20 us timer whose handler mallocs and frees: the pools' flush of
        an exiting thread's cache (a malloc there wrote through a cleared bin and crashed every
        run) must hand its blocks over before a handler can take one. With tracking, a handler
        that interrupted a thread inside a class's central lists had its allocation fail, and
        when that was glibc's (the thread's dynamic TLS, for the unwinder) glibc ended the process
        ("cannot allocate memory for thread-local data": about one run in five under load)."""
        for options, threads in (("track=0", 20000), ("log=none", 5000)):
            for mode in ("m", "f", "b"):
                argv = [self.program("signal_thread_exit"), mode, str(threads)]
                res = hl.run_preloaded(argv, options, timeout=60)
                self.assertEqual(res.returncode, 0, res.describe())
                self.assertEqual(res.stdout, f"signal_thread_exit: survived {threads} threads\n", (options, mode))

    def test_handlers_on_small_signal_stacks_allocate(self):
        """Handlers on 8 KiB alternate signal stacks (SIGSTKSZ before glibc 2.34; the kernel's
        signal frame takes ~3.4 KiB of it here) malloc and free, in main and in a thread. Their
        stacks went to libunwind, which overflowed the signal stack (a crash on the first
        signal), as did a lazy binding of the library's calls and the 2 KiB frame buffer the
        walk kept on the stack. The leak in the handler is reported, from its own frame. The same
        with the stacks installed with SS_AUTODISARM, whose bounds sigaltstack() does not report
        inside the handler (libunwind took those, and crashed)."""
        for how in ((), ("autodisarm",)):
            with self.subTest(how=how):
                argv = [self.program("small_signal_stack"), "8192", *how]
                plain = hl.run_plain(argv)
                self.assertEqual((plain.returncode, plain.stdout), (0, "handled 200\n"), plain.describe())
                report_path = self.path("small_signal_stack.json")
                for options in ("track=0", f"json={report_path}:log=none"):
                    res = hl.run_preloaded(argv, options, timeout=60)
                    self.assertSameBehaviour(plain, res)
                self.assertLeak(hl.load_report(report_path), "signal_leak_site", 48, 2, kind="definite")

    def test_more_stacks_than_the_table_holds(self):
        """2^21 distinct allocation stacks: the stack table holds 2^20, the rest are recorded
        without one. A new peak after that snapshotted past the end of its array (a crash)."""
        argv = [self.program("many_stacks"), "21"]
        report_path = self.path("many_stacks.json")
        res = hl.run_preloaded(argv, f"json={report_path}:log=none", timeout=120)
        self.assertSameBehaviour(hl.run_plain(argv), res)
        self.assertEqual(res.stdout, "2097152 stacks\n")
        self.assertGreaterEqual(hl.load_report(report_path)["summary"]["allocations"], 2 ** 21)

    def test_only_the_largest_reachable_sites_are_listed(self):
        """1,024 still-reachable blocks from as many call sites, path i's block 16 + i bytes: the
        report lists the 500 largest (reachable_sites=N: the N largest, 0: none), the summary
        counts every one, and show_reachable=1 lists them all. (The cut now comes before the
        stacks are copied, which saves memory at exit but changes nothing a report shows: this
        checks what it shows, before and after.)"""
        argv = [self.program("many_reachable_sites"), "10"]
        plain = hl.run_plain(argv)
        self.assertEqual(plain.stdout, "1024 sites\n")
        all_bytes = sum(16 + i for i in range(1024))
        for options, listed in (("", 500), (":show_reachable=1", 1024), (":reachable_sites=0", 0),
                                (":reachable_sites=700", 700)):
            with self.subTest(options=options):
                json_path = self.path(f"reachable{listed}.json")
                log_path = self.path(f"reachable{listed}.txt")
                res = hl.run_preloaded(argv, f"json={json_path}:log={log_path}{options}")
                self.assertSameBehaviour(plain, res)
                report = hl.load_report(json_path)
                if listed:  # libc's few sites (its stdio buffer) are larger than the program's
                    self.assertEqual(report["summary"]["reachable_bytes"] - all_bytes,
                                     self.reachable_outside_the_program(report))
                else:
                    self.assertGreater(report["summary"]["reachable_bytes"], all_bytes)
                reachable = [e for e in report["leaks"] if e["kind"] == "reachable"]
                ours = [e for e in reachable if any(f.get("function") == "step" for f in e["stack"])]
                if listed < 1024:  # the largest, the program's stdio buffer and array among them
                    self.assertEqual(len(reachable), listed)
                else:
                    self.assertEqual(len(ours), 1024)
                self.assertEqual(sorted(e["bytes"] for e in ours),
                                 list(range(16 + 1024 - len(ours), 16 + 1024)))
                self.assertTrue(all(e["blocks"] == 1 for e in ours))
                text = open(log_path, encoding="utf-8").read()
                if listed < 1024:
                    self.assertIn("still reachable at exit: ", text)
                    self.assertIn("(not listed)", text)
                    # Re-rendered from the JSON, the same line: the unlisted sites' count came
                    # back as 0 (the field was not written), and the line counted only the
                    # 500 listed sites' bytes (a user trial).
                    rendered = hl.run([hl.CLI, "report", json_path], env=hl.clean_env())
                    line = re.compile(r"still reachable at exit: .*")
                    self.assertEqual(line.findall(rendered.stdout), line.findall(text))
                    # the program's own smallest sites, and any smaller ones of libc's
                    self.assertGreaterEqual(report["reachable_sites_omitted"], 1024 - len(ours))
                    self.assertLessEqual(report["reachable_sites_omitted"], 1024 - len(ours) + 10)
                else:  # all listed: the text shows max_leaks (25) of them, then counts the rest
                    self.assertIn(f"... and {len(reachable) - 25:,} more leak sites", text)
                    self.assertNotIn("(not listed)", text)

    def reachable_outside_the_program(self, report):
        """Reachable bytes listed from call sites that are not the program's own step()."""
        return sum(e["bytes"] for e in report["leaks"] if e["kind"] == "reachable"
                   and not any(f.get("function") == "step" for f in e["stack"]))

    def test_signal_handlers_inside_each_others_classes(self):
        """Two threads, each handler allocating a class that the other thread's code holds the
        lists of now and then: a handler that found its class's lists held by its own thread got
        null; then, served from the next class, two such handlers waited for each other's locks
        for good; and a handler that took blocks from a bin being flushed made the flush read
        outside the bin (a crash every run). Pools only: under full tracking a handler that lands
        in the dynamic linker's lazy binding takes its stack through libunwind, slower than the
        20 us period, and the thread then runs nothing but handlers (README, Known limits)."""
        res = hl.run_preloaded([self.program("signal_cross_classes"), "2", "20000"], "track=0", timeout=60)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertEqual(res.stdout, "signal_cross_classes: 2 threads x 20000 rounds\n")

    def test_a_signal_handler_between_any_two_instructions_of_malloc_and_free(self):
        """A handler that mallocs and frees at every instruction of the program's malloc and free
        (the trap flag steps them): no block goes to two owners, and the report has no heap
        error. A handler's pop between its thread's read of a cache's count and its store of the
        new one took the block the thread was taking: shared blocks pools only, and false
        "freed twice" reports tracked (a review's program with 120 threads whose SIGUSR1
        handlers malloc and free). Tracked: with the quarantine, without it (frees go straight
        back to the thread's cache), with a small one that gives blocks back all the time, and
        with a second thread waiting meanwhile (no single-thread paths)."""
        program = self.program("signal_every_instruction")
        # Pools only, the handler installed in each of the eight ways heapledger sees: each
        # closes the fast paths that leave the cache unmarked (they serve programs with no
        # handler at all). A review found strict ISO C's signal() (__sysv_signal) unseen.
        for how in ("0", "1", "2", "3", "4", "5", "6", "7"):
            res = hl.run_preloaded([program, "3", "200", "48", "0", how], "track=0", timeout=60)
            self.assertEqual(res.returncode, 0, f"how={how}: " + res.describe())
            self.assertEqual(res.stdout, "signal_every_instruction: 1200 calls stepped, shared=0\n")
        for quarantine_mb, run, size, idle in (("16", 30, 48, 0), ("0", 30, 48, 0),
                                               ("1", 40, 20000, 0), ("1", 40, 20000, 1)):
            with self.subTest(quarantine_mb=quarantine_mb, size=size, idle=idle):
                json_path = self.path(f"stepped{quarantine_mb}-{size}-{idle}.json")
                res = hl.run_preloaded([program, "1", str(run), str(size), str(idle)],
                                       f"log=none:json={json_path}:quarantine_mb={quarantine_mb}",
                                       timeout=120)
                self.assertEqual(res.returncode, 0, res.describe())
                self.assertEqual(res.stdout,
                                 f"signal_every_instruction: {2 * run} calls stepped, shared=0\n")
                summary = hl.load_report(json_path)["summary"]
                self.assertEqual(summary["errors"], 0, summary)
                self.assertEqual(summary["leaked_blocks"], 0, summary)

    def test_late_tls_destructors(self):
        """A TLS destructor that runs after heapledger's own thread-exit work frees (and, once,
        leaks). A full walk there went to libunwind, whose per-thread cache (256 KiB) nothing
        freed: 2,000 threads were 536 MB resident. Then its stacks were the calling frame alone
        (a user trial's: valgrind and LeakSanitizer name the destructor's callers); now the fast
        unwinder walks them, with a buffer on the thread's stack."""
        json_path = self.path("late.json")
        res = hl.run_preloaded([self.program("late_tls_destructor"), "2000"], f"log=none:json={json_path}")
        self.assertEqual(res.returncode, 0, res.describe())
        rss_kb = int(res.stdout.split()[-1])
        self.assertLess(rss_kb, 100_000, res.stdout)
        leak = self.assertLeak(hl.load_report(json_path), "late_leak_site", 77, 1)[0]
        functions = [f["function"] for f in leak["stack"]]
        self.assertEqual(functions[1], "late_destructor", leak["stack"])
        self.assertIn("start_thread", functions, leak["stack"])

    # --- options -------------------------------------------------------------------------------

    def test_text_report_on_stderr(self):
        """With no options at all, the text report goes to stderr and names the leaking function."""
        argv = [self.program("leak_malloc")]
        traced = hl.run_preloaded(argv, options=None)
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.assertIn("leak_malloc", traced.stderr, traced.describe())

    def test_log_file(self):
        log = self.path("report.txt")
        _, traced, _ = self.traced("leak_malloc", options=f"log={log}")
        with open(log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.assertIn("leak_malloc", text)
        self.assertIn("leak_other", text)
        self.assertNotIn("leak_malloc", traced.stderr, "log=PATH still wrote the report to stderr")

    def test_log_none(self):
        _, traced, _ = self.traced("leak_malloc", options="log=none")
        self.assertEqual(traced.stderr.strip(), "", "log=none: nothing on stderr")

    def test_log_pid_in_path(self):
        argv = [self.program("leak_malloc")]
        traced = hl.run_preloaded(argv, f"log={self.path('r.%p.txt')}")
        self.assertEqual(os.listdir(self.tmp), [f"r.{traced.pid}.txt"])
        with open(self.path(f"r.{traced.pid}.txt"), encoding="utf-8", errors="replace") as f:
            self.assertIn("leak_malloc", f.read())

    def test_json_pid_in_path(self):
        argv = [self.program("leak_malloc")]
        traced = hl.run_preloaded(argv, f"json={self.path('r.%p.json')}:log=none")
        self.assertEqual(os.listdir(self.tmp), [f"r.{traced.pid}.json"])
        report = hl.load_report(self.path(f"r.{traced.pid}.json"))
        self.assertValidReport(report, pid=traced.pid)
        self.assertLeak(report, "leak_malloc", 300, 3)

    def test_a_report_file_another_process_wrote_meanwhile_is_replaced_with_a_warning(self):
        """Processes of one run sharing a report path without %p replace each other's reports:
        the one whose report replaces a report written while it ran says so, once; a later run
        that replaces an earlier run's file does not."""
        prog = self.program("leak_malloc")
        for what, option in (("text", "log={}"), ("JSON", "json={}:log=none")):
            with self.subTest(report=what):
                path = self.path(f"shared-{what}")
                opts = option.format(path)
                shell = hl.run_preloaded(["/bin/sh", "-c", f"sleep 0.1; {prog}; {prog}"], opts)
                self.assertEqual(shell.returncode, 0, shell.describe())
                said = self.warning_lines(shell.stderr, "while this one ran")
                self.assertEqual(len(said), 1, shell.stderr)
                self.assertIn(f"another process wrote {path} while this one ran, and this {what} report "
                              "replaced its", said[0])
                self.assertEqual(self.warning_lines(shell.stderr, "warning"), said, shell.stderr)
                again = hl.run_preloaded([prog], opts)
                self.assertEqual(self.warning_lines(again.stderr, "warning"), [], again.stderr)

    def warning_lines(self, stderr, word):
        return [line for line in stderr.splitlines() if word in line]

    def test_bad_option(self):
        """An unknown key: one warning line naming it, the program runs on normally."""
        argv = [self.program("leak_malloc")]
        traced = hl.run_preloaded(argv, "bogus=1")
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.assertEqual(len(self.warning_lines(traced.stderr, "bogus")), 1, traced.describe())

    def test_bad_option_rest_applied(self):
        """The options around an unknown key still apply; the warning is the only stderr line."""
        _, traced, report = self.traced("leak_malloc", options="bogus=1:log=none")
        lines = [line for line in traced.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, traced.describe())
        self.assertIn("bogus", lines[0])
        self.assertLeak(report, "leak_malloc", 300, 3)

    def test_bad_value(self):
        _, traced, report = self.traced("leak_malloc", options="log=none:max_frames=abc")
        lines = [line for line in traced.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, traced.describe())
        self.assertIn("max_frames", lines[0])
        self.assertLeak(report, "leak_malloc", 300, 3)

    def test_unwritable_json(self):
        """json= in a directory that cannot be made (under a file): a warning, the JSON on
        stderr, the program unharmed."""
        argv = [self.program("leak_malloc")]
        with open(self.path("a_file"), "w", encoding="utf-8"):
            pass
        bad = self.path("a_file/dir/x.json")
        traced = hl.run_preloaded(argv, f"json={bad}:log=none")
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.assertTrue(self.warning_lines(traced.stderr, bad), traced.describe())
        report = hl.find_json_document(traced.stderr)
        self.assertIsNotNone(report, f"no JSON report on stderr\n{traced.describe()}")
        self.assertLeak(report, "leak_malloc", 300, 3)
        self.assertFalse(os.path.exists(bad))

    def test_a_report_directory_that_is_not_there_is_made(self):
        """A report file's directory that is not there is made (with its parents) as the report
        is written, also one each process names with %p: every process's report went to stderr
        after a warning, the JSON too (a user trial). Made by the library, so with LD_PRELOAD as
        well as under `heapledger run` (which makes those it can name before the program runs)."""
        argv = ["sh", "-c", '"$0"; "$0"', self.program("leak_malloc")]
        plain = hl.run_plain(argv)
        traced = hl.run_preloaded(argv, f"json={self.path('made/%p/r.json')}:"
                                        f"log={self.path('logs/deeper/%p.txt')}")
        self.assertSameBehaviour(plain, traced)
        self.assertEqual(traced.stderr, "")
        reports = [hl.load_report(os.path.join(self.path("made"), pid, "r.json"))
                   for pid in os.listdir(self.path("made"))]
        self.assertEqual(len(reports), 3)  # sh and its two children
        self.assertEqual(sum(len(hl.leaks_at(r, "leak_malloc")) for r in reports), 2)
        self.assertEqual(len(os.listdir(self.path("logs/deeper"))), 3)

    def test_report_file_in_a_directory_the_user_cannot_write_to(self):
        # The report file is there and the user's to write, in a directory they cannot write
        # to: the temporary file beside it could not be made, and the report went to stderr.
        # Written over in place. (As another user: root writes anywhere.)
        nobody = 65534
        os.chmod(self.tmp, 0o755)
        locked = self.path("locked")
        os.makedirs(locked, mode=0o755)
        report = os.path.join(locked, "report.json")
        with open(report, "w", encoding="utf-8") as f:
            f.write("old contents, longer than nothing at all\n")
        os.chown(report, nobody, nobody)
        argv = ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
                self.program("leak_malloc")]
        res = hl.run(argv, env=hl.preload_env(f"json={report}:log=none"))
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertNotIn("cannot write", res.stderr)
        r = hl.load_report(report)
        self.assertValidReport(r, pid=res.pid)
        self.assertEqual(os.stat(report).st_uid, nobody)

    def test_a_new_report_file_in_a_directory_the_user_cannot_write_to(self):
        """No report file there yet, and the directory takes no new file: the warning gives the
        reason the file could not be made (it said "No such file or directory", the error of
        the later look for an existing file: a review), and the JSON goes to stderr."""
        nobody = 65534
        os.chmod(self.tmp, 0o755)
        locked = self.path("locked_new")
        os.makedirs(locked, mode=0o755)
        report = os.path.join(locked, "report.json")
        argv = ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups",
                self.program("leak_malloc")]
        res = hl.run(argv, env=hl.preload_env(f"json={report}:log=none"))
        self.assertEqual(res.returncode, 0, res.describe())
        warning = [l for l in res.stderr.splitlines() if "cannot write the JSON report" in l]
        self.assertEqual(len(warning), 1, res.stderr[:2000])
        self.assertIn("Permission denied", warning[0])
        self.assertFalse(os.path.exists(report))

    def test_report_past_the_file_size_limit(self):
        """A program that lowers its file size limit below the report's size: the write fails
        (EFBIG) instead of SIGXFSZ ending the program (status 153), the JSON goes to stderr (a
        pipe: no limit) after a warning, and no temporary file is left."""
        argv = [self.program("file_size_limit"), "4096"]
        out = self.path("limited")
        os.makedirs(out, exist_ok=True)
        target = os.path.join(out, "r.json")
        traced = hl.run_preloaded(argv, f"json={target}:log=none")
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.assertEqual(traced.returncode, 3, traced.describe())
        self.assertTrue(self.warning_lines(traced.stderr, target), traced.describe())
        self.assertIn("File too large", traced.stderr)
        report = hl.find_json_document(traced.stderr)
        self.assertIsNotNone(report, f"no JSON report on stderr\n{traced.describe()}")
        self.assertLeak(report, "leak_site", 321, 1)
        self.assertEqual(os.listdir(out), [])  # neither the report nor its temporary file
        # Under a limit the report fits in, it is written as usual.
        traced = hl.run_preloaded([self.program("file_size_limit"), str(1 << 24)], f"json={target}:log=none")
        self.assertEqual(traced.returncode, 3, traced.describe())
        self.assertLeak(hl.load_report(target), "leak_site", 321, 1)

    def test_a_report_to_a_pipe_nobody_reads_leaves_the_exit_status(self):
        """stderr a pipe whose reader has gone (`prog 2>&1 | head -1` once head has its line):
        the report's write fails (EPIPE) instead of SIGPIPE ending the program, which it did
        (-13 here, 141 under a shell) for /bin/true and a leaking program alike; a JSON report
        asked for in a file is written there whole all the same."""
        def run_into_closed_pipe(argv, options):
            read_end, write_end = os.pipe()
            os.close(read_end)  # nobody will read it
            try:
                return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=write_end, env=hl.preload_env(options), timeout=100)
            finally:
                os.close(write_end)
        leak = self.program("leak_malloc")
        for argv in (["/bin/true"], [leak]):
            for options in (None, "log=/dev/stderr", "json=/dev/stderr:log=none"):
                with self.subTest(argv=argv[0], options=options):
                    self.assertEqual(run_into_closed_pipe(argv, options).returncode, 0)
        target = self.path("closed_pipe.json")
        self.assertEqual(run_into_closed_pipe([leak], f"json={target}").returncode, 0)
        self.assertLeak(hl.load_report(target), "leak_malloc", 300, 3)

    def test_a_json_report_to_the_programs_own_stdout_is_not_written_over(self):
        """json=/dev/stdout (or /dev/fd/1, /proc/self/fd/1) with stdout redirected to a file: the
        report goes through the program's own descriptor, at its offset. Opened again by path,
        it went to the file's end through a description of its own, and the program's line,
        flushed after the report at the offset of the program's description, landed on the
        report's first bytes. Now the file holds the line once and the whole report."""
        out_path = self.path("stdout.txt")
        argv = [self.program("leak_malloc")]
        for target in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
            with self.subTest(target=target):
                with open(out_path, "wb") as out:
                    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.PIPE, timeout=100,
                                          env=hl.preload_env(f"json={target}:log=none"))
                self.assertEqual((proc.returncode, proc.stderr), (0, b""))
                with open(out_path, encoding="utf-8") as f:
                    text = f.read()
                self.assertEqual(text.count("leak_malloc: leaked 3 x 100 bytes and 1 x 50 bytes\n"), 1, text[:300])
                report = hl.find_json_document(text)
                self.assertIsNotNone(report, text[:300])
                self.assertLeak(report, "leak_malloc", 300, 3)

    def run_own_streams(self, lines, data=None, options=None, close_fd=None, preload=True, **kw):
        """own_streams LINES [DATA] with stdout and stderr as kw says (files, pipes), or one of them
        closed at start (close_fd): then the program's DATA file takes that descriptor."""
        argv = [self.program("own_streams"), str(lines)] + ([data] if data else [])
        env = hl.preload_env(options) if preload else hl.clean_env()
        pre = (lambda: os.close(close_fd)) if close_fd is not None else None
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.run(argv, stdin=subprocess.DEVNULL, env=env, preexec_fn=pre, timeout=100, **kw)

    def test_a_parent_that_reads_stderr_after_the_wait_is_not_held_up(self):
        """`p = Popen(..., stderr=PIPE); p.wait()` before reading: works while the children write
        less than the pipe holds. 60 processes' text reports (~80 KiB) filled the 64 KiB pipe, and
        each process after that waited out its 60 s deadline in turn (a user trial's script of
        185 processes never ended). A pipe found full is made larger (up to 1 MiB)."""
        argv = ["sh", "-c", 'for i in $(seq 60); do "$0"; done', self.program("leak_malloc")]
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=hl.preload_env("log=stderr"))
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("the processes waited for the parent to read their stderr")
        err = p.stderr.read().decode()
        p.stderr.close()
        self.assertEqual(p.returncode, 0)
        self.assertEqual(err.count("LEAK 1 of 2: 300 bytes in 3 blocks definitely lost"), 60, err[-3000:])

    def test_processes_sharing_a_stream_write_their_reports_one_at_a_time(self):
        """Eight children exiting at once, each with a report of 40 leak sites for the stream
        they share (stderr as a pipe, or stdout with json=/dev/stdout): each report comes out
        whole. Before, their many writes interleaved: 12 switches between processes instead of
        8, and lines cut in two, in every run of this."""
        argv = [self.program("fork_reports"), "8"]
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=hl.preload_env("max_leaks=0"), timeout=100)
        self.assertEqual(res.returncode, 0)
        pids, malformed = [], []
        for line in res.stderr.decode().splitlines():
            m = re.match(r"==(\d+)==", line)
            if not m:
                malformed.append(line)
            elif not pids or pids[-1] != m.group(1):
                pids.append(m.group(1))
        self.assertEqual(malformed, [])
        self.assertEqual(len(pids), 9, pids)  # each process's lines in one run: 8 children and the parent
        self.assertEqual(len(set(pids)), 9, pids)
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=hl.preload_env("json=/dev/stdout:log=none"), timeout=100)
        self.assertEqual(res.returncode, 0, res.stderr.decode()[:2000])
        text, reports, decoder = res.stdout.decode(), [], json.JSONDecoder()
        at = 0
        while at < len(text):
            report, at = decoder.raw_decode(text, at)
            reports.append(report)
            while at < len(text) and text[at].isspace():
                at += 1
        self.assertEqual(len(reports), 9)
        self.assertEqual(sorted(r["summary"]["leaked_blocks"] for r in reports), [0] + [40] * 8)
        # A reader that pauses longer than a process waits for its turn (3 s): the time the
        # pipe is full does not count, and the reports still come one at a time. They were cut
        # into each other (2.6 MB each: 150 frames more per stack), the JSON unreadable (a user
        # trial, with the text report).
        proc = subprocess.Popen([self.program("fork_reports"), "4", "150"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=hl.preload_env("json=/dev/stdout:log=none:max_frames=256"))
        time.sleep(4.5)
        out, err = proc.communicate(timeout=200)
        self.assertEqual(proc.returncode, 0, err.decode()[:2000])
        text, reports, at = out.decode(), [], 0
        while at < len(text):
            report, at = decoder.raw_decode(text, at)
            reports.append(report)
            while at < len(text) and text[at].isspace():
                at += 1
        self.assertEqual(sorted(r["summary"]["leaked_blocks"] for r in reports), [0] + [40] * 4)

    def test_a_non_blocking_stream_with_a_slow_reader_gets_the_whole_report(self):
        """A program that leaves its stderr (or stdout) non-blocking, with a report larger than the
        pipe holds and a reader that starts late: the report stopped at 64 KiB, cut mid-line, and
        json=/dev/stdout was cut, then written again whole to stderr (a user trial). Now each
        comes whole, as into a file."""
        sites = 200
        expected_bytes = sum(10 + d for d in range(sites))
        argv = [self.program("nonblocking_streams"), str(sites)]
        for stream, options in (("stderr", "max_leaks=0:max_frames=256"),
                                ("stdout", "json=/dev/stdout:log=none:max_frames=256")):
            with self.subTest(stream=stream):
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=hl.preload_env(options))
                time.sleep(1.0)  # the pipes fill while nobody reads them
                out, err = proc.communicate(timeout=100)
                self.assertEqual(proc.returncode, 0, err.decode()[-2000:])
                if stream == "stderr":
                    text = err.decode()
                    self.assertGreater(len(text), 1 << 16)
                    self.assertEqual(len(re.findall(r"LEAK \d+ of %d:" % sites, text)), sites)
                    self.assertTrue(text.endswith("\n"), text[-200:])
                    self.assertIn("PEAK:", text)
                    self.assertEqual(out, b"done\n")
                else:
                    self.assertEqual(err, b"")
                    text = out.decode()
                    self.assertTrue(text.startswith("done\n"), text[:100])
                    report = json.loads(text[len("done\n"):])
                    self.assertEqual(report["summary"]["leaked_blocks"], sites)
                    self.assertEqual(report["summary"]["leaked_bytes"], expected_bytes)

    def test_a_thread_exiting_while_the_report_waits_for_a_slow_reader_waits_for_it(self):
        """Main returns and its report (larger than a pipe holds) waits for a reader that starts
        6 s late, while another thread calls exit(7): that exit waits for the report while it makes
        progress, and a write waiting for room counts. It did not: the thread ended the process
        after about 4 s (two 2 s waits), the report cut at the pipe's 64 KiB (stderr: a pipe
        full but for 4 KiB, see popen_unread_stderr). Both
        streams blocking (text on stderr) and non-blocking (JSON on stdout), run side by side."""
        sites = 200
        runs = {}
        for mode, options in (("blocking-exit-meanwhile", "max_leaks=0:max_frames=256"),
                              ("exit-meanwhile", "json=/dev/stdout:log=none:max_frames=256")):
            runs[mode] = self.popen_unread_stderr([self.program("nonblocking_streams"), str(sites), mode],
                                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                  env=hl.preload_env(options))
        time.sleep(6.0)
        for mode, proc in runs.items():
            with self.subTest(mode=mode):
                out, err = proc.communicate(timeout=100)
                # Either ends the process once the report is out: main's exit(0) or the thread's
                # exit(7), which waited for it.
                self.assertIn(proc.returncode, (0, 7), err.decode()[-2000:])
                if mode.startswith("blocking"):
                    text = err.decode()
                    self.assertEqual(len(re.findall(r"LEAK \d+ of %d:" % sites, text)), sites)
                    self.assertIn("PEAK:", text)
                    self.assertTrue(text.endswith("\n"), text[-200:])
                else:
                    text = out.decode()
                    self.assertTrue(text.startswith("done\n"), text[:100])
                    self.assertEqual(json.loads(text[len("done\n"):])["summary"]["leaked_blocks"], sites)

    def test_a_stream_closed_at_start_never_gets_a_report(self):
        """Started with stderr (or stdout) closed, a program that opens a file gets that
        descriptor: the text report (or json=/dev/stdout) went into the program's file (a user
        trial: 5 bytes of data became 757). Now its file is as a plain run leaves it; the text
        report has nowhere to go, and the JSON goes to stderr after a one-line warning."""
        data = self.path("own_data.txt")
        for fd, options in ((2, None), (2, "json=/dev/stderr:log=none"), (1, "json=/dev/stdout:log=none")):
            with self.subTest(fd=fd, options=options):
                plain = self.run_own_streams(2, data, close_fd=fd, preload=False)
                with open(data, "rb") as f:
                    expected = f.read()
                traced = self.run_own_streams(2, data, options, close_fd=fd)
                self.assertEqual(traced.returncode, plain.returncode)
                with open(data, "rb") as f:
                    self.assertEqual(f.read(), expected)
                if fd == 1:
                    err = traced.stderr.decode()
                    self.assertEqual(len(self.warning_lines(err, "/dev/stdout")), 1, err[:2000])
                    self.assertIn("the program started with stdout closed; writing it to stderr", err)
                    self.assertLeak(hl.find_json_document(err), "leak_site", 100, 1)

    def test_a_null_device_made_elsewhere_is_still_the_stderr_the_program_started_with(self):
        """A stderr on a null device that is not /dev/null's file (`2>/chroot/dev/null`: a
        device node of its own, another inode) was named "/dev/null" once the start stopped
        asking /proc for the names of its streams, and reopened by that name it was another
        file: the report of a program that put its log on fd 2 went into the log, after a line
        saying its stderr could not be reached (a review's). It goes to the null device, as
        before; the log keeps only the program's own lines."""
        node = self.path("null")
        try:
            os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except OSError as e:
            self.skipTest(f"cannot make a device node here: {e}")
        log = self.path("dup2.log")
        with open(log, "w") as f:
            f.write("PRE\n")
        with open(node, "wb") as null:
            res = subprocess.run([self.program("replace_stderr"), "dup2", log], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=null, env=hl.preload_env(), timeout=100)
        self.assertEqual((res.returncode, res.stdout), (3, b""))
        with open(log, encoding="utf-8") as f:
            text = f.read()
        self.assertEqual(text.splitlines(), ["PRE", "the program's line on its new stderr"], text[:2000])

    def test_a_report_goes_to_the_stderr_the_program_put_in_place_of_a_pipe(self):
        """A program started with stderr on a pipe (`prog 2>&1 | cat`, systemd, docker) that puts
        its log there instead (dup2, dup3, freopen; PostgreSQL's processes, the pipe to their log
        collector): its text report was lost without a word (a user trial on PostgreSQL lost every
        report but the collector's). Now it goes where the program's own lines go, after one line
        that says why, and the pipe gets nothing of ours. A file that only landed on fd 2 while
        it was free gets nothing, and a stderr that was a file keeps getting the report."""
        argv = [self.program("replace_stderr")]
        for mode in ("dup2", "dup3", "freopen", "collector"):
            with self.subTest(mode=mode):
                log = self.path(f"{mode}.log")
                with open(log, "w") as f:
                    f.write("PRE\n")
                # stdout a pipe too: the collector holds it until it has copied everything. The
                # stderr pipe is made here, so that its inode is known: the line names the pipe as
                # /proc does (the library makes the name up from the inode, without asking /proc).
                err_read, err_write = os.pipe()
                pipe_inode = os.fstat(err_write).st_ino
                try:
                    res = subprocess.run(argv + [mode, log], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err_write,
                                         env=hl.preload_env(), timeout=100)
                    os.close(err_write)
                    err_write = -1
                    with os.fdopen(err_read, "rb") as f:
                        err_read = -1
                        stderr = f.read()
                finally:
                    for fd in (err_read, err_write):
                        if fd >= 0:
                            os.close(fd)
                self.assertEqual((res.returncode, res.stdout, stderr), (3, b"", b""))
                with open(log, encoding="utf-8") as f:
                    text = f.read()
                lines = text.splitlines()
                self.assertEqual(lines[:2], ["PRE", "the program's line on its new stderr"], text[:1000])
                self.assertEqual(lines[2], f"heapledger: the stderr this process started with "
                                 f"(pipe:[{pipe_inode}]) cannot be reached; writing to the one the "
                                 f"program put in its place")
                self.assertRegex(lines[3], r"^==\d+== heapledger ")
                self.assertEqual(len(re.findall(r"LEAK \d+ of \d+:", text)), 1, text)
                self.assertIn("LEAK 1 of 1: 100 bytes in 1 block definitely lost", text)
                self.assertEqual(sum(1 for line in lines if line.startswith("heapledger:")), 1, text)
        # Files that landed on fd 2 while it was free: the program's data, never ours. "reuse":
        # the log the program put there was removed, and the data file opened next may get its
        # inode number (it did on ext4: the report went into the data, a review's; in 1 of 10
        # runs by hand here, so that one runs 20 times; the unit test StderrLine.AFileThatTook-
        # TheInodeOfTheProgramsLogGetsNothing checks the birth time every time). "vfork": a
        # vforked child's dup2 onto its own fd 2 was noted in its parent's memory, and the
        # parent's data file on fd 2 got the report (a review's).
        data = self.path("data.txt")
        reuse = ["reuse", self.path("gone.log"), data]
        for args, close_stderr in [(["open", data], False)] + [(reuse, False)] * 20 + [(["vfork", data], True)]:
            with self.subTest(mode=args[0]):
                pre = (lambda: os.close(2)) if close_stderr else None
                plain = subprocess.run(argv + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=hl.clean_env(), timeout=100, preexec_fn=pre)
                res = subprocess.run(argv + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=hl.preload_env(), timeout=100, preexec_fn=pre)
                self.assertEqual((res.returncode, res.stdout, res.stderr), (plain.returncode, b"", b""))
                with open(data, "rb") as f:
                    self.assertEqual(f.read(), b"DATA\n")
        # json=/dev/stderr goes where log=stderr goes: before, a warning said it could not be
        # written to /dev/stderr and was "writing it to stderr", then wrote it to the same file.
        with self.subTest(options="json=/dev/stderr"):
            log = self.path("json.log")
            res = subprocess.run(argv + ["dup2", log], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=hl.preload_env("json=/dev/stderr:log=none"),
                                 timeout=100)
            self.assertEqual((res.returncode, res.stdout, res.stderr), (3, b"", b""))
            with open(log, encoding="utf-8") as f:
                text = f.read()
            self.assertNotIn("warning", text)
            self.assertEqual(sum(1 for line in text.splitlines() if line.startswith("heapledger:")), 1, text)
            self.assertLeak(hl.find_json_document(text), "leak_site", 100, 1)
        with self.subTest(mode="stderr a file"):
            log, err_file = self.path("file.log"), self.path("stderr.txt")
            with open(err_file, "wb") as err:
                res = subprocess.run(argv + ["dup2", log], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err, env=hl.preload_env(), timeout=100)
            self.assertEqual(res.returncode, 3)
            with open(log, encoding="utf-8") as f:
                self.assertEqual(f.read(), "the program's line on its new stderr\n")
            with open(err_file, encoding="utf-8") as f:
                text = f.read()
            self.assertRegex(text, r"^==\d+== heapledger ")
            self.assertIn("LEAK 1 of 1: 100 bytes in 1 block definitely lost", text)

    def test_the_librarys_own_lines_never_go_into_the_programs_file(self):
        """Started with stderr closed, a program opens its data file as fd 2; the library, installed
        without its reporter module, says at exit that it has no report: that line went into the
        program's file (the reporter's own lines checked for this; the library's did not)."""
        lib_dir = self.path("no_reporter")
        os.makedirs(lib_dir, exist_ok=True)
        lib = os.path.join(lib_dir, "libheapledger.so")
        shutil.copy(os.path.realpath(hl.LIB), lib)
        shutil.copy(os.path.join(os.path.dirname(os.path.realpath(hl.LIB)), "libheapledger_runtime.so"), lib_dir)
        data = self.path("own_data.txt")
        plain = self.run_own_streams(2, data, close_fd=2, preload=False)
        with open(data, "rb") as f:
            expected = f.read()
        env = hl.clean_env()
        env["LD_PRELOAD"] = lib
        traced = subprocess.run([self.program("own_streams"), "2", data], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=100,
                                preexec_fn=lambda: os.close(2))
        self.assertEqual(traced.returncode, plain.returncode)
        with open(data, "rb") as f:
            self.assertEqual(f.read(), expected)
        # With stderr open, the line is there: the library did run without its reporter.
        res = subprocess.run([self.program("own_streams"), "2"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=100)
        self.assertIn(b"no report: the reporter module could not be loaded", res.stderr)

    def test_a_report_into_the_file_the_programs_output_goes_to_keeps_that_output(self):
        """log=FILE (or json=FILE) where the program's stdout and stderr are redirected too
        (`>> FILE 2>&1`): the report goes through the program's descriptor. Written to a
        temporary file and renamed over it, it replaced the file and the program's output with
        it (a user trial). Now the file holds what was there, the program's output, and the
        report after that output (stdio's buffer is flushed first)."""
        log = self.path("app.log")
        for options, is_json in ((f"log={log}", False), (f"json={log}:log=none", True)):
            with self.subTest(options=options):
                with open(log, "w") as f:
                    f.write("PRE\n")
                with open(log, "ab") as out:
                    res = self.run_own_streams(50, None, options, stdout=out, stderr=subprocess.STDOUT)
                self.assertEqual(res.returncode, 3)
                with open(log, encoding="utf-8") as f:
                    text = f.read()
                self.assertTrue(text.startswith("PRE\nthe program's line on stderr\nline 0 of"), text[:200])
                lines = [f"line {i} of the program's output\n" for i in range(50)]
                self.assertIn("".join(lines), text)
                after = text.index(lines[-1]) + len(lines[-1])
                if is_json:
                    self.assertEqual(text[after], "{")
                    self.assertLeak(hl.find_json_document(text[after:]), "leak_site", 100, 1)
                else:
                    self.assertRegex(text[after:], r"^==\d+== heapledger ")
                    self.assertIn("100 B in 1 block", text[after:])

    def test_a_report_to_a_descriptor_open_only_for_reading_leaves_its_file_alone(self):
        """json=/dev/stdin with stdin from a file: the descriptor is open only for reading, and
        opened again by path for writing the report went into the program's input (a user
        trial). Now a warning says so and the JSON goes to stderr; the input file is unchanged."""
        source = self.path("input.txt")
        with open(source, "w") as f:
            f.write("input\n")
        argv = [self.program("own_streams"), "1"]
        with open(source, "rb") as stdin:
            res = subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 env=hl.preload_env("json=/dev/stdin:log=none"), timeout=100)
        self.assertEqual(res.returncode, 3)
        with open(source) as f:
            self.assertEqual(f.read(), "input\n")
        err = res.stderr.decode()
        self.assertEqual(len(self.warning_lines(err, "open only for reading")), 1, err[:2000])
        self.assertLeak(hl.find_json_document(err), "leak_site", 100, 1)

    def test_report_after_the_program_used_up_its_descriptors(self):
        """A program that opened files up to its (soft) limit still gets its report: loading the
        reporter, reading debug information and writing the file need descriptors of their own.
        It was lost ("cannot load ...: Too many open files")."""
        argv = [self.program("out_of_descriptors")]
        target = self.path("fds.json")
        traced = hl.run_preloaded(argv, f"json={target}:log=none")
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.assertEqual(traced.stderr.strip(), "", traced.describe())
        report = hl.load_report(target)
        self.assertLeak(report, "leak_site", 321, 1, kind="definite")
        self.assertLeak(report, "kept_site", 123, 1, kind="reachable")

    def test_a_second_copy_of_the_library_stays_out(self):
        """Two copies preloaded (an installed one in the environment and a build's, say): the first
        serves malloc and reports; the second says so, naming both. It said "tracking disabled:
        the program's malloc is .../libheapledger.so's, not heapledger's" (a user trial)."""
        copy_dir = self.path("second_copy")
        os.makedirs(copy_dir, exist_ok=True)
        lib_dir = os.path.dirname(os.path.realpath(hl.LIB))
        copy = os.path.join(copy_dir, "libheapledger.so")
        shutil.copy(os.path.realpath(hl.LIB), copy)
        for module in ("libheapledger_runtime.so", "libheapledger_reporter.so"):
            shutil.copy(os.path.join(lib_dir, module), copy_dir)
        argv = [self.program("leak_malloc")]
        report_path = self.path("two_copies.json")
        env = hl.clean_env()
        env.update(LD_PRELOAD=f"{hl.LIB} {copy}", HEAPLEDGER_OPTIONS=f"json={report_path}")
        res = hl.run(argv, env=env)
        self.assertSameBehaviour(hl.run_plain(argv), res)
        lines = res.stderr.splitlines()
        self.assertEqual(lines[0], f"heapledger: {copy} stays out: another copy of heapledger, "
                                   f"{hl.LIB}, is preloaded before it and tracks the program")
        self.assertRegex(lines[1], r"^==\d+== heapledger ")  # the first copy's text report
        self.assertEqual([line for line in lines if not line.startswith("==")], lines[:1])
        report = hl.load_report(report_path)
        self.assertLeak(report, "leak_malloc", 300, 3)
        self.assertLeak(report, "leak_other", 50, 1)

    def test_a_program_with_its_own_malloc(self):
        """An executable that defines malloc (as rustc does) never calls ours: one line says so and
        the program runs as it would, with no report (it said "no heap allocations"; rustc, whose
        libLLVM has its own copy of libstdc++, crashed in the reporter at exit)."""
        argv = [self.program("own_malloc")]
        report_path = self.path("own.json")
        res = hl.run_preloaded(argv, f"json={report_path}")
        self.assertSameBehaviour(hl.run_plain(argv), res)
        self.assertEqual(res.stdout, "own malloc: used\n")
        line = f"heapledger: tracking disabled: the program's malloc is {argv[0]}'s, not heapledger's"
        self.assertEqual(res.stderr.strip().splitlines(), [line])
        self.assertFalse(os.path.exists(report_path))
        # The line goes where the text report would: nowhere with log=none, into the log file
        # with log=FILE. On stderr whatever the log, cargo kept rustc's as compiler output and
        # showed it at every later build (a user trial's).
        res = hl.run_preloaded(argv, "log=none")
        self.assertEqual((res.returncode, res.stdout, res.stderr), (0, "own malloc: used\n", ""), res.describe())
        log_pattern = self.path("own.%p.txt")
        res = hl.run_preloaded(argv, f"log={log_pattern}")
        self.assertEqual((res.returncode, res.stdout, res.stderr), (0, "own malloc: used\n", ""), res.describe())
        with open(log_pattern.replace("%p", str(res.pid))) as f:
            self.assertEqual(f.read(), line + "\n")
        self.assertEqual([n for n in os.listdir(os.path.dirname(log_pattern)) if ".tmp" in n], [])
        # Written in place: through a symlink to its target (the link stays), and through stderr
        # when the log is the file stderr appends to (a temporary file renamed over them replaced
        # the link, and the program's earlier output: a review's).
        target, link = self.path("target.log"), self.path("link.log")
        with open(target, "w") as f:
            f.write("an old report\n")
        os.symlink(target, link)
        res = hl.run_preloaded(argv, f"log={link}")
        self.assertTrue(os.path.islink(link))
        with open(target) as f:
            self.assertEqual(f.read(), line + "\n")
        app_log = self.path("app.log")
        with open(app_log, "w") as f:
            f.write("earlier\n")
        res = hl.run(["sh", "-c", 'exec "$0" >> "$1" 2>&1', argv[0], app_log],
                     env=hl.preload_env(f"log={app_log}"))
        with open(app_log) as f:
            self.assertEqual(f.read(), f"earlier\n{line}\nown malloc: used\n")

    def test_errno_is_zero_when_main_starts(self):
        """C has errno zero at program start; under full tracking main found ENOENT there, left
        by a file the tracker's start looked for (a review's). Each mode, and heapledger run."""
        argv = [self.program("errno_at_start")]
        self.assertEqual(hl.run_plain(argv).stdout, "errno 0\n")
        for options in (None, "log=none", "track=0"):
            with self.subTest(options=options):
                self.assertEqual(hl.run_preloaded(argv, options).stdout, "errno 0\n")
        self.assertEqual(hl.run_cli(["--log", "none"], argv).stdout, "errno 0\n")

    def test_a_signal_sent_to_the_thread_writing_the_report_waits_for_it(self):
        """SIGTERM sent to the thread that writes the exit report (the kernel hands a signal sent
        to the process to any thread) ended the process at once: `timeout` or Ctrl-C during
        the report lost it and left its temporary file behind (a trial's). The program's
        helper thread sends it every 200 us from the moment heapledger catches it (its
        destructor) until the process ends: the report is whole, then SIGTERM ends the process.
        The JSON file, and the text report on stderr."""
        argv = [self.program("signal_during_report"), "20000"]
        for run in range(4):
            with self.subTest(run=run):
                report_path = self.path(f"held{run}.json")
                # leak_exitcode does not replace the signal (it did when the signal was held:
                # the report's end called _exit(23) first; a review's).
                exit_code = ":leak_exitcode=23" if run % 2 else ""
                traced = hl.run_preloaded(argv, f"json={report_path}{exit_code}")
                self.assertEqual((traced.returncode, traced.stdout), (-signal.SIGTERM, "exiting\n"),
                                 traced.describe())
                report = hl.load_report(report_path)
                self.assertLeak(report, "leak_block", 48 * 19999, 19999, kind="definite")
                last = traced.stderr.rstrip().splitlines()[-1]  # the text report's last line
                self.assertRegex(last, r"^==\d+==.* 1 block  at main ", traced.describe())
                self.assertEqual([f for f in os.listdir(self.tmp) if ".tmp." in f], [])

    def test_a_signal_after_exit_changes_neither_the_status_nor_the_report(self):
        """A program whose SIGINT handler ends it with _exit(4), with System V semantics (the
        handler is reset to the default as it starts: pigz's), gets a second SIGINT while its
        report is written (`timeout -s INT` signals the child and its process group, so the
        child gets two). Plain, the process is gone before the second comes: status 4. Under
        heapledger the default action ended the process mid-report: status 130 (-SIGINT), no
        report (a user trial's pigz, 2 runs in 5). Now the report is written and the status is
        the program's: the second signal comes after _exit, and changes nothing, as it would
        have changed nothing plain. The text report is larger than the room left in the pipe
        (popen_unread_stderr), which the test does not read until both signals are sent, so the
        second one comes mid-report."""
        argv = [self.program("sigint_exit"), "200"]
        for preload in (False, True):
            with self.subTest(preload=preload):
                env = hl.preload_env("max_frames=256:max_leaks=0") if preload else hl.clean_env()
                proc = self.popen_unread_stderr(argv, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE, env=env)
                self.assertEqual(proc.stdout.readline(), b"ready\n")
                proc.send_signal(signal.SIGINT)
                time.sleep(0.5)  # the report waits for room in the pipe meanwhile
                proc.send_signal(signal.SIGINT)
                time.sleep(0.2)
                out, err = proc.communicate(timeout=100)
                self.assertEqual((proc.returncode, out), (4, b""), err.decode()[-2000:])
                text = err.decode()
                if preload:
                    self.assertEqual(len(re.findall(r"LEAK \d+ of 200:", text)), 200)
                    self.assertIn("PEAK:", text)
                    self.assertTrue(text.endswith("\n"), text[-200:])
                else:
                    self.assertEqual(text, "")

    STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)

    @staticmethod
    def default_stop_signals(ignored=()):
        """For preexec_fn: the stop signals at their default action (a suite run as a background
        job of a shell inherits SIGINT and SIGQUIT ignored), except those ignored."""
        for sig in E2E.STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN if sig in ignored else signal.SIG_DFL)

    @staticmethod
    def popen_unread_stderr(argv, **kwargs):
        """Popen with stderr into a pipe as large as the library makes a full one (1 MiB) and
        full but for 4 KiB, as a pipe nobody reads yet: a report there waits for room until
        communicate() reads (which leaves out the filler). An empty pipe would be made large
        enough to hold these tests' reports whole, and they test a report that waits."""
        r, w = os.pipe()
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
        filler = (1 << 20) - 4096
        os.write(w, b"\n" * filler)
        try:
            proc = subprocess.Popen(argv, stderr=w, **kwargs)
        finally:
            os.close(w)
        proc.stderr = os.fdopen(r, "rb")
        communicate = proc.communicate

        def without_filler(*args, **kw):
            out, err = communicate(*args, **kw)
            return out, err[filler:]
        proc.communicate = without_filler
        return proc

    def start_stop_signal(self, mode, options=None, sites=0, ignored=(), unread_stderr=False):
        """stop_signal MODE SITES (preloaded with OPTIONS, plainly if None), once it said it is
        ready; returns (process, the rest of its ready line). unread_stderr: see
        popen_unread_stderr."""
        argv = [self.program("stop_signal"), mode, str(sites)]
        env = hl.preload_env(options) if options is not None else hl.clean_env()
        kwargs = dict(stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env,
                      preexec_fn=lambda: self.default_stop_signals(ignored))
        proc = (self.popen_unread_stderr(argv, **kwargs) if unread_stderr else
                subprocess.Popen(argv, stderr=subprocess.PIPE, **kwargs))
        line = proc.stdout.readline()
        self.assertTrue(line.startswith(b"ready"), line)
        return proc, line[len(b"ready"):].strip()

    def stopped(self, mode, sig, options=None, delay=0.1, limit=60):
        """Starts stop_signal MODE (preloaded with OPTIONS, plainly if None), sends sig once it is
        ready and delay seconds more have passed; returns (returncode, stdout, stderr)."""
        proc, _ = self.start_stop_signal(mode, options)
        time.sleep(delay)
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail(f"{mode}: still running {limit} s after {sig.name}: {err.decode()[-2000:]}")
        return proc.returncode, out.decode(), err.decode()

    def assertStopReport(self, path, pid=None, sig=None):
        report = hl.load_report(path)
        self.assertValidReport(report, pid=pid)
        if sig is not None:
            self.assertEqual(report["process"]["signal"], sig.name)
        self.assertLeak(report, "lose", 300, 3, kind="definite")
        self.assertLeak(report, "keep_global", 200, 1, kind="reachable")
        # Held by a local variable of the thread the signal stopped: its stack is a root.
        self.assertLeak(report, "keep_local", 300, 1, kind="reachable")
        return report

    def test_a_program_stopped_by_a_signal_it_leaves_at_its_default_writes_its_report(self):
        """Ctrl-C, kill, timeout, a closed terminal, Ctrl-\\: a program that leaves these at their
        default action ended with no report at all (a server stopped so had none; memcheck
        writes one, LeakSanitizer does not). Now the report is written, then the signal ends
        the process as it would have: same status, same output. Also when the signal finds
        the program's threads inside the allocator (churn: it comes again a millisecond later,
        until the thread is out)."""
        for sig in self.STOP_SIGNALS:
            for mode in ("wait", "churn"):
                with self.subTest(sig=sig.name, mode=mode):
                    plain = self.stopped(mode, sig)
                    self.assertEqual(plain, (-sig, "", ""))
                    path = self.path(f"{mode}-{sig.name}.json")
                    traced = self.stopped(mode, sig, f"json={path}:log=none")
                    self.assertEqual(traced, plain)
                    self.assertStopReport(path, sig=sig)
        for i in range(5):  # at any point of the churn
            with self.subTest(churn_run=i):
                path = self.path(f"churn{i}.json")
                traced = self.stopped("churn", signal.SIGTERM, f"json={path}:log=none",
                                      delay=0.02 + 0.06 * i)
                self.assertEqual(traced, (-signal.SIGTERM, "", ""))
                self.assertStopReport(path)
        for i in range(5):  # it finds a thread inside the allocator that is gone a moment later
            with self.subTest(dying_run=i):
                path = self.path(f"dying{i}.json")
                self.assertEqual(self.stopped("dying", signal.SIGTERM), (-signal.SIGTERM, "", ""))
                traced = self.stopped("dying", signal.SIGTERM, f"json={path}:log=none", limit=20)
                self.assertEqual(traced, (-signal.SIGTERM, "", ""))
                self.assertStopReport(path, sig=signal.SIGTERM)
        with self.subTest("report_on_signal=0"):
            path = self.path("off.json")
            self.assertEqual(self.stopped("wait", signal.SIGTERM, f"json={path}:report_on_signal=0"),
                             (-signal.SIGTERM, "", ""))
            self.assertFalse(os.path.exists(path))

    def test_a_program_that_crashes_or_aborts_writes_its_report(self):
        """abort() (a failed assert), a fault (a null pointer, a division by zero; on another
        thread), a SIGSEGV raised: a program that left these at their default action ended with
        no report at all (a Rust program overflowing its stack aborts so; memcheck writes one).
        Now the report is written, then the signal ends the process as it would have: same status,
        same output. Also a SIGSEGV the kernel sends itself (bad_stack: a handler's alternate stack
        it cannot write to), which no instruction raises again: the program went on (exit 0, a
        review's). A handler of the program's own is left alone, and report_on_signal=0 leaves
        the signals alone."""
        cases = (("abort", signal.SIGABRT), ("segv", signal.SIGSEGV), ("fpe", signal.SIGFPE),
                 ("raise", signal.SIGSEGV), ("thread", signal.SIGSEGV), ("bad_stack", signal.SIGSEGV),
                 ("gp", signal.SIGSEGV))
        for mode, sig in cases:
            with self.subTest(mode=mode):
                plain, _, report = self.traced("crash_after_leak", mode)
                self.assertEqual((plain.returncode, plain.stdout), (-sig, "crashing\n"))
                self.assertLeak(report, "lost_before_crash", 123, 1, kind="definite")
                self.assertLeak(report, "kept_before_crash", 456, 1, kind="reachable")
                self.assertEqual(report["process"]["signal"], sig.name)
        with self.subTest(mode="own_handler"):
            plain, _, report = self.traced("crash_after_leak", "own_handler")
            self.assertEqual((plain.returncode, plain.stdout), (0, "recovered\n"))
            self.assertLeak(report, "lost_before_crash", 123, 1, kind="definite")
            self.assertIsNone(report["process"]["signal"])
        with self.subTest("text report"):
            res = hl.run_preloaded([self.program("crash_after_leak"), "abort"], "")
            self.assertEqual(res.returncode, -signal.SIGABRT, res.describe())
            self.assertIn("ended by SIGABRT", res.stderr)
            self.assertIn("123 bytes in 1 block definitely lost", res.stderr)
        with self.subTest("report_on_signal=0"):
            path = self.path("off.json")
            res = hl.run_preloaded([self.program("crash_after_leak"), "segv"],
                                   f"json={path}:report_on_signal=0")
            self.assertEqual(res.returncode, -signal.SIGSEGV, res.describe())
            self.assertFalse(os.path.exists(path))

    def test_a_second_signal_while_the_report_is_written_does_not_cut_it_short(self):
        """`timeout` sends its signal twice: to the program, then to its process group. The
        second came while the report was being written, and ended the process mid-report.
        It is held until the report is written now, also when it lands on another thread than
        the one writing (worker: sent to the second thread first, then to the process; 74 of
        203 leak sites before). The text report is larger than the room left in the pipe
        (popen_unread_stderr), which is not read until the signals are sent."""
        libc = ctypes.CDLL(None, use_errno=True)
        for mode in ("wait", "worker"):
            with self.subTest(mode=mode):
                proc, tid = self.start_stop_signal(mode, "max_frames=256:max_leaks=0", sites=200,
                                                   unread_stderr=True)
                proc.send_signal(signal.SIGTERM)
                time.sleep(0.5)  # the report waits for room in the pipe meanwhile
                if mode == "worker":
                    self.assertEqual(libc.syscall(234, proc.pid, int(tid), signal.SIGTERM), 0)  # tgkill
                    time.sleep(0.3)
                proc.send_signal(signal.SIGTERM)
                time.sleep(0.2)
                out, err = proc.communicate(timeout=100)
                text = err.decode()
                self.assertEqual((proc.returncode, out), (-signal.SIGTERM, b""), text[-2000:])
                self.assertEqual(len(re.findall(r"LEAK \d+ of 203:", text)), 203, text[-2000:])
                self.assertRegex(text.splitlines()[0], r", ended by SIGTERM\)$")
                self.assertIn("PEAK:", text)
                self.assertTrue(text.endswith("\n"), text[-200:])

    def test_a_handler_installed_while_the_report_is_written_does_not_keep_the_process(self):
        """The program's other threads run on while the report is written; one installs a
        SIGTERM handler of its own meanwhile. The signal that began the report still ends the
        process once it is written: raised with that handler in place, it ran the handler, and
        the process went on with status 0 (a review's). The report waits on the unread pipe."""
        proc, _ = self.start_stop_signal("late", "max_frames=256:max_leaks=0", sites=200,
                                         unread_stderr=True)
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        out, err = proc.communicate(timeout=100)
        self.assertEqual(proc.returncode, -signal.SIGTERM, (out, err.decode()[-2000:]))
        self.assertNotIn(b"h\n", out)
        self.assertEqual(len(re.findall(r"LEAK \d+ of 203:", err.decode())), 203)

    def test_a_report_a_stop_signal_cannot_finish_ends_with_the_signal(self):
        """The report a stop signal begins runs on the thread it interrupted, which may hold a
        lock of the C library's that the report needs too: loading the reporter module runs
        constructors that call atexit(), and a program interrupted inside atexit() waited for
        itself for ever (5 runs in 6, a review's). Once the report has not moved for 10 s, the
        signal ends the process as it would have, report or not."""
        start = time.monotonic()
        returncode, out, _ = self.stopped("atexit", signal.SIGTERM,
                                          f"json={self.path('atexit.json')}:log=none", limit=40)
        self.assertEqual((returncode, out), (-signal.SIGTERM, ""))
        self.assertLess(time.monotonic() - start, 30)

    def test_what_the_program_sees_and_sets_of_the_stop_signals_is_its_own(self):
        """The catcher stands where the program left the default action, out of its sight:
        sigaction and signal() show the default action; a handler of its own replaces it (and
        runs: exit status 7); a signal it ignores stays ignored; setting the default action
        puts the catcher back (view: a handler, then SIG_DFL, then raise)."""
        plain = hl.run_plain([self.program("stop_signal"), "view"])
        self.assertEqual(plain.returncode, -signal.SIGINT)
        self.assertIn("SIGINT: signal(SIG_DFL) returns a handler\n", plain.stdout)
        path = self.path("view.json")
        traced = hl.run_preloaded([self.program("stop_signal"), "view"], f"json={path}:log=none")
        self.assertSameBehaviour(plain, traced)
        self.assertStopReport(path, pid=traced.pid, sig=signal.SIGINT)
        with self.subTest("no catcher"):  # a default action with SA_SIGINFO was shown bare
            plain = hl.run_plain([self.program("stop_signal"), "default_flags"])
            self.assertIn(", flags 0x", plain.stdout)
            for options in ("report_on_signal=0:log=none", "track=0"):
                self.assertSameBehaviour(plain, hl.run_preloaded(
                    [self.program("stop_signal"), "default_flags"], options))
        with self.subTest("own handler"):
            path = self.path("own.json")
            plain = self.stopped("own", signal.SIGTERM)
            self.assertEqual(plain, (7, "handled\n", ""))
            self.assertEqual(self.stopped("own", signal.SIGTERM, f"json={path}:log=none"), plain)
            self.assertIsNone(self.assertStopReport(path)["process"]["signal"])  # from its _exit
        with self.subTest("ignored"):
            path = self.path("ignored.json")
            proc, _ = self.start_stop_signal("wait", f"json={path}:log=none",
                                             ignored=(signal.SIGTERM,))
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(proc.poll(), "an ignored SIGTERM ended the process")
            self.assertFalse(os.path.exists(path))
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            self.assertEqual((proc.returncode, out, err), (-signal.SIGINT, b"", b""))
            self.assertStopReport(path, sig=signal.SIGINT)

    def test_a_relative_report_path_from_a_removed_directory_still_runs_the_program(self):
        """Started in a directory since removed, `heapledger run --log r.txt` stopped with
        std::filesystem's "cannot make absolute path" and status 125, the program not run (a
        user trial's). The path goes as given, and the library warns, as it does for
        HEAPLEDGER_OPTIONS=log=r.txt there; the report that cannot be written goes to stderr."""
        gone = self.path("gone")
        os.mkdir(gone)
        script = 'cd "$1" && rmdir "$1" && exec "$2" run --log r.txt -- "$3"'
        argv = ["sh", "-c", script, "sh", gone, hl.CLI, self.program("leak_malloc")]
        plain = hl.run_plain([self.program("leak_malloc")])
        traced = hl.run_plain(argv)
        self.assertEqual((traced.returncode, traced.stdout), (0, plain.stdout), traced.describe())
        self.assertIn("heapledger: warning: the current directory has no path (removed?): "
                      "'r.txt' is taken from the directory the program is in when it exits",
                      traced.stderr)
        self.assertIn("LEAK 1 of 2: 300 bytes in 3 blocks definitely lost", traced.stderr)

    def test_a_program_run_by_the_dynamic_loader_as_a_command_is_reported_as_itself(self):
        """`/lib64/ld-linux-x86-64.so.2 ./prog` (as tools and containers without the program's own
        interpreter run it): /proc/self/exe names the loader, and the program's frames were
        symbolized as the loader's ("remove_slotinfo dl-close.c:96"), its leaks called still
        reachable (the loader's own blocks are), and `heapledger run` warned that the loader
        "is statically linked" and no report would be written (a user trial's: exit 0 where
        --leak-exitcode asked for 5)."""
        loader = "/lib64/ld-linux-x86-64.so.2"
        if not os.path.exists(loader):
            self.skipTest(f"no {loader}")
        program = self.program("leak_malloc")
        path = self.path("report.json")
        plain = hl.run_plain([loader, program])
        traced = hl.run_cli(["--leak-exitcode", "5", "--json", path, "--log", "none"],
                            [loader, program])
        self.assertEqual((traced.returncode, traced.stdout, traced.stderr),
                         (5, plain.stdout, ""), traced.describe())
        report = hl.load_report(path)
        self.assertEqual(report["process"]["exe"], program)
        self.assertEqual(report["process"]["argv"], [loader, program])
        self.assertLeak(report, "leak_malloc", 300, 3, kind="definite")
        self.assertLeak(report, "leak_other", 50, 1, kind="definite")
        self.assertEqual(report["summary"]["leaked_blocks"], 4)
        # Started by a relative path, then a chdir and a dlopen (the loaded objects looked at
        # again): the path was found again from the new directory, and the loader named again
        # (a review's).
        program = self.program("chdir_exit")
        traced = hl.run_preloaded([loader, "./chdir_exit", "libz.so.1"],
                                  f"json={path}:log=none", cwd=os.path.dirname(program))
        self.assertEqual((traced.returncode, traced.stdout), (0, "chdir_exit: in /\n"),
                         traced.describe())
        report = hl.load_report(path)
        self.assertEqual(report["process"]["exe"], program)
        self.assertLeak(report, "leak_before_chdir", 40, 1, kind="definite")
        self.assertLeak(report, "leak_after_dlopen", 24, 1, kind="definite")

    def test_with_no_proc_the_report_says_the_scan_could_not_run(self):
        """A chroot or container with no /proc mounted: the leak scan's roots are the mappings
        /proc/self/maps lists, and with none every live block came out definitely lost, with no
        word why (a user trial's `unshare --mount` with a tmpfs over /proc). Now the scan does
        not run, the report says why, and the program is still named, with its words, and its
        frames (the words came out empty, read from /proc/self/cmdline alone, the exe as run,
        "./leak_malloc", and the program's frames unnamed, `??`: its path came from
        /proc/self/exe)."""
        unshare = shutil.which("unshare")
        probe = [unshare, "--mount", "sh", "-c", "mount -t tmpfs none /proc && test ! -e /proc/self"]
        if not unshare or hl.run_plain(probe).returncode != 0:
            self.skipTest("no unshare, or no permission for a mount namespace")
        path = self.path("report.json")
        program = self.program("leak_malloc")
        script = ("mount -t tmpfs none /proc && cd \"$3\" && exec env LD_PRELOAD=\"$1\" "
                  "HEAPLEDGER_OPTIONS=\"json=$2:log=none\" ./leak_malloc one \"two words\" ''")
        plain = hl.run_plain([program, "one", "two words", ""])
        traced = hl.run_plain([unshare, "--mount", "sh", "-c", script, "sh", hl.LIB, path,
                               os.path.dirname(program)])
        self.assertSameBehaviour(plain, traced)
        report = hl.load_report(path)
        self.assertTrue(report["scan"]["failed"], report["scan"])
        self.assertIn("/proc/self/maps cannot be read", report["scan"]["why"])
        self.assertEqual(report["leaks"], [])
        self.assertEqual(report["summary"]["live_blocks"], 5)
        self.assertEqual(report["summary"]["leaked_blocks"], 5)  # unknown: all of them count
        self.assertEqual(report["process"]["exe"], program)
        self.assertEqual(report["process"]["argv"], ["./leak_malloc", "one", "two words", ""])
        [peak] = report["peak"]  # churn's 300,000-byte block
        self.assertEqual((peak["bytes"], peak["stack"][0]["function"]), (300000, "churn"))
        self.assertEqual(peak["stack"][0]["module"], program)

    def test_processes_of_one_pid_in_two_pid_namespaces_keep_both_reports(self):
        """`%p` names a process by its pid, which two processes share in different PID namespaces
        (each container's pid 1): the second report replaced the first without a word (a user
        trial's nested `unshare --pid --fork`). Now it goes beside it, and says so."""
        unshare = shutil.which("unshare")
        if not unshare or hl.run_plain([unshare, "--pid", "--fork", "true"]).returncode != 0:
            self.skipTest("no unshare, or no permission for a PID namespace")
        inner = f"{unshare} --pid --fork {self.program('leak_malloc')}"
        argv = [unshare, "--pid", "--fork", "sh", "-c", f"{inner}; echo inner=$?"]
        plain = hl.run_plain(argv)
        traced = hl.run_preloaded(argv, f"json={self.path('r.%p.json')}:log=none")
        self.assertSameBehaviour(plain, traced)
        inner_report = hl.load_report(self.path("r.1.json"))  # leak_malloc ends first
        outer_report = hl.load_report(self.path("r.1-2.json"))
        self.assertLeak(inner_report, "leak_malloc", 300, 3)
        self.assertEqual(os.path.basename(outer_report["process"]["exe"]), "dash")
        self.assertIn(f"heapledger: warning: {self.path('r.1.json')} holds the report of another "
                      f"process with this pid (in another PID namespace) that ran meanwhile; this "
                      f"JSON report is {self.path('r.1-2.json')}", traced.stderr)
        # Siblings exiting together (containers sharing a directory): each found the name free
        # and wrote one temporary file (.tmp.1), and reports were lost or cut (a review's). Twice:
        # the second round replaces the first's files, one each. (Each runs 0.5 s, so that all
        # have begun before the first ends: a process of the pid that ended before another
        # began is as an earlier run's, whose file is replaced.)
        os.makedirs(self.path("par"))
        for _ in range(2):
            procs = [subprocess.Popen([unshare, "--pid", "--fork", self.program("stop_signal"), "spared"],
                                      env=hl.preload_env(f"json={self.path('par', 'r.%p')}:log=none"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for _ in range(6)]
            errors = [p.communicate(timeout=60)[1].decode() for p in procs]
            # (unshare's own reports are there too, r.PID of its pid outside)
            names = sorted(n for n in os.listdir(self.path("par")) if re.fullmatch(r"r\.1(-\d+)?", n))
            self.assertEqual(names, ["r.1"] + [f"r.1-{n}" for n in range(2, 7)], errors)
            for name in names:
                self.assertLeak(hl.load_report(self.path("par", name)), "lose", 300, 3)

    def test_the_init_of_a_pid_namespace_is_spared_the_signals_it_is_sent(self):
        """Pid 1 of a PID namespace (a container's first process) is spared every signal sent to
        it at the default action: the kernel drops them. The catcher took them, wrote a report
        "ended by SIGHUP" and raised it again; the process ran on and its real exit had no report
        (a user trial: `unshare --pid --fork`, as `docker stop` signals pid 1). Then it returned
        at once, but as a handler it still cut a sleep short (EINTR; a review's): no catcher of
        these at pid 1 now."""
        unshare = shutil.which("unshare")
        if not unshare or hl.run_plain([unshare, "--pid", "--fork", "true"]).returncode != 0:
            self.skipTest("no unshare, or no permission for a PID namespace")
        argv = [unshare, "--pid", "--fork", self.program("stop_signal"), "spared"]
        plain = hl.run_plain(argv)
        self.assertEqual((plain.returncode, plain.stdout), (7, "spared\nslept\nchild: signal 15\n"),
                         plain.describe())
        traced = hl.run_preloaded(argv, f"json={self.path('r.%p.json')}:log=none")
        self.assertSameBehaviour(plain, traced)
        report = hl.load_report(self.path("r.1.json"))  # the namespace's pid 1
        self.assertIsNone(report["process"]["signal"])
        # At its real end: keep_local's block, held by main until it returned, is lost too.
        self.assertLeak(report, "lose", 300, 3)
        self.assertLeak(report, "keep_local", 300, 1)
        # Its child (pid 2 there) is any process: a SIGTERM that ends it writes its report first
        # (it had none: the catcher it inherited took the faults only; a review's).
        child = hl.load_report(self.path("r.2.json"))
        self.assertEqual(child["process"]["signal"], "SIGTERM")
        self.assertLeak(child, "main", 123, 1)
        # A fault the kernel raises ends pid 1 all the same: with its report.
        argv = [unshare, "--pid", "--fork", self.program("crash_after_leak")]
        plain = hl.run_plain(argv)
        traced = hl.run_preloaded(argv, f"json={self.path('c.%p.json')}:log=none")
        self.assertSameBehaviour(plain, traced)
        self.assertEqual(hl.load_report(self.path("c.1.json"))["process"]["signal"], "SIGSEGV")

    def test_a_one_shot_handler_of_the_programs_leaves_the_catcher_behind_it(self):
        """A handler installed one-shot (SA_RESETHAND, or System V's signal()) has the kernel put
        the default action back as it runs, with no call heapledger sees: the catcher was gone,
        and a handler that raised the signal again (Node.js, for SIGTERM and SIGINT) or a second
        signal ended the process with no report (`timeout 2 heapledger run -- node ...`, a user
        trial). Now the catcher is back in the default action's place as the handler runs:
        same output, same status, and the report. What the program is shown of its handler, its
        flags and mask, is what it is shown plainly, and inside the handler the default action."""
        plain = hl.run_plain([self.program("stop_signal"), "oneshot_view"])
        self.assertEqual(plain.returncode, -signal.SIGTERM, plain.describe())
        self.assertIn("set: the one-shot handler, flags", plain.stdout)
        self.assertTrue(plain.stdout.endswith("cleanup, default now\n"), plain.stdout)
        path = self.path("oneshot_view.json")
        traced = hl.run_preloaded([self.program("stop_signal"), "oneshot_view"],
                                  f"json={path}:log=none")
        self.assertSameBehaviour(plain, traced)
        self.assertStopReport(path, pid=traced.pid, sig=signal.SIGTERM)
        for mode in ("oneshot", "sysv"):
            for sig in self.STOP_SIGNALS:
                with self.subTest(mode=mode, sig=sig.name):
                    plain = self.stopped(mode, sig)
                    self.assertEqual(plain, (-sig, "cleanup, default now\n", ""))
                    path = self.path(f"{mode}-{sig.name}.json")
                    self.assertEqual(self.stopped(mode, sig, f"json={path}:log=none"), plain)
                    self.assertStopReport(path, sig=sig)
        for options in (None, f"json={self.path('once.json')}:log=none"):
            with self.subTest("handled once, then the default", traced=options is not None):
                proc, _ = self.start_stop_signal("once", options)
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.stdout.readline(), b"once\n")
                self.assertIsNone(proc.poll())
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=60)
                self.assertEqual((proc.returncode, out, err), (-signal.SIGTERM, b"", b""))
        self.assertStopReport(self.path("once.json"), sig=signal.SIGTERM)
        # The kernel chose the handler as it delivered the signal: a change meanwhile (held with
        # sigset(SIG_HOLD); another handler, or another one-shot one, set by a handler of a signal
        # delivered with it, run first) does not keep it from running (a review's: killed by
        # the signal, status 143 and 130, where plainly the handler ran and the program went on).
        for mode, out in (("oneshot_hold", "held\nonce\nafter release\n"),
                          ("oneshot_nested", "usr1\nonce\nother\nmain goes on\n"),
                          ("oneshot_nested2", "usr1\nonce\nother\nmain goes on\n")):
            with self.subTest(mode=mode):
                plain = hl.run_plain([self.program("stop_signal"), mode])
                self.assertEqual((plain.returncode, plain.stdout), (0, out), plain.describe())
                traced = hl.run_preloaded([self.program("stop_signal"), mode],
                                          f"json={self.path(mode + '.json')}:log=none")
                self.assertSameBehaviour(plain, traced)
        # On the smallest alternate stack the system says a handler needs: the wrapper took 508
        # bytes more of it than plain, and the program crashed (a review's); 129 now.
        with self.subTest("MINSIGSTKSZ"):
            argv = [self.program("stop_signal"), "oneshot_altstack", "0"]
            plain = hl.run_plain(argv)
            self.assertEqual((plain.returncode, plain.stdout), (0, "once\nok\n"), plain.describe())
            self.assertSameBehaviour(plain, hl.run_preloaded(argv, "log=none"))

    def test_mlockall_locks_the_programs_memory_not_heapledgers_tables(self):
        """mlockall(MCL_CURRENT) from root locked every mapping, heapledger's 215 GiB sparse
        table too: VmLck said 2.9 TB, and without MCL_ONFAULT the kernel would fault it all in
        (the OOM killer; a trial's). Now the program's memory is locked as it would be, and
        only that, its small blocks allocated later too where MCL_FUTURE asks (they were not:
        the pools' memory is made usable inside a reservation made before; a review's). With onfault (nothing is faulted in even where it is wrong), and without it
        under an address-space limit (no sparse table then: a regression cannot take the
        machine's memory)."""
        if os.geteuid() != 0:
            self.skipTest("needs root (CAP_IPC_LOCK) to lock without a limit")
        argv = [self.program("lock_all")]
        expected = ("mlockall: 0 \nsmall blocks after it locked: {}\n"
                    "locked: at least 8 MiB yes, under 1 GiB yes\ncontents 1 2\n")
        for flags in (["current", "future", "onfault"], ["current", "onfault"]):
            plain = hl.run_plain(argv + flags)
            self.assertEqual(plain.stdout, expected.format("yes" if "future" in flags else "no"),
                             plain.describe())
            for options in ("log=none", "log=none:track=0"):
                with self.subTest(flags=flags, options=options):
                    traced = hl.run_preloaded(argv + flags, options)
                    self.assertSameBehaviour(plain, traced)
        # A child forked after MCL_FUTURE has no locks of its parent's (it kept the pools'
        # mark: its heap was locked; a review's).
        forked = argv + ["current", "future", "onfault", "fork"]
        plain = hl.run_plain(forked)
        self.assertIn("child's small blocks locked: no\n", plain.stdout)
        self.assertSameBehaviour(plain, hl.run_preloaded(forked, "log=none"))
        limited = ["prlimit", f"--as={64 << 30}"] + argv + ["current", "future"]
        self.assertEqual(hl.run_plain(limited).stdout, expected.format("yes"))
        self.assertEqual(hl.run_preloaded(limited, "log=none").stdout, expected.format("yes"))

    def test_under_valgrind_heapledger_stands_aside(self):
        """Preloaded into a program valgrind runs, heapledger's malloc is bound but never called
        (valgrind redirects it): it reported "no heap allocations" and its leak scan made memcheck
        report millions of errors and exit with --error-exitcode (a user trial). Now one line says
        tracking is off, and memcheck's verdict and status are those of a run without it."""
        if not shutil.which("valgrind"):
            self.skipTest("valgrind is not installed")
        argv = ["valgrind", "--error-exitcode=9", "--leak-check=full", self.program("leak_malloc")]
        summary = re.compile(r"(ERROR SUMMARY: .*|definitely lost: .*)")
        plain = hl.run(argv, env=hl.clean_env(), timeout=120)
        traced = hl.run(argv, env=hl.preload_env(None), timeout=120)
        self.assertEqual(plain.returncode, 9, plain.describe())
        self.assertEqual((traced.returncode, traced.stdout), (plain.returncode, plain.stdout), traced.describe())
        self.assertEqual(summary.findall(traced.stderr), summary.findall(plain.stderr))
        self.assertIn("heapledger: tracking disabled: calls to malloc do not reach heapledger's (a tool "
                      "that replaces malloc runs the program, such as valgrind)", traced.stderr)
        self.assertNotIn("== heapledger ", traced.stderr)  # no report of its own

    def test_loaded_after_the_c_library_says_how_to_load_it(self):
        """heapledger loaded with dlopen (or linked into a shared library, after libc in the
        lookup order) cannot replace malloc: the line says so and what to do. It said "the
        program's malloc is /usr/bin/python3's", as if python3 had an allocator of its own (a
        user trial)."""
        res = hl.run(["python3", "-c", f"import ctypes; ctypes.CDLL({hl.LIB!r}); print('loaded')"],
                     env=hl.clean_env())
        self.assertEqual((res.returncode, res.stdout), (0, "loaded\n"), res.describe())
        self.assertEqual(res.stderr.strip().splitlines(),
                         ["heapledger: tracking disabled: loaded after the C library (linked into a "
                          "shared library, or loaded with dlopen), so the program's malloc is not "
                          "heapledger's: link heapledger into the executable, or preload it (LD_PRELOAD)"])

    def test_the_librarys_own_lines_never_end_the_program(self):
        """The lines the library prints itself (here: tracking disabled, at start), with stderr a
        pipe nobody reads any more: the write fails and the program runs on. It was killed by
        SIGPIPE before its first line (the reporter's writes held the signal; these did not)."""
        argv = [self.program("own_malloc")]
        for preload in (False, True):
            read_end, write_end = os.pipe()
            os.close(read_end)
            try:
                env = hl.preload_env() if preload else hl.clean_env()
                res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=write_end,
                                     env=env, timeout=100)
            finally:
                os.close(write_end)
            self.assertEqual((res.returncode, res.stdout), (0, b"own malloc: used\n"), f"preload={preload}")

    def test_a_malloc_wrapper_preloaded_ahead(self):
        """libmemusage.so (glibc's) preloaded ahead of heapledger wraps its malloc, returning its
        blocks 16 bytes in, past a header: that is still heapledger's malloc, and is tracked
        (the own-malloc check once took it for a foreign one and turned tracking off)."""
        memusage = "/lib/x86_64-linux-gnu/libmemusage.so"
        if not os.path.exists(memusage):
            self.skipTest("no libmemusage.so")
        report_path = self.path("memusage.json")
        env = hl.preload_env(f"json={report_path}:log=none")
        env["LD_PRELOAD"] = f"{memusage} {env['LD_PRELOAD']}"
        res = hl.run([self.program("leak_malloc")], env=env)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertNotIn("tracking disabled", res.stderr)
        leaks = [l for l in hl.load_report(report_path)["leaks"]
                 if len(l["stack"]) > 1 and hl.function_matches(l["stack"][1], "leak_malloc")]
        # leak_malloc's three blocks, 100 bytes each, as libmemusage asks for them: 16 more each
        self.assertEqual((sum(l["bytes"] for l in leaks), sum(l["blocks"] for l in leaks)), (348, 3), leaks)

    def test_an_allocator_built_on_ours_preloaded_ahead(self):
        """A preloaded allocator that carves its blocks out of chunks it gets from heapledger's
        malloc is the program's malloc, not heapledger's: its blocks never reach the tracker one
        by one (the check took it for a wrapper such as libmemusage, and reported nothing)."""
        env = hl.preload_env()  # the line goes where the text report would: stderr
        env["LD_PRELOAD"] = f"{self.program('libchunk_malloc.so')} {env['LD_PRELOAD']}"
        res = hl.run([self.program("leak_malloc")], env=env)
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertIn("tracking disabled: the program's malloc is", res.stderr)
        self.assertIn("libchunk_malloc.so's", res.stderr)

    def test_report_to_a_device_node_writes_into_it(self):
        """log=/dev/null is written to, not renamed over (that replaced /dev/null with a file)."""
        node = self.path("null")
        try:
            os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # our own /dev/null
        except PermissionError:
            self.skipTest("mknod needs root")
        argv = [self.program("leak_malloc")]
        traced = hl.run_preloaded(argv, f"json={node}:log={node}")
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.assertTrue(stat.S_ISCHR(os.lstat(node).st_mode), "the device node was replaced")
        self.assertEqual(os.listdir(self.path("")), ["null"])  # no temporary file left beside it

    def test_report_to_dev_stderr_redirected_to_a_file(self):
        """log=/dev/stderr with stderr in a file: the report is added to that file, which keeps
        what the program wrote (a rename would have replaced the file with the report)."""
        err_path = self.path("stderr.txt")
        with open(err_path, "w", encoding="utf-8") as err:
            err.write("before\n")
            err.flush()
            proc = hl.subprocess.run([self.program("leak_malloc")], stderr=err,
                                     env=hl.preload_env("log=/dev/stderr"), timeout=60)
        self.assertEqual(proc.returncode, 0)
        text = open(err_path, encoding="utf-8").read()
        self.assertTrue(text.startswith("before\n"), text[:200])
        self.assertIn("LEAK", text)

    def test_report_through_a_symlink_replaces_its_target(self):
        target, link = self.path("real.json"), self.path("link.json")
        with open(target, "w", encoding="utf-8") as f:
            f.write("old")
        os.symlink("real.json", link)
        argv = [self.program("leak_malloc")]
        hl.run_preloaded(argv, f"json={link}:log=none")
        self.assertTrue(os.path.islink(link))
        self.assertLeak(hl.load_report(target), "leak_malloc", 300, 3)
        # A link to a file not there yet, through a second link in another directory: the file
        # is made where the chain leads, and both links stay.
        os.makedirs(self.path("sub"))
        os.symlink("sub/hop.json", self.path("first.json"))
        os.symlink("../made.json", self.path("sub/hop.json"))
        hl.run_preloaded(argv, f"json={self.path('first.json')}:log=none")
        self.assertTrue(os.path.islink(self.path("first.json")))
        self.assertTrue(os.path.islink(self.path("sub/hop.json")))
        self.assertLeak(hl.load_report(self.path("made.json")), "leak_malloc", 300, 3)

    def test_report_file_name_at_the_length_limit(self):
        # 255 characters (NAME_MAX): the temporary file beside it gets a short name of its own.
        name = "r" * 250 + ".json"
        hl.run_preloaded([self.program("leak_malloc")], f"json={self.path(name)}:log=none")
        self.assertLeak(hl.load_report(self.path(name)), "leak_malloc", 300, 3)
        self.assertEqual(sorted(os.listdir(os.path.dirname(self.path(name)))), [name])
        # A path of 4090 characters (PATH_MAX is 4096 with its zero): the same.
        deep = self.path("deep")
        while len(deep) < 4090 - 200:
            deep = os.path.join(deep, "d" * min(195, 4090 - 200 - len(deep)))
        os.makedirs(deep)
        path = os.path.join(deep, "r" * (4090 - len(deep) - 1))
        self.assertEqual(len(path), 4090)
        hl.run_preloaded([self.program("leak_malloc")], f"json={path}:log=none")
        self.assertLeak(hl.load_report(path), "leak_malloc", 300, 3)

    def test_report_to_a_fifo(self):
        """A FIFO with a reader gets the report; one without a reader is no reason to hang."""
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        argv = [self.program("leak_malloc")]
        got = []
        reader = threading.Thread(target=lambda: got.append(open(fifo, encoding="utf-8").read()))
        reader.start()
        hl.run_preloaded(argv, f"json={fifo}:log=none", timeout=30)
        reader.join(10)
        if reader.is_alive():  # nothing was written to the FIFO: release the reader, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(10)
        self.assertTrue(got and got[0], "the FIFO got no report")
        self.assertLeak(json.loads(got[0]), "leak_malloc", 300, 3)
        traced = hl.run_preloaded(argv, f"json={fifo}:log=none", timeout=30)  # nobody reads
        self.assertTrue(self.warning_lines(traced.stderr, fifo), traced.describe())
        self.assertIsNotNone(hl.find_json_document(traced.stderr), traced.describe())

    def test_track_off(self):
        """track=0: pools only. The program runs normally and no leak is recorded."""
        json_path, log = self.path("report.json"), self.path("report.txt")
        argv = [self.program("leak_malloc")]
        traced = hl.run_preloaded(argv, f"track=0:json={json_path}:log={log}")
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        if os.path.exists(json_path):
            report = hl.load_report(json_path)
            self.assertValidReport(report)
            self.assertEqual(report["leaks"], [], hl.describe_leaks(report))
        if os.path.exists(log):
            with open(log, encoding="utf-8", errors="replace") as f:
                self.assertNotIn("leak_malloc", f.read())
        self.assertNotIn("leak_malloc", traced.stderr)

    def test_track_off_maps_no_tracking_tables(self):
        """track=0 from the start records nothing, not even the blocks allocated before the
        library's constructor (they were recorded all the same, which mapped the ledger's sparse
        table of about 215 GiB). Only the pools' bitmaps remain (1.7 GiB of VmData); the same
        program tracked has the table (VmSize), writable only as far as it holds records (it was
        writable whole, and VmData counted all of it)."""
        def vm_kib(options, field):
            res = hl.run_preloaded(["/bin/cat", "/proc/self/status"], options)
            self.assertEqual(res.returncode, 0, res.describe())
            [line] = [l for l in res.stdout.splitlines() if l.startswith(field + ":")]
            return int(line.split()[1])
        untracked = vm_kib("track=0:log=none", "VmSize")
        self.assertLess(vm_kib("track=0:log=none", "VmData"), 16 << 20)
        self.assertGreater(vm_kib("log=none", "VmSize") - untracked, 100 << 20)
        self.assertLess(vm_kib("log=none", "VmData"), 16 << 20)
        # The same when the key comes after others, or track is set twice (the last one counts).
        self.assertLess(vm_kib("log=none:track=1:track=no", "VmSize") - untracked, 16 << 20)
        self.assertGreater(vm_kib("track=0:track=yes:log=none", "VmSize") - untracked, 100 << 20)

    def test_max_frames(self):
        _, _, report = self.traced("leak_malloc", options="max_frames=2")
        for e in self.assertLeak(report, "leak_malloc", 300, 3):
            self.assertLessEqual(len(e["stack"]), 2, e["stack"])

    def test_leak_exitcode(self):
        argv = [self.program("leak_malloc")]
        json_path = self.path("report.json")
        traced = hl.run_preloaded(argv, f"leak_exitcode=23:json={json_path}:log=none")
        self.assertEqual(traced.returncode, 23, traced.describe())
        self.assertEqual(traced.stdout, hl.run_plain(argv).stdout)
        self.assertLeak(hl.load_report(json_path), "leak_malloc", 300, 3)

    def run_rebuilt_while_running(self, prefix):
        """rebuilt_while_running, with another program moved over its path while it waits (as a
        rebuild does): its report (the process's stderr, the JSON report)."""
        prog = self.path("prog")
        shutil.copy(self.program("rebuilt_while_running"), prog)
        json_path = self.path("report.json")
        proc = subprocess.Popen([*prefix, prog], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=hl.preload_env(f"json={json_path}:log=none"))
        try:
            self.assertEqual(proc.stdout.readline(), b"ready\n")
            # Another program, its code where this one's was: the old lookup named these frames
            # from its symbols.
            shutil.copy(self.program("leak_malloc"), self.path("prog.new"))
            os.rename(self.path("prog.new"), prog)
            _, err = proc.communicate(b"\n", timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err.decode())
        return err.decode(), hl.load_report(json_path)

    def test_frames_are_named_from_the_file_that_ran_after_a_rebuild_moved_another_over_it(self):
        """A program rebuilt while it ran (the new build moved over its path, as make and mv do)
        had its frames named from the new file's symbols and lines at exit, without a word (a
        user trial's: main's frame came out as the new build's leak_here). Named from the file
        mapped, through /proc/self/map_files; where that cannot be opened (it takes
        CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), not named, and said."""
        prog = self.path("prog")
        if os.geteuid() == 0:
            err, report = self.run_rebuilt_while_running([])
            self.assertEqual(err, "")
            self.assertLeak(report, "leak_here", 42, 1)
            [leak] = hl.leaks_at(report, "leak_here")
            here, caller = leak["stack"][0], leak["stack"][1]
            self.assertEqual((here["function"], os.path.basename(here["file"] or "")),
                             ("leak_here", "rebuilt_while_running.c"), leak["stack"][:2])
            self.assertEqual((caller["function"], caller["line"]), ("main", 15), leak["stack"][:2])
            self.assertEqual(here["module"], prog)
        # Without the capabilities (a user's, a container's): the frames in the program are left
        # unnamed, with one line why, rather than named from the other file.
        unprivileged = ["setpriv", "--bounding-set=-sys_admin,-checkpoint_restore"] if os.geteuid() == 0 else []
        err, report = self.run_rebuilt_while_running(unprivileged)
        self.assertEqual(err, f"heapledger: warning: {prog} was removed or replaced on disk since it was "
                              "loaded, and the file loaded cannot be read here (/proc/self/map_files "
                              "takes CAP_SYS_ADMIN): its frames are not named\n")
        [leak] = [l for l in report["leaks"] if l["bytes"] == 42]
        self.assertEqual(leak["kind"], "definite", leak)
        in_prog = [f for f in leak["stack"] if f["module"] == prog]  # leak_here, main, _start
        self.assertEqual(len(in_prog), 3, leak["stack"])
        self.assertEqual([(f["function"], f["line"]) for f in in_prog], [(None, None)] * 3, in_prog)

    def test_suppressions(self):
        supp = self.path("leaks.supp")
        with open(supp, "w", encoding="utf-8") as f:
            # Anchored: like LSan, a pattern also matches module paths, and the program itself
            # is called leak_malloc.
            f.write("# the 300 bytes of leak_malloc are known\nleak:^leak_malloc$\n")
        _, _, report = self.traced("leak_malloc", options=f"suppressions={supp}")
        self.assertNoLeakFrameNamed(report, "leak_malloc")
        self.assertLeak(report, "leak_other", 50, 1)
        self.assertGreaterEqual(report["summary"].get("suppressed_bytes", 0), 300)

    def test_a_suppressions_file_that_cannot_be_read_is_said_as_the_program_starts(self):
        """It was said at exit, and only when there were leaks for it to match: a mistyped path
        passed a clean run without a word. Now one line as the process starts, and the leaks are
        reported as found, once (not said again at exit)."""
        missing = self.path("missing.supp")
        for name in ("no_leak", "leak_malloc"):
            argv = [self.program(name)]
            json_path = self.path(f"{name}.json")
            traced = hl.run_preloaded(argv, f"suppressions={missing}:json={json_path}:log=none")
            self.assertSameBehaviour(hl.run_plain(argv), traced)
            self.assertEqual(traced.stderr,
                             f"heapledger: warning: suppressions={missing}: cannot read it (No such "
                             "file or directory), ignored\n")
            report = hl.load_report(json_path)
            self.assertEqual(report["summary"].get("suppressed_bytes", 0), 0)
            if name == "leak_malloc":
                self.assertLeak(report, "leak_malloc", 300, 3)

    def test_quiet_leaves_stderr_to_processes_with_nothing_to_fix(self):
        """quiet=1: no text report from a process with no leaks and no heap errors, as LSan. A
        clean child's 15-line report on stderr made Tcl's `exec` fail (it takes any stderr for
        an error) and ended up in what node read of its child's stderr (a user trial's)."""
        for name in ("no_leak", "leak_malloc"):
            argv = [self.program(name)]
            plain = hl.run_plain(argv)
            quiet = hl.run_preloaded(argv, "quiet=1")
            self.assertSameBehaviour(plain, quiet)
            if name == "no_leak":
                self.assertEqual(quiet.stderr, plain.stderr, quiet.describe())
                self.assertIn("== SUMMARY", hl.run_preloaded(argv).stderr)  # not quiet: a report
            else:
                self.assertIn("leaked: 350 B in 4 blocks", quiet.stderr)  # leaks: the report is there
        # Leaks all suppressed: nothing to fix; the JSON report, asked for, is written all the same.
        supp = self.path("all.supp")
        with open(supp, "w", encoding="utf-8") as f:
            f.write("leak:^leak_malloc$\nleak:^leak_other$\n")
        json_path = self.path("quiet.json")
        res = hl.run_preloaded([self.program("leak_malloc")], f"quiet=1:suppressions={supp}:json={json_path}")
        self.assertEqual((res.returncode, res.stderr), (0, ""), res.describe())
        self.assertEqual(hl.load_report(json_path)["summary"]["suppressed_bytes"], 350)
        # `heapledger run --quiet` is the same option.
        res = hl.run_cli(["--quiet"], [self.program("no_leak")])
        self.assertEqual((res.returncode, res.stderr), (0, ""), res.describe())
        res = hl.run_cli(["--quiet"], [self.program("leak_malloc")])
        self.assertIn("leaked: 350 B in 4 blocks", res.stderr)

    # --- through `heapledger run` --------------------------------------------------------------

    def test_a_report_asked_for_with_track_off_is_warned_of(self):
        # `heapledger run --json r.json --option track=0` wrote no file and said nothing (a user
        # trial's, on mariadbd): one line now, for each report asked for; the program runs on.
        json_path, log_path = self.path("t0.json"), self.path("t0.txt")
        res = hl.run_cli(["--json", json_path, "--log", log_path, "--option", "track=0"],
                         [self.program("leak_malloc")])
        self.assertEqual(res.returncode, 0, res.describe())
        self.assertEqual(res.stderr.splitlines(), [
            f"heapledger: warning: json={json_path}: no report with track=0 (pools only), so none is written",
            f"heapledger: warning: log={log_path}: no report with track=0 (pools only), so none is written",
        ])
        self.assertFalse(os.path.exists(json_path) or os.path.exists(log_path))
        res = hl.run_preloaded([self.program("leak_malloc")], "track=0")  # nothing asked: nothing said
        self.assertEqual((res.returncode, res.stderr), (0, ""), res.describe())

    def test_cli_leak_malloc(self):
        argv = [self.program("leak_malloc")]
        json_path, log = self.path("report.json"), self.path("report.txt")
        traced = hl.run_cli(["--json", json_path, "--log", log], argv)
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        report = hl.load_report(json_path)
        self.assertValidReport(report)
        self.assertLeak(report, "leak_malloc", 300, 3)
        self.assertLeak(report, "leak_other", 50, 1)
        with open(log, encoding="utf-8", errors="replace") as f:
            self.assertIn("leak_malloc", f.read())

    def test_cli_option(self):
        argv = [self.program("leak_new")]
        json_path = self.path("report.json")
        traced = hl.run_cli(["--json", json_path, "--option", "max_frames=2", "--option",
                             "log=none"], argv)
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        report = hl.load_report(json_path)
        for e in self.assertLeak(report, "leak_new_array", 100, 1):
            self.assertLessEqual(len(e["stack"]), 2, e["stack"])

    def test_cli_exit_status(self):
        argv = [self.program("exit_paths"), "exit", "3"]
        json_path = self.path("report.json")
        traced = hl.run_cli(["--json", json_path], argv)
        self.assertEqual(traced.returncode, 3, traced.describe())
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.assertLeak(hl.load_report(json_path), "exit_leak", 642, 2)

    def test_started_only_keeps_the_exit_code_to_the_started_program(self):
        """A test that runs a leaky tool: leak_exitcode applies to every process, so the tool
        exited 23 and the test failed on it (a CI user's trial, system("sort ...")).
        --started-only (the option exitcode_pid) keeps it to the program started."""
        argv = [self.program("exitcode_children")]
        res = hl.run_cli(["--log", "none", "--leak-exitcode", "23"], argv)
        self.assertEqual((res.returncode, res.stdout), (0, "child exited 23\n"), res.describe())
        res = hl.run_cli(["--log", "none", "--leak-exitcode", "23", "--started-only"], argv)
        self.assertEqual((res.returncode, res.stdout), (0, "child exited 0\n"), res.describe())
        res = hl.run_cli(["--log", "none", "--leak-exitcode", "23", "--started-only"], argv + ["leak"])
        self.assertEqual((res.returncode, res.stdout), (23, "child exited 0\n"), res.describe())
        # The option as a script sets it for a program it execs: that pid.
        script = 'HEAPLEDGER_OPTIONS="log=none:leak_exitcode=23:exitcode_pid=$$" exec "$0" leak'
        res = hl.run_preloaded(["/bin/sh", "-c", script, argv[0]], "log=none")
        self.assertEqual((res.returncode, res.stdout), (23, "child exited 0\n"), res.describe())

    def test_cli_fork(self):
        argv = [self.program("leak_fork")]
        traced = hl.run_cli(["--json", self.path("report.%p.json")], argv)
        self.assertSameBehaviour(hl.run_plain(argv), traced)
        self.check_fork_leaks(*self.fork_reports())

    def test_cli_static_binary(self):
        """The preload cannot reach a static binary: `heapledger run` says so and runs it anyway."""
        path = os.path.join(hl.BINDIR, "static_hello")
        if not os.path.exists(path):
            self.skipTest("no static libc: static_hello was not built")
        traced = hl.run_cli(["--json", self.path("report.json")], [path])
        self.assertSameBehaviour(hl.run_plain([path]), traced)
        self.assertEqual(traced.returncode, 4)
        self.assertRegex(traced.stderr.lower(), r"static", traced.describe())


if __name__ == "__main__":
    sys.exit(hl.main(E2E, __doc__))
