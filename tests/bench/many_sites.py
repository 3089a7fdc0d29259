#!/usr/bin/env python3
"""Writes a C++ program with N functions that each leak from their own call sites (a vector, a
string, both with their buffers: 4N leak sites, 2N distinct frames under inlined library code),
all in one translation unit that includes <regex>, <map> and <iostream>: what the exit report's
symbolization costs when a big C++ unit has thousands of distinct allocating frames.
    tests/bench/many_sites.py 1500 > /tmp/sites.cc && g++ -O2 -g /tmp/sites.cc -o /tmp/sites
    /usr/bin/time -f %e env LD_PRELOAD=build/lib/libheapledger.so \\
        HEAPLEDGER_OPTIONS=json=/tmp/sites.json:log=none /tmp/sites
"""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
out = ["#include <regex>", "#include <map>", "#include <iostream>", "#include <vector>",
       "#include <string>", "namespace gen {"]
for i in range(n):
    out.append(f"__attribute__((noinline)) void* f{i}(int n) {{ auto* v = new std::vector<int>(n + {i}); "
               f"auto* s = new std::string(40 + {i % 7}, 'x'); (void)s; return v; }}")
out.append("}")
out.append('int main(int argc, char**) { std::regex r("a+b"); std::map<std::string, int> m; m["x"] = 1;')
out.append("  std::cout << std::regex_match(\"aab\", r) << m.size() << '\\n';")
out += [f"  gen::f{i}(argc);" for i in range(n)]
out.append("  return 0;\n}")
print("\n".join(out))
