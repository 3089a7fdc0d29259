// The double-free quarantine: freed blocks held back for a while, so that a second free of one is
// recognised (and shown with the stacks of its allocation and first free) instead of releasing
// memory that may by then belong to someone else.
//
// Each thread collects the blocks it frees in a batch of its own, without a lock; a full batch
// joins one global first-in-first-out list of batches (a lock taken once per batch), and the
// oldest batches leave it, their blocks going back to the pools, while the list is over its
// budget. The blocks of a thread's current batch are not counted in the budget: a batch holds at
// most 254 blocks or 1/256 of the budget (64 KiB at the default 16 MiB), or one block of any size
// up to the budget. An exiting thread's batch joins the newest one in the list if it fits.
// A thread with an inbox (attach) has the blocks it freed come back to the pools through it: a
// thread that pushes such a batch out of the list leaves it in the inbox (one at a time: the one
// there is released where it is when the next comes), and the thread releases it, into its own
// cache, at its next hold(). Not a batch with a large block, nor past a quarter of the budget in
// all inboxes (an idle thread's stays there).
//
// A held small block's record (record_of: its address mixed with a tag, then the two stacks) is
// kept by the caller (the tracker: in the block's slot of the ledger's table of small-block
// records, which the free has just read), where read_start finds it: a later free of the same
// address finds it there (recall), with no search and no lock. It stays there after the block
// leaves the quarantine, until the block is recorded again. Where the caller has no place for it
// (the table could not be mapped), it goes into the block's first 16 bytes (every block has them,
// and they are free memory now; the pools write nothing into free blocks), and the block loses it
// when it is handed out again, or when an idle class gives its page back after the quarantine
// (a second free is then one whose first is no longer remembered). A large block (a mapping of its
// own) is held by its address alone: its record goes to the pools' registry of large blocks, and
// its pages are never touched. Up to the budget and the largest mapping the pools keep for reuse (8
// MiB: SpanCache::kMaxSpan) it keeps them and counts the part of its mapping that may hold data
// (hold_large; not the room a mapping made for a growing request has to grow into, which would make
// the quarantine hold fewer): released, the pools keep the mapping for reuse, and the program's
// next large block of that size comes with its pages already there (giving them back made every
// such block fault all its pages in again: 39 us per 64 KiB malloc/free against glibc's 0.6; it was
// up to 1/16 of the budget, and a 2 MiB block took 5.8 ms a round, against glibc's 30 us). A larger
// one gives all its pages back at once, so holding it costs no memory (it is counted as a page).
// Not held: such a large block whose pages cannot go back (locked by the program), and any past the
// first 16,384 held at once (each is a mapping, which the program may have split with mprotect, and
// the system allows about 65,000). The leak scan skips held blocks' pages.
//
// A fork while another thread is releasing the oldest batches leaves the child without those
// batches' remaining blocks, and without the blocks of other threads' own batches and inboxes
// (and of one more batch for each such inbox, left there later): they are never reused there
// (and large ones among them stay counted against the 16,384).
#pragma once

#include <cstddef>
#include <atomic>
#include <cstdint>

#include "shim/config.h"
#include "shim/spin_lock.h"

namespace heapledger::detail {

// How a held block was allocated and freed: stack ids (under 2^20, StackTable::kMaxStacks) and
// the freeing thread's number (tracker.cc's thread_index), its low 16 bits (0: not known).
struct FreedBlock {
  std::uint64_t alloc_stack : 24;
  std::uint64_t free_stack : 24;
  std::uint64_t free_thread : 16;
};

class Quarantine {
 public:
  struct Batch;
  // Where another thread leaves a batch of this thread's blocks that it took out of the list, for
  // this thread to give back to the pools (see publish). In memory that outlives the thread (the
  // caller's; a later thread may take it over, then it gets such batches).
  struct Inbox {
    std::atomic<Batch*> batch{nullptr};
  };
  // A thread's share: its current batch. Owned by the thread (its tracker state), which must not
  // re-enter hold() from a signal handler while in it.
  struct Local {
    Batch* batch = nullptr;
    bool closed = false;     // the thread is exiting: blocks it frees from now on are not held
    Inbox* inbox = nullptr;  // none: its batches' blocks go back wherever they leave the list
  };
  // How blocks are looked at and let go, from the pools (tests pass their own).
  struct Hooks {
    // The record held for the block that starts at p (the pools': a small block's first 16
    // bytes; the tracker's: its ledger slot); false if no block of ours starts there. Must be
    // safe against the block being freed meanwhile.
    bool (*read_start)(const void* p, std::uintptr_t out[2]);
    // If p is a large block, keeps its record elsewhere (for read_start) and returns how much of
    // its mapping may hold data (pages past it were never touched); else 0. ~0: it could not
    // tell (do not hold the block).
    std::size_t (*hold_large)(const void* p, const std::uintptr_t record[2]);
    void (*release)(void* p);  // back to the pools
  };

  // bytes: the budget (0: off); blocks: at most this many held in the global list. Once, before use.
  void init(std::size_t bytes, std::size_t blocks, const Hooks& hooks);
  bool enabled() const { return budget_bytes_ != 0; }

  // Holds back a block just released (size: what the program asked for; a small block counts
  // against the budget at its size class's, the memory it keeps from reuse). False: not held (too
  // big, out of memory, the thread is exiting, or off); the caller releases it. May release older
  // blocks to the pools before it returns. record_aside: the caller keeps a small block's
  // record_of() where read_start finds it, once this returned true (the block is its thread's
  // until then); else the block carries it.
  bool hold(Local& local, std::uintptr_t addr, std::size_t size, FreedBlock freed,
            bool record_aside = false);
  // The record recall() looks for at addr: the address mixed with a tag (so never zero, and with
  // the top bit clear), then the stacks.
  static void record_of(std::uintptr_t addr, FreedBlock freed, std::uintptr_t out[2]);
  // Whether the block at addr is held here, and if so how it was allocated and freed.
  bool recall(std::uintptr_t addr, FreedBlock* out) const;
  // From now on the blocks this thread holds come back to it (through inbox; see publish), once
  // they leave the list. Before thread_exit() only.
  void attach(Local& local, Inbox* inbox);
  // Thread exit: its batch joins the global list and the thread holds nothing more; its inbox is
  // closed (its batches' blocks go back wherever they leave the list).
  void thread_exit(Local& local);
  // Out of memory: every block of the global list and of this thread's batch and inbox goes back
  // to the pools now (other threads' own batches and inboxes stay). Returns how many were released.
  std::uint64_t drain(Local& local);

  std::size_t held_bytes();  // in the global list and threads' inboxes
  std::size_t held_blocks();

  // fork: the list's lock is held across fork().
  void prefork() { lock_.lock(); }
  void postfork() { lock_.unlock(); }
  bool lock_held_by_this_thread() const { return lock_.held_by_this_thread(); }

 private:
  // "heapledg". A user-space address mixed with it has the top bit clear and is not zero, as the
  // ledger's slots need of a freed block's record (see record_of).
  static constexpr std::uintptr_t kTag = 0x6865'6170'6c65'6467ull;
  static_assert(kTag >> 63 == 0);
  static constexpr std::uint64_t kMaxMappings = 16384;

  // The thread's batch joins the list, the oldest leave (their blocks released, or left in their
  // thread's inbox); returns an empty batch for the thread to fill next (want_next), or null.
  Batch* publish(Local& local, Batch* full, bool want_next);
  Batch* spare_or_new();
  Batch* release_blocks(Batch* list);
  // Gives b to its thread's inbox (true), or false if it is this thread's, has none, or the inbox
  // is closed. A batch the inbox held is released here, to *released (a list).
  bool hand_back(const Local& local, Batch* b, Batch** released);
  std::uint32_t release_inbox(Local& local);  // returns how many blocks it released
  // Puts `now` (null: open, kClosed) in the inbox and releases the batch that was there; returns
  // how many blocks that batch held.
  std::uint32_t empty_inbox(Inbox* inbox, Batch* now);
  void to_spares(Batch* list, Batch* last);

  // Set once (init), read by every hold(): a line of their own. Sharing one with the list's lock
  // and the inboxes' total, which every thread's batches write, every hold() after another
  // thread's publish waited for that line (72% of hold()'s samples in thread_scaling 2 with
  // quarantine_mb=1, on the load of batch_bytes_).
  alignas(64) Hooks hooks_{};
  std::uint64_t budget_bytes_ = 0;
  std::uint64_t budget_blocks_ = 0;
  std::uint64_t budget_batches_ = 0;  // partial batches (from exiting threads) count too
  std::uint64_t batch_bytes_ = 0;     // a thread's batch is published when it would exceed this
  alignas(64) std::atomic<std::uint64_t> mappings_{0};  // large blocks held, in batches or the list
  std::atomic<std::uint64_t> inbox_bytes_{0};  // in threads' inboxes (see hand_back)

  SpinLock lock_;
  Batch* oldest_ HL_GUARDED_BY(lock_) = nullptr;
  Batch* newest_ HL_GUARDED_BY(lock_) = nullptr;
  Batch* spare_ HL_GUARDED_BY(lock_) = nullptr;  // emptied batches, for reuse
  std::uint64_t bytes_ HL_GUARDED_BY(lock_) = 0;
  std::uint64_t blocks_ HL_GUARDED_BY(lock_) = 0;
  std::uint64_t batches_ HL_GUARDED_BY(lock_) = 0;
};

}  // namespace heapledger::detail
