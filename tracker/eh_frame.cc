// See eh_frame.h. The formats: the LSB's "Exception Frames" (.eh_frame, .eh_frame_hdr and the
// DW_EH_PE pointer encodings) and DWARF 4, section 6.4 (the call frame instructions).
//
// Until this reader, libdw read these rules in the runtime module: loading it (with libelf,
// libz, liblzma and libbz2) and opening each module's file took ~0.9 ms of every tracked
// process, a third of what tracking added to a short one (sed, in a shell script).
#include "tracker/eh_frame.h"

#include <dwarf.h>

#include <cstring>

namespace heapledger::detail::eh_frame {
namespace {

constexpr unsigned kRegRbp = 6, kRegRsp = 7, kRegRa = 16;  // DWARF numbers on x86-64
constexpr int kMaxRemembered = 8;  // DW_CFA_remember_state depth (compilers nest one or two)

// Reads inside one of the tables' segments only, the one `at` is in (an entry never spans two);
// the first read that would leave it (or any malformed value) makes every later one fail, and
// ok() false.
class Reader {
 public:
  Reader(std::uintptr_t at, std::uintptr_t lo, std::uintptr_t hi) : at_(at), lo_(lo), hi_(hi) {
    ok_ = at >= lo_ && at <= hi_;
  }
  Reader(std::uintptr_t at, const Tables& t)
      : Reader(at, at >= t.frame_lo && at < t.frame_hi ? t.frame_lo : t.lo,
               at >= t.frame_lo && at < t.frame_hi ? t.frame_hi : t.hi) {}

  bool ok() const { return ok_; }
  std::uintptr_t at() const { return at_; }
  void fail() { ok_ = false; }

  template <typename T>
  T fixed() {
    T value{};
    if (!ok_ || hi_ - at_ < sizeof(T)) {
      ok_ = false;
      return value;
    }
    std::memcpy(&value, reinterpret_cast<const void*>(at_), sizeof(T));
    at_ += sizeof(T);
    return value;
  }

  std::uint64_t uleb() {
    std::uint64_t value = 0;
    for (unsigned shift = 0; ok_; shift += 7) {
      const auto byte = fixed<std::uint8_t>();
      if (shift < 64) value |= std::uint64_t{byte & 0x7fu} << shift;
      if (!(byte & 0x80)) return value;
    }
    return 0;
  }

  std::int64_t sleb() {
    std::uint64_t value = 0;
    unsigned shift = 0;
    std::uint8_t byte = 0x80;
    while (ok_ && (byte & 0x80)) {
      byte = fixed<std::uint8_t>();
      if (shift < 64) value |= std::uint64_t{byte & 0x7fu} << shift;
      shift += 7;
    }
    if (shift < 64 && (byte & 0x40)) value |= ~std::uint64_t{0} << shift;  // sign-extended
    return ok_ ? static_cast<std::int64_t>(value) : 0;
  }

  // A pointer in encoding enc (DW_EH_PE_*): its value plus what the encoding says it is relative
  // to (this field for pcrel, data_base for datarel). The indirect bit is the caller's to refuse.
  std::uintptr_t pointer(std::uint8_t enc, std::uintptr_t data_base) {
    const std::uintptr_t field = at_;
    std::uint64_t value = 0;
    switch (enc & 0x0f) {
      case DW_EH_PE_absptr:
        value = fixed<std::uint64_t>();
        break;
      case DW_EH_PE_uleb128:
        value = uleb();
        break;
      case DW_EH_PE_udata2:
        value = fixed<std::uint16_t>();
        break;
      case DW_EH_PE_udata4:
        value = fixed<std::uint32_t>();
        break;
      case DW_EH_PE_udata8:
        value = fixed<std::uint64_t>();
        break;
      case DW_EH_PE_sleb128:
        value = static_cast<std::uint64_t>(sleb());
        break;
      case DW_EH_PE_sdata2:
        value = static_cast<std::uint64_t>(std::int64_t{fixed<std::int16_t>()});
        break;
      case DW_EH_PE_sdata4:
        value = static_cast<std::uint64_t>(std::int64_t{fixed<std::int32_t>()});
        break;
      case DW_EH_PE_sdata8:
        value = fixed<std::uint64_t>();
        break;
      default:
        fail();
        return 0;
    }
    switch (enc & 0x70) {
      case DW_EH_PE_absptr:
        return value;
      case DW_EH_PE_pcrel:
        return value + field;
      case DW_EH_PE_datarel:
        if (data_base) return value + data_base;
        break;
      default:
        break;  // textrel, funcrel, aligned: not used on x86-64
    }
    fail();
    return 0;
  }

  void skip(std::uint64_t bytes) {
    if (bytes > hi_ - at_) fail();
    if (ok_) at_ += bytes;
  }

 private:
  std::uintptr_t at_, lo_, hi_;
  bool ok_;
};

// A register's rule, for the two registers a simple step uses.
struct Saved {
  enum Kind : std::uint8_t { kSame, kUndefined, kAtCfa, kOther };
  Kind kind = kSame;
  std::int64_t offset = 0;  // kAtCfa: saved at CFA + offset
};

// One row of the table the instructions describe, as far as a simple step needs it.
struct Row {
  bool cfa_known = false;  // def_cfa seen (and no expression since)
  bool cfa_expression = false;
  std::uint64_t cfa_reg = 0;
  std::int64_t cfa_offset = 0;
  // Before the CIE's instructions: the x86-64 ABI's (rbp callee-saved, so the same; the return
  // address register the same until the CIE says where it is).
  Saved rbp, ra;
};

struct Cie {
  std::uint64_t code_align = 0;
  std::int64_t data_align = 0;
  std::uint64_t ra_reg = 0;
  std::uint8_t fde_encoding = DW_EH_PE_absptr;
  bool augmented = false;  // 'z': augmentation data (and an FDE's) has a length, skipped
  bool signal = false;     // 'S': a signal trampoline's frame
  std::uintptr_t program = 0, program_end = 0;
};

// A length field that starts an entry: its end, or 0 (a terminator, 64-bit DWARF, out of bounds).
std::uintptr_t entry_end(Reader& r) {
  const auto length = r.fixed<std::uint32_t>();
  if (!r.ok() || length == 0 || length == 0xffffffffu) return 0;
  const std::uintptr_t end = r.at() + length;
  Reader probe = r;
  probe.skip(length);
  return probe.ok() ? end : 0;
}

bool parse_cie(std::uintptr_t at, const Tables& t, Cie* cie) {
  Reader r(at, t);
  const std::uintptr_t end = entry_end(r);
  if (!end || r.fixed<std::uint32_t>() != 0) return false;  // a CIE's id is 0 in .eh_frame
  const auto version = r.fixed<std::uint8_t>();
  if (version != 1 && version != 3) return false;
  char augmentation[8];
  std::size_t n = 0;
  for (char c = r.fixed<char>(); r.ok() && c; c = r.fixed<char>()) {
    if (n + 1 >= sizeof augmentation) return false;
    augmentation[n++] = c;
  }
  augmentation[n] = 0;
  cie->code_align = r.uleb();
  cie->data_align = r.sleb();
  cie->ra_reg = version == 1 ? r.fixed<std::uint8_t>() : r.uleb();
  if (n > 0) {
    if (augmentation[0] != 'z') return false;  // "eh" and other pre-'z' forms
    cie->augmented = true;
    const std::uint64_t data_length = r.uleb();
    const std::uintptr_t data_end = r.at() + data_length;
    for (std::size_t i = 1; i < n && r.ok(); ++i) {
      switch (augmentation[i]) {
        case 'R':
          cie->fde_encoding = r.fixed<std::uint8_t>();
          break;
        case 'L':
          r.fixed<std::uint8_t>();
          break;     // the LSDA's encoding
        case 'P': {  // the personality routine: skipped
          const auto enc = r.fixed<std::uint8_t>();
          if ((enc & 0x70) == DW_EH_PE_aligned) return false;
          r.pointer(enc & 0x0f, 0);
          break;
        }
        case 'S':
          cie->signal = true;
          break;
        default:
          return false;  // unknown: later letters' data could not be found
      }
    }
    if (!r.ok() || r.at() > data_end) return false;
    r.skip(data_end - r.at());
  }
  cie->program = r.at();
  cie->program_end = end;
  return r.ok() && r.at() <= end;
}

// The FDE whose range holds pc, from .eh_frame_hdr's table (sorted by start address): its
// address, or 0.
std::uintptr_t find_fde(const Tables& t, std::uintptr_t pc) {
  Reader r(t.hdr, t.lo, t.hi);  // the header and its table: in the header's segment
  const auto version = r.fixed<std::uint8_t>();
  const auto frame_encoding = r.fixed<std::uint8_t>();
  const auto count_encoding = r.fixed<std::uint8_t>();
  const auto table_encoding = r.fixed<std::uint8_t>();
  // Entries of two 4-byte offsets from the header, as GNU ld, gold and lld all write them.
  if (!r.ok() || version != 1 || count_encoding == DW_EH_PE_omit ||
      table_encoding != (DW_EH_PE_datarel | DW_EH_PE_sdata4))
    return 0;
  r.pointer(frame_encoding, t.hdr);  // .eh_frame itself: not needed
  const std::uint64_t count = r.pointer(count_encoding, t.hdr);
  const std::uintptr_t table = r.at();
  if (!r.ok() || count == 0 || count > (t.hi - table) / 8) return 0;
  auto entry = [&](std::uint64_t i, int field) {
    std::int32_t value;
    std::memcpy(&value, reinterpret_cast<const void*>(table + i * 8 + field * 4), sizeof value);
    return t.hdr + static_cast<std::uintptr_t>(static_cast<std::int64_t>(value));
  };
  // The last entry starting at or below pc.
  std::uint64_t lo = 0, hi = count;
  while (hi - lo > 1) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    (entry(mid, 0) <= pc ? lo : hi) = mid;
  }
  return entry(lo, 0) <= pc ? entry(lo, 1) : 0;
}

// Runs call frame instructions [from, to) over row, up to the row in force at pc (loc: the
// address the instructions start at). initial: the CIE's row, for DW_CFA_restore. False for an
// instruction this reader does not follow.
bool run(const Tables& t, const Cie& cie, std::uintptr_t from, std::uintptr_t to,
         std::uintptr_t loc, std::uintptr_t pc, const Row& initial, Row* row) {
  Row remembered[kMaxRemembered];
  int depth = 0;
  Reader r(from, t);
  auto advance = [&](std::uint64_t delta) {  // false once the next row starts past pc
    loc += delta * cie.code_align;
    return loc <= pc;
  };
  auto saved = [&](std::uint64_t reg) -> Saved* {
    return reg == kRegRbp ? &row->rbp : reg == kRegRa ? &row->ra : nullptr;
  };
  auto set = [&](std::uint64_t reg, Saved::Kind kind, std::int64_t offset = 0) {
    if (Saved* s = saved(reg)) *s = Saved{kind, offset};
  };
  while (r.ok() && r.at() < to) {
    const auto op = r.fixed<std::uint8_t>();
    const std::uint8_t low = op & 0x3f;
    switch (op & 0xc0) {
      case DW_CFA_advance_loc:
        if (!advance(low)) return r.ok();
        continue;
      case DW_CFA_offset:
        set(low, Saved::kAtCfa, static_cast<std::int64_t>(r.uleb()) * cie.data_align);
        continue;
      case DW_CFA_restore:
        if (Saved* s = saved(low)) *s = low == kRegRbp ? initial.rbp : initial.ra;
        continue;
      default:
        break;
    }
    switch (op) {
      case DW_CFA_nop:
        break;
      case DW_CFA_set_loc: {
        const std::uintptr_t next = r.pointer(cie.fde_encoding, 0);
        if (cie.fde_encoding & DW_EH_PE_indirect) return false;
        if (next > pc) return r.ok();
        loc = next;
        break;
      }
      case DW_CFA_advance_loc1:
        if (!advance(r.fixed<std::uint8_t>())) return r.ok();
        break;
      case DW_CFA_advance_loc2:
        if (!advance(r.fixed<std::uint16_t>())) return r.ok();
        break;
      case DW_CFA_advance_loc4:
        if (!advance(r.fixed<std::uint32_t>())) return r.ok();
        break;
      case DW_CFA_MIPS_advance_loc8:
        if (!advance(r.fixed<std::uint64_t>())) return r.ok();
        break;
      case DW_CFA_offset_extended: {
        const std::uint64_t reg = r.uleb();
        set(reg, Saved::kAtCfa, static_cast<std::int64_t>(r.uleb()) * cie.data_align);
        break;
      }
      case DW_CFA_offset_extended_sf: {
        const std::uint64_t reg = r.uleb();
        set(reg, Saved::kAtCfa, r.sleb() * cie.data_align);
        break;
      }
      case DW_CFA_GNU_negative_offset_extended: {
        const std::uint64_t reg = r.uleb();
        set(reg, Saved::kAtCfa, -static_cast<std::int64_t>(r.uleb()) * cie.data_align);
        break;
      }
      case DW_CFA_restore_extended: {
        const std::uint64_t reg = r.uleb();
        if (Saved* s = saved(reg)) *s = reg == kRegRbp ? initial.rbp : initial.ra;
        break;
      }
      case DW_CFA_undefined:
        set(r.uleb(), Saved::kUndefined);
        break;
      case DW_CFA_same_value:
        set(r.uleb(), Saved::kSame);
        break;
      case DW_CFA_register: {
        const std::uint64_t reg = r.uleb();
        r.uleb();
        set(reg, Saved::kOther);
        break;
      }
      case DW_CFA_val_offset:
      case DW_CFA_val_offset_sf: {
        const std::uint64_t reg = r.uleb();
        if (op == DW_CFA_val_offset)
          r.uleb();
        else
          r.sleb();
        set(reg, Saved::kOther);
        break;
      }
      case DW_CFA_expression:
      case DW_CFA_val_expression: {
        const std::uint64_t reg = r.uleb();
        r.skip(r.uleb());
        set(reg, Saved::kOther);
        break;
      }
      case DW_CFA_remember_state:
        if (depth == kMaxRemembered) return false;
        remembered[depth++] = *row;
        break;
      case DW_CFA_restore_state:
        if (depth == 0) return false;
        *row = remembered[--depth];
        break;
      case DW_CFA_def_cfa:
        row->cfa_reg = r.uleb();
        row->cfa_offset = static_cast<std::int64_t>(r.uleb());
        row->cfa_known = true, row->cfa_expression = false;
        break;
      case DW_CFA_def_cfa_sf:
        row->cfa_reg = r.uleb();
        row->cfa_offset = r.sleb() * cie.data_align;
        row->cfa_known = true, row->cfa_expression = false;
        break;
      case DW_CFA_def_cfa_register:
        if (!row->cfa_known || row->cfa_expression) return false;
        row->cfa_reg = r.uleb();
        break;
      case DW_CFA_def_cfa_offset:
        if (!row->cfa_known || row->cfa_expression) return false;
        row->cfa_offset = static_cast<std::int64_t>(r.uleb());
        break;
      case DW_CFA_def_cfa_offset_sf:
        if (!row->cfa_known || row->cfa_expression) return false;
        row->cfa_offset = r.sleb() * cie.data_align;
        break;
      case DW_CFA_def_cfa_expression:
        r.skip(r.uleb());
        row->cfa_known = row->cfa_expression = true;
        break;
      case DW_CFA_GNU_args_size:
        r.uleb();
        break;
      default:
        return false;  // DW_CFA_GNU_window_save (SPARC), vendor extensions
    }
  }
  return r.ok();
}

// The rule a row makes: as libdw's answers were read (tracker/runtime.cc before this reader).
FrameRule rule_of(const Cie& cie, const Row& row) {
  FrameRule rule;
  rule.kind = FrameRule::kComplex;
  if (cie.ra_reg != kRegRa) return rule;
  if (cie.signal) return rule.kind = FrameRule::kSignal, rule;
  if (row.ra.kind == Saved::kUndefined) return rule.kind = FrameRule::kOutermost, rule;
  if (row.ra.kind != Saved::kAtCfa || row.ra.offset != -8) return rule;
  if (row.rbp.kind == Saved::kAtCfa) {
    if (row.rbp.offset < INT16_MIN || row.rbp.offset > 0) return rule;
    rule.rbp_saved = true;
    rule.rbp_offset = static_cast<std::int16_t>(row.rbp.offset);
  } else if (row.rbp.kind != Saved::kSame) {
    return rule;
  }
  if (!row.cfa_known || row.cfa_expression || (row.cfa_reg != kRegRsp && row.cfa_reg != kRegRbp) ||
      row.cfa_offset < 8 || row.cfa_offset > (1 << 30))
    return rule;
  rule.kind = FrameRule::kSimple;
  rule.cfa_from_rbp = row.cfa_reg == kRegRbp;
  rule.cfa_offset = static_cast<std::int32_t>(row.cfa_offset);
  return rule;
}

}  // namespace

namespace {
// The readable loaded segment holding addr: false if none.
bool segment_of(const ElfW(Phdr) * phdr, int phnum, std::uintptr_t bias, std::uintptr_t addr,
                std::uintptr_t* lo, std::uintptr_t* hi) {
  for (int i = 0; i < phnum; ++i) {
    const ElfW(Phdr)& ph = phdr[i];
    const std::uintptr_t from = bias + ph.p_vaddr, to = from + ph.p_memsz;
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_R) && addr >= from && addr < to) {
      *lo = from, *hi = to;
      return true;
    }
  }
  return false;
}
}  // namespace

Tables find(const ElfW(Phdr) * phdr, int phnum, std::uintptr_t bias) {
  Tables t;
  for (int i = 0; i < phnum; ++i)
    if (phdr[i].p_type == PT_GNU_EH_FRAME) t.hdr = bias + phdr[i].p_vaddr;
  if (!t.hdr || !segment_of(phdr, phnum, bias, t.hdr, &t.lo, &t.hi))
    return Tables{};  // none, or not in a readable loaded segment
  // .eh_frame, from the header's pointer to it: the header's own segment if it is not in one.
  t.frame_lo = t.lo, t.frame_hi = t.hi;
  Reader r(t.hdr, t.lo, t.hi);
  const auto version = r.fixed<std::uint8_t>();
  const auto frame_encoding = r.fixed<std::uint8_t>();
  r.skip(2);  // the count's and the table's encodings
  const std::uintptr_t frame = r.pointer(frame_encoding, t.hdr);
  std::uintptr_t lo, hi;
  // Segments that overlap without being one (crafted program headers) would let a read that
  // starts in both go on in the larger (a review's: the table read 1 GiB past its segment).
  if (r.ok() && version == 1 && !(frame_encoding & DW_EH_PE_indirect) &&
      segment_of(phdr, phnum, bias, frame, &lo, &hi) &&
      ((lo == t.lo && hi == t.hi) || hi <= t.lo || lo >= t.hi))
    t.frame_lo = lo, t.frame_hi = hi;
  return t;
}

FrameRule rule_at(const Tables& t, std::uintptr_t pc) {
  FrameRule complex;
  complex.kind = FrameRule::kComplex;
  if (!t.hdr) return complex;
  const std::uintptr_t fde = find_fde(t, pc);
  if (!fde) return complex;
  Reader r(fde, t);
  const std::uintptr_t end = entry_end(r);
  const std::uintptr_t id_field = r.at();
  const auto id = r.fixed<std::uint32_t>();  // the distance back to its CIE
  Cie cie;
  if (!end || id == 0 || id > id_field || !parse_cie(id_field - id, t, &cie)) return complex;
  if (cie.fde_encoding & DW_EH_PE_indirect) return complex;
  const std::uintptr_t start = r.pointer(cie.fde_encoding, 0);
  const std::uintptr_t range = r.pointer(cie.fde_encoding & 0x0f, 0);
  if (!r.ok() || pc < start || pc - start >= range) return complex;
  if (cie.augmented) r.skip(r.uleb());
  if (!r.ok() || r.at() > end) return complex;
  const Row abi;
  Row initial = abi;
  if (!run(t, cie, cie.program, cie.program_end, start, ~std::uintptr_t{0}, abi, &initial))
    return complex;
  Row row = initial;
  if (!run(t, cie, r.at(), end, start, pc, initial, &row)) return complex;
  return rule_of(cie, row);
}

}  // namespace heapledger::detail::eh_frame
