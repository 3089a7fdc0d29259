// The symbolizer on the C library's own functions and on functions laid out by hand
// (symbolizer_fixture.c): each frame named as the sorted symbol table names it, whether looked up
// one at a time or named ahead for a whole report (Symbolizer::name_ahead).
#include "tracker/symbolizer.h"

#include <dirent.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <locale.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace heapledger {
namespace {

struct Function {
  const char* name;
  void* address;
};

// Plain functions of the C library (no IFUNCs, whose address is a variant's), most of them with
// aliases at the same address (_IO_fopen and fopen64 for fopen, __strdup for strdup).
std::vector<Function> c_library_functions() {
  return {
      {"strdup", reinterpret_cast<void*>(&strdup)},
      {"fopen", reinterpret_cast<void*>(&fopen)},
      {"fclose", reinterpret_cast<void*>(&fclose)},
      {"fputs", reinterpret_cast<void*>(&fputs)},
      {"fwrite", reinterpret_cast<void*>(&fwrite)},
      {"fread", reinterpret_cast<void*>(&fread)},
      {"fflush", reinterpret_cast<void*>(&fflush)},
      {"fgets", reinterpret_cast<void*>(&fgets)},
      {"puts", reinterpret_cast<void*>(&puts)},
      {"qsort", reinterpret_cast<void*>(&qsort)},
      {"getenv", reinterpret_cast<void*>(&getenv)},
      {"abort", reinterpret_cast<void*>(&abort)},
      {"opendir", reinterpret_cast<void*>(&opendir)},
      {"closedir", reinterpret_cast<void*>(&closedir)},
      {"setlocale", reinterpret_cast<void*>(&setlocale)},
      {"perror", reinterpret_cast<void*>(&perror)},
      {"strerror", reinterpret_cast<void*>(&strerror)},
      {"popen", reinterpret_cast<void*>(&popen)},
      {"pclose", reinterpret_cast<void*>(&pclose)},
      {"tmpfile", reinterpret_cast<void*>(&tmpfile)},
      {"mkstemp", reinterpret_cast<void*>(&mkstemp)},
      {"getline", reinterpret_cast<void*>(&getline)},
  };
}

// A raw frame as the tracker records it: `into` bytes past the function's start, plus one (a
// return address; the symbolizer looks up the byte before it).
Frame raw_frame(void* address, std::uint64_t into) {
  Dl_info info{};
  EXPECT_NE(dladdr(address, &info), 0);
  Frame f;
  f.address = reinterpret_cast<std::uint64_t>(address) + into + 1;
  f.module = info.dli_fname ? info.dli_fname : "";
  f.offset = f.address - reinterpret_cast<std::uint64_t>(info.dli_fbase);
  return f;
}

std::string function_of(const Stack& named) {
  return named.size() == 1 ? named[0].function.value_or("(none)")
                           : "(frames: " + std::to_string(named.size()) + ")";
}

TEST(Symbolizer, CLibraryFramesHaveTheirPublicName) {
  Symbolizer symbolizer;
  for (const Function& fn : c_library_functions()) {
    const Stack named = symbolizer.symbolize({raw_frame(fn.address, 0)});
    EXPECT_EQ(function_of(named), fn.name);
    ASSERT_EQ(named.size(), 1u);
    EXPECT_FALSE(named[0].file.has_value()) << fn.name;  // the C library: names only
  }
}

// Frames in symbolizer_fixture.c's functions, laid out by hand, with the name each should get.
struct Case {
  Stack stack;
  std::string want;  // empty: whatever the sorted table says (checked for agreement only)
};
std::vector<Case> fixture_cases() {
  void* lib = dlopen(SYMBOLIZER_FIXTURE, RTLD_NOW | RTLD_LOCAL);
  EXPECT_NE(lib, nullptr) << dlerror();
  if (!lib) return {};
  auto at = [&](const char* name) {
    void* p = dlsym(lib, name);
    EXPECT_NE(p, nullptr) << name;
    return p;
  };
  const auto frame = [](void* fn, std::uint64_t into) { return Stack{raw_frame(fn, into)}; };
  Frame below_all = raw_frame(at("sized_fn"), 0);
  below_all.offset = 1;  // address 0 of the module, below every symbol
  return {
      {frame(at("sized_fn"), 0), "sized_fn"},  // not the size-less label a0 at its address
      {frame(at("sized_fn"), 10), "sized_fn"},
      {frame(at("sized_fn"), 63), "sized_fn"},
      {frame(at("sized_fn"), 64 + 8), "(none)"},  // past it, in code no function covers
      {frame(at("outer"), 8), "outer"},
      {frame(at("inner"), 4), "inner"},
      {frame(at("outer"), 40), ""},         // past inner, inside outer
      {frame(at("same_a"), 4), "same_a"},   // of two names alike, the first by name
      {frame(at("long_b"), 20), "long_b"},  // of two sizes, the larger
      {Stack{below_all}, "(none)"},
  };
}

TEST(Symbolizer, HandLaidFunctionsAreNamedAsTheTableSays) {
  Symbolizer symbolizer;
  for (const Case& c : fixture_cases()) {
    if (!c.want.empty()) {
      EXPECT_EQ(function_of(symbolizer.symbolize(c.stack)), c.want);
    }
  }
}

// The maps the exit scan read are the ones used (use_maps), not read again: given a text in which
// the fixture's file was replaced since it was mapped (" (deleted)", at a range no mapping has,
// so /proc/self/map_files cannot open it), its frames are left unnamed and the module is listed
// as unreadable; read from /proc/self/maps, the same frames are named.
TEST(Symbolizer, TheMapsItIsGivenAreTheOnesItUses) {
  const std::vector<Case> cases = fixture_cases();
  ASSERT_FALSE(cases.empty());
  const Frame& raw = cases[0].stack[0];  // in sized_fn
  const std::string maps = "100000-101000 r-xp 00000000 00:00 0 " + raw.module + " (deleted)\n";
  Symbolizer given;
  given.use_maps(maps);
  EXPECT_EQ(function_of(given.symbolize({raw})), "(none)");
  EXPECT_EQ(given.unreadable_replaced().count(raw.module), 1u);
  Symbolizer read;
  EXPECT_EQ(function_of(read.symbolize({raw})), "sized_fn");
  EXPECT_TRUE(read.unreadable_replaced().empty());
}

__attribute__((noinline)) int named_in_this_file(int x) {
  asm volatile("" : "+r"(x));
  return x * 3 + 1;
}

// What the built-in suppressions are matched against: the symbol table's name, with no file or
// line (the test is built with debug information, which symbolize reads).
TEST(Symbolizer, SymbolOnlyNamesAFrameByTheTableAlone) {
  Symbolizer symbolizer;
  const Frame raw = raw_frame(reinterpret_cast<void*>(&named_in_this_file), 2);
  const Frame named = symbolizer.symbol_only(raw);
  EXPECT_EQ(named.function, "heapledger::(anonymous namespace)::named_in_this_file(int)");
  EXPECT_FALSE(named.file.has_value());
  EXPECT_FALSE(named.line.has_value());
  EXPECT_EQ((std::tuple{named.address, named.module, named.offset}),
            (std::tuple{raw.address, raw.module, raw.offset}));
  const Stack full = symbolizer.symbolize({raw});
  ASSERT_EQ(full.size(), 1u);
  EXPECT_EQ(full[0].function, named.function);
  if (!full[0].file) GTEST_SKIP() << "built without debug information";
  EXPECT_NE(full[0].file->find("symbolizer_test.cc"), std::string::npos) << *full[0].file;
  EXPECT_EQ(symbolizer.symbol_only(raw).file, std::nullopt);  // after symbolize too
}

// Named ahead (a report's every stack at once: one pass over each table, no sort), each frame has
// the name the sorted table gives it, and no table is sorted.
TEST(Symbolizer, NamesFoundAheadAreTheSortedTablesNames) {
  std::vector<Stack> stacks;
  for (const Function& fn : c_library_functions())
    for (std::uint64_t into : {0, 1, 3}) stacks.push_back({raw_frame(fn.address, into)});
  for (Case& c : fixture_cases()) stacks.push_back(std::move(c.stack));
  Frame past = raw_frame(reinterpret_cast<void*>(&strdup), 0);
  past.offset = std::uint64_t{1} << 40;  // past the C library's last function
  stacks.push_back({past});
  stacks.push_back(stacks.front());  // twice in one report

  Symbolizer ahead, sorted;
  std::vector<const Stack*> all;
  for (const Stack& s : stacks) all.push_back(&s);
  ahead.name_ahead(all);
  for (std::size_t i = 0; i < stacks.size(); ++i)
    EXPECT_EQ(function_of(ahead.symbolize(stacks[i])), function_of(sorted.symbolize(stacks[i])))
        << i;
  EXPECT_EQ(ahead.tables_sorted(), 0u);   // every name came from name_ahead
  EXPECT_EQ(sorted.tables_sorted(), 2u);  // the C library's and the fixture's
}

}  // namespace
}  // namespace heapledger
