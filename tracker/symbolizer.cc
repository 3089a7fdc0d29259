// Symbolizer over libdw; see symbolizer.h. One Dwfl session per module file, queried by the
// module-relative address, so modules loaded at overlapping addresses over time never clash.
#include "tracker/symbolizer.h"

#include "shim/proc_maps.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>
// libiberty.h (which demangle.h includes) declares basename() unless told the C library does.
#define HAVE_DECL_BASENAME 1
#include <libiberty/demangle.h>

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string_view>

namespace heapledger {
namespace {

// The CRC-32 of a whole file, as .gnu_debuglink records it (zlib's); false if it cannot be read.
bool file_crc32(int fd, std::uint32_t* out) {
  uLong crc = crc32(0, nullptr, 0);
  unsigned char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    crc = crc32(crc, buffer, static_cast<uInt>(n));
  }
  *out = static_cast<std::uint32_t>(crc);
  return ::lseek(fd, 0, SEEK_SET) == 0;
}

// libdw's standard search for a module's separate debug information, without its last resort:
// debuginfod, whose client initialises libcurl and with it libssh2 and OpenSSL. At exit, after
// OpenSSL's own clean-up, that crashed every program linked with it (openssl, curl, ssh,
// python3 using ssl) before its buffered output was written. By build ID under /usr/lib/debug
// (where Debian's -dbgsym packages put it), then by .gnu_debuglink next to the file, in its
// .debug/ and under /usr/lib/debug, as gdb looks, with the link's CRC checked.
int find_debuginfo_on_disk(Dwfl_Module* mod, void** userdata, const char* modname, GElf_Addr base,
                           const char* file_name, const char* debuglink, GElf_Word debuglink_crc,
                           char** found) {
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink,
                                        debuglink_crc, found);
  if (fd >= 0 || !file_name || !debuglink || !*debuglink) return fd;
  namespace fs = std::filesystem;
  const fs::path file(file_name), dir = file.parent_path();
  for (const fs::path& candidate : {dir / debuglink, dir / ".debug" / debuglink,
                                    fs::path("/usr/lib/debug") / dir.relative_path() / debuglink}) {
    if (candidate == file) continue;
    fd = ::open(candidate.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    std::uint32_t crc = 0;
    // No CRC: the dwz file a .gnu_debugaltlink names, which libdw then checks by build ID.
    if (debuglink_crc == 0 || (file_crc32(fd, &crc) && crc == debuglink_crc)) {
      *found = ::strdup(candidate.c_str());
      return fd;
    }
    ::close(fd);
  }
  return -1;
}

// libdwfl asks twice for a module that has none, for its symbol table and for its DWARF (eight
// failed opens for a stripped /usr/bin/sed): a search that found nothing is not made again by
// the same Symbolizer, whose set of them is the module's user data (Symbolizer::module). By
// file, link and CRC: a module's DWARF may also ask for the dwz file its link names.
int find_local_debuginfo(Dwfl_Module* mod, void** userdata, const char* modname, GElf_Addr base,
                         const char* file_name, const char* debuglink, GElf_Word debuglink_crc,
                         char** found) {
  auto* in_vain = static_cast<std::set<std::string>*>(*userdata);
  std::string key = std::string(file_name ? file_name
                                : modname ? modname
                                          : "") +
                    '\0' + (debuglink ? debuglink : "") + '\0' + std::to_string(debuglink_crc);
  if (in_vain && in_vain->contains(key)) return -1;
  const int fd = find_debuginfo_on_disk(mod, userdata, modname, base, file_name, debuglink,
                                        debuglink_crc, found);
  if (fd < 0 && in_vain) in_vain->insert(std::move(key));
  return fd;
}

const Dwfl_Callbacks kCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = find_local_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = nullptr,
};

// Only mangled names: __cxa_demangle also reads a bare "g" or "f" as a type ("__float128",
// "float"), which C functions with one-letter names are. Rust's names first: its v0 scheme
// ("_R...") is its own, and its legacy one is C++'s with escapes ("$LT$", "..") and a hash
// ("17h<16 hex digits>E") that __cxa_demangle leaves in (`_$LT$alloc..alloc..Global$u20$as...`,
// a user trial's); libiberty's rust_demangle answers only for names of Rust's shape.
// Rust's v0 back-references can nest so that a 260-byte symbol stands for a name of gigabytes (a
// review's: a 58 MB report, then an abort out of memory at exit). The demangler hands its output
// over piece by piece; past kMaxRustName it is abandoned (longjmp out of C code that holds no
// resources in this form) and the symbol is shown as it is.
constexpr std::size_t kMaxRustName = 16 << 10;
struct RustName {
  std::jmp_buf too_long;
  std::size_t length = 0;
  char text[kMaxRustName];
};

void take_rust_piece(const char* piece, std::size_t n, void* opaque) {
  auto* name = static_cast<RustName*>(opaque);
  if (n > kMaxRustName - name->length) std::longjmp(name->too_long, 1);
  std::memcpy(name->text + name->length, piece, n);
  name->length += n;
}

std::optional<std::string> demangle_rust(const char* symbol) {
  static thread_local RustName name;  // 16 KiB: not on the stack
  name.length = 0;
  if (setjmp(name.too_long) != 0) return std::nullopt;
  if (!rust_demangle_callback(symbol, DMGL_PARAMS | DMGL_ANSI, take_rust_piece, &name))
    return std::nullopt;
  return std::string(name.text, name.length);
}

std::string demangle(const char* name) {
  if (std::strncmp(name, "_Z", 2) != 0 && std::strncmp(name, "_R", 2) != 0) return name;
  if (std::optional<std::string> rust = demangle_rust(name)) return *rust;
  if (name[1] != 'Z') return name;
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

// The type that die's DW_AT_type names, through qualifiers and typedefs.
bool type_of(Dwarf_Die* die, Dwarf_Die* out) {
  Dwarf_Attribute attr;
  Dwarf_Die type;
  return dwarf_formref_die(dwarf_attr_integrate(die, DW_AT_type, &attr), &type) &&
         dwarf_peel_type(&type, out) == 0;
}

// A lambda's call operator: GCC gives it no linkage name where the function that defines the
// lambda has none (main, an extern "C" function), nor in a lambda inside another, so DWARF names
// it "operator()" alone: a member of an unnamed class (the closure type) declared inside that
// function. The class is the one its object pointer points to; false for a function that has no
// object pointer or whose class has a name.
bool closure_of(Dwarf_Die* function, Dwarf_Die* closure) {
  Dwarf_Attribute attr;
  Dwarf_Die self, pointer;
  if (!dwarf_formref_die(dwarf_attr_integrate(function, DW_AT_object_pointer, &attr), &self) ||
      !type_of(&self, &pointer) || dwarf_tag(&pointer) != DW_TAG_pointer_type ||
      !type_of(&pointer, closure))
    return false;
  const int tag = dwarf_tag(closure);
  return (tag == DW_TAG_structure_type || tag == DW_TAG_class_type) &&
         !dwarf_hasattr(closure, DW_AT_name);
}

// "{lambda at FILE:LINE}", where the closure type was declared (the lambda expression).
std::string lambda_label(Dwarf_Die* closure) {
  std::string label = "{lambda";
  if (const char* file = dwarf_decl_file(closure)) {
    label += " at " + std::filesystem::path(file).filename().string();
    if (int line = 0; dwarf_decl_line(closure, &line) == 0 && line > 0)
      label += ":" + std::to_string(line);
  }
  return label + "}";
}

// The scopes a closure type was declared in, outermost first, each followed by "::": up to the
// first function with a linkage name (its demangled name holds its own scopes), else to the unit.
// libdw finds them by walking the unit down to the closure.
std::string scopes_of(Dwarf_Die* closure) {
  Dwarf_Die* scopes = nullptr;
  const int n = dwarf_getscopes_die(closure, &scopes);
  std::string prefix;
  for (int i = 1; i < n; ++i) {  // scopes[0] is the closure itself
    Dwarf_Die* scope = &scopes[i];
    Dwarf_Attribute attr;
    const char* name = dwarf_formstring(dwarf_attr_integrate(scope, DW_AT_name, &attr));
    std::string part;
    bool whole = false;
    switch (dwarf_tag(scope)) {
      case DW_TAG_subprogram:
        whole = dwarf_attr_integrate(scope, DW_AT_linkage_name, &attr) != nullptr;
        part = die_function_name(scope).value_or("");
        break;
      case DW_TAG_namespace:
        part = name ? name : "(anonymous namespace)";
        break;
      case DW_TAG_structure_type:
      case DW_TAG_class_type:
      case DW_TAG_union_type:
        part = name ? std::string(name) : lambda_label(scope);
        break;
      default:  // lexical blocks, the unit
        continue;
    }
    if (part.empty()) break;
    prefix = part + "::" + prefix;
    if (whole) break;
  }
  std::free(scopes);
  return prefix;
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

// Tags whose DIEs cover code ranges and may hold the scopes of code further in.
bool covers_code(int tag) {
  switch (tag) {
    case DW_TAG_subprogram:
    case DW_TAG_inlined_subroutine:
    case DW_TAG_lexical_block:
    case DW_TAG_try_block:
    case DW_TAG_catch_block:
    case DW_TAG_with_stmt:
    case DW_TAG_entry_point:
      return true;
    default:
      return false;
  }
}

// The function DIEs that contain pc as the code is laid out, outermost first, from the children
// of `parent` down: the subprogram, then each inlined subroutine inside it down to the innermost.
// dwarf_getscopes cannot give this: past the innermost inlined subroutine it continues with the
// scopes of that function's abstract definition (what a debugger needs for variable lookup), so
// the inlined calls between it and the subprogram were lost. Namespaces (where clang puts
// definitions) are searched through; GCC and clang put a member function's code outside its
// class. False if nothing further in contains pc.
bool functions_at(Dwarf_Die* parent, Dwarf_Addr pc, std::vector<Dwarf_Die>& chain, int depth = 0) {
  Dwarf_Die child;
  if (depth > 64 || dwarf_child(parent, &child) != 0) return false;
  do {
    const int tag = dwarf_tag(&child);
    if (tag == DW_TAG_namespace || tag == DW_TAG_module) {
      if (functions_at(&child, pc, chain, depth + 1)) return true;
    } else if (covers_code(tag) && dwarf_haspc(&child, pc) == 1) {
      if (is_function(&child)) chain.push_back(child);
      functions_at(&child, pc, chain, depth + 1);  // whatever lies further in
      return true;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
  return false;
}

// The code ranges of the subprograms of a unit (through its namespaces), by address.
struct FunctionRange {
  Dwarf_Addr low, high;
  Dwarf_Off die;
};

void collect_functions(Dwarf_Die* parent, std::vector<FunctionRange>& out, int depth = 0) {
  Dwarf_Die child;
  if (depth > 64 || dwarf_child(parent, &child) != 0) return;
  do {
    const int tag = dwarf_tag(&child);
    if (tag == DW_TAG_namespace || tag == DW_TAG_module) {
      collect_functions(&child, out, depth + 1);
    } else if (tag == DW_TAG_subprogram) {
      Dwarf_Addr base = 0, low = 0, high = 0;
      for (std::ptrdiff_t r = 0; (r = dwarf_ranges(&child, r, &base, &low, &high)) > 0;)
        if (low < high) out.push_back(FunctionRange{low, high, dwarf_dieoffset(&child)});
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

}  // namespace

struct Symbolizer::ModuleDebug {
  struct Symbol {
    GElf_Addr start;
    GElf_Xword size;
    const char* name;  // owned by libelf, lives as long as dwfl
    bool local;        // STB_LOCAL (see rank())
  };
  Dwfl* dwfl = nullptr;
  Dwfl_Module* mod = nullptr;
  std::vector<Symbol> symbols;  // functions; by address once sorted
  bool symbols_loaded = false;
  bool symbols_sorted = false;
  // Names of the addresses the report was known to look up (name_ahead), by address.
  std::vector<std::pair<GElf_Addr, const char*>> named_ahead;
  ~ModuleDebug() {
    if (dwfl) dwfl_end(dwfl);
  }

  // libdw's dwfl_module_addrinfo scans the whole symbol table on every call (a third of the
  // exit time for a compiler's 500,000 frames); sorting the functions once makes it a search.
  void load_symbols() {
    symbols_loaded = true;
    // At most n: grown by doubling, the C library's 6,800 functions were copied over and over
    // (62 of a reporting sed's 695 page faults).
    if (const int n = dwfl_module_getsymtab(mod); n > 1)
      symbols.reserve(static_cast<std::size_t>(n - 1));
    for_each_function([&](const Symbol& s) { symbols.push_back(s); });
  }

  // f(symbol) for each function of the symbol table, in the table's order.
  template <class F>
  void for_each_function(F&& f) {
    const int n = dwfl_module_getsymtab(mod);
    for (int i = 1; i < n; ++i) {
      GElf_Sym sym;
      GElf_Addr addr = 0;
      const char* name = dwfl_module_getsym_info(mod, i, &sym, &addr, nullptr, nullptr, nullptr);
      int type = GELF_ST_TYPE(sym.st_info);
      if (!name || !*name || sym.st_shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC))
        continue;
      f(Symbol{addr, sym.st_size, name, GELF_ST_BIND(sym.st_info) == STB_LOCAL});
    }
  }

  // By address, the name to show first among those of one address; then only that one.
  void sort_symbols() {
    symbols_sorted = true;
    std::sort(symbols.begin(), symbols.end(), [](const Symbol& a, const Symbol& b) {
      return a.start != b.start ? a.start < b.start : shown_before(a, b);
    });
    symbols.erase(std::unique(symbols.begin(), symbols.end(),
                              [](const Symbol& a, const Symbol& b) { return a.start == b.start; }),
                  symbols.end());
  }

  // Of two functions at one address, whether a's is the one shown: one with a size before a
  // label without (whose rank would otherwise leave the function's body unnamed), then by rank,
  // the larger, and the name. A total order, so name_ahead and the sorted table agree.
  static bool shown_before(const Symbol& a, const Symbol& b) {
    if ((a.size != 0) != (b.size != 0)) return a.size != 0;
    if (const int ra = rank(a), rb = rank(b); ra != rb) return ra < rb;
    if (a.size != b.size) return a.size > b.size;
    return std::strcmp(a.name, b.name) < 0;
  }

  // A function's public name before its aliases: glibc's full symbol table names _IO_fflush
  // also __GI__IO_fflush (a local alias for its own calls), __libc_start_main also
  // __libc_start_main_impl and __libc_start_main_alias_1. Global or weak before local; then the
  // shortest (strdup, weak, before __strdup), by the name without its version: the table names
  // fopen "fopen@@GLIBC_2.2.5", which lost to its alias fopen64 by length. Only asked of names
  // that share an address: measuring every name took 1.5% of a reporting sed's samples.
  static int rank(const Symbol& s) {
    return int{s.local} << 16 |
           static_cast<int>(std::min<std::size_t>(std::strcspn(s.name, "@"), 0xffff));
  }

  // The compile unit holding code address `at` (a file address) when libdwfl cannot say: it
  // finds units through .debug_aranges, which clang does not emit by default, and elfutils 0.188
  // (Debian 12) does not fall back to the units' own ranges (so every frame of a clang-built
  // program lost its file and line). The ranges of every unit, sorted, once per module.
  struct UnitRange {
    Dwarf_Addr low, high;
    Dwarf_Off unit;
  };
  std::vector<UnitRange> unit_ranges;
  bool unit_ranges_loaded = false;

  bool unit_at(Dwarf_Addr at, Dwarf_Die* out, Dwarf_Addr* bias) {
    Dwarf* dw = dwfl_module_getdwarf(mod, bias);
    if (!dw) return false;
    if (!unit_ranges_loaded) {
      unit_ranges_loaded = true;
      Dwarf_Off offset = 0, next = 0;
      std::size_t header = 0;
      while (dwarf_nextcu(dw, offset, &next, &header, nullptr, nullptr, nullptr) == 0) {
        Dwarf_Die unit;
        if (dwarf_offdie(dw, offset + header, &unit)) {
          Dwarf_Addr base = 0, low = 0, high = 0;
          for (std::ptrdiff_t r = 0; (r = dwarf_ranges(&unit, r, &base, &low, &high)) > 0;)
            if (low < high) unit_ranges.push_back(UnitRange{low, high, offset + header});
        }
        offset = next;
      }
      std::sort(unit_ranges.begin(), unit_ranges.end(),
                [](const UnitRange& a, const UnitRange& b) { return a.low < b.low; });
    }
    const Dwarf_Addr want = at - *bias;
    auto it = std::upper_bound(unit_ranges.begin(), unit_ranges.end(), want,
                               [](Dwarf_Addr a, const UnitRange& r) { return a < r.low; });
    if (it == unit_ranges.begin() || want >= (--it)->high) return false;
    return dwarf_offdie(dw, it->unit, out) != nullptr;
  }

  // Each unit's subprograms by address, made on the unit's first lookup: finding the function
  // of an address by walking the unit's DIEs cost a C++ unit's whole std namespace per frame
  // (a program with 3,000 distinct allocating frames in one unit: 9.9 s of exit report).
  std::unordered_map<Dwarf_Off, std::vector<FunctionRange>> unit_functions;

  // The chain of function DIEs containing `pc` (a DWARF address) in unit `cu`; see functions_at.
  void functions_containing(Dwarf_Die* cu, Dwarf_Addr pc, std::vector<Dwarf_Die>& chain) {
    Dwarf_Addr bias = 0;
    Dwarf* dw = dwfl_module_getdwarf(mod, &bias);
    auto [it, fresh] = unit_functions.try_emplace(dwarf_dieoffset(cu));
    std::vector<FunctionRange>& ranges = it->second;
    if (fresh) {
      collect_functions(cu, ranges);
      std::sort(ranges.begin(), ranges.end(),
                [](const FunctionRange& a, const FunctionRange& b) { return a.low < b.low; });
    }
    auto next = std::upper_bound(ranges.begin(), ranges.end(), pc,
                                 [](Dwarf_Addr a, const FunctionRange& r) { return a < r.low; });
    Dwarf_Die function;
    if (dw && next != ranges.begin() && pc < std::prev(next)->high &&
        dwarf_offdie(dw, std::prev(next)->die, &function)) {
      chain.push_back(function);
      functions_at(&function, pc, chain);
      return;
    }
    functions_at(cu, pc, chain);  // code outside any listed subprogram: search the whole unit
  }

  // A function DIE's name (see die_function_name); a lambda's call operator with no linkage
  // name is named as the demangler names those that have one, "f(int)::{lambda at a.cc:9}::
  // operator()" (with where the lambda is, for the demangler's "{lambda(int)#1}"), once per lambda.
  std::unordered_map<Dwarf_Off, std::string> lambda_names;

  std::optional<std::string> function_name(Dwarf_Die* die) {
    std::optional<std::string> name = die_function_name(die);
    Dwarf_Die closure;
    if (name != "operator()" || !closure_of(die, &closure)) return name;
    auto [it, fresh] = lambda_names.try_emplace(dwarf_dieoffset(&closure));
    if (fresh) it->second = scopes_of(&closure) + lambda_label(&closure) + "::operator()";
    return it->second;
  }

  // The function at `at`: the one starting last at or below it (of those starting there, the
  // name shown_before the others), if `at` lies within it.
  const char* function_at(GElf_Addr at) {
    auto ahead = std::lower_bound(named_ahead.begin(), named_ahead.end(), at,
                                  [](const auto& n, GElf_Addr a) { return n.first < a; });
    if (ahead != named_ahead.end() && ahead->first == at) return ahead->second;
    if (!symbols_loaded) load_symbols();
    if (!symbols_sorted) sort_symbols();
    auto it = std::upper_bound(symbols.begin(), symbols.end(), at,
                               [](GElf_Addr a, const Symbol& s) { return a < s.start; });
    if (it == symbols.begin()) return nullptr;
    --it;
    return at < it->start + std::max<GElf_Xword>(it->size, 1) ? it->name : nullptr;
  }

  // function_at for every address of `at` at once, without sorting the table: each function is
  // put with the first address at or above its start, the last started (then the name shown
  // first) kept; an address then has the function of its own slot or, if that is empty, the one
  // of the nearest slot below. The same answers as the sorted table's, in one pass over it: a
  // short process's report names a few dozen frames of a module, where sorting the C library's
  // 6,800 functions (to name two or three dozen of them) took 3% of a reporting `sed`.
  // The symbols are read from libdwfl in the one pass, not kept: a table only this needs (10,015
  // symbols of the C library, with libc6-dbg) cost a reporting sed 320 KB of page faults.
  void name_ahead(std::vector<GElf_Addr> at) {
    if (symbols_sorted || at.empty()) return;
    std::sort(at.begin(), at.end());
    at.erase(std::unique(at.begin(), at.end()), at.end());
    std::vector<std::optional<Symbol>> last(at.size());  // per slot
    auto take = [&](const Symbol& s) {
      const auto slot =
          static_cast<std::size_t>(std::lower_bound(at.begin(), at.end(), s.start) - at.begin());
      if (slot == at.size()) return;
      std::optional<Symbol>& held = last[slot];
      if (!held || s.start > held->start || (s.start == held->start && shown_before(s, *held)))
        held = s;
    };
    if (symbols_loaded)
      for (const Symbol& s : symbols) take(s);
    else
      for_each_function(take);
    named_ahead.clear();
    named_ahead.reserve(at.size());
    const Symbol* below = nullptr;
    for (std::size_t k = 0; k < at.size(); ++k) {
      if (last[k]) below = &*last[k];
      const bool within = below && at[k] < below->start + std::max<GElf_Xword>(below->size, 1);
      named_ahead.emplace_back(at[k], within ? below->name : nullptr);
    }
  }
};

namespace {
// Whether the code at `at` is the signal trampoline a handler returns to: its call frame
// information says so (the mark the fast unwinder stops at).
bool is_signal_trampoline(Dwfl_Module* mod, Dwarf_Addr at) {
  Dwarf_Addr bias = 0;
  Dwarf_CFI* cfi = dwfl_module_eh_cfi(mod, &bias);
  Dwarf_Frame* frame = nullptr;
  if (!cfi || dwarf_cfi_addrframe(cfi, at - bias, &frame) != 0) return false;
  bool signal = false;
  const bool known = dwarf_frame_info(frame, nullptr, nullptr, &signal) >= 0;
  std::free(frame);
  return known && signal;
}
}  // namespace

Symbolizer::Symbolizer() = default;
Symbolizer::~Symbolizer() = default;

// A program rebuilt while it ran (its new build moved over its path, as make and mv do) has
// another file at its path by exit, whose symbols and lines named its frames wrongly, without a
// word (a user trial's: main's frame named as the new build's leak_here, at the new source's
// line). /proc/self/maps then names the file mapped "PATH (deleted)", and it is read through
// /proc/self/map_files; where that cannot be opened (it takes CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE: most users, containers), not at all (-2). The path as the loader gave
// it may be a link to the one maps names (/lib -> /usr/lib). The path is read (-1) where maps
// names it as it is (also on overlayfs, whose devices and inodes are not stat's), and for a
// module not mapped now (unloaded).
int Symbolizer::open_as_mapped(const std::string& path) {
  if (!maps_read_) {
    maps_read_ = true;
    // map_files names a mapping "%lx-%lx": not as maps prints it (zero-padded to 8 digits, a
    // non-PIE program's 00400000).
    const auto note = [&](const detail::proc_maps::Mapping& m) {
      if (m.anonymous) return;
      char range[40];
      std::snprintf(range, sizeof range, "%lx-%lx", static_cast<unsigned long>(m.lo),
                    static_cast<unsigned long>(m.hi));
      mapped_.try_emplace(std::string(m.path), range);
    };
    if (!maps_text_.empty()) {
      detail::proc_maps::for_each(maps_text_.data(), maps_text_.size(), note);
    } else {
      // Not zero-filled: the maps of a short process are a few KiB of the buffer, and clearing
      // all of it faulted in 16 pages of every reporting process.
      constexpr std::size_t kBuffer = 64 << 10;
      const auto buf = std::make_unique_for_overwrite<char[]>(kBuffer);
      detail::proc_maps::for_each_read(buf.get(), kBuffer, note);
    }
  }
  std::vector<std::string> names = {path};
  if (char* real = ::realpath(path.c_str(), nullptr)) {
    if (path != real) names.emplace_back(real);
    std::free(real);
  }
  for (const std::string& name : names)
    if (mapped_.count(name)) return -1;
  for (const std::string& name : names) {
    auto it = mapped_.find(name + " (deleted)");
    if (it == mapped_.end()) continue;
    const int fd = ::open(("/proc/self/map_files/" + it->second).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return fd;
    replaced_.insert(path);
    return -2;
  }
  return -1;
}

Symbolizer::ModuleDebug* Symbolizer::module(const std::string& path) {
  auto it = modules_.find(path);
  if (it != modules_.end()) return it->second.get();
  auto m = std::make_unique<ModuleDebug>();
  m->dwfl = dwfl_begin(&kCallbacks);
  if (m->dwfl) {
    dwfl_report_begin(m->dwfl);
    // The file as mapped; its path still names it, and is where its separate debug information
    // is looked for.
    const int fd = open_as_mapped(path);
    if (fd != -2) m->mod = dwfl_report_elf(m->dwfl, path.c_str(), path.c_str(), fd, 0, false);
    if (!m->mod && fd >= 0) ::close(fd);  // consumed only on success
    void** userdata = nullptr;
    if (m->mod &&
        dwfl_module_info(m->mod, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) &&
        userdata)
      *userdata = &searched_in_vain_;  // for find_local_debuginfo
    dwfl_report_end(m->dwfl, nullptr, nullptr);
  }
  return modules_.emplace(path, std::move(m)).first->second.get();
}

namespace {
// Frames in the C library are named from its symbol table alone, without file, line or inlined
// frames: every stack has some (__libc_start_call_main, start_thread; a stdio buffer's
// _IO_file_doallocate), and reading its debug information (libc6-dbg, which valgrind depends
// on) cost every process about 0.1 s at exit, inflating the compressed sections whole, to print
// libc_start_call_main.h:58.
bool in_c_library(std::string_view module) {
  return module.substr(module.rfind('/') + 1).starts_with("libc.so");  // npos + 1: all of it
}
}  // namespace

// One return address → its frames. The address looked up is one byte before the return
// address, inside the call instruction, so the line is the call's, not the next statement's.
std::vector<Frame> Symbolizer::resolve(const Frame& raw) {
  std::vector<Frame> out{symbol_only(raw)};
  ModuleDebug* m = raw.module.empty() ? nullptr : module(raw.module);
  if (!m || !m->mod || raw.offset == 0 || in_c_library(raw.module)) return out;
  const Dwarf_Addr at = raw.offset - 1;
  // libdwfl gives an address that lies between the ranges of a unit (code without debug
  // information, such as crt1.o's _start placed after a program's main.cold) to that unit, and
  // then the line of whatever row precedes it: such a unit is not the address's.
  Dwarf_Addr bias = 0;
  Dwarf_Die unit;
  Dwarf_Die* cu = dwfl_module_addrdie(m->mod, at, &bias);
  if (cu && dwarf_haspc(cu, at - bias) != 1) cu = nullptr;
  if (!cu && m->unit_at(at, &unit, &bias)) cu = &unit;
  if (Dwarf_Line* line = cu ? dwarf_getsrc_die(cu, at - bias) : nullptr) {
    int lineno = 0;
    out[0].file = source_file(dwarf_linesrc(line, nullptr, nullptr), cu);
    if (dwarf_lineno(line, &lineno) == 0 && lineno > 0) out[0].line = lineno;
  }
  std::vector<Dwarf_Die> chain;
  if (cu) m->functions_containing(cu, at - bias, chain);
  // Innermost first: each inlined subroutine names the frame so far and adds one for its caller,
  // at its call site. The outermost keeps the symbol table's name, which the last pass leaves.
  const std::optional<std::string> outer_name = out[0].function;
  for (auto it = chain.rbegin(); it != chain.rend() && dwarf_tag(&*it) == DW_TAG_inlined_subroutine; ++it) {
    out.back().function = m->function_name(&*it);
    Frame caller = raw;
    caller.file.reset();
    caller.line.reset();
    call_site(cu, &*it, caller);
    caller.function = outer_name;  // named by the next inlined subroutine out, if there is one
    out.push_back(std::move(caller));
  }
  return out;
}

Frame Symbolizer::symbol_only(const Frame& raw) {
  Frame out = raw;
  ModuleDebug* m = raw.module.empty() ? nullptr : module(raw.module);
  if (!m || !m->mod || raw.offset == 0) return out;
  const Dwarf_Addr at = raw.offset - 1;
  if (const char* name = m->function_at(at))
    out.function = demangle(std::string(name, std::strcspn(name, "@")).c_str());  // no @@GLIBC_x
  else if (is_signal_trampoline(m->mod, at))
    out.function = "<signal handler called>";  // as gdb says; glibc's __restore_rt has no symbol
  return out;
}

void Symbolizer::name_ahead(const std::vector<const Stack*>& stacks) {
  std::unordered_map<std::string_view, std::vector<std::uint64_t>> by_module;
  for (const Stack* stack : stacks)
    for (const Frame& f : *stack)
      if (!f.module.empty()) by_module[f.module].push_back(f.offset);
  for (auto& [path, offsets] : by_module) name_ahead(std::string(path), std::move(offsets));
}

void Symbolizer::name_ahead(const std::string& path, std::vector<std::uint64_t> offsets) {
  std::erase(offsets, 0);
  for (std::uint64_t& at : offsets) --at;  // as resolve
  if (ModuleDebug* m = module(path); m->mod) m->name_ahead(std::move(offsets));
}

std::size_t Symbolizer::tables_sorted() const {
  return static_cast<std::size_t>(std::count_if(
      modules_.begin(), modules_.end(), [](const auto& m) { return m.second->symbols_sorted; }));
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
