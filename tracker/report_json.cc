// Report <-> JSON (schema heapledger/1). Writing maps the model field by field in schema order;
// reading is lenient about missing fields and strict about types, and names the bad field.
#include "tracker/report_json.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace heapledger {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kSchema = "heapledger/1";

// ---- writing ----

Json process_json(const ProcessInfo& p) {
  return Json{{"pid", p.pid},
              {"ppid", p.ppid},
              {"exe", p.exe},
              {"argv", p.argv},
              {"duration_ms", p.duration_ms},
              {"forked_ms", p.forked_ms ? Json(*p.forked_ms) : Json(nullptr)},
              {"signal", p.signal ? Json(*p.signal) : Json(nullptr)}};
}

Json summary_json(const Summary& s) {
  return Json{{"allocations", s.allocations},
              {"frees", s.frees},
              {"bytes_allocated", s.bytes_allocated},
              {"peak_bytes", s.peak_bytes},
              {"peak_blocks", s.peak_blocks},
              {"peak_time_ms", s.peak_time_ms},
              {"live_bytes", s.live_bytes},
              {"live_blocks", s.live_blocks},
              {"leaked_bytes", s.leaked_bytes},
              {"leaked_blocks", s.leaked_blocks},
              {"possible_bytes", s.possible_bytes},
              {"possible_blocks", s.possible_blocks},
              {"reachable_bytes", s.reachable_bytes},
              {"reachable_blocks", s.reachable_blocks},
              {"suppressed_bytes", s.suppressed_bytes},
              {"suppressed_blocks", s.suppressed_blocks},
              {"errors", s.errors}};
}

// null when there was no exit scan (the report is errors only); {"failed": true, "why": ...} when
// it could not run (out of memory, no /proc: no leak is classified).
Json scan_json(const std::optional<ScanInfo>& s, const std::string& why) {
  if (!s) return nullptr;
  if (s->failed) return why.empty() ? Json{{"failed", true}} : Json{{"failed", true}, {"why", why}};
  return Json{
      {"milliseconds", s->milliseconds},       {"threads", s->threads},
      {"threads_stopped", s->threads_stopped}, {"threads_held", s->threads_held},
      {"root_bytes", s->root_bytes},           {"heap_bytes_scanned", s->heap_bytes_scanned}};
}

std::string dump(const Json& value, int indent) {
  return value.dump(indent, ' ', false, Json::error_handler_t::replace);
}

// The document, written as it is walked: the text nlohmann's dump() makes of the whole tree,
// byte for byte (report_test checks it), without the tree. A tree costs ~100 bytes of nodes per
// field: for a program that holds 8,000 call sites at exit (cc1plus, with show_reachable=1) the
// process peaked at 780 MB while writing it, 396 MB without (docs/internals.md, Exit report
// memory). And the lists (stacks of frames, most of a report) are written value by value, not
// built as values first: a frame made that way was a dozen allocations, and a short process's
// JSON report (a sed's, 83 sites) took 4.5 ms, most of it there. The small objects (process,
// summary) are still built and dumped. Goes out to the sink in pieces of about 1 MiB.
class DocumentWriter {
 public:
  using Sink = std::function<void(std::string_view)>;
  DocumentWriter(int indent, const Sink& sink) : indent_(indent), sink_(sink) { begin('{'); }

  void member(std::string_view key, const Json& value) {
    this->key(key);
    after_key_ = false;
    const std::string text = dump(value, indent_);
    if (indent_ <= 0) {
      out_ += text;
      return;
    }
    // A value dumped on its own is indented for depth 0: every line after its first gets the
    // depth's indent (string values hold no raw newline: dump() escapes them).
    const auto pad = static_cast<std::size_t>(depth() * indent_);
    for (std::size_t from = 0;;) {
      const std::size_t line_end = text.find('\n', from);
      out_.append(text, from,
                  line_end == std::string::npos ? std::string::npos : line_end + 1 - from);
      if (line_end == std::string::npos) break;
      out_.append(pad, ' ');
      from = line_end + 1;
    }
  }
  template <class T, class F>
  void array_member(std::string_view key, const std::vector<T>& items, F write_item) {
    this->key(key);
    begin('[');
    for (const T& item : items) {
      write_item(*this, item);
      if (out_.size() >= kPiece) flush();
    }
    end(']');
  }
  void finish() {
    end('}');
    flush();
  }

  // The values of an object or array being written.
  void key(std::string_view k) {
    element();
    quoted(k);
    out_ += indent_ < 0 ? ":" : ": ";
    after_key_ = true;
  }
  void begin(char open) {
    element();
    out_ += open;
    open_.push_back(true);  // empty so far
  }
  void end(char close) {
    const bool empty = open_.back();
    open_.pop_back();
    if (!empty) newline(depth());
    out_ += close;
  }
  void string(std::string_view s) {
    element();
    quoted(s);
  }
  void optional_string(const std::optional<std::string>& s) { s ? string(*s) : null(); }
  void number(std::uint64_t v) {
    element();
    fmt::format_to(std::back_inserter(out_), "{}", v);
  }
  void number(std::int64_t v) {
    element();
    fmt::format_to(std::back_inserter(out_), "{}", v);
  }
  void number(int v) { number(static_cast<std::int64_t>(v)); }
  void number(double v) {
    element();
    out_ += dump(Json(v), -1);
  }
  void number(const std::optional<int>& v) { v ? number(*v) : null(); }
  void hex(std::uint64_t v) {
    element();
    fmt::format_to(std::back_inserter(out_), "\"{:#x}\"", v);
  }
  void null() {
    element();
    out_ += "null";
  }

 private:
  static constexpr std::size_t kPiece = std::size_t{1} << 20;

  int depth() const { return static_cast<int>(open_.size()); }
  // Printable ASCII with nothing to escape, as dump() writes it; anything else through dump()
  // (escapes, UTF-8 checked and bad bytes replaced).
  void quoted(std::string_view s) {
    if (std::all_of(s.begin(), s.end(),
                    [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; })) {
      out_ += '"';
      out_ += s;
      out_ += '"';
    } else {
      out_ += dump(Json(std::string(s)), -1);
    }
  }
  // Before a value: the comma and line break that come before an element of an array or a
  // member of an object, and nothing right after a member's key.
  void element() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (open_.empty()) return;  // the document itself
    if (!open_.back()) out_ += ',';
    open_.back() = false;
    newline(depth());
  }
  void newline(int depth) {
    if (indent_ < 0) return;
    out_ += '\n';
    out_.append(static_cast<std::size_t>(depth * indent_), ' ');
  }
  void flush() {
    sink_(out_);
    out_.clear();
  }

  int indent_;
  const Sink& sink_;
  std::vector<bool> open_;  // per open object or array: nothing in it yet
  bool after_key_ = false;
  std::string out_;
};

void write_frame(DocumentWriter& w, const Frame& f) {
  w.begin('{');
  w.key("address");
  w.hex(f.address);
  w.key("module");
  w.string(f.module);
  w.key("offset");
  w.hex(f.offset);
  w.key("function");
  w.optional_string(f.function);
  w.key("file");
  w.optional_string(f.file);
  w.key("line");
  w.number(f.line);
  w.end('}');
}

void write_stack(DocumentWriter& w, const Stack& s) {
  w.begin('[');
  for (const Frame& f : s) write_frame(w, f);
  w.end(']');
}

void write_optional_stack(DocumentWriter& w, const std::optional<Stack>& s) {
  s ? write_stack(w, *s) : w.null();
}

void write_leak(DocumentWriter& w, const Leak& l) {
  w.begin('{');
  w.key("kind");
  w.string(l.kind);
  w.key("bytes");
  w.number(l.bytes);
  w.key("blocks");
  w.number(l.blocks);
  w.key("first_ms");
  w.number(l.first_ms);
  w.key("last_ms");
  w.number(l.last_ms);
  w.key("stack");
  write_stack(w, l.stack);
  // threads and thread_count are not in the DESIGN.md listing (added fields).
  w.key("threads");
  w.begin('[');
  for (std::size_t i = 0; i < l.threads.size() && i < kLeakThreadsKept; ++i) {
    const LeakThread& t = l.threads[i];
    w.begin('{');
    w.key("thread");
    w.number(t.thread);
    w.key("name");
    t.name.empty() ? w.null() : w.string(t.name);
    w.key("blocks");
    w.number(t.blocks);
    w.key("bytes");
    w.number(t.bytes);
    w.end('}');
  }
  w.end(']');
  w.key("thread_count");
  w.number(std::max<std::uint64_t>(l.thread_count, l.threads.size()));
  w.end('}');
}

void write_peak_site(DocumentWriter& w, const PeakSite& p) {
  w.begin('{');
  w.key("bytes");
  w.number(p.bytes);
  w.key("blocks");
  w.number(p.blocks);
  w.key("stack");
  write_stack(w, p.stack);
  w.end('}');
}

// detail, block, thread, thread_name, free_thread and free_thread_name are not in the DESIGN.md
// listing (added fields); absent is null, as elsewhere.
void write_error(DocumentWriter& w, const HeapError& e) {
  w.begin('{');
  w.key("kind");
  w.string(e.kind);
  w.key("address");
  w.hex(e.address);
  w.key("detail");
  e.detail.empty() ? w.null() : w.string(e.detail);
  w.key("block");
  if (e.block) {
    w.begin('{');
    w.key("address");
    w.hex(e.block->address);
    w.key("size");
    w.number(e.block->size);
    w.end('}');
  } else {
    w.null();
  }
  w.key("stack");
  write_stack(w, e.stack);
  w.key("alloc_stack");
  write_optional_stack(w, e.alloc_stack);
  w.key("free_stack");
  write_optional_stack(w, e.free_stack);
  w.key("thread");
  w.number(e.thread);
  w.key("thread_name");
  e.thread_name.empty() ? w.null() : w.string(e.thread_name);
  w.key("free_thread");
  w.number(e.free_thread);
  w.key("free_thread_name");
  e.free_thread_name.empty() ? w.null() : w.string(e.free_thread_name);
  w.end('}');
}

void write_timeline_point(DocumentWriter& w, const TimelinePoint& t) {
  w.begin('{');
  w.key("t_ms");
  w.number(t.t_ms);
  w.key("bytes");
  w.number(t.bytes);
  w.end('}');
}

void write_suppression(DocumentWriter& w, const SuppressionHit& h) {
  w.begin('{');
  w.key("pattern");
  w.string(h.pattern);
  w.key("blocks");
  w.number(h.blocks);
  w.key("bytes");
  w.number(h.bytes);
  w.end('}');
}

// ---- reading: every reader takes the enclosing object, its path (for messages) and a key ----

[[noreturn]] void fail(std::string_view path, std::string_view what) {
  throw std::runtime_error(fmt::format("not a heapledger report: {}: {}", path, what));
}

std::string join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

// The member `key` of `obj`, or nullptr when it is missing or null (both mean "not given").
const Json* member(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

void read(const Json& obj, std::string_view path, std::string_view key, std::uint64_t& out) {
  const Json* v = member(obj, key);
  if (!v) return;
  if (!v->is_number_unsigned()) fail(join(path, key), "expected a non-negative integer");
  out = v->get<std::uint64_t>();
}

void read(const Json& obj, std::string_view path, std::string_view key, std::int64_t& out) {
  const Json* v = member(obj, key);
  if (!v) return;
  bool fits = v->is_number_integer() &&
              !(v->is_number_unsigned() &&
                v->get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()));
  if (!fits) fail(join(path, key), "expected an integer");
  out = v->get<std::int64_t>();
}

void read(const Json& obj, std::string_view path, std::string_view key, double& out) {
  const Json* v = member(obj, key);
  if (!v) return;
  if (!v->is_number()) fail(join(path, key), "expected a number");
  out = v->get<double>();
}

void read(const Json& obj, std::string_view path, std::string_view key, std::string& out) {
  const Json* v = member(obj, key);
  if (!v) return;
  if (!v->is_string()) fail(join(path, key), "expected a string");
  out = v->get<std::string>();
}

void read(const Json& obj, std::string_view path, std::string_view key,
          std::optional<std::string>& out) {
  out.reset();
  if (member(obj, key)) read(obj, path, key, out.emplace());
}

void read(const Json& obj, std::string_view path, std::string_view key,
          std::optional<double>& out) {
  out.reset();
  if (member(obj, key)) read(obj, path, key, out.emplace());
}

void read(const Json& obj, std::string_view path, std::string_view key, std::optional<int>& out) {
  out.reset();
  const Json* v = member(obj, key);
  if (!v) return;
  std::int64_t n = 0;
  read(obj, path, key, n);
  if (n < std::numeric_limits<int>::min() || n > std::numeric_limits<int>::max())
    fail(join(path, key), "integer out of range");
  out = int(n);
}

// "0x1a2b" -> 0x1a2b. Exactly what hex() writes: 0x prefix, 1 to 16 hex digits.
void read_hex(const Json& obj, std::string_view path, std::string_view key, std::uint64_t& out) {
  const Json* v = member(obj, key);
  if (!v) return;
  const std::string* s = v->get_ptr<const std::string*>();
  bool ok = s && s->size() > 2 && s->size() <= 18 && (*s)[0] == '0' && ((*s)[1] | 0x20) == 'x';
  if (ok) {
    const char* end = s->data() + s->size();
    auto [ptr, ec] = std::from_chars(s->data() + 2, end, out, 16);
    ok = ec == std::errc() && ptr == end;
  }
  if (!ok) fail(join(path, key), "expected a hex string like \"0x1a2b\"");
}

// Calls each(element, element_path) for every element of the array `key` (missing: none).
template <class F>
void for_each(const Json& obj, std::string_view path, std::string_view key, F each) {
  const Json* v = member(obj, key);
  if (!v) return;
  std::string where = join(path, key);
  if (!v->is_array()) fail(where, "expected an array");
  for (std::size_t i = 0; i < v->size(); ++i) each((*v)[i], fmt::format("{}[{}]", where, i));
}

// The object `key` of `obj`, or an empty object when missing or null.
const Json& object_at(const Json& obj, std::string_view path, std::string_view key) {
  static const Json kEmpty = Json::object();
  const Json* v = member(obj, key);
  if (!v) return kEmpty;
  if (!v->is_object()) fail(join(path, key), "expected an object");
  return *v;
}

void expect_object(const Json& j, std::string_view path) {
  if (!j.is_object()) fail(path, "expected an object");
}

Frame read_frame(const Json& j, std::string_view path) {
  expect_object(j, path);
  Frame f;
  read_hex(j, path, "address", f.address);
  read(j, path, "module", f.module);
  read_hex(j, path, "offset", f.offset);
  read(j, path, "function", f.function);
  read(j, path, "file", f.file);
  read(j, path, "line", f.line);
  return f;
}

Stack read_stack(const Json& obj, std::string_view path, std::string_view key) {
  Stack s;
  for_each(obj, path, key,
           [&](const Json& f, const std::string& at) { s.push_back(read_frame(f, at)); });
  return s;
}

std::optional<Stack> read_optional_stack(const Json& obj, std::string_view path,
                                         std::string_view key) {
  if (!member(obj, key)) return std::nullopt;
  return read_stack(obj, path, key);
}

ProcessInfo read_process(const Json& doc) {
  const Json& j = object_at(doc, "", "process");
  ProcessInfo p;
  read(j, "process", "pid", p.pid);
  read(j, "process", "ppid", p.ppid);
  read(j, "process", "exe", p.exe);
  for_each(j, "process", "argv", [&](const Json& a, const std::string& at) {
    if (!a.is_string()) fail(at, "expected a string");
    p.argv.push_back(a.get<std::string>());
  });
  read(j, "process", "duration_ms", p.duration_ms);
  read(j, "process", "forked_ms", p.forked_ms);
  read(j, "process", "signal", p.signal);
  return p;
}

Summary read_summary(const Json& doc) {
  const Json& j = object_at(doc, "", "summary");
  constexpr std::string_view at = "summary";
  Summary s;
  read(j, at, "allocations", s.allocations);
  read(j, at, "frees", s.frees);
  read(j, at, "bytes_allocated", s.bytes_allocated);
  read(j, at, "peak_bytes", s.peak_bytes);
  read(j, at, "peak_blocks", s.peak_blocks);
  read(j, at, "peak_time_ms", s.peak_time_ms);
  read(j, at, "live_bytes", s.live_bytes);
  read(j, at, "live_blocks", s.live_blocks);
  read(j, at, "leaked_bytes", s.leaked_bytes);
  read(j, at, "leaked_blocks", s.leaked_blocks);
  read(j, at, "possible_bytes", s.possible_bytes);
  read(j, at, "possible_blocks", s.possible_blocks);
  read(j, at, "reachable_bytes", s.reachable_bytes);
  read(j, at, "reachable_blocks", s.reachable_blocks);
  read(j, at, "suppressed_bytes", s.suppressed_bytes);
  read(j, at, "suppressed_blocks", s.suppressed_blocks);
  read(j, at, "errors", s.errors);
  return s;
}

Leak read_leak(const Json& j, const std::string& at) {
  expect_object(j, at);
  Leak l;
  read(j, at, "kind", l.kind);
  read(j, at, "bytes", l.bytes);
  read(j, at, "blocks", l.blocks);
  read(j, at, "first_ms", l.first_ms);
  read(j, at, "last_ms", l.last_ms);
  l.stack = read_stack(j, at, "stack");
  if (member(j, "threads"))
    for_each(j, at, "threads", [&](const Json& t, const std::string& t_at) {
      expect_object(t, t_at);
      LeakThread& lt = l.threads.emplace_back();
      read(t, t_at, "thread", lt.thread);
      read(t, t_at, "name", lt.name);
      read(t, t_at, "blocks", lt.blocks);
      read(t, t_at, "bytes", lt.bytes);
    });
  read(j, at, "thread_count", l.thread_count);
  return l;
}

PeakSite read_peak_site(const Json& j, const std::string& at) {
  expect_object(j, at);
  PeakSite p;
  read(j, at, "bytes", p.bytes);
  read(j, at, "blocks", p.blocks);
  p.stack = read_stack(j, at, "stack");
  return p;
}

HeapError read_error(const Json& j, const std::string& at) {
  expect_object(j, at);
  HeapError e;
  read(j, at, "kind", e.kind);
  read_hex(j, at, "address", e.address);
  read(j, at, "detail", e.detail);
  if (member(j, "block")) {
    const std::string block_at = join(at, "block");
    const Json& b = object_at(j, at, "block");
    HeapError::Block& block = e.block.emplace();
    read_hex(b, block_at, "address", block.address);
    read(b, block_at, "size", block.size);
  }
  e.stack = read_stack(j, at, "stack");
  e.alloc_stack = read_optional_stack(j, at, "alloc_stack");
  e.free_stack = read_optional_stack(j, at, "free_stack");
  read(j, at, "thread", e.thread);
  read(j, at, "thread_name", e.thread_name);
  read(j, at, "free_thread", e.free_thread);
  read(j, at, "free_thread_name", e.free_thread_name);
  return e;
}

TimelinePoint read_timeline_point(const Json& j, const std::string& at) {
  expect_object(j, at);
  TimelinePoint t;
  read(j, at, "t_ms", t.t_ms);
  read(j, at, "bytes", t.bytes);
  return t;
}

// Missing or null: the scan did not run (or the report predates the field).
std::optional<ScanInfo> read_scan(const Json& doc, std::string* why) {
  if (!member(doc, "scan")) return std::nullopt;
  const Json& j = object_at(doc, "", "scan");
  constexpr std::string_view at = "scan";
  ScanInfo s;
  if (const Json* failed = member(j, "failed")) {
    if (!failed->is_boolean()) fail(join(at, "failed"), "expected true or false");
    s.failed = failed->get<bool>();
  }
  read(j, at, "why", *why);
  read(j, at, "milliseconds", s.milliseconds);
  read(j, at, "threads", s.threads);
  read(j, at, "threads_stopped", s.threads_stopped);
  read(j, at, "threads_held", s.threads_held);
  read(j, at, "root_bytes", s.root_bytes);
  read(j, at, "heap_bytes_scanned", s.heap_bytes_scanned);
  return s;
}

SuppressionHit read_suppression(const Json& j, const std::string& at) {
  expect_object(j, at);
  SuppressionHit h;
  read(j, at, "pattern", h.pattern);
  read(j, at, "blocks", h.blocks);
  read(j, at, "bytes", h.bytes);
  return h;
}

template <class T, class F>
std::vector<T> read_array(const Json& doc, std::string_view key, F read_item) {
  std::vector<T> items;
  for_each(doc, "", key,
           [&](const Json& j, const std::string& at) { items.push_back(read_item(j, at)); });
  return items;
}

// Deeper than any report (a frame is five levels down): a field of a document that nests
// further is refused before its nesting is built. nlohmann builds it with a recursion per level,
// and 50,000 levels of `[` overflowed the stack (a user trial's `heapledger report`: SIGSEGV).
constexpr int kMaxDepth = 512;

[[noreturn]] void invalid_json(const Json::exception& e) {
  // what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ...".
  std::string_view what = e.what();
  if (auto p = what.find("] "); p != what.npos) what.remove_prefix(p + 2);
  throw std::runtime_error(fmt::format("not a heapledger report: invalid JSON: {}", what));
}

// nlohmann's document builder, refusing a document nested deeper than kMaxDepth as it comes.
// (A parser callback does the same, but made reading a 48 MB report 7 times slower.)
class DepthLimitedBuilder : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  using json_sax_dom_parser::json_sax_dom_parser;
  bool start_object(std::size_t n) { return deeper() && json_sax_dom_parser::start_object(n); }
  bool start_array(std::size_t n) { return deeper() && json_sax_dom_parser::start_array(n); }
  bool end_object() { return --depth_, json_sax_dom_parser::end_object(); }
  bool end_array() { return --depth_, json_sax_dom_parser::end_array(); }

 private:
  bool deeper() {
    if (++depth_ > kMaxDepth)
      throw std::runtime_error(fmt::format(
          "not a heapledger report: invalid JSON: nested more than {} levels deep", kMaxDepth));
    return true;
  }
  int depth_ = 0;
};

// Input: a string_view, or a FILE* read only as far as the document is valid JSON (/dev/zero
// and a file of 300 MB of NULs were read whole, then refused at line 1, column 1).
template <class Input>
Json parse_document(Input input) {
  Json doc;
  DepthLimitedBuilder builder(doc);
  try {
    Json::sax_parse(input, &builder);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    invalid_json(e);
  }
  return doc;
}

void check_schema(const Json& doc) {
  if (!doc.is_object()) fail("top level", "expected a JSON object");
  const Json* schema = member(doc, "schema");
  if (!schema) fail("schema", "missing");
  if (!schema->is_string()) fail("schema", "expected a string");
  const auto& name = schema->get_ref<const std::string&>();
  if (name == kSchema) return;
  if (name.starts_with("heapledger/"))
    throw std::runtime_error(
        fmt::format("unsupported schema {} (this build reads {})", name, kSchema));
  fail("schema", fmt::format("\"{}\" is not {}", name, kSchema));
}

// The document in schema order, into doc.
void write_document(const Report& r, DocumentWriter& doc) {
  doc.member("schema", r.schema);
  doc.member("tool", Json{{"name", r.tool_name}, {"version", r.tool_version}});
  doc.member("process", process_json(r.process));
  doc.member("summary", summary_json(r.summary));
  doc.array_member("leaks", r.leaks, write_leak);
  doc.array_member("peak", r.peak, write_peak_site);
  doc.array_member("errors", r.errors, write_error);
  doc.array_member("timeline", r.timeline, write_timeline_point);
  doc.member("scan", scan_json(r.scan, r.scan_failure));
  doc.array_member("suppressions", r.suppressions, write_suppression);
  doc.member("reachable_sites_omitted", r.reachable_sites_omitted);
}

}  // namespace

std::string to_json(const Report& r, int indent) {
  std::string text;
  write_json(r, indent, [&](std::string_view piece) { text += piece; });
  return text;
}

void write_json(const Report& r, int indent, const std::function<void(std::string_view)>& sink) {
  DocumentWriter doc(indent, sink);
  write_document(r, doc);
  doc.finish();
}

namespace {
Report read_document(const Json& doc) {
  check_schema(doc);
  Report r;
  r.schema = doc["schema"].get<std::string>();
  const Json& tool = object_at(doc, "", "tool");
  read(tool, "tool", "name", r.tool_name);
  read(tool, "tool", "version", r.tool_version);
  r.process = read_process(doc);
  r.summary = read_summary(doc);
  r.leaks = read_array<Leak>(doc, "leaks", read_leak);
  r.peak = read_array<PeakSite>(doc, "peak", read_peak_site);
  r.errors = read_array<HeapError>(doc, "errors", read_error);
  r.timeline = read_array<TimelinePoint>(doc, "timeline", read_timeline_point);
  r.scan = read_scan(doc, &r.scan_failure);
  r.suppressions = read_array<SuppressionHit>(doc, "suppressions", read_suppression);
  read(doc, "", "reachable_sites_omitted", r.reachable_sites_omitted);
  // Every report heapledger writes has these (other fields may be missing: they default). A
  // document without them rendered as a clean run: "no leaks: the program made no heap allocations".
  for (std::string_view key : {"summary", "leaks"})
    if (!member(doc, key)) fail(key, "missing");
  return r;
}
}  // namespace

Report report_from_json(std::string_view text) {
  if (text.find_first_not_of(" \t\r\n") == text.npos)
    throw std::runtime_error("not a heapledger report: the input is empty");
  return read_document(parse_document(text));
}

Report report_from_json(std::FILE* in) {
  int c;
  while ((c = std::fgetc(in)) == ' ' || c == '\t' || c == '\r' || c == '\n') {
  }
  if (c == EOF && std::ferror(in)) throw std::runtime_error(std::strerror(errno));
  if (c == EOF) throw std::runtime_error("not a heapledger report: the input is empty");
  std::ungetc(c, in);
  Json doc;
  try {
    doc = parse_document(in);
  } catch (const std::runtime_error&) {
    const int error = errno;
    if (std::ferror(in)) throw std::runtime_error(std::strerror(error));  // EIO midway, say
    throw;
  }
  return read_document(doc);
}

}  // namespace heapledger
