// Symbolizer over libdw; see symbolizer.h. One Dwfl session per module file, queried by the
// module-relative address, so modules loaded at overlapping addresses over time never clash.
#include "tracker/symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace heapledger {
namespace {

const Dwfl_Callbacks kCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

// Only mangled names: __cxa_demangle also reads a bare "g" or "f" as a type ("__float128",
// "float"), which C functions with one-letter names are.
std::string demangle(const char* name) {
  if (std::strncmp(name, "_Z", 2) != 0) return name;
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || !out) return name;
  std::string s(out);
  std::free(out);
  return s;
}

std::optional<std::string> die_function_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name})
    if (const char* n = dwarf_formstring(dwarf_attr_integrate(die, at, &attr))) return demangle(n);
  if (const char* n = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr))) return std::string(n);
  return std::nullopt;
}

bool is_function(Dwarf_Die* die) {
  int tag = dwarf_tag(die);
  return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine;
}

// A source file as the report names it: an absolute path where the debug information gives
// one. Names the compiler recorded relative to where it ran are joined to the unit's
// DW_AT_comp_dir; a build that remapped its paths (-ffile-prefix-map=$PWD=., as Debian's glibc
// with "../csu/libc-start.c" under "./csu") has no absolute one, and its name is kept as
// recorded: it is what the user's suppressions and eyes know the file by.
std::optional<std::string> source_file(const char* file, Dwarf_Die* cu) {
  if (!file || !*file) return std::nullopt;
  if (file[0] == '/') return std::string(file);
  Dwarf_Attribute attr;
  const char* dir = cu ? dwarf_formstring(dwarf_attr_integrate(cu, DW_AT_comp_dir, &attr)) : nullptr;
  if (!dir || dir[0] != '/') return std::string(file);
  return (std::filesystem::path(dir) / file).lexically_normal().string();
}

// The call site recorded on an inlined subroutine: where its caller called it.
void call_site(Dwarf_Die* cu, Dwarf_Die* inlined, Frame& caller) {
  Dwarf_Attribute attr;
  Dwarf_Word file = 0, line = 0;
  Dwarf_Files* files = nullptr;
  std::size_t nfiles = 0;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &file) == 0 &&
      dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && file < nfiles)
    caller.file = source_file(dwarf_filesrc(files, file, nullptr, nullptr), cu);
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &line) == 0 && line > 0)
    caller.line = static_cast<int>(line);
}

}  // namespace

struct Symbolizer::ModuleDebug {
  struct Symbol {
    GElf_Addr start;
    GElf_Xword size;
    const char* name;  // owned by libelf, lives as long as dwfl
  };
  Dwfl* dwfl = nullptr;
  Dwfl_Module* mod = nullptr;
  std::vector<Symbol> symbols;  // functions, by address
  bool symbols_loaded = false;
  ~ModuleDebug() {
    if (dwfl) dwfl_end(dwfl);
  }

  // libdw's dwfl_module_addrinfo scans the whole symbol table on every call (a third of the
  // exit time for a compiler's 500,000 frames); sorting the functions once makes it a search.
  void load_symbols() {
    symbols_loaded = true;
    int n = dwfl_module_getsymtab(mod);
    for (int i = 1; i < n; ++i) {
      GElf_Sym sym;
      GElf_Addr addr = 0;
      const char* name = dwfl_module_getsym_info(mod, i, &sym, &addr, nullptr, nullptr, nullptr);
      int type = GELF_ST_TYPE(sym.st_info);
      if (!name || !*name || sym.st_shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC))
        continue;
      symbols.push_back(Symbol{addr, sym.st_size, name});
    }
    std::sort(symbols.begin(), symbols.end(),
              [](const Symbol& a, const Symbol& b) { return a.start < b.start; });
  }

  const char* function_at(GElf_Addr at) {
    if (!symbols_loaded) load_symbols();
    auto it = std::upper_bound(symbols.begin(), symbols.end(), at,
                               [](GElf_Addr a, const Symbol& s) { return a < s.start; });
    if (it == symbols.begin()) return nullptr;
    --it;
    return at < it->start + std::max<GElf_Xword>(it->size, 1) ? it->name : nullptr;
  }
};

Symbolizer::Symbolizer() = default;
Symbolizer::~Symbolizer() = default;

Symbolizer::ModuleDebug* Symbolizer::module(const std::string& path) {
  auto it = modules_.find(path);
  if (it != modules_.end()) return it->second.get();
  auto m = std::make_unique<ModuleDebug>();
  m->dwfl = dwfl_begin(&kCallbacks);
  if (m->dwfl) {
    dwfl_report_begin(m->dwfl);
    m->mod = dwfl_report_elf(m->dwfl, path.c_str(), path.c_str(), -1, 0, false);
    dwfl_report_end(m->dwfl, nullptr, nullptr);
  }
  return modules_.emplace(path, std::move(m)).first->second.get();
}

// One return address → its frames. The address looked up is one byte before the return
// address, inside the call instruction, so the line is the call's, not the next statement's.
std::vector<Frame> Symbolizer::resolve(const Frame& raw) {
  std::vector<Frame> out{raw};
  ModuleDebug* m = raw.module.empty() ? nullptr : module(raw.module);
  if (!m || !m->mod || raw.offset == 0) return out;
  Dwarf_Addr at = raw.offset - 1;
  if (const char* name = m->function_at(at))
    out[0].function = demangle(std::string(name, std::strcspn(name, "@")).c_str());  // no @@GLIBC_x
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dwfl_module_addrdie(m->mod, at, &bias);
  if (Dwfl_Line* line = dwfl_module_getsrc(m->mod, at)) {
    int lineno = 0;
    if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr)) {
      out[0].file = source_file(file, cu);
      if (lineno > 0) out[0].line = lineno;
    }
  }
  Dwarf_Die* scopes = nullptr;
  int n = cu ? dwarf_getscopes(cu, at - bias, &scopes) : 0;
  // scopes run innermost to outermost; each inlined subroutine adds a frame for its caller.
  std::optional<std::string> outer_name = out[0].function;
  for (int i = 0; i < n; ++i) {
    if (!is_function(&scopes[i])) continue;
    if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine) break;
    out.back().function = die_function_name(&scopes[i]);
    Frame caller = raw;
    caller.file.reset();
    caller.line.reset();
    call_site(cu, &scopes[i], caller);
    caller.function = outer_name;  // the next scope up may be inlined too; fixed on the next pass
    out.push_back(std::move(caller));
  }
  std::free(scopes);
  return out;
}

Stack Symbolizer::symbolize(const Stack& raw) {
  Stack out;
  out.reserve(raw.size());
  for (const Frame& f : raw) {
    auto key = std::make_pair(f.module, f.offset);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, resolve(f)).first;
    for (Frame g : it->second) {
      g.address = f.address;
      out.push_back(std::move(g));
    }
  }
  return out;
}

}  // namespace heapledger
