// The loaded ELF objects, remembered for the life of the process: a stack captured inside a
// library that is dlclose'd later still names that library's path and load bias at exit.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shim/spin_lock.h"
#include "tracker/eh_frame.h"

namespace heapledger::detail {

struct Module {
  std::uintptr_t start = 0;  // lowest and highest address of its PT_LOAD segments
  std::uintptr_t end = 0;
  std::uintptr_t bias = 0;   // dlpi_addr: address minus link-time address
  const char* path = nullptr;  // absolute path, in internal memory
  eh_frame::Tables eh;         // its call frame information, in memory
  bool loaded = false;
};

class ModuleMap {
 public:
  static constexpr std::uint16_t kUnknown = 0xFFFF;
  static constexpr std::size_t kMaxModules = 4096;

  // Index of the loaded module containing addr, or kUnknown. Rescans the loaded objects
  // (dl_iterate_phdr) when the address is unknown and objects were loaded or unloaded since
  // the last scan. Never holds its lock while calling into the dynamic linker.
  std::uint16_t find(std::uintptr_t addr);
  // Resolves many addresses at once (consecutive frames are often in one module).
  void find_all(const std::uintptr_t* addrs, std::size_t n, std::uint16_t* out);

  Module get(std::uint16_t index);
  std::size_t size() const { return count_.load(std::memory_order_acquire); }
  void refresh();
  // Rescans if any object was loaded or unloaded since the last scan (a library dlclose'd and
  // another loaded at its address must not inherit its frames).
  void sync();
  void lock() { lock_.lock(); }  // fork: held across fork()
  void unlock() { lock_.unlock(); }
  bool lock_held_by_this_thread() const { return lock_.held_by_this_thread(); }

  // Around each call of ours into the dynamic loader that takes its write lock: dl_iterate_phdr
  // (sync, refresh), and libunwind, which finds a frame's module with it. glibc before 2.39
  // leaves that lock in a forked child as it was (BZ 19282): held, if another thread was in such
  // a call, and the child's first call waits for ever. The parent's main thread in its exit
  // report held it when another thread forked: the child hung in its first malloc, in sync
  // (tests/programs/exit_while_reporting fork: 5 children hung in 660 runs, none in 240 since).
  // Fork waits until no call of ours is in the loader (prefork), and calls that come meanwhile do
  // without (false: skip the call). Never a lock a caller waits for: glibc's dlclose frees memory
  // holding the loader's lock, and the free's new stack came here while another thread, in here,
  // waited for the loader's lock (a review's deadlock, at the first dlclose, with a spin lock).
  // The program's own loader calls can still be held across a fork (as without heapledger, where
  // only a child that makes one hangs).
  class LoaderCalls {
   public:
    bool enter();
    void leave();
    void prefork();  // waits for the calls in flight (not this thread's: a handler that forks)
    void postfork(bool child);

   private:
    std::atomic<std::int64_t> in_flight_{0};
    std::atomic<bool> fork_pending_{false};
  };
  // RAII for LoaderCalls: enter() in the constructor, leave() if it was entered.
  class LoaderCall {
   public:
    explicit LoaderCall(LoaderCalls& c) : c_(c), entered_(c.enter()) {}
    ~LoaderCall() {
      if (entered_) c_.leave();
    }
    explicit operator bool() const { return entered_; }
    LoaderCall(const LoaderCall&) = delete;
    LoaderCall& operator=(const LoaderCall&) = delete;

   private:
    LoaderCalls& c_;
    bool entered_;
  };
  LoaderCalls& loader_calls() { return loader_calls_; }

 private:
  std::uint16_t lookup(std::uintptr_t addr);  // under lock_
  void merge(const void* scanned, std::size_t count, std::uint64_t generation);

  SpinLock lock_;
  LoaderCalls loader_calls_;
  Module modules_[kMaxModules] HL_GUARDED_BY(lock_);
  std::atomic<std::size_t> count_{0};
  std::atomic<std::uint64_t> generation_{~std::uint64_t{0}};  // dlpi_adds + dlpi_subs at last scan
};

// The main program's absolute path ("" if unknown), found at the loaded objects' first scan and
// kept (see modules.cc: also for the dynamic loader run as a command, and without /proc).
const char* main_program_path();

}  // namespace heapledger::detail
