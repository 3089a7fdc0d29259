// See thread_directory.h. System calls of our own (kernel_call.h): these run inside allocations.
#include "tracker/thread_directory.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cstdio>
#include <cstring>

#include "shim/kernel_call.h"
#include "shim/os.h"

namespace heapledger::detail {

ThreadDirectory::Entry* ThreadDirectory::entry(std::uint32_t number, bool make) {
  number &= Record::kThreadMask;  // as records keep it
  if (number < kChunk) return &first_[number];
  std::atomic<Entry*>& slot = chunks_[number / kChunk];
  Entry* chunk = slot.load(std::memory_order_acquire);
  if (!chunk && make) {
    constexpr std::size_t kBytes = kChunk * sizeof(Entry);
    auto* mapped = static_cast<Entry*>(os::map(kBytes));  // zeroed: nothing entered
    if (!mapped) return nullptr;
    if (slot.compare_exchange_strong(chunk, mapped, std::memory_order_acq_rel))
      chunk = mapped;
    else
      os::unmap(mapped, kBytes);  // another thread's went in first: chunk is it
  }
  return chunk ? &chunk[number % kChunk] : nullptr;
}

const ThreadDirectory::Entry* ThreadDirectory::entry(std::uint32_t number) const {
  number &= Record::kThreadMask;
  if (number < kChunk) return &first_[number];
  const Entry* chunk = chunks_[number / kChunk].load(std::memory_order_acquire);
  return chunk ? &chunk[number % kChunk] : nullptr;
}

void ThreadDirectory::read_own_name(Entry* e) {
  std::uint64_t words[2] = {};
  os::kernel_call(SYS_prctl, PR_GET_NAME, reinterpret_cast<long>(words));
  e->name[0].store(words[0], std::memory_order_relaxed);
  e->name[1].store(words[1], std::memory_order_relaxed);
}

void ThreadDirectory::enter(std::uint32_t number, pid_t tid) {
  Entry* e = entry(number, true);
  if (!e) return;
  // Its blocks and an earlier thread's of the same number cannot be told apart.
  if (e->tid.load(std::memory_order_relaxed) != 0) e->reused.store(true, std::memory_order_relaxed);
  read_own_name(e);
  e->ended.store(false, std::memory_order_relaxed);
  e->tid.store(tid, std::memory_order_release);
}

void ThreadDirectory::leave(std::uint32_t number) {
  Entry* e = entry(number, false);
  if (!e || e->tid.load(std::memory_order_relaxed) == 0) return;
  read_own_name(e);
  e->ended.store(true, std::memory_order_release);
}

bool ThreadDirectory::find(std::uint32_t number, pid_t* tid, char name[16]) const {
  const Entry* e = entry(number);
  if (!e || (*tid = e->tid.load(std::memory_order_acquire)) == 0 ||
      e->reused.load(std::memory_order_relaxed))
    return false;
  // Ended first: a thread that ends meanwhile (the others run on through the report) writes its
  // name before it says so, and its name is then read whole from the directory.
  const auto read_name = [&] {
    const std::uint64_t words[2] = {e->name[0].load(std::memory_order_relaxed),
                                    e->name[1].load(std::memory_order_relaxed)};
    std::memcpy(name, words, 16);
    name[15] = '\0';
  };
  bool ended = e->ended.load(std::memory_order_acquire);
  read_name();
  if (!ended && (ended = e->ended.load(std::memory_order_acquire))) read_name();  // it just did
  if (ended) return true;
  // Still running (or ended without its destructor): its name now, which its pool or its
  // creator may have given it since it took its number.
  char path[48];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", static_cast<int>(*tid));
  const long fd =
      os::kernel_call(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char now[17];
  const long n = os::kernel_call(SYS_read, fd, reinterpret_cast<long>(now), 16);
  os::kernel_call(SYS_close, fd);
  if (n > 0) {
    std::size_t len = static_cast<std::size_t>(n);
    if (now[len - 1] == '\n') --len;  // comm ends in one
    len = len < 15 ? len : 15;
    std::memcpy(name, now, len);
    name[len] = '\0';
  }
  return true;
}

}  // namespace heapledger::detail
