// Tests for the report writers: the JSON round trip and its exact schema (heapledger/1), the
// reader's rejection of bad input, human_bytes, and the text layout.
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tracker/report_json.h"
#include "tracker/report_text.h"

namespace heapledger {
namespace {

using Json = nlohmann::ordered_json;

// ---- fixtures ----

Frame frame(std::uint64_t address, std::string module, std::uint64_t offset,
            std::optional<std::string> function = std::nullopt,
            std::optional<std::string> file = std::nullopt,
            std::optional<int> line = std::nullopt) {
  return Frame{address, std::move(module), offset, std::move(function), std::move(file), line};
}

// Fields set by name, so that fields added to the model later cannot shift them.
HeapError heap_error(std::string kind, std::uint64_t address, Stack stack = {},
                     std::optional<Stack> alloc_stack = std::nullopt,
                     std::optional<Stack> free_stack = std::nullopt, std::string detail = "") {
  HeapError e;
  e.kind = std::move(kind);
  e.address = address;
  e.detail = std::move(detail);
  e.stack = std::move(stack);
  e.alloc_stack = std::move(alloc_stack);
  e.free_stack = std::move(free_stack);
  return e;
}

// Every field set to a distinct value, every optional both present and absent somewhere.
Report full_report() {
  Report r;
  r.tool_version = "0.1.0";
  r.process.pid = 4242;
  r.process.ppid = 17;
  r.process.exe = "/usr/bin/prog";
  r.process.argv = {"prog", "--name=ä ö", "two words", ""};
  r.process.duration_ms = 12.5;
  r.summary.allocations = 120;
  r.summary.frees = 118;
  r.summary.bytes_allocated = 1258291;
  r.summary.peak_bytes = 819200;
  r.summary.peak_blocks = 40;
  r.summary.peak_time_ms = 10.25;
  r.summary.live_bytes = 1536;
  r.summary.live_blocks = 2;
  r.summary.leaked_bytes = 1024;
  r.summary.leaked_blocks = 1;
  r.summary.possible_bytes = 256;
  r.summary.possible_blocks = 3;
  r.summary.reachable_bytes = 128;
  r.summary.reachable_blocks = 5;
  r.summary.suppressed_bytes = 64;
  r.summary.suppressed_blocks = 6;
  r.summary.errors = 4;
  Stack inlined = {
      frame(0x401136, "/tmp/demo", 0x1136, "inner_helper", "/src/util.h", 7),
      frame(0x401136, "/tmp/demo", 0x1136, "leak_malloc", "/src/demo.c", 12),
      frame(0x7f0000002a1b, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x2a1b),
      frame(0xffffffffffffffff, "", 0),
  };
  r.leaks = {{"definite", 1024, 1, 3.125, 3.125, inlined},
             {"possible", 256, 4, 1.5, 9.75, {frame(0x401200, "/tmp/demo", 0x1200, "main")}},
             {"reachable", 128, 1, 0.5, 0.5, {}}};
  // One thread; six, four named in the text, one unnamed and one not known.
  r.leaks[0].threads = {{4343, "worker \"7\"", 1, 1024}};
  r.leaks[0].thread_count = 1;
  r.leaks[1].threads = {{4242, "prog", 1, 96},   {4350, "", 1, 64},       {std::nullopt, "", 1, 32},
                        {4351, "pool-1", 1, 32}, {4352, "pool-2", 0, 16}, {4353, "pool-3", 0, 16}};
  r.leaks[1].thread_count = 6;
  r.peak = {{600000, 30, {frame(0x401300, "/tmp/demo", 0x1300, "build_cache", "/src/c.c", 22)}},
            {219200, 10, {}}};
  r.errors = {
      heap_error("double_free", 0xdead0, {frame(0x401400, "/tmp/demo", 0x1400, "f", "/a.c", 1)},
                 Stack{frame(0x401500, "/tmp/demo", 0x1500, "g", std::nullopt, 5)}),
      heap_error("invalid_free", 0x10, {}, std::nullopt, Stack{}),
      heap_error("mismatched_free", 0x20, {}, std::nullopt, std::nullopt,
                 "sized delete with a different size"),
      heap_error("invalid_free", 0x5010, {}, Stack{frame(0x401600, "/tmp/demo", 0x1600, "h", "/a.c", 9)},
                 std::nullopt, "16 bytes inside a 64-byte block at 0x5000")};
  r.errors.back().block = HeapError::Block{0x5000, 64};
  r.errors.front().thread = 4343;
  r.errors.front().thread_name = "worker \"7\"";
  r.errors.front().free_thread = 4344;  // another thread freed it first
  r.errors.front().free_thread_name = "pool-2";
  r.timeline = {{0.0, 0}, {10.25, 819200}, {12.5, 1536}};
  r.scan = ScanInfo{3.75, 4, 3, 65536, 1536};
  r.suppressions = {{"^libfoo*", 3, 48}, {"leak_other", 1, 16}};  // the 64 suppressed bytes
  r.reachable_sites_omitted = 5;
  return r;
}

// ---- field-by-field comparison (the model has no operator==) ----

void expect_stack_eq(const Stack& a, const Stack& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    EXPECT_EQ(a[i].address, b[i].address);
    EXPECT_EQ(a[i].module, b[i].module);
    EXPECT_EQ(a[i].offset, b[i].offset);
    EXPECT_EQ(a[i].function, b[i].function);
    EXPECT_EQ(a[i].file, b[i].file);
    EXPECT_EQ(a[i].line, b[i].line);
  }
}

void expect_optional_stack_eq(const std::optional<Stack>& a, const std::optional<Stack>& b) {
  ASSERT_EQ(a.has_value(), b.has_value());
  if (a) expect_stack_eq(*a, *b);
}

void expect_summary_eq(const Summary& a, const Summary& b) {
  EXPECT_EQ(a.allocations, b.allocations);
  EXPECT_EQ(a.frees, b.frees);
  EXPECT_EQ(a.bytes_allocated, b.bytes_allocated);
  EXPECT_EQ(a.peak_bytes, b.peak_bytes);
  EXPECT_EQ(a.peak_blocks, b.peak_blocks);
  EXPECT_EQ(a.peak_time_ms, b.peak_time_ms);
  EXPECT_EQ(a.live_bytes, b.live_bytes);
  EXPECT_EQ(a.live_blocks, b.live_blocks);
  EXPECT_EQ(a.leaked_bytes, b.leaked_bytes);
  EXPECT_EQ(a.leaked_blocks, b.leaked_blocks);
  EXPECT_EQ(a.possible_bytes, b.possible_bytes);
  EXPECT_EQ(a.possible_blocks, b.possible_blocks);
  EXPECT_EQ(a.reachable_bytes, b.reachable_bytes);
  EXPECT_EQ(a.reachable_blocks, b.reachable_blocks);
  EXPECT_EQ(a.suppressed_bytes, b.suppressed_bytes);
  EXPECT_EQ(a.suppressed_blocks, b.suppressed_blocks);
  EXPECT_EQ(a.errors, b.errors);
}

void expect_report_eq(const Report& a, const Report& b) {
  EXPECT_EQ(a.schema, b.schema);
  EXPECT_EQ(a.tool_name, b.tool_name);
  EXPECT_EQ(a.tool_version, b.tool_version);
  EXPECT_EQ(a.process.pid, b.process.pid);
  EXPECT_EQ(a.process.ppid, b.process.ppid);
  EXPECT_EQ(a.process.exe, b.process.exe);
  EXPECT_EQ(a.process.argv, b.process.argv);
  EXPECT_EQ(a.process.duration_ms, b.process.duration_ms);
  EXPECT_EQ(a.process.forked_ms, b.process.forked_ms);
  EXPECT_EQ(a.process.signal, b.process.signal);
  expect_summary_eq(a.summary, b.summary);
  ASSERT_EQ(a.leaks.size(), b.leaks.size());
  for (std::size_t i = 0; i < a.leaks.size(); ++i) {
    SCOPED_TRACE("leak " + std::to_string(i));
    EXPECT_EQ(a.leaks[i].kind, b.leaks[i].kind);
    EXPECT_EQ(a.leaks[i].bytes, b.leaks[i].bytes);
    EXPECT_EQ(a.leaks[i].blocks, b.leaks[i].blocks);
    EXPECT_EQ(a.leaks[i].first_ms, b.leaks[i].first_ms);
    EXPECT_EQ(a.leaks[i].last_ms, b.leaks[i].last_ms);
    expect_stack_eq(a.leaks[i].stack, b.leaks[i].stack);
    EXPECT_EQ(a.leaks[i].thread_count, b.leaks[i].thread_count);
    ASSERT_EQ(a.leaks[i].threads.size(), b.leaks[i].threads.size());
    for (std::size_t k = 0; k < a.leaks[i].threads.size(); ++k) {
      EXPECT_EQ(a.leaks[i].threads[k].thread, b.leaks[i].threads[k].thread);
      EXPECT_EQ(a.leaks[i].threads[k].name, b.leaks[i].threads[k].name);
      EXPECT_EQ(a.leaks[i].threads[k].blocks, b.leaks[i].threads[k].blocks);
      EXPECT_EQ(a.leaks[i].threads[k].bytes, b.leaks[i].threads[k].bytes);
    }
  }
  ASSERT_EQ(a.peak.size(), b.peak.size());
  for (std::size_t i = 0; i < a.peak.size(); ++i) {
    SCOPED_TRACE("peak " + std::to_string(i));
    EXPECT_EQ(a.peak[i].bytes, b.peak[i].bytes);
    EXPECT_EQ(a.peak[i].blocks, b.peak[i].blocks);
    expect_stack_eq(a.peak[i].stack, b.peak[i].stack);
  }
  ASSERT_EQ(a.errors.size(), b.errors.size());
  for (std::size_t i = 0; i < a.errors.size(); ++i) {
    SCOPED_TRACE("error " + std::to_string(i));
    EXPECT_EQ(a.errors[i].kind, b.errors[i].kind);
    EXPECT_EQ(a.errors[i].address, b.errors[i].address);
    EXPECT_EQ(a.errors[i].detail, b.errors[i].detail);
    ASSERT_EQ(a.errors[i].block.has_value(), b.errors[i].block.has_value());
    if (a.errors[i].block) {
      EXPECT_EQ(a.errors[i].block->address, b.errors[i].block->address);
      EXPECT_EQ(a.errors[i].block->size, b.errors[i].block->size);
    }
    expect_stack_eq(a.errors[i].stack, b.errors[i].stack);
    expect_optional_stack_eq(a.errors[i].alloc_stack, b.errors[i].alloc_stack);
    expect_optional_stack_eq(a.errors[i].free_stack, b.errors[i].free_stack);
    EXPECT_EQ(a.errors[i].thread, b.errors[i].thread);
    EXPECT_EQ(a.errors[i].thread_name, b.errors[i].thread_name);
    EXPECT_EQ(a.errors[i].free_thread, b.errors[i].free_thread);
    EXPECT_EQ(a.errors[i].free_thread_name, b.errors[i].free_thread_name);
  }
  ASSERT_EQ(a.timeline.size(), b.timeline.size());
  for (std::size_t i = 0; i < a.timeline.size(); ++i) {
    EXPECT_EQ(a.timeline[i].t_ms, b.timeline[i].t_ms);
    EXPECT_EQ(a.timeline[i].bytes, b.timeline[i].bytes);
  }
  ASSERT_EQ(a.scan.has_value(), b.scan.has_value());
  if (a.scan) {
    EXPECT_EQ(a.scan->milliseconds, b.scan->milliseconds);
    EXPECT_EQ(a.scan->threads, b.scan->threads);
    EXPECT_EQ(a.scan->threads_stopped, b.scan->threads_stopped);
    EXPECT_EQ(a.scan->threads_held, b.scan->threads_held);
    EXPECT_EQ(a.scan->root_bytes, b.scan->root_bytes);
    EXPECT_EQ(a.scan->heap_bytes_scanned, b.scan->heap_bytes_scanned);
  }
  ASSERT_EQ(a.suppressions.size(), b.suppressions.size());
  for (std::size_t i = 0; i < a.suppressions.size(); ++i) {
    SCOPED_TRACE("suppression " + std::to_string(i));
    EXPECT_EQ(a.suppressions[i].pattern, b.suppressions[i].pattern);
    EXPECT_EQ(a.suppressions[i].blocks, b.suppressions[i].blocks);
    EXPECT_EQ(a.suppressions[i].bytes, b.suppressions[i].bytes);
  }
  EXPECT_EQ(a.reachable_sites_omitted, b.reachable_sites_omitted);
}

std::vector<std::string> keys(const Json& object) {
  std::vector<std::string> out;
  for (auto it = object.begin(); it != object.end(); ++it) out.push_back(it.key());
  return out;
}

// ---- JSON: round trip ----

TEST(ReportJson, RoundTripKeepsEveryField) {
  Report r = full_report();
  expect_report_eq(report_from_json(to_json(r)), r);
}

TEST(ReportJson, RoundTripOfCompactOutput) {
  Report r = full_report();
  std::string compact = to_json(r, -1);
  EXPECT_EQ(compact.find('\n'), std::string::npos);
  expect_report_eq(report_from_json(compact), r);
}

// The writer streams the document member by member; the text must be what nlohmann's dump()
// makes of the whole tree, at every indent (an empty list, the compact form and depth included).
TEST(ReportJson, WrittenTextIsWhatDumpMakesOfTheWholeDocument) {
  Report empty;
  for (const Report& r : {full_report(), empty}) {
    for (int indent : {-1, 0, 1, 2, 4}) {
      const std::string text = to_json(r, indent);
      EXPECT_EQ(Json::parse(text).dump(indent, ' ', false, Json::error_handler_t::replace), text)
          << "indent " << indent;
    }
  }
}

// Strings are written as they are where nothing in them needs escaping, and through dump()
// otherwise: the text is still dump()'s for names with quotes, backslashes, control characters,
// UTF-8 and bytes that are not UTF-8 (replaced), in every list that holds them.
TEST(ReportJson, NamesThatNeedEscapingAreWrittenAsDumpWritesThem) {
  Report r = full_report();
  const Stack odd = {
      frame(0x401000, "/tmp/dir with \"quotes\"/prog", 0x1000, "operator\"\"_x(char const*)",
            "C:\\src\\a.c", 3),
      frame(0x401001, "/tmp/tab\there", 0x1001, "line\nbreak\x01\x1f\x7f", "/src/ä ö ü.c", 4),
      frame(0x401002, "/tmp/bad\xff\xfe utf-8", 0x1002, std::string("nul\0inside", 10), "\xc3", 5),
  };
  r.leaks.push_back({"definite", 8, 1, 0.25, 0.25, odd});
  r.peak.push_back({8, 1, odd});
  r.errors.push_back(heap_error("double_free", 0x30, odd, odd, odd, "detail with \"quotes\"\n"));
  r.suppressions.push_back({"leak:*\\\"*", 1, 8});
  for (int indent : {-1, 0, 2, 4}) {
    const std::string text = to_json(r, indent);
    EXPECT_EQ(Json::parse(text).dump(indent, ' ', false, Json::error_handler_t::replace), text)
        << "indent " << indent;
  }
}

// The exit report streams its JSON to the file: the pieces, together, are what nlohmann's dump()
// makes of the whole document (to_json is the same pieces joined, so it is no check of them), and
// a big report comes in more than one piece (the leak list's elements, about 1 MiB at a time), so
// the joins between pieces are checked too, and the pieces read back as the report.
TEST(ReportJson, StreamedPiecesMakeTheSameText) {
  Report r = full_report();
  const Leak first = r.leaks.at(0);
  for (int i = 0; i < 3000; ++i) {
    r.leaks.push_back(first);
    r.leaks.back().bytes = static_cast<std::uint64_t>(i);
  }
  for (int indent : {-1, 2}) {
    std::string joined;
    int pieces = 0;
    write_json(r, indent, [&](std::string_view piece) {
      joined += piece;
      ++pieces;
    });
    EXPECT_EQ(Json::parse(joined).dump(indent, ' ', false, Json::error_handler_t::replace), joined)
        << "indent " << indent;
    EXPECT_GT(pieces, 1) << joined.size() << " bytes in one piece";
    expect_report_eq(report_from_json(joined), r);
  }
}

TEST(ReportJson, RoundTripOfDefaultReport) {
  Report r;
  Report back = report_from_json(to_json(r));
  expect_report_eq(back, r);
  EXPECT_EQ(back.schema, "heapledger/1");
}

TEST(ReportJson, RoundTripOfScanWithoutSuppressions) {
  Report r;
  r.scan = ScanInfo{0.0, 0, 0, 0, 0};  // a scan that ran and found nothing is not a missing scan
  Report back = report_from_json(to_json(r));
  expect_report_eq(back, r);
  EXPECT_TRUE(back.scan.has_value());
  EXPECT_TRUE(back.suppressions.empty());
}

// A scan that could not run says why (no /proc, out of memory), in the JSON and in the text; a
// report from before the field has none, and the text says out of memory, as it did.
TEST(ReportJson, AFailedScanKeepsWhyItFailed) {
  Report r;
  r.scan = ScanInfo{.failed = true};
  r.scan_failure = "/proc/self/maps cannot be read: No such file or directory; is /proc mounted?";
  const std::string json = to_json(r);
  EXPECT_NE(json.find(R"("why": "/proc/self/maps cannot be read)"), std::string::npos) << json;
  Report back = report_from_json(json);
  ASSERT_TRUE(back.scan.has_value());
  EXPECT_TRUE(back.scan->failed);
  EXPECT_EQ(back.scan_failure, r.scan_failure);
  EXPECT_NE(
      render_text(back).find("warning: the leak scan failed (/proc/self/maps cannot be read: "),
      std::string::npos)
      << render_text(back);
  back.scan_failure.clear();
  EXPECT_NE(render_text(back).find("warning: the leak scan failed (out of memory)"),
            std::string::npos);
}

TEST(ReportJson, RoundTripKeepsInlinedFramesSeparate) {
  Report back = report_from_json(to_json(full_report()));
  const Stack& s = back.leaks.at(0).stack;
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].address, s[1].address);
  EXPECT_EQ(s[0].function, "inner_helper");
  EXPECT_EQ(s[1].function, "leak_malloc");
  EXPECT_EQ(s[3].address, 0xffffffffffffffffu);
}

TEST(ReportJson, InvalidUtf8IsReplacedNotFatal) {
  Report r;
  r.process.argv = {"prog", std::string("bad\xff\xfe", 5)};
  std::string json;
  ASSERT_NO_THROW(json = to_json(r));
  EXPECT_EQ(report_from_json(json).process.argv.at(1), "bad\xEF\xBF\xBD\xEF\xBF\xBD");
}

// ---- JSON: exact shape of the schema ----

TEST(ReportJson, CompactOutputOfSmallReportIsExact) {
  Report r;
  r.tool_version = "0.1.0";
  r.process.pid = 7;
  r.process.ppid = 1;
  r.process.exe = "/bin/x";
  r.process.argv = {"x"};
  r.process.duration_ms = 1.5;
  r.summary.allocations = 2;
  r.leaks = {
      {"unknown",
       16,
       1,
       0.25,
       0.25,
       {frame(0x401136, "/bin/x", 0x1136, "f", "/s.c", 3), frame(0x1a2b, "/lib/y.so", 0x2b)}}};
  r.errors = {heap_error("double_free", 0xbeef, {}, std::nullopt, Stack{})};
  r.timeline = {{1.0, 16}};
  EXPECT_EQ(
      to_json(r, -1),
      R"({"schema":"heapledger/1","tool":{"name":"heapledger","version":"0.1.0"},)"
      R"("process":{"pid":7,"ppid":1,"exe":"/bin/x","argv":["x"],"duration_ms":1.5,"forked_ms":null,)"
      R"("signal":null},)"
      R"("summary":{"allocations":2,"frees":0,"bytes_allocated":0,"peak_bytes":0,)"
      R"("peak_blocks":0,"peak_time_ms":0.0,"live_bytes":0,"live_blocks":0,)"
      R"("leaked_bytes":0,"leaked_blocks":0,"possible_bytes":0,"possible_blocks":0,)"
      R"("reachable_bytes":0,"reachable_blocks":0,"suppressed_bytes":0,"suppressed_blocks":0,)"
      R"("errors":0},)"
      R"("leaks":[{"kind":"unknown","bytes":16,"blocks":1,"first_ms":0.25,"last_ms":0.25,)"
      R"("stack":[{"address":"0x401136","module":"/bin/x","offset":"0x1136",)"
      R"("function":"f","file":"/s.c","line":3},)"
      R"({"address":"0x1a2b","module":"/lib/y.so","offset":"0x2b",)"
      R"("function":null,"file":null,"line":null}],"threads":[],"thread_count":0}],)"
      R"("peak":[],)"
      R"("errors":[{"kind":"double_free","address":"0xbeef","detail":null,"block":null,"stack":[],)"
      R"("alloc_stack":null,"free_stack":[],"thread":null,"thread_name":null,"free_thread":null,)"
      R"("free_thread_name":null}],)"
      R"("timeline":[{"t_ms":1.0,"bytes":16}],)"
      R"("scan":null,"suppressions":[],"reachable_sites_omitted":0})");
  r.scan = ScanInfo{2.5, 3, 2, 4096, 16, false, 1};
  r.suppressions = {{"leak:*", 1, 8}};
  std::string tail = to_json(r, -1);
  tail = tail.substr(tail.find(R"("timeline")"));
  EXPECT_EQ(tail, R"("timeline":[{"t_ms":1.0,"bytes":16}],)"
                  R"("scan":{"milliseconds":2.5,"threads":3,"threads_stopped":2,"threads_held":1,)"
                  R"("root_bytes":4096,"heap_bytes_scanned":16},)"
                  R"("suppressions":[{"pattern":"leak:*","blocks":1,"bytes":8}],)"
                  R"("reachable_sites_omitted":0})");
}

TEST(ReportJson, KeysAreTheSchemaKeysInSchemaOrder) {
  Json doc = Json::parse(to_json(full_report()));
  using Keys = std::vector<std::string>;
  EXPECT_EQ(keys(doc), (Keys{"schema", "tool", "process", "summary", "leaks", "peak", "errors",
                             "timeline", "scan", "suppressions", "reachable_sites_omitted"}));
  EXPECT_EQ(keys(doc["tool"]), (Keys{"name", "version"}));
  EXPECT_EQ(keys(doc["process"]),
            (Keys{"pid", "ppid", "exe", "argv", "duration_ms", "forked_ms", "signal"}));
  EXPECT_EQ(keys(doc["summary"]),
            (Keys{"allocations", "frees", "bytes_allocated", "peak_bytes", "peak_blocks",
                  "peak_time_ms", "live_bytes", "live_blocks", "leaked_bytes", "leaked_blocks",
                  "possible_bytes", "possible_blocks", "reachable_bytes", "reachable_blocks",
                  "suppressed_bytes", "suppressed_blocks", "errors"}));
  EXPECT_EQ(keys(doc["leaks"][0]), (Keys{"kind", "bytes", "blocks", "first_ms", "last_ms", "stack",
                                         "threads", "thread_count"}));
  EXPECT_EQ(keys(doc["leaks"][0]["threads"][0]), (Keys{"thread", "name", "blocks", "bytes"}));
  EXPECT_EQ(keys(doc["leaks"][0]["stack"][0]),
            (Keys{"address", "module", "offset", "function", "file", "line"}));
  EXPECT_EQ(keys(doc["peak"][0]), (Keys{"bytes", "blocks", "stack"}));
  EXPECT_EQ(keys(doc["errors"][0]),
            (Keys{"kind", "address", "detail", "block", "stack", "alloc_stack", "free_stack",
                  "thread", "thread_name", "free_thread", "free_thread_name"}));
  EXPECT_EQ(keys(doc["errors"][3]["block"]), (Keys{"address", "size"}));
  EXPECT_EQ(keys(doc["timeline"][0]), (Keys{"t_ms", "bytes"}));
  EXPECT_EQ(keys(doc["scan"]), (Keys{"milliseconds", "threads", "threads_stopped", "threads_held",
                                     "root_bytes", "heap_bytes_scanned"}));
  EXPECT_EQ(keys(doc["suppressions"][0]), (Keys{"pattern", "blocks", "bytes"}));
}

TEST(ReportJson, ValuesHaveSchemaTypes) {
  Json doc = Json::parse(to_json(full_report()));
  EXPECT_EQ(doc["schema"], "heapledger/1");
  EXPECT_EQ(doc["tool"]["name"], "heapledger");
  EXPECT_EQ(doc["process"]["argv"][1], "--name=ä ö");
  EXPECT_TRUE(doc["summary"]["peak_time_ms"].is_number_float());
  EXPECT_TRUE(doc["summary"]["allocations"].is_number_unsigned());
  const Json& libc = doc["leaks"][0]["stack"][2];
  EXPECT_EQ(libc["address"], "0x7f0000002a1b");
  EXPECT_EQ(libc["offset"], "0x2a1b");
  EXPECT_TRUE(libc["function"].is_null());
  EXPECT_TRUE(libc["file"].is_null());
  EXPECT_TRUE(libc["line"].is_null());
  EXPECT_EQ(doc["leaks"][0]["stack"][3]["address"], "0xffffffffffffffff");
  EXPECT_EQ(doc["leaks"][0]["stack"][0]["line"], 7);
  EXPECT_EQ(doc["errors"][0]["address"], "0xdead0");
  EXPECT_TRUE(doc["errors"][0]["alloc_stack"].is_array());
  EXPECT_TRUE(doc["errors"][0]["free_stack"].is_null());
  EXPECT_TRUE(doc["errors"][1]["alloc_stack"].is_null());
  EXPECT_EQ(doc["errors"][1]["free_stack"], Json::array());
  EXPECT_TRUE(doc["errors"][1]["detail"].is_null());
  EXPECT_EQ(doc["errors"][2]["detail"], "sized delete with a different size");
  EXPECT_TRUE(doc["errors"][2]["block"].is_null());
  EXPECT_EQ(doc["errors"][3]["block"]["address"], "0x5000");
  EXPECT_TRUE(doc["errors"][3]["block"]["size"].is_number_unsigned());
  EXPECT_TRUE(doc["scan"]["milliseconds"].is_number_float());
  EXPECT_TRUE(doc["scan"]["threads"].is_number_unsigned());
  EXPECT_EQ(doc["suppressions"][0]["pattern"], "^libfoo*");
  EXPECT_TRUE(doc["suppressions"][0]["bytes"].is_number_unsigned());
}

TEST(ReportJson, IndentControlsLayout) {
  EXPECT_EQ(to_json(Report{}).substr(0, 29), "{\n  \"schema\": \"heapledger/1\",");
  EXPECT_EQ(to_json(Report{}, 4).substr(0, 31), "{\n    \"schema\": \"heapledger/1\",");
  EXPECT_NE(to_json(Report{}).back(), '\n');
}

// ---- JSON: lenient where the schema allows it ----

TEST(ReportJsonRead, MinimalDocumentGivesDefaults) {
  Report r = report_from_json(R"({"schema": "heapledger/1", "summary": {}, "leaks": []})");
  EXPECT_EQ(r.tool_name, "heapledger");
  EXPECT_EQ(r.process.pid, 0);
  EXPECT_EQ(r.summary.allocations, 0u);
  EXPECT_TRUE(r.leaks.empty());
  EXPECT_TRUE(r.timeline.empty());
  EXPECT_FALSE(r.scan);
  EXPECT_TRUE(r.suppressions.empty());
}

TEST(ReportJsonRead, NullScanIsNoScanAndPartialScanKeepsDefaults) {
  EXPECT_FALSE(report_from_json(R"({"schema": "heapledger/1", "summary": {}, "leaks": [], "scan": null})").scan);
  Report r = report_from_json(R"({"schema": "heapledger/1", "summary": {}, "leaks": [], "scan": {"threads": 2},
                                  "suppressions": [{"pattern": "x", "later": 1}]})");
  ASSERT_TRUE(r.scan);
  EXPECT_EQ(r.scan->threads, 2u);
  EXPECT_EQ(r.scan->threads_stopped, 0u);
  ASSERT_EQ(r.suppressions.size(), 1u);
  EXPECT_EQ(r.suppressions[0].pattern, "x");
  EXPECT_EQ(r.suppressions[0].bytes, 0u);
}

TEST(ReportJsonRead, UnknownFieldsAreIgnoredAndMissingOptionalsAreNull) {
  Report r = report_from_json(R"({
    "schema": "heapledger/1", "added_later": {"x": [1, 2]},
    "summary": {"allocations": 5, "new_counter": 9},
    "leaks": [{"kind": "definite", "bytes": 8, "blocks": 1, "cause": "?",
               "stack": [{"address": "0x10", "module": "/m", "offset": "0X1F", "extra": true}]}],
    "errors": [{"kind": "invalid_free", "address": "0xABC", "stack": []}]})");
  EXPECT_EQ(r.summary.allocations, 5u);
  ASSERT_EQ(r.leaks.size(), 1u);
  const Frame& f = r.leaks[0].stack.at(0);
  EXPECT_EQ(f.address, 0x10u);
  EXPECT_EQ(f.offset, 0x1fu);
  EXPECT_FALSE(f.function);
  EXPECT_FALSE(f.file);
  EXPECT_FALSE(f.line);
  EXPECT_EQ(r.errors.at(0).address, 0xabcu);
  EXPECT_FALSE(r.errors[0].alloc_stack);
  EXPECT_FALSE(r.errors[0].free_stack);
}

// ---- JSON: rejection ----

// The message report_from_json throws for `text`, or "" if it does not throw.
std::string error_for(std::string_view text) {
  try {
    report_from_json(text);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(ReportJsonRead, RejectsTextThatIsNotJson) {
  for (std::string_view text : {"", "   \n", "{", "nonsense", "{\"schema\": \"heapledger/1\",}"}) {
    std::string message = error_for(text);
    SCOPED_TRACE(std::string(text));
    EXPECT_TRUE(message.starts_with("not a heapledger report: ")) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_EQ(error_for(""), "not a heapledger report: the input is empty");
  EXPECT_EQ(error_for(R"({"schema": "heapledger/1", "summary": {"frees": 1e400}})"),
            "not a heapledger report: invalid JSON: number overflow parsing '1e400'");
}

// 50,000 levels of `[` overflowed the stack while nlohmann built them (a user trial's
// `heapledger report`, SIGSEGV); a report is five levels deep, and an unknown field may nest.
TEST(ReportJsonRead, RefusesDocumentsNestedDeeperThan512Levels) {
  const auto nested = [](int depth) {
    return fmt::format(R"({{"x": {}{}, "schema": "heapledger/1", "summary": {{}}, "leaks": []}})",
                       std::string(depth, '['), std::string(depth, ']'));
  };
  EXPECT_EQ(error_for(nested(100000)),
            "not a heapledger report: invalid JSON: nested more than 512 levels deep");
  EXPECT_EQ(error_for(nested(512)),
            "not a heapledger report: invalid JSON: nested more than 512 levels deep");
  EXPECT_EQ(error_for(nested(511)), "");  // with the document's own level, 512
}

// Read from a stream, as far as it is JSON: /dev/zero was read until memory ran out.
TEST(ReportJsonRead, ReadsAStreamOnlyAsFarAsItIsJson) {
  const auto from_stream = [](std::string text) -> std::string {
    std::FILE* in = fmemopen(text.data(), text.size(), "r");
    try {
      report_from_json(in);
    } catch (const std::runtime_error& e) {
      std::fclose(in);
      return e.what();
    }
    std::fclose(in);
    return "";
  };
  const std::string report = to_json(full_report());
  EXPECT_EQ(from_stream(" \n" + report), "");
  EXPECT_EQ(from_stream(" \n\t"), "not a heapledger report: the input is empty");
  EXPECT_EQ(from_stream(std::string(1 << 20, '\0')),
            "not a heapledger report: invalid JSON: parse error at line 1, column 1: syntax error "
            "while parsing value - unexpected end of input; expected '[', '{', or a literal");
  EXPECT_EQ(from_stream("[1, 2]"), "not a heapledger report: top level: expected a JSON object");
  // From a stream, the report read is the one written.
  std::string text = report;
  std::FILE* in = fmemopen(text.data(), text.size(), "r");
  expect_report_eq(report_from_json(in), full_report());
  std::fclose(in);
}

TEST(ReportJsonRead, RejectsOtherDocuments) {
  EXPECT_EQ(error_for("[1, 2]"), "not a heapledger report: top level: expected a JSON object");
  EXPECT_EQ(error_for("{\"leaks\": []}"), "not a heapledger report: schema: missing");
  EXPECT_EQ(error_for("{\"schema\": 1}"), "not a heapledger report: schema: expected a string");
  EXPECT_EQ(error_for("{\"schema\": \"valgrind/3\"}"),
            "not a heapledger report: schema: \"valgrind/3\" is not heapledger/1");
}

TEST(ReportJsonRead, RejectsReportsWithoutTheirCore) {
  // Rendered, they read as a clean run ("no leaks: the program made no heap allocations").
  EXPECT_EQ(error_for(R"({"schema": "heapledger/1"})"), "not a heapledger report: summary: missing");
  EXPECT_EQ(error_for(R"({"schema": "heapledger/1", "leaks": []})"), "not a heapledger report: summary: missing");
  EXPECT_EQ(error_for(R"({"schema": "heapledger/1", "summary": {}})"), "not a heapledger report: leaks: missing");
  EXPECT_EQ(error_for(R"({"schema": "heapledger/1", "summary": {}, "leaks": []})"), "");
}

TEST(ReportJsonRead, RejectsOtherSchemaVersions) {
  EXPECT_EQ(error_for("{\"schema\": \"heapledger/2\"}"),
            "unsupported schema heapledger/2 (this build reads heapledger/1)");
}

TEST(ReportJsonRead, NamesTheFieldWithTheWrongType) {
  auto doc = [](std::string_view body) {
    return fmt::format(R"({{"schema": "heapledger/1", {}}})", body);
  };
  auto frame_with = [](std::string_view field) {
    return fmt::format(R"("leaks": [{{"stack": [{{"address": "0x1", {}}}]}}])", field);
  };
  const std::string prefix = "not a heapledger report: ";
  EXPECT_EQ(error_for(doc(R"("summary": {"allocations": "12"})")),
            prefix + "summary.allocations: expected a non-negative integer");
  EXPECT_EQ(error_for(doc(R"("summary": {"frees": -1})")),
            prefix + "summary.frees: expected a non-negative integer");
  EXPECT_EQ(error_for(doc(R"("summary": {"frees": 1.5})")),
            prefix + "summary.frees: expected a non-negative integer");
  EXPECT_EQ(error_for(doc(R"("summary": [])")), prefix + "summary: expected an object");
  EXPECT_EQ(error_for(doc(R"("process": {"duration_ms": "slow"})")),
            prefix + "process.duration_ms: expected a number");
  EXPECT_EQ(error_for(doc(R"("process": {"argv": ["a", 2]})")),
            prefix + "process.argv[1]: expected a string");
  EXPECT_EQ(error_for(doc(R"("leaks": {})")), prefix + "leaks: expected an array");
  EXPECT_EQ(error_for(doc(R"("leaks": [1])")), prefix + "leaks[0]: expected an object");
  EXPECT_EQ(error_for(doc(frame_with(R"("line": 2.5)"))),
            prefix + "leaks[0].stack[0].line: expected an integer");
  EXPECT_EQ(error_for(doc(frame_with(R"("function": 3)"))),
            prefix + "leaks[0].stack[0].function: expected a string");
  EXPECT_EQ(error_for(doc(R"("errors": [{"alloc_stack": {}}])")),
            prefix + "errors[0].alloc_stack: expected an array");
  EXPECT_EQ(error_for(doc(R"("scan": [])")), prefix + "scan: expected an object");
  EXPECT_EQ(error_for(doc(R"("scan": {"threads_stopped": -2})")),
            prefix + "scan.threads_stopped: expected a non-negative integer");
  EXPECT_EQ(error_for(doc(R"("scan": {"milliseconds": "3"})")),
            prefix + "scan.milliseconds: expected a number");
  EXPECT_EQ(error_for(doc(R"("suppressions": {})")), prefix + "suppressions: expected an array");
  EXPECT_EQ(error_for(doc(R"("suppressions": ["leak:x"])")),
            prefix + "suppressions[0]: expected an object");
  EXPECT_EQ(error_for(doc(R"("suppressions": [{"pattern": 1}])")),
            prefix + "suppressions[0].pattern: expected a string");
  EXPECT_EQ(error_for(doc(R"("suppressions": [{"pattern": "x", "bytes": 1.5}])")),
            prefix + "suppressions[0].bytes: expected a non-negative integer");
}

TEST(ReportJsonRead, RejectsAddressesThatAreNotHexStrings) {
  for (std::string_view address : {"4198710", "\"401136\"", "\"0x\"", "\"0xzz\"", "\"0x12 \"",
                                   "\"-0x1\"", "\"0x-1\"", "\"0x10000000000000000\""}) {
    SCOPED_TRACE(std::string(address));
    std::string text = fmt::format(
        R"({{"schema": "heapledger/1", "errors": [{{"kind": "double_free", "address": {}}}]}})",
        address);
    EXPECT_EQ(error_for(text),
              "not a heapledger report: errors[0].address: expected a hex string like \"0x1a2b\"");
  }
}

// ---- human_bytes ----

TEST(HumanBytes, UsesBinaryUnitsWithOneDecimal) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1), "1 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1024), "1.0 KiB");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(10 * 1024 - 1), "10.0 KiB");
  EXPECT_EQ(human_bytes(1048524), "1023.9 KiB");
  EXPECT_EQ(human_bytes(1048575), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(human_bytes(1 << 20), "1.0 MiB");
  EXPECT_EQ(human_bytes(1258291), "1.2 MiB");
  EXPECT_EQ(human_bytes(3ull << 29), "1.5 GiB");
  EXPECT_EQ(human_bytes(1ull << 40), "1.0 TiB");
  EXPECT_EQ(human_bytes(1ull << 50), "1.0 PiB");
  EXPECT_EQ(human_bytes(std::numeric_limits<std::uint64_t>::max()), "16.0 EiB");
}

// ---- text ----

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  for (std::size_t nl; (nl = text.find('\n', begin)) != std::string::npos; begin = nl + 1)
    out.push_back(text.substr(begin, nl - begin));
  EXPECT_EQ(begin, text.size()) << "text does not end with a newline";
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text))
    if (l == line) return true;
  return false;
}

// Position of `needle` in `text`, failing the test if it is absent.
std::size_t position(const std::string& text, const std::string& needle) {
  std::size_t at = text.find(needle);
  EXPECT_NE(at, std::string::npos) << "missing: " << needle << "\nin:\n" << text;
  return at;
}

Leak leak(std::string kind, std::uint64_t bytes, std::uint64_t blocks, Stack stack = {}) {
  return Leak{std::move(kind), bytes, blocks, 1.0, 1.0, std::move(stack)};
}

TEST(ReportText, EveryLineCarriesThePidPrefix) {
  Report r = full_report();
  r.process.argv.push_back("evil\narg\x1b[31m");
  std::string text = render_text(r);
  for (const std::string& l : lines_of(text))
    EXPECT_TRUE(l == "==4242==" || l.starts_with("==4242== ")) << l;
  EXPECT_NE(text.find("'evil\\narg\\x1b[31m'"), std::string::npos) << text;
}

TEST(ReportText, HeaderAndSummary) {
  std::string text = render_text(full_report());
  std::vector<std::string> lines = lines_of(text);
  ASSERT_GE(lines.size(), 8u);
  EXPECT_EQ(lines[0],
            "==4242== heapledger 0.1.0 — /usr/bin/prog '--name=ä ö' 'two words' '' "
            "(pid 4242, 12.5 ms)");
  EXPECT_EQ(lines[1], "==4242==");
  EXPECT_EQ(lines[2], "==4242== SUMMARY: 120 allocations, 118 frees, 1.2 MiB allocated");
  EXPECT_EQ(lines[3], "==4242==   peak: 800.0 KiB in 40 blocks at 10.2 ms");
  EXPECT_EQ(lines[4], "==4242==   live at exit: 1.5 KiB in 2 blocks");
  EXPECT_EQ(lines[5],
            "==4242==   leaked: 1.0 KiB in 1 block   (possibly lost: 256 B, still reachable: "
            "128 B, suppressed: 64 B)");
  EXPECT_EQ(lines[6], "==4242==   heap errors: 4");
}

// Started by another name than the executable's (redis-server is a symlink to redis-check-rdb),
// or retitled (setproctitle), the header says so: the user ran redis-server, and saw
// redis-check-rdb alone (a user trial's).
TEST(ReportText, TheHeaderNamesWhatTheProgramWasStartedAs) {
  Report r = full_report();
  r.process.exe = "/usr/bin/redis-check-rdb";
  r.process.argv = {"redis-server", "--port", "6390"};
  EXPECT_EQ(lines_of(render_text(r))[0],
            "==4242== heapledger 0.1.0 — /usr/bin/redis-check-rdb (as redis-server) --port 6390 "
            "(pid 4242, 12.5 ms)");
  r.process.argv = {"nginx: worker process"};
  EXPECT_EQ(lines_of(render_text(r))[0],
            "==4242== heapledger 0.1.0 — /usr/bin/redis-check-rdb (as 'nginx: worker process') "
            "(pid 4242, 12.5 ms)");
  r.process.argv = {"./bin/redis-check-rdb", "x"};  // the same name by another path: nothing to say
  EXPECT_EQ(lines_of(render_text(r))[0],
            "==4242== heapledger 0.1.0 — /usr/bin/redis-check-rdb x (pid 4242, 12.5 ms)");
}

// A forked child's times count from its ancestor's start: the header says when it was forked (a
// PostgreSQL backend that lived 0.07 s said "3.38 s" and no more, a user trial's), and the JSON
// keeps it through a round trip.
TEST(ReportText, AForkedChildsHeaderSaysWhenItWasForked) {
  Report r = full_report();
  r.process.duration_ms = 3380;
  r.process.forked_ms = 3310.25;
  EXPECT_EQ(lines_of(render_text(r))[0],
            "==4242== heapledger 0.1.0 — /usr/bin/prog '--name=ä ö' 'two words' '' "
            "(pid 4242, 3.38 s, forked at 3.31 s)");
  EXPECT_EQ(report_from_json(to_json(r)).process.forked_ms, 3310.25);
}

// A process that a signal ends once its report is written (a stop signal it left at its default
// action: Ctrl-C, kill) says which, in the header and the JSON.
TEST(ReportText, TheHeaderSaysWhichSignalEndedTheProcess) {
  Report r = full_report();
  r.process.duration_ms = 3380;
  r.process.signal = "SIGTERM";
  EXPECT_EQ(lines_of(render_text(r))[0],
            "==4242== heapledger 0.1.0 — /usr/bin/prog '--name=ä ö' 'two words' '' "
            "(pid 4242, 3.38 s, ended by SIGTERM)");
  EXPECT_EQ(report_from_json(to_json(r)).process.signal, "SIGTERM");
  r.process.signal.reset();
  EXPECT_EQ(report_from_json(to_json(r)).process.signal, std::nullopt);
}

TEST(ReportText, ALongCommandLineIsCutInTheHeader) {
  // 3,000 arguments of 70 characters (a `find -exec grep {} +`): the header shows the first
  // ~500 characters and counts the rest, where it was 205 KB on one line.
  Report r = full_report();
  r.process.argv = {"grep"};
  for (int i = 0; i < 3000; ++i) r.process.argv.push_back("/usr/include/" + std::string(57, 'x'));
  const std::string header = lines_of(render_text(r))[0];
  EXPECT_LT(header.size(), 700u) << header;
  // "/usr/bin/prog" and 7 words of 71 characters make 510: the 7th is the last shown.
  EXPECT_NE(header.find("x ... (2,993 more arguments) (pid 4242"), std::string::npos) << header;
  r.process.argv.resize(3);  // a short one is whole
  EXPECT_EQ(lines_of(render_text(r))[0].find("..."), std::string::npos);
}

TEST(ReportText, ALongWordIsCutInTheHeader) {
  // One argument of 20,000 bytes made a first line of 20,071 (a user trial's); so did a long
  // name it was started by. Cut at a character's start: 'ä' is two bytes.
  Report r = full_report();
  r.process.exe = "/usr/bin/prog";
  r.process.argv = {std::string(300, 'n'), "-x",
                    std::string(199, 'b') + "\xC3\xA4" + std::string(19800, 'b')};
  const std::string header = lines_of(render_text(r))[0];
  EXPECT_LT(header.size(), 600u) << header;
  EXPECT_NE(header.find("(as " + std::string(200, 'n') + "...(100 more bytes)) -x " +
                        std::string(199, 'b') + "...(19,802 more bytes) (pid 4242"),
            std::string::npos)
      << header;
  EXPECT_EQ(report_from_json(to_json(r)).process.argv, r.process.argv);  // whole in the JSON
}

TEST(ReportText, LeakHeadersUseExactBytesWithSeparators) {
  Report r;
  r.process.pid = 1;
  r.leaks = {{"definite", 1234567, 3, 2.0, 4.5, {}},
             {"unknown", 1024, 1, 3.1, 3.1, {}},
             {"indirect", 64, 2, 3.91, 3.94, {}}};  // both "3.9 ms": said once
  std::string text = render_text(r);
  EXPECT_TRUE(has_line(text,
                       "==1== LEAK 3 of 3: 64 bytes in 2 blocks indirectly lost, "
                       "allocated at 3.9 ms"))
      << text;
  EXPECT_TRUE(has_line(text,
                       "==1== LEAK 1 of 3: 1,234,567 bytes in 3 blocks definitely lost, "
                       "allocated from 2.0 ms to 4.5 ms"))
      << text;
  EXPECT_TRUE(has_line(text,
                       "==1== LEAK 2 of 3: 1,024 bytes in 1 block not freed, "
                       "allocated at 3.1 ms"))
      << text;
  EXPECT_TRUE(has_line(text, "==1==     (no stack recorded)")) << text;
}

TEST(ReportText, DefiniteAndIndirectFirstThenPossibleEachLargestFirst) {
  Report r;
  r.leaks = {leak("possible", 9000, 1), leak("indirect", 50, 1),  leak("definite", 10, 1),
             leak("unknown", 700, 1),   leak("definite", 300, 1), leak("possible", 20, 1)};
  std::string text = render_text(r);
  std::size_t a = position(text, "LEAK 1 of 6: 700 bytes in 1 block not freed");
  std::size_t b = position(text, "LEAK 2 of 6: 300 bytes in 1 block definitely lost");
  std::size_t c = position(text, "LEAK 3 of 6: 10 bytes in 1 block definitely lost");
  std::size_t d = position(text, "LEAK 4 of 6: 50 bytes in 1 block indirectly lost");
  std::size_t e = position(text, "LEAK 5 of 6: 9,000 bytes in 1 block possibly lost");
  std::size_t f = position(text, "LEAK 6 of 6: 20 bytes in 1 block possibly lost");
  EXPECT_TRUE(a < b && b < c && c < d && d < e && e < f) << text;
}

TEST(ReportText, OmittedReachableSitesAreCountedFromTheSummary) {
  Report r;
  r.summary.reachable_bytes = 5000;
  r.leaks = {Leak{"reachable", 1000, 2, 0, 0, {}}};
  r.reachable_sites_omitted = 7;
  std::string text = render_text(r);
  EXPECT_NE(text.find("still reachable at exit: 4.9 KiB from 8 call sites (not listed)"),
            std::string::npos)
      << text;  // a report from before summary.reachable_blocks: no block count
  // With the summary's block count, the line has it, as the other form does (a forked child's
  // said none: a user trial's).
  r.summary.reachable_blocks = 12;
  text = render_text(r);
  EXPECT_NE(
      text.find("still reachable at exit: 4.9 KiB in 12 blocks from 8 call sites (not listed)"),
      std::string::npos)
      << text;
}

TEST(ReportText, PeakRowsWithTheSameNameAreMerged) {
  Report r;
  Frame f;
  f.function = "cache_put";
  Frame g1, g2;
  g1.function = "caller_one";
  g2.function = "caller_two";
  r.summary.peak_bytes = 300;
  r.peak = {PeakSite{100, 1, {f, g1}}, PeakSite{200, 2, {f, g2}}};
  std::string text = render_text(r);
  EXPECT_NE(text.find("300 B 100%      3 blocks  at cache_put"), std::string::npos) << text;
}

// A stripped program's frames have no names: each site is named by its own first frame, not by
// the first named frame further out (libc's __libc_start_call_main for all of them).
TEST(ReportText, PeakRowsOfAStrippedProgramAreNamedByModuleAndOffset) {
  Report r;
  Frame start = frame(0x7f0000001000, "/lib/x86_64-linux-gnu/libc.so.6", 0x1000, "__libc_start_call_main");
  Frame stdlib = frame(0x7f0000002000, "/lib/x86_64-linux-gnu/libstdc++.so.6", 0x2000);
  r.summary.peak_bytes = 300;
  r.peak = {PeakSite{200, 2, {frame(0x5500000180b1, "/usr/bin/ls", 0x180b1), start}},
            PeakSite{100, 1, {stdlib, frame(0x550000004242, "/usr/bin/ls", 0x4242), start}}};
  std::string text = render_text(r);
  EXPECT_NE(text.find("67%      2 blocks  at ls+0x180b1"), std::string::npos) << text;
  EXPECT_NE(text.find("33%       1 block  at ls+0x4242"), std::string::npos) << text;
  EXPECT_EQ(text.find("at __libc_start_call_main"), std::string::npos) << text;
}

// Suppressed leaks are still leaks: the line that says there are none does not say "none lost".
TEST(ReportText, NoLeaksLineOwnsUpToSuppressedOnes) {
  Report r;
  r.summary.allocations = 10;
  r.summary.live_bytes = 1000;
  r.summary.live_blocks = 4;
  r.summary.suppressed_bytes = 556;
  r.suppressions = {{"libfoo", 2, 556}};
  std::string text = render_text(r);
  EXPECT_NE(text.find("no leaks but suppressed ones: 556 B lost and suppressed"), std::string::npos) << text;
  EXPECT_EQ(text.find("none of it lost"), std::string::npos) << text;
  r.summary.suppressed_bytes = 0;
  r.suppressions.clear();
  EXPECT_NE(render_text(r).find("none of it lost"), std::string::npos);
}

TEST(ReportText, ReachableIsSummarisedUnlessAskedFor) {
  Report r;
  r.leaks = {leak("definite", 32, 1), leak("reachable", 4096, 3), leak("reachable", 64, 1)};
  std::string text = render_text(r);
  EXPECT_NE(text.find("LEAK 1 of 1: 32 bytes"), std::string::npos) << text;
  EXPECT_EQ(text.find("still reachable,"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text,
                       "==0== still reachable at exit: 4.1 KiB in 4 blocks from 2 call "
                       "sites (not listed)"))
      << text;

  TextOptions o;
  o.show_reachable = true;
  text = render_text(r, o);
  // Counted apart: `REACHABLE 2 of 3` after the one leak read as three leaks (a user trial).
  position(text, "LEAK 1 of 1: 32 bytes in 1 block definitely lost");
  position(text, "REACHABLE 1 of 2: 4,096 bytes in 3 blocks still reachable");
  position(text, "REACHABLE 2 of 2: 64 bytes in 1 block still reachable");
  EXPECT_EQ(text.find("LEAK 2 of"), std::string::npos) << text;
  EXPECT_EQ(text.find("of 3"), std::string::npos) << text;
  EXPECT_EQ(text.find("not listed"), std::string::npos) << text;
}

TEST(ReportText, TruncatesLeakSitesWithACountedLine) {
  Report r;
  for (std::uint64_t i = 1; i <= 5; ++i) r.leaks.push_back(leak("definite", i * 1000, i));
  TextOptions o;
  o.max_leaks = 2;
  std::string text = render_text(r, o);
  position(text, "LEAK 1 of 5: 5,000 bytes in 5 blocks");
  position(text, "LEAK 2 of 5: 4,000 bytes in 4 blocks");
  EXPECT_EQ(text.find("LEAK 3 of 5"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text,
                       "==0== ... and 3 more leak sites (5.9 KiB in 6 blocks) — see the "
                       "JSON report"))
      << text;
  o.max_leaks = 0;  // no limit
  position(render_text(r, o), "LEAK 5 of 5: 1,000 bytes in 1 block");
  // Without a JSON report to look in, the line says how to see them (a user trial).
  o.max_leaks = 2;
  o.rest_hint = "max_leaks=0 lists them all";
  EXPECT_TRUE(has_line(
      render_text(r, o),
      "==0== ... and 3 more leak sites (5.9 KiB in 6 blocks) — max_leaks=0 lists them all"));
}

// What the reporter names when the text is the only report: the sites listed with their stacks,
// in the text's order, and no others.
TEST(ReportText, TheListingIsWhatTheTextShowsWithStacks) {
  Report r;
  r.leaks = {leak("possible", 9000, 1), leak("reachable", 80000, 1), leak("definite", 10, 1),
             leak("indirect", 50, 1),   leak("definite", 300, 1),    leak("possible", 20, 1)};
  TextOptions o;
  o.max_leaks = 3;
  LeakListing l = list_leaks(r, o);
  EXPECT_EQ(l.order, (std::vector<std::size_t>{4, 2, 3, 0, 5}));
  EXPECT_EQ(l.with_stacks, 3u);
  const std::string text = render_text(r, o);
  position(text, "LEAK 3 of 5: 50 bytes in 1 block indirectly lost");
  EXPECT_EQ(text.find("LEAK 4 of 5"), std::string::npos) << text;
  o.show_reachable = true;  // listed last
  o.max_leaks = 0;
  l = list_leaks(r, o);
  EXPECT_EQ(l.order, (std::vector<std::size_t>{4, 2, 3, 0, 5, 1}));
  EXPECT_EQ(l.with_stacks, 6u);
  o.errors_only = true;  // no leak sites at all
  EXPECT_EQ(list_leaks(r, o).with_stacks, 0u);
}

TEST(ReportText, TotalsOfHandMadeCountsStopAtTheLargest) {
  // `heapledger report` reads counts from any JSON file: two sites of 2^63 bytes summed to 0.
  Report r;
  for (int i = 0; i < 3; ++i) r.leaks.push_back(leak("definite", std::uint64_t{1} << 63, 1));
  TextOptions o;
  o.max_leaks = 1;
  const std::string text = render_text(r, o);
  EXPECT_EQ(text.find("more leak sites (0 B"), std::string::npos) << text;
  EXPECT_NE(text.find("... and 2 more leak sites (16.0 EiB in 2 blocks)"), std::string::npos)
      << text;
}

TEST(ReportText, FramesShowFunctionFileLineOrModuleOffset) {
  Report r = full_report();
  std::string text = render_text(r);
  EXPECT_TRUE(has_line(text, "==4242==     #0 0x401136 inner_helper  util.h:7  [inlined]")) << text;
  EXPECT_TRUE(has_line(text, "==4242==     #1 0x401136 leak_malloc  demo.c:12")) << text;
  EXPECT_TRUE(has_line(text, "==4242==     #2 0x7f0000002a1b libc.so.6+0x2a1b")) << text;
  EXPECT_TRUE(has_line(text, "==4242==     #3 0xffffffffffffffff ??")) << text;
  EXPECT_TRUE(has_line(text, "==4242==     #0 0x401200 main  (demo)")) << text;
  EXPECT_EQ(text.find("/src/demo.c"), std::string::npos) << "file paths are shortened";
}

TEST(ReportText, RecursionIsNotMistakenForInlining) {
  Report r;
  Frame f = frame(0x4000, "/bin/x", 0x4000, "recurse", "/r.c", 9);
  r.leaks = {leak("definite", 8, 1, {f, f})};
  std::string text = render_text(r);
  EXPECT_TRUE(has_line(text, "==0==     #0 0x4000 recurse  r.c:9")) << text;
  EXPECT_TRUE(has_line(text, "==0==     #1 0x4000 recurse  r.c:9")) << text;
}

TEST(ReportText, TruncatesLongStacks) {
  Report r;
  Stack s;
  for (std::uint64_t i = 0; i < 15; ++i) s.push_back(frame(0x1000 + i, "/lib/libz.so", i));
  r.leaks = {leak("definite", 8, 1, s)};
  TextOptions o;
  o.max_frames = 11;
  std::string text = render_text(r, o);
  EXPECT_TRUE(has_line(text, "==0==     #0  0x1000 libz.so+0x0")) << text;
  EXPECT_TRUE(has_line(text, "==0==     #10 0x100a libz.so+0xa")) << text;
  EXPECT_EQ(text.find("#11"), std::string::npos) << text;
  EXPECT_TRUE(has_line(text, "==0==     ... 4 more frames")) << text;
}

// Cut where every frame shown is the standard library's (make_shared comes eight frames deep):
// the first of the program's own past them is shown too, with the frames between and after
// counted (with --max-frames 3 no line of the program's code was shown: a user trial's).
TEST(ReportText, ACutStackOfTheStandardLibrarysFramesShowsTheFirstOwnFrameToo) {
  Report r;
  Stack s;
  for (std::uint64_t i = 0; i < 5; ++i)
    s.push_back(frame(0x1000 + i, "/tmp/app", i, "std::__shared_count<>::__shared_count()",
                      "/usr/include/c++/12/bits/shared_ptr_base.h", 900));
  s.push_back(frame(0x2000, "/tmp/app", 0x2000, "make_cycle()", "/src/mt.cc", 72));
  s.push_back(frame(0x2100, "/tmp/app", 0x2100, "main", "/src/mt.cc", 90));
  r.leaks = {leak("definite", 8, 1, s)};
  TextOptions o;
  o.max_frames = 3;
  const std::string text = render_text(r, o);
  position(text,
           "==0==     #2 0x1002 std::__shared_count<>::__shared_count()  shared_ptr_base.h:900\n"
           "==0==     ... 2 more frames\n"
           "==0==     #5 0x2000 make_cycle()  mt.cc:72\n"
           "==0==     ... 1 more frame\n");
  // One of the program's own among those shown: cut as before.
  o.max_frames = 6;
  EXPECT_TRUE(has_line(render_text(r, o), "==0==     ... 1 more frame"));
  EXPECT_EQ(render_text(r, o).find("#6"), std::string::npos);
}

TEST(ReportText, NoLeaksLine) {
  Report r;
  r.process.pid = 9;
  r.summary.allocations = r.summary.frees = 120;
  EXPECT_TRUE(has_line(render_text(r),
                       "==9== no leaks: all 120 heap blocks allocated by the program were freed"));
  r.summary.allocations = r.summary.frees = 0;
  EXPECT_TRUE(has_line(render_text(r), "==9== no leaks: the program made no heap allocations"));
  r.summary.allocations = 3;
  r.summary.live_blocks = 1;
  r.summary.live_bytes = 2048;
  r.leaks = {leak("reachable", 2048, 1)};
  std::string text = render_text(r);
  EXPECT_TRUE(has_line(text,
                       "==9== no leaks: 2.0 KiB in 1 block still allocated at exit, none "
                       "of it lost"))
      << text;
  EXPECT_EQ(text.find("LEAK"), std::string::npos) << text;
}

TEST(ReportText, LeaksSuppressTheNoLeaksLine) {
  EXPECT_EQ(render_text(full_report()).find("no leaks"), std::string::npos);
}

// Which threads allocated a leak's blocks: one as a heap error names it, several with their
// parts, most bytes first, the first four named and the rest counted (a site's threads were
// recorded per block and never shown: a user trial asked in which thread a worker leaked).
TEST(ReportText, LeaksNameTheThreadsThatAllocatedThem) {
  const std::string text = render_text(full_report());
  const std::size_t one = position(
      text, "allocated at 3.1 ms\n==4242==   in thread 4343 (worker \"7\")\n==4242==     #0");
  EXPECT_LT(position(text, "LEAK 1 of"), one);
  EXPECT_TRUE(has_line(text,
                       "==4242==   in 6 threads: 4242 (prog): 96 B in 1 block, 4350: 64 B in 1 "
                       "block, a thread not known: 32 B in 1 block, 4351 (pool-1): 32 B in 1 "
                       "block, and 2 more"))
      << text;
  // From a saved report with the first 16 kept of more: the count is the report's.
  Report r = full_report();
  r.leaks[0].thread_count = 40;
  EXPECT_TRUE(has_line(render_text(r),
                       "==4242==   in 40 threads: 4343 (worker \"7\"): 1.0 KiB in 1 block, and 39 "
                       "more"));
  r.leaks[0].threads.clear();
  r.leaks[0].thread_count = 0;
  EXPECT_EQ(render_text(r).find("in thread 4343 (worker \"7\")\n==4242==     #0 0x401136"),
            std::string::npos);
}

// A double free's first free may be another thread's, both stacks the same: the first free's
// thread is named where it is known (a user trial could not tell which thread freed first).
TEST(ReportText, ADoubleFreeNamesTheThreadOfTheFirstFree) {
  Report r;
  r.process.pid = 5;
  r.summary.errors = 1;
  r.errors = {heap_error("double_free", 0xbeef, {}, std::nullopt, Stack{})};
  r.errors[0].thread = 11;
  r.errors[0].free_thread = 12;
  r.errors[0].free_thread_name = "pool-2";
  EXPECT_NE(render_text(r).find("==5==   in thread 11\n==5==     (no stack recorded)\n"
                                "==5==   first freed in thread 12 (pool-2) at:\n"),
            std::string::npos)
      << render_text(r);
  r.errors[0].free_thread.reset();
  EXPECT_NE(render_text(r).find("==5==   first freed at:\n"), std::string::npos);
}

TEST(ReportText, HeapErrorsWithTheirStacks) {
  std::string text = render_text(full_report());
  std::size_t a = position(text,
                           "==4242== HEAP ERROR 1 of 4: double free of 0xdead0\n"
                           "==4242==   in thread 4343 (worker \"7\")\n"
                           "==4242==     #0 0x401400 f  a.c:1\n"
                           "==4242==   allocated at:\n"
                           "==4242==     #0 0x401500 g  (demo)\n");
  std::size_t b = position(text,
                           "==4242== HEAP ERROR 2 of 4: invalid free of 0x10 (not a heap block)\n"
                           "==4242==     (no stack recorded)\n"
                           "==4242==   freed at:\n==4242==     (no stack recorded)\n");
  std::size_t c = position(text,
                           "==4242== HEAP ERROR 3 of 4: mismatched free of 0x20 (sized delete "
                           "with a different size)\n==4242==     (no stack recorded)\n");
  std::size_t d = position(text,
                           "==4242== HEAP ERROR 4 of 4: invalid free of 0x5010 (16 bytes inside a "
                           "64-byte block at 0x5000)\n==4242==     (no stack recorded)\n"
                           "==4242==   allocated at:\n==4242==     #0 0x401600 h  a.c:9\n");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
  EXPECT_LT(d, position(text, "LEAK 1 of"));  // errors come before leaks
}

TEST(ReportText, PeakCallSites) {
  Report r = full_report();
  TextOptions o;
  o.max_peak = 1;
  std::string text = render_text(r, o);
  position(text,
           "==4242== PEAK: 800.0 KiB in 40 blocks at 10.2 ms, held by these call sites:\n"
           "==4242==    585.9 KiB  73%     30 blocks  at build_cache  c.c:22\n"
           "==4242==   ... and 1 more call site (214.1 KiB)\n");
  EXPECT_EQ(text.find("largest kept"), std::string::npos) << text;  // the stacks hold it all
}

// Of a peak held mostly in stacks past those kept, the text says how much it does not show.
TEST(ReportText, PeakSaysWhatTheKeptStacksDoNotHold) {
  Report r = full_report();
  r.summary.peak_bytes = 1000 * 1024;
  std::string text = render_text(r);
  EXPECT_TRUE(
      has_line(text,
               "==4242==   ... and 200.0 KiB (20%) in the call stacks past the 2 largest kept "
               "(peak_sites=N keeps more)"))
      << text;
}

// Shares of the peak are rounded to the nearest percent: 1.995% was shown as 1%, and 99.5% as
// 99%. A share too small to round to 1% is not shown as none.
TEST(ReportText, PeakSharesAreRoundedToTheNearestPercent) {
  Report r;
  r.summary.peak_bytes = 100'000;
  r.peak = {PeakSite{97'605, 3, {frame(0x10, "/bin/x", 0x10, "big")}},
            PeakSite{1'995, 2, {frame(0x20, "/bin/x", 0x20, "small")}},
            PeakSite{400, 1, {frame(0x30, "/bin/x", 0x30, "tiny")}}};
  const std::string text = render_text(r);
  EXPECT_TRUE(has_line(text, "==0==     95.3 KiB  98%      3 blocks  at big  (x)")) << text;
  EXPECT_TRUE(has_line(text, "==0==      1.9 KiB   2%      2 blocks  at small  (x)")) << text;
  EXPECT_TRUE(has_line(text, "==0==        400 B  <1%       1 block  at tiny  (x)")) << text;
}

TEST(ReportText, PeakSiteIsNamedByTheFirstFrameOutsideTheStandardLibrary) {
  Report r;
  r.summary.peak_bytes = 4096;
  r.peak = {{4096,
             2,
             {frame(0x10, "/bin/x", 0x10, "std::vector<int>::_M_realloc_insert",
                    "/usr/include/c++/12/bits/vector.tcc", 440),
              frame(0x10, "/bin/x", 0x10, "helper", "/usr/include/foo.h", 3),
              frame(0x20, "/lib/libstdc++.so.6", 0x20),
              frame(0x30, "/bin/x", 0x30, "make_list", "/src/list.cc", 20)}},
            {0, 0, {frame(0x40, "/lib/libstdc++.so.6", 0x40)}}};
  std::string text = render_text(r);
  position(text, "4.0 KiB 100%      2 blocks  at make_list  list.cc:20\n");
  position(text, "0 B   0%      0 blocks  at libstdc++.so.6+0x40\n");
}

// Without debug information a standard-library frame has no file, and a template instance's
// demangled name starts with its return type: "void std::vector<...>::_M_realloc_insert<...>" is
// the standard library's all the same (a user trial's peak row named it, not fill()). An
// operator's own words are not a return type.
TEST(ReportText, APeakSiteIsNotNamedByAStandardLibraryFrameWithAReturnType) {
  Report r;
  r.summary.peak_bytes = 4096;
  r.peak = {{4096,
             2,
             {frame(0x10, "/bin/x", 0x10,
                    "void std::vector<long, std::allocator<long> >::_M_realloc_insert<long "
                    "const&>(__gnu_cxx::__normal_iterator<long*, std::vector<long, "
                    "std::allocator<long> > >, long const&)"),
              frame(0x20, "/bin/x", 0x20, "fill()")}},
            {2048, 1, {frame(0x30, "/bin/x", 0x30, "Name::operator std::string() const")}}};
  std::string text = render_text(r);
  position(text, "4.0 KiB 100%      2 blocks  at fill()  (x)\n");
  position(text, "at Name::operator std::string() const  (x)\n");
}

// The dynamic linker's inline calloc wrapper (rtld-malloc.h) named the peak row of the threads'
// TLS, `calloc  rtld-malloc.h:44`, like a calloc in the program (a user trial): an allocation
// function's own frame is not the call site, its caller is.
TEST(ReportText, APeakSiteIsNotNamedByAnAllocationFunctionsOwnFrame) {
  Report r;
  r.summary.peak_bytes = 4096;
  const std::string ld = "/lib64/ld-linux-x86-64.so.2", libc = "/lib/x86_64-linux-gnu/libc.so.6";
  r.peak = {{3072,
             3,
             {frame(0x10, ld, 0x10, "calloc", "../include/rtld-malloc.h", 44),
              frame(0x20, ld, 0x20, "_dl_allocate_tls"),
              frame(0x30, libc, 0x30, "pthread_create@@GLIBC_2.34")}},
            {1024,
             1,
             {frame(0x40, libc, 0x40, "strdup"), frame(0x50, "/bin/x", 0x50, "main", "x.c", 3)}}};
  std::string text = render_text(r);
  position(text, "3.0 KiB  75%      3 blocks  at _dl_allocate_tls  (ld-linux-x86-64.so.2)\n");
  position(text, "1.0 KiB  25%       1 block  at main  x.c:3\n");
  EXPECT_EQ(text.find("rtld-malloc.h"), std::string::npos) << text;
}

TEST(ReportText, SuppressionsSayWhatTheyHidLargestFirst) {
  Report r;
  r.process.pid = 5;
  r.suppressions = {{"leak_other", 1, 50}, {"^libfoo*", 3, 300}, {"unused", 0, 0}};
  std::string text = render_text(r);
  position(text,
           "==5==\n"
           "==5== suppressed: 350 B in 4 blocks by 2 suppressions\n"
           "==5==   ^libfoo*: 300 B in 3 blocks\n"
           "==5==   leak_other: 50 B in 1 block\n");
  EXPECT_EQ(text.find("unused"), std::string::npos) << text;
  EXPECT_LT(position(text, "no leaks"), position(text, "suppressed: 350 B"));

  r.suppressions = {{"big\tone", 2048, 2 << 20}};
  EXPECT_TRUE(
      has_line(render_text(r), "==5== suppressed: 2.0 MiB in 2,048 blocks by 1 suppression"));
  EXPECT_TRUE(has_line(render_text(r), "==5==   big\\tone: 2.0 MiB in 2,048 blocks"));
}

TEST(ReportText, NoSuppressionLinesWhenNothingWasHidden) {
  Report r;
  EXPECT_EQ(render_text(r).find("suppress"), std::string::npos);
  r.suppressions = {{"leak:never", 0, 0}};
  EXPECT_EQ(render_text(r).find("suppress"), std::string::npos);
}

TEST(ReportText, WarnsWhenTheScanCouldNotStopEveryThread) {
  const std::string warning =
      "==0==   warning: 1 of 4 threads could not be stopped for the leak scan, so their whole "
      "stacks were treated as roots (results may hide leaks)";
  Report r;
  r.scan = ScanInfo{1.0, 4, 3, 0, 0};
  std::string text = render_text(r);
  EXPECT_TRUE(has_line(text, warning)) << text;
  EXPECT_LT(position(text, "heap errors: 0"), position(text, "warning:"));
  r.scan->threads_stopped = 0;
  EXPECT_NE(render_text(r).find("warning: 4 of 4 threads could not"), std::string::npos);
  r.scan->threads_stopped = 4;
  EXPECT_EQ(render_text(r).find("warning"), std::string::npos);
  r.scan = ScanInfo{1.0, 0, 0, 0, 0};
  EXPECT_EQ(render_text(r).find("warning"), std::string::npos);
  r.scan.reset();
  EXPECT_EQ(render_text(r).find("warning"), std::string::npos);
}

TEST(ReportText, SaysWhenThreadsWereHeldWithoutTheirRegisters) {
  Report r;
  r.scan = ScanInfo{1.0, 4, 4, 0, 0, false, 2};
  std::string text = render_text(r);
  EXPECT_TRUE(has_line(text,
                       "==0==   note: 2 of 4 threads had the scan's signal blocked and were held "
                       "asleep in a system call, registers unread (a pointer kept only in one of "
                       "them is not seen)"))
      << text;
  EXPECT_EQ(text.find("warning"), std::string::npos);
  r.scan->threads_held = 0;
  EXPECT_EQ(render_text(r).find("note:"), std::string::npos);
}

TEST(ReportText, ErrorsOnlyIsTheHeaderAndTheHeapErrors) {
  Report r = full_report();
  r.errors.resize(1);
  r.summary.errors = 1;  // as on_error=abort reports the one error
  TextOptions o;
  o.errors_only = true;
  EXPECT_EQ(render_text(r, o),
            "==4242== heapledger 0.1.0 — /usr/bin/prog '--name=ä ö' 'two words' '' "
            "(pid 4242, 12.5 ms)\n"
            "==4242==\n"
            "==4242== HEAP ERROR 1 of 1: double free of 0xdead0\n"
            "==4242==   in thread 4343 (worker \"7\")\n"
            "==4242==     #0 0x401400 f  a.c:1\n"
            "==4242==   allocated at:\n"
            "==4242==     #0 0x401500 g  (demo)\n");
  // The same report without the option has everything else too.
  std::string full = render_text(r);
  for (const char* section : {"SUMMARY:", "LEAK 1 of", "PEAK:", "suppressed:", "warning:"})
    EXPECT_NE(full.find(section), std::string::npos) << section;
}

TEST(ReportText, ErrorsOnlyStillCapsTheErrors) {
  Report r = full_report();
  TextOptions o;
  o.errors_only = true;
  o.max_leaks = 1;
  std::string text = render_text(r, o);
  position(text, "HEAP ERROR 1 of 4: double free");
  EXPECT_TRUE(has_line(
      text, "==4242== ... and 3 more heap errors from 3 more call sites — see the JSON report"))
      << text;
  EXPECT_EQ(text.find("HEAP ERROR 2"), std::string::npos) << text;
}

// Errors of one kind from one call site are one entry, shown by the first of them with how many
// there were (5,000 double frees from one line were 25 identical entries, a user trial's). Those
// with no stack recorded stay apart, as do other kinds from the same frames.
TEST(ReportText, HeapErrorsFromOneCallSiteAreOneEntry) {
  Report r;
  r.process.pid = 7;
  const Stack here{frame(0x401400, "/bin/demo", 0x1400, "f", "a.c", 1)};
  const Stack there{frame(0x401500, "/bin/demo", 0x1500, "g", "a.c", 2)};
  for (std::uint64_t i = 0; i < 5; ++i)
    r.errors.push_back(heap_error("double_free", 0x100 + i * 16, here));
  r.errors.push_back(heap_error("double_free", 0x200, there));
  r.errors.push_back(heap_error("mismatched_free", 0x300, here));
  r.errors.push_back(heap_error("invalid_free", 0x10));
  r.errors.push_back(heap_error("invalid_free", 0x20));
  r.errors.push_back(heap_error("double_free", 0x150, here));
  r.summary.errors = r.errors.size();
  const std::string text = render_text(r);
  std::size_t a =
      position(text,
               "==7== HEAP ERROR 1 of 5 (6 from here; the first shown): double free of 0x100\n"
               "==7==     #0 0x401400 f  a.c:1\n");
  std::size_t b = position(
      text, "==7== HEAP ERROR 2 of 5: double free of 0x200\n==7==     #0 0x401500 g  a.c:2\n");
  std::size_t c = position(text, "==7== HEAP ERROR 3 of 5: mismatched free of 0x300");
  std::size_t d = position(text, "==7== HEAP ERROR 4 of 5: invalid free of 0x10");
  std::size_t e = position(text, "==7== HEAP ERROR 5 of 5: invalid free of 0x20");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
  EXPECT_LT(d, e);
  EXPECT_EQ(text.find("0x110"), std::string::npos) << text;  // the others of the first entry
  EXPECT_EQ(text.find("HEAP ERROR 6"), std::string::npos) << text;
  // Capped: the rest counted by error and by call site.
  TextOptions o;
  o.max_leaks = 2;
  EXPECT_TRUE(
      has_line(render_text(r, o),
               "==7== ... and 3 more heap errors from 3 more call sites — see the JSON report"));
}

// The report keeps the first heap errors with their stacks and counts the rest: the text says how
// many it could not show, and numbers the entries it shows among the call sites of those kept.
TEST(ReportText, ErrorsPastTheKeptOnesAreCountedNotListed) {
  Report r = full_report();
  r.summary.errors = 1500;
  TextOptions o;
  o.max_leaks = 0;
  std::string text = render_text(r, o);
  position(text, "HEAP ERROR 1 of 4: double free");
  position(text, "HEAP ERROR 4 of 4: invalid free");
  EXPECT_TRUE(has_line(text,
                       "==4242== ... and 1,496 more heap errors counted but not kept (the "
                       "report keeps the first 4 with their stacks)"))
      << text;
  EXPECT_EQ(text.find("lists them all"), std::string::npos) << text;
  // Capped as well: one line for the kept ones not shown, one for those not kept.
  o.max_leaks = 1;
  o.rest_hint = "max_leaks=0 lists them all";
  text = render_text(r, o);
  EXPECT_TRUE(has_line(
      text,
      "==4242== ... and 3 more heap errors from 3 more call sites — max_leaks=0 lists them all"))
      << text;
  EXPECT_TRUE(has_line(text,
                       "==4242== ... and 1,496 more heap errors counted but not kept (the "
                       "report keeps the first 4 with their stacks)"))
      << text;
  // Every error kept: no such line.
  r.summary.errors = 4;
  EXPECT_EQ(render_text(r, o).find("not kept"), std::string::npos);
}

TEST(ReportText, SmallReportExactly) {
  Report r;
  r.tool_version = "0.1.0";
  r.process.pid = 1234;
  r.process.ppid = 1;
  r.process.exe = "/tmp/demo";
  r.process.argv = {"demo", "x"};
  r.process.duration_ms = 2.0;
  r.summary.allocations = 3;
  r.summary.frees = 2;
  r.summary.bytes_allocated = 3072;
  r.summary.peak_bytes = 2048;
  r.summary.peak_blocks = 2;
  r.summary.peak_time_ms = 1.0;
  r.summary.live_bytes = 1024;
  r.summary.live_blocks = 1;
  r.summary.leaked_bytes = 1024;
  r.summary.leaked_blocks = 1;
  r.leaks = {{"definite",
              1024,
              1,
              0.5,
              0.5,
              {frame(0x401136, "/tmp/demo", 0x1136, "leak_malloc", "/src/demo.c", 12),
               frame(0x401200, "/tmp/demo", 0x1200, "main", "/src/demo.c", 40)}}};
  EXPECT_EQ(render_text(r),
            "==1234== heapledger 0.1.0 — /tmp/demo x (pid 1234, 2.0 ms)\n"
            "==1234==\n"
            "==1234== SUMMARY: 3 allocations, 2 frees, 3.0 KiB allocated\n"
            "==1234==   peak: 2.0 KiB in 2 blocks at 1.0 ms\n"
            "==1234==   live at exit: 1.0 KiB in 1 block\n"
            "==1234==   leaked: 1.0 KiB in 1 block\n"
            "==1234==   heap errors: 0\n"
            "==1234==\n"
            "==1234== LEAK 1 of 1: 1,024 bytes in 1 block definitely lost, allocated at 0.5 ms\n"
            "==1234==     #0 0x401136 leak_malloc  demo.c:12\n"
            "==1234==     #1 0x401200 main  demo.c:40\n");
}

}  // namespace
}  // namespace heapledger
