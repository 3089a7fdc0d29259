// The definition of a symbol that ours interposes on (the C library's exit, say): the next one
// after this library (dlsym with RTLD_NEXT), looked up once and kept.
#pragma once

#include <dlfcn.h>

#include <atomic>

namespace heapledger::detail {

template <typename Fn>
Fn next_symbol(std::atomic<Fn>* cached, const char* name) {
  Fn fn = cached->load(std::memory_order_acquire);
  if (!fn) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    cached->store(fn, std::memory_order_release);
  }
  return fn;
}

}  // namespace heapledger::detail
