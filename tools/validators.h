// Checks for the commands' whole-number flags, made on the text before CLI11 converts it: CLI11
// said "Value abc not in range 0 to 255" of a word, took 99999999999999999999 for a count (as
// the largest), and read -1 into an unsigned count (everything was shown).
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace heapledger::cli {

// A value from 0 to max, in decimal digits; the message otherwise, e.g. "must be a whole number
// from 0 to 255, not abc". open_ended: the range is named only to a number past it ("must be a
// whole number, 0 or more, not abc").
inline std::string whole_number_problem(const std::string& value, std::uint64_t max,
                                        bool open_ended) {
  std::uint64_t n = 0;
  const char* const end = value.data() + value.size();
  const auto [stop, error] = std::from_chars(value.data(), end, n);
  if (!value.empty() && stop == end && error == std::errc() && n <= max) return {};
  const bool a_number = !value.empty() && stop == end && error != std::errc::invalid_argument;
  if (open_ended && !a_number) return "must be a whole number, 0 or more, not " + value;
  return "must be a whole number from 0 to " + std::to_string(max) + ", not " + value;
}

// An exit status the flag sets.
inline CLI::Validator exit_status() {
  return CLI::Validator([](std::string& value) { return whole_number_problem(value, 255, false); },
                        "");
}

// A count shown (leak sites, frames): 0 means all.
inline CLI::Validator count() {
  return CLI::Validator(
      [](std::string& value) { return whole_number_problem(value, UINT32_MAX, true); }, "");
}

}  // namespace heapledger::cli
