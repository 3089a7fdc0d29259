// The JSON form of the report (schema heapledger/1, see DESIGN.md): written by the runtime at
// exit, read back by the CLI. The writer is the only place that knows the JSON key names.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

#include "tracker/report_model.h"

namespace heapledger {

// The report as JSON, keys in schema order. indent < 0 gives one compact line. Addresses and
// offsets are "0x..." strings; absent optional values are null. No trailing newline. Bytes that
// are not valid UTF-8 (argv, paths) are written as U+FFFD instead of failing.
std::string to_json(const Report& r, int indent = 2);
// The same text, handed to `sink` in pieces of about 1 MiB (each whole list elements) as it is
// made, for a report too big to hold twice.
void write_json(const Report& r, int indent, const std::function<void(std::string_view)>& sink);

// The inverse of to_json. Missing fields keep their defaults and unknown fields are ignored (the
// schema only grows), but a field of the wrong type is an error. Throws std::runtime_error with a
// one-line message: "not a heapledger report: <where>: <what>" or "unsupported schema <name>".
Report report_from_json(std::string_view text);
// The same, read from `in` only as far as it is a valid JSON document: a device or file of bytes
// that are no JSON is refused at the first. An error reading it throws its strerror().
Report report_from_json(std::FILE* in);

}  // namespace heapledger
