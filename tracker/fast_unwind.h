// Stack capture without libunwind on the common path, and a per-thread memo that recognises a
// stack already seen without walking it again.
//
// Walking: each frame is one step of a rule read from the module's .eh_frame (tracker/eh_frame.h)
// and cached by return address: CFA = rsp/rbp + offset, return address at
// CFA - 8, rbp restored if saved. Anything the rule cannot express (DWARF expressions, code
// without CFI, a stack whose bounds are unknown: sigaltstack, coroutines) makes capture() answer
// kUseLibunwind. A signal handler's stack ends at the signal trampoline (its caller): the frames
// of the code it interrupted are not walked (libunwind would, through the kernel's saved
// registers, taking longer than a fast timer's period when they lead into the dynamic linker's
// lazy binding: the thread then ran nothing but handlers). unwind=verify walks on with libunwind.
//
// The memo: a step reads only the frame's registers (return address, rsp, rbp) and stack words
// (its caller's return address, and a saved rbp), so a walk from the same registers over the
// same stack words goes the same way. A stack seen before is the same stack if its first program
// frame has the same (return address, sp) and every word the walk read is unchanged: each later
// frame's return address, and each saved rbp that an rbp-based frame (alloca, a VLA, realigned
// stack) further out used. One load and compare per word instead of a rule lookup, and no
// interning. Where an rbp-based frame used the rbp the first frame already had (no step between
// restored one from the stack), rbp is not part of the key: such stacks are never memoised. The
// same check serves two more shortcuts: our own frames from capture() to the program's first frame
// (per entry path), and the outer part of the thread's last walk, which a new walk takes over once
// it reaches one of its frames (with the same rbp there, if the steps from it use it).
#pragma once

#include <cstdint>

namespace heapledger::detail {

struct RuntimeApi;
class ModuleMap;

namespace fast_unwind {

// self_start/self_end: libheapledger.so, whose frames open every stack and are cut.
// stop_at_signal: a handler's stack ends at the trampoline (else: kUseLibunwind there).
void init(const RuntimeApi* runtime, ModuleMap* modules, std::uintptr_t self_start,
          std::uintptr_t self_end, bool stop_at_signal);

// The program installed an alternate signal stack (sigaltstack, interposed): remembered when it
// has SS_AUTODISARM, since inside a handler on it sigaltstack() reports none (the kernel
// disarmed it) and the walk would not know its bounds. Null or SS_DISABLE: forgotten.
void note_signal_stack(const void* lo, std::size_t size, int flags);

constexpr int kOwnFramesMax = 24;  // frames of libheapledger.so looked through at most
constexpr int kUseLibunwind = -1;
constexpr int kMemoHit = -2;
// The thread is past its own exit (its TLS destructors are running): no memo and no frame
// buffer of its own, and never libunwind there, which would make a per-thread cache that nothing
// frees (256 KiB a thread) and take longer than a signal handler that allocates may give it. See
// capture_after_exit.
constexpr int kThreadEnded = -3;
// On a signal stack, or with little of the thread's stack left, the walk could not get past our
// own frames (no rule is learned there): the calling frame alone, as the entry point saw it.
constexpr int kCallerOnly = -4;

// The program's frames of the calling thread (innermost first, libheapledger.so's own cut),
// at most max_frames: returns the count, kMemoHit with *memo set to what remember() stored for
// this same stack, kThreadEnded, kCallerOnly, or kUseLibunwind. epoch: bumped when a module is
// unloaded, so that nothing learned about code at an address is used for other code loaded there
// later. Must run with the tracker's re-entry guard set (learning a rule allocates).
// caller_ra/caller_sp: the program's first frame as the entry point saw it (0: unknown); a memo
// hit then needs no step through our own frames.
int capture(std::uintptr_t* out, int max_frames, std::uint32_t epoch, std::uint32_t* memo,
            std::uintptr_t caller_ra = 0, std::uintptr_t caller_sp = 0);

// For a thread past its own exit (capture() said kThreadEnded): the walk without a memo, into
// `out` (kFrameWords words, the caller's), where the thread's stack has room for it; else
// kCallerOnly. A leak in a thread-specific data destructor had its function for its whole stack
// (a user trial's: valgrind and LeakSanitizer named __nptl_deallocate_tsd and start_thread).
bool room_after_exit(std::size_t buffer_bytes);
int capture_after_exit(std::uintptr_t* out, int max_frames, std::uint32_t epoch);

// Walks out from the caller through the frames whose return address is inside(), and returns the
// stack pointer of the first frame that is not (at its call into them); 0 if the walk cannot
// tell (a frame without a simple rule, more than 64 frames). The exit report uses it to find the
// frame that called exit(), past libc's exit path and the library destructors.
std::uintptr_t sp_past(bool (*inside)(std::uintptr_t ra), std::uint32_t epoch);

// The main thread's stack, taken from what the process started with where pthread_getattr_np
// reads /proc/self/maps to find its mapping (86-111 us here, 130-160 us among a tracked
// process's mappings: 5% of a tracked /bin/true). hi: the page boundary above the stack pointer
// the process started with (argv, the environment and the auxiliary vector lie above it, no
// frame does). lo: RLIMIT_STACK below the top of the stack's mapping (as glibc and the kernel
// count it; the top is the end of the executable's name, AT_EXECFN, which the kernel copies there
// first), 128 MiB at most: the kernel puts the mappings it places at least that far below the
// stack (mmap_base; with an unlimited stack, the legacy layout, they may lie anywhere). A deeper
// stack than that is not the thread's as far as a walk knows (libunwind takes it). False, for
// glibc's answer, on another thread (or a child forked from one: the caller's frame must lie
// inside the bounds), or with RLIMIT_STACK unlimited.
bool main_thread_bounds(std::uintptr_t* lo, std::uintptr_t* hi);

// Whether addr lies on the calling thread's stack, as far as a walk knows its bounds (false if it
// has not looked them up).
bool on_own_stack(std::uintptr_t addr);

// Whether the calling thread runs on its alternate signal stack (addr: an address in the caller's
// frame, for a stack installed with SS_AUTODISARM, which sigaltstack() does not report there).
// False, without a system call, if no thread installed one through sigaltstack().
bool on_signal_stack(std::uintptr_t addr);

// After capture() returned a count: remember `memo` (the interned stack id) for this stack.
void remember(std::uint32_t memo);

// kScratchWords words of this thread's (null if none): unwind=verify's buffer, kept off the stack.
constexpr int kScratchWords = kOwnFramesMax + 256;
std::uintptr_t* scratch();
// kFrameWords words of this thread's for capture()'s frames, kept off the stack (a handler on an
// 8 KiB signal stack has none to spare); null if the thread has none (kThreadEnded: see
// thread_ended()). Under the tracker's re-entry guard, as capture(): a handler that interrupts
// the thread there records without a stack, so it never overwrites the frames being taken.
constexpr int kFrameWords = 256;
std::uintptr_t* frame_buffer();
bool thread_ended();

// The calling thread is ending: its memo goes to the next thread that needs one.
void thread_exit();

// fork: the locks around learning rules and spare memos are held across fork().
void prefork();

// The program's pthread_getattr_np (interposed, shim/dl_api.cc) holds its thread's lock while it
// allocates: the walk it triggers must not call it again to learn the stack's bounds (that waits
// for the lock forever). Stacks taken meanwhile go to libunwind.
void enter_pthread_getattr();
void leave_pthread_getattr();
void postfork();

}  // namespace fast_unwind
}  // namespace heapledger::detail
