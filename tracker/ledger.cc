// Ledger operations; see ledger.h. Each operation holds exactly one shard lock and calls nothing
// that could allocate from the tracked heap.
#include "tracker/ledger.h"

namespace heapledger::detail {

bool Ledger::insert(std::uintptr_t addr, const Record& r) {
  Shard& s = shard(addr);
  SpinGuard guard(s.lock);
  return s.map.insert(addr, r);
}

bool Ledger::erase(std::uintptr_t addr, Record* out) {
  Shard& s = shard(addr);
  SpinGuard guard(s.lock);
  return s.map.erase(addr, out);
}

bool Ledger::find(std::uintptr_t addr, Record* out) {
  Shard& s = shard(addr);
  SpinGuard guard(s.lock);
  Record* r = s.map.find(addr);
  if (r && out) *out = *r;
  return r != nullptr;
}

std::size_t Ledger::size() {
  std::size_t n = 0;
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    n += s.map.size();
  }
  return n;
}

std::size_t Ledger::memory_bytes() {
  std::size_t n = 0;
  for (Shard& s : shards_) {
    SpinGuard guard(s.lock);
    n += s.map.memory_bytes();
  }
  return n;
}

void Ledger::lock_all() {
  for (Shard& s : shards_) s.lock.lock();
}

void Ledger::unlock_all() {
  for (Shard& s : shards_) s.lock.unlock();
}

}  // namespace heapledger::detail
