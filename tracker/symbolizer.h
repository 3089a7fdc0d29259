// Symbolization with elfutils libdw: function (demangled), file and line, and inlined calls
// expanded into frames of their own. Works from each module's file on disk, so code of libraries
// unloaded before exit still resolves; stripped code keeps module+offset only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "tracker/report_model.h"

namespace heapledger {

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Replaces each raw frame (address, module, offset) with its symbolized frames, innermost first.
  Stack symbolize(const Stack& raw);
  // A raw frame named from its module's symbol table alone: no file, line or inlined calls, and
  // no debug information read (what the built-in suppressions need: the dynamic linker's
  // functions, where naming every frame of a report's 33,000 leak sites in full took seconds).
  Frame symbol_only(const Frame& raw);
  // Finds the function names of every frame of these stacks (all a report will symbolize) at
  // once: one pass over each module's symbol table rather than a sort of it. Optional; the
  // names are the same.
  void name_ahead(const std::vector<const Stack*>& stacks);
  // The same for the frames of one module, by their offsets (a raw frame's).
  void name_ahead(const std::string& module, std::vector<std::uint64_t> offsets);
  // How many modules' symbol tables were sorted (looked up beyond what name_ahead named).
  std::size_t tables_sorted() const;
  // Modules whose file was removed or replaced since the process mapped it, and could not be
  // read as mapped (/proc/self/map_files needs privileges): their frames are left unnamed rather
  // than named from another file.
  const std::set<std::string>& unreadable_replaced() const { return replaced_; }
  // /proc/self/maps as read already (the exit scan's, which outlives this), before the first
  // module: not read again. Otherwise it is read at the first module. The text must be followed
  // by a NUL (text.data()[text.size()] == 0): its numbers are read with strtoull.
  void use_maps(std::string_view text) { maps_text_ = text; }

 private:
  struct ModuleDebug;
  ModuleDebug* module(const std::string& path);
  std::vector<Frame> resolve(const Frame& raw);

  // The file to read for a module: -1 its path, else a descriptor of the file as mapped; -2:
  // replaced, and not to be read (see unreadable_replaced).
  int open_as_mapped(const std::string& path);

  std::unordered_map<std::string, std::unique_ptr<ModuleDebug>> modules_;
  // The first mapping of each file this process has mapped ("start-end", /proc/self/maps' range),
  // by path as /proc/self/maps names it (" (deleted)" after it, once removed or replaced); read
  // at the first module.
  std::unordered_map<std::string, std::string> mapped_;
  bool maps_read_ = false;
  std::string_view maps_text_;  // see use_maps
  std::set<std::string> replaced_;
  std::map<std::pair<std::string, std::uint64_t>, std::vector<Frame>> cache_;
  // Searches for separate debug information that found nothing: (file, link, CRC), each made once.
  std::set<std::string> searched_in_vain_;
};

}  // namespace heapledger
