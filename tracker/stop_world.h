// Stops every other thread of the process for the leak scan and reads its stack pointer and
// registers: with ptrace from a helper task where it can (the threads' blocking calls carry on
// afterwards), otherwise with a signal whose handler records them and parks until released (a
// sleep, poll or pause then returns early).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace heapledger::detail {

struct StoppedThread {
  pid_t tid;
  bool stopped;               // answered in time; otherwise nothing below is valid
  std::uintptr_t sp;          // stack pointer where the thread was interrupted
  std::uintptr_t regs[23];    // general registers at that point (may hold pointers)
  // Stopped inside a system call (known where ptrace stopped it): its innermost frame made the
  // call, so nothing below its stack pointer is in use (see leak_scan.cc).
  bool in_syscall;
  // Ended between the listing and its stop: no thread of the process any more, so neither stopped
  // nor one that could not be (a program starting short-lived threads had "5 of 68 threads could
  // not be stopped" in 2 of 3 runs, a user trial's, with every one of those 5 gone).
  bool gone;
};

// Whether the signal a thread's sigwait() took (info: its siginfo) is a stop request of the
// scan's, which the program never sent: the interposed sigwait and its kin drop it and wait on,
// after take_scan_request, which parks the thread there as the signal's handler would (if the
// scan is still stopping threads).
bool is_scan_request(int sig, const siginfo_t* info);
void take_scan_request(siginfo_t* info);
// A signalfd was made (or changed) to read these signals: the scan does not send its signal late
// to a thread with it blocked if a signalfd reads it (see send_or_defer in stop_world.cc).
void note_signalfd(const sigset_t* mask);

// Whether a thread interrupted at ip (rax: its rax then) was blocked in a system call: the
// kernel leaves the instruction pointer on the `syscall` to restart it, or just past it with
// -EINTR. Such a thread has no red zone in use (see leak_scan.cc).
bool at_system_call(std::uintptr_t ip, std::uintptr_t rax);

class StopTheWorld {
 public:
  static constexpr std::size_t kMaxThreads = 4096;

  // Lists the threads (call before taking locks other threads may need to reach a stop point),
  // and maps what stopping them takes (before the leak scan lists heapledger's own memory).
  void list_threads();
  // Stops them, waiting up to timeout_ms for each. Returns how many stopped. By signal, a thread
  // in the C library's end of a thread (see look_at in stop_world.cc) counts as ended if
  // ended_at(tid) says when it went through the tracker's exit destructor for it (0: it has not),
  // and that was after the thread started (a mark can be an earlier thread's of the same id).
  std::size_t stop(int timeout_ms, std::uint64_t (*ended_at)(pid_t tid) = nullptr);
  // By signal, threads held asleep instead of stopped (they have the signal blocked; see look_at in
  // stop_world.cc) that have run since after all: counted as not stopped now. Call when the scan
  // has read what it reads of them, before resume(). Returns how many.
  std::size_t confirm_held();
  // Lets them all run again (by signal: and waits until every parked one has left the handler).
  void resume();

  std::size_t count() const;
  // Of those listed, how many had ended when they were to be stopped (by signal: or were found in
  // the C library's end of a thread).
  std::size_t gone() const;
  std::size_t held() const;  // of those stopped, how many were held asleep (no registers read)
  const StoppedThread& thread(std::size_t i) const;
  // Threads past the first kMaxThreads: not listed, so never stopped (they run on through the
  // scan, and their stacks count whole as roots).
  std::size_t unlisted() const;
};

}  // namespace heapledger::detail
