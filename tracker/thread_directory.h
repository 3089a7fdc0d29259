// Which thread each record's thread number stands for: its id and its name, for the report's
// leak sites. A record keeps only the number (tracker.cc's thread_index, 19 bits); the number is
// entered here once, as a thread takes it, and the name is read again as the thread ends (a pool
// names its workers after they start) and, for threads still running, at exit.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "tracker/record.h"

namespace heapledger::detail {

class ThreadDirectory {
 public:
  // As a thread takes its number, on that thread: its id, and its name now (prctl's).
  void enter(std::uint32_t number, pid_t tid);
  // As the thread ends (its exit destructor), on that thread: its name then; not read again.
  void leave(std::uint32_t number);
  // The id and name (up to 15 bytes and a zero) of a number, false if it was never entered or
  // was taken by more than one thread. A thread that has not ended has its name read now, from
  // /proc/self/task/TID/comm.
  bool find(std::uint32_t number, pid_t* tid, char name[16]) const;

 private:
  static constexpr std::uint32_t kChunk = 1024;
  static constexpr std::uint32_t kChunks = (Record::kThreadMask + 1) / kChunk;
  struct Entry {
    std::atomic<pid_t> tid;  // 0: never entered
    std::atomic<bool> ended;
    // A later thread took the number again (past 2^19 threads): neither is known by it.
    std::atomic<bool> reused;
    std::atomic<std::uint64_t> name[2];  // prctl's 16 bytes, written whole by its thread
  };
  // The entry of a number, its chunk mapped at the first thread of it (null: out of memory). Not
  // an internal mapping (no lock: a signal handler's allocation may come while this thread holds
  // the internal mappings' lock); it holds no block's address, so the leak scan reads it for
  // nothing.
  Entry* entry(std::uint32_t number, bool make);
  const Entry* entry(std::uint32_t number) const;
  static void read_own_name(Entry* e);

  // The first chunk is here, beside the rest of heapledger's state: a process that starts fewer
  // than 1,024 threads maps nothing more (a first page of a fresh mapping costs 40-300 us on a
  // VM, README "Performance"; shell pipelines start many short processes).
  Entry first_[kChunk] = {};
  std::atomic<Entry*> chunks_[kChunks] = {};
};

}  // namespace heapledger::detail
