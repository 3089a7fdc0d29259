// Suppressions: LSan's matching rules, file parsing with line-numbered warnings, and what
// applying them does to a report's leaks and summary.
#include "tracker/suppressions.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace heapledger {
namespace {

TEST(TemplateMatch, SubstringUnlessAnchored) {
  EXPECT_TRUE(template_match("leak_other", "leak_other"));
  EXPECT_TRUE(template_match("other", "leak_other"));
  EXPECT_TRUE(template_match("^leak", "leak_other"));
  EXPECT_FALSE(template_match("^other", "leak_other"));
  EXPECT_TRUE(template_match("other$", "leak_other"));
  EXPECT_FALSE(template_match("leak$", "leak_other"));
  EXPECT_TRUE(template_match("^leak_other$", "leak_other"));
  EXPECT_FALSE(template_match("", "anything"));
}

TEST(TemplateMatch, Wildcards) {
  EXPECT_TRUE(template_match("std::*::insert", "std::map<int, int>::insert"));
  EXPECT_TRUE(template_match("^lib*.so$", "libfoo.so"));
  EXPECT_FALSE(template_match("^lib*.so$", "libfoo.so.1"));
  EXPECT_TRUE(template_match("a*b*c", "xxaxxbxxcxx"));
  EXPECT_FALSE(template_match("a*b*c", "xxaxxcxxbxx"));
  EXPECT_TRUE(template_match("*", ""));
}

TEST(Suppressions, ParsesLsanFilesAndWarnsWithLineNumbers) {
  Suppressions s;
  std::vector<std::string> warnings;
  s.parse("# comment\n\nleak:foo\n  leak:bar*baz  \nnot a rule\ncalled_from_lib:x\nleak:\n", "s.txt", &warnings);
  EXPECT_EQ(s.size(), 2u);
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_NE(warnings[0].find("s.txt:5"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("s.txt:6"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[2].find("s.txt:7"), std::string::npos) << warnings[2];
}

TEST(Suppressions, AFileThatCannotBeReadIsNamedWithWhy) {
  Suppressions s;
  std::vector<std::string> warnings;
  s.load("/nonexistent/heapledger.supp", &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(
      warnings[0],
      "cannot read suppressions file /nonexistent/heapledger.supp: No such file or directory");
}

Stack stack_of(const char* function, const char* file, const char* module) {
  Frame f;
  f.function = function;
  f.file = file;
  f.module = module;
  return Stack{f};
}

Report sample() {
  Report r;
  r.leaks = {Leak{"definite", 100, 2, 0, 0, stack_of("parse_config", "/src/config.c", "/bin/app")},
             Leak{"indirect", 40, 1, 0, 0, stack_of("parse_config", "/src/config.c", "/bin/app")},
             Leak{"possible", 30, 1, 0, 0, stack_of("cache_put", "/src/cache.c", "/lib/libcache.so")},
             Leak{"reachable", 500, 5, 0, 0, stack_of("parse_config", "/src/config.c", "/bin/app")},
             Leak{"definite", 7, 1, 0, 0, stack_of("other", "/src/other.c", "/bin/app")}};
  r.summary.leaked_bytes = 147;
  r.summary.leaked_blocks = 4;
  r.summary.possible_bytes = 30;
  r.summary.possible_blocks = 1;
  r.summary.reachable_bytes = 500;
  r.summary.reachable_blocks = 5;
  return r;
}

TEST(Suppressions, ApplyMovesMatchedLeaksToSuppressed) {
  Suppressions s;
  s.parse("leak:parse_config\nleak:libcache.so\n", "s", nullptr);
  Report r = sample();
  s.apply(r);
  ASSERT_EQ(r.leaks.size(), 2u);  // the reachable entry stays, and the unmatched leak
  EXPECT_EQ(r.leaks[0].kind, "reachable");
  EXPECT_EQ(r.leaks[1].bytes, 7u);
  EXPECT_EQ(r.summary.leaked_bytes, 7u);
  EXPECT_EQ(r.summary.leaked_blocks, 1u);
  EXPECT_EQ(r.summary.possible_bytes, 0u);
  EXPECT_EQ(r.summary.possible_blocks, 0u);
  EXPECT_EQ(r.summary.suppressed_bytes, 170u);
  EXPECT_EQ(r.summary.suppressed_blocks, 4u);
  EXPECT_EQ(r.summary.reachable_blocks, 5u);
  ASSERT_EQ(r.suppressions.size(), 2u);
  std::uint64_t by_config = 0, by_cache = 0;
  for (const SuppressionHit& h : r.suppressions) (h.pattern == "parse_config" ? by_config : by_cache) += h.bytes;
  EXPECT_EQ(by_config, 140u);
  EXPECT_EQ(by_cache, 30u);
}

TEST(Suppressions, MatchesFileNamesToo) {
  Suppressions s;
  s.parse("leak:config.c$\n", "s", nullptr);
  Report r = sample();
  s.apply(r);
  EXPECT_EQ(r.summary.suppressed_bytes, 140u);
}

TEST(Suppressions, IndirectLeaksGoWithTheSuppressedLeakHoldingThem) {
  // As in LeakSanitizer: what only a suppressed leak holds is not reported, whatever allocated
  // it; the same blocks held by a leak that is not suppressed stay.
  Suppressions s;
  s.parse("leak:make_registry\n", "s", nullptr);
  Report r;
  Leak held{"indirect", 19, 1, 0, 0, stack_of("copy_name", "/src/name.c", "/bin/app")};
  held.holder = stack_of("make_registry", "/src/registry.c", "/bin/app");
  Leak kept = held;
  kept.holder = stack_of("make_cache", "/src/cache.c", "/bin/app");
  Leak reachable{"reachable", 5, 1, 0, 0, stack_of("copy_name", "/src/name.c", "/bin/app")};
  r.leaks = {held, kept, reachable};
  r.summary.leaked_bytes = 38;
  r.summary.leaked_blocks = 2;
  s.apply(r);
  ASSERT_EQ(r.leaks.size(), 2u);
  EXPECT_EQ(r.leaks[0].holder.front().function, std::optional<std::string>("make_cache"));
  EXPECT_EQ(r.leaks[1].kind, "reachable");
  EXPECT_EQ(r.summary.leaked_bytes, 19u);
  EXPECT_EQ(r.summary.leaked_blocks, 1u);
  ASSERT_EQ(r.suppressions.size(), 1u);
  EXPECT_EQ(r.suppressions[0].pattern, "make_registry");
  EXPECT_EQ(r.suppressions[0].bytes, 19u);
}

TEST(Suppressions, FirstMatchIsTheFirstPatternOfTheFileNotTheFirstFrame) {
  Suppressions s;
  s.parse("leak:outer\nleak:inner\n", "s", nullptr);
  Stack frames = stack_of("inner", "/src/a.c", "/bin/app");
  frames.push_back(stack_of("outer", "/src/b.c", "/bin/app").front());
  EXPECT_EQ(s.first_match(frames), 0u);
  EXPECT_EQ(s.first_match(stack_of("inner", "/src/a.c", "/bin/app")), 1u);
  EXPECT_EQ(s.first_match(stack_of("other", "/src/a.c", "/bin/app")), s.size());
}

// The reporter matches stacks not yet symbolized, one distinct frame at a time: the same leaks
// hidden, by the same patterns, as when the whole stacks are named first.
TEST(Suppressions, StacksMatchedFrameByFrameHideWhatNamedStacksWould) {
  Suppressions s;
  s.parse("leak:cache\nleak:parse_config\n", "s", nullptr);
  Report named = sample();
  named.leaks[4].stack.push_back(stack_of("cache_flush", "/src/cache.c", "/bin/app").front());
  Report raw = named;
  std::vector<Frame> frame_at;  // a raw frame's address: its index here
  for (Leak& l : raw.leaks)
    for (Frame& f : l.stack) {
      frame_at.push_back(f);
      f = Frame{};
      f.address = frame_at.size() - 1;
    }
  int asked = 0;
  s.apply(raw, [&](const Leak& l, bool holder) {
    ++asked;
    const Stack& stack = holder ? l.holder : l.stack;
    std::size_t first = s.size();
    for (const Frame& f : stack) first = std::min(first, s.first_match(Stack{frame_at[f.address]}));
    return first;
  });
  s.apply(named);
  EXPECT_EQ(asked, 4);  // the leaks, not the still-reachable site
  ASSERT_EQ(raw.leaks.size(), named.leaks.size());
  for (std::size_t i = 0; i < raw.leaks.size(); ++i)
    EXPECT_EQ(raw.leaks[i].bytes, named.leaks[i].bytes);
  EXPECT_EQ(raw.summary.suppressed_bytes, named.summary.suppressed_bytes);
  EXPECT_EQ(raw.summary.leaked_bytes, 0u);
  ASSERT_EQ(raw.suppressions.size(), named.suppressions.size());
  for (std::size_t i = 0; i < raw.suppressions.size(); ++i) {
    EXPECT_EQ(raw.suppressions[i].pattern, named.suppressions[i].pattern);
    EXPECT_EQ(raw.suppressions[i].bytes, named.suppressions[i].bytes);
  }
}

TEST(Suppressions, BuiltinListCoversDynamicLinkerTls) {
  Report r;
  r.leaks = {Leak{"definite", 64, 1, 0, 0, stack_of("_dl_allocate_tls", "dl-tls.c", "/lib64/ld-linux-x86-64.so.2")}};
  r.summary.leaked_bytes = 64;
  r.summary.leaked_blocks = 1;
  Suppressions::builtin().apply(r);
  EXPECT_TRUE(r.leaks.empty());
  EXPECT_EQ(r.summary.leaked_blocks, 0u);
}

}  // namespace
}  // namespace heapledger
