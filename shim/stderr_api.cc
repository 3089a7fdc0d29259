// dup2, dup3, freopen and freopen64, interposed to note when the program itself puts a file
// on fd 2 (tracker::note_stderr_set): a server that sends its stderr to its log (PostgreSQL onto
// its log collector's pipe, nginx onto its error_log). Once the stderr the process started with
// cannot be reached (a pipe, of which no copy is kept), the report goes there, not nowhere. A
// file that only lands on fd 2 because the descriptor was free (a program that closed stderr,
// then opened its data file) is not noted, and gets nothing of ours; nor is dup, which takes the
// lowest free descriptor whether the program meant it to be its stderr or not. Each call goes to
// the kernel or the C library as it is; glibc's own calls (posix_spawn's file actions) are not
// seen, and happen in a child that execs anyway.
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "shim/config.h"
#include "shim/next_symbol.h"
#include "tracker/tracker.h"

using namespace heapledger::detail;

namespace {

int noted(int result) {
  if (result == STDERR_FILENO) tracker::note_stderr_set();
  return result;
}

using Freopen = FILE* (*)(const char*, const char*, FILE*);
constinit std::atomic<Freopen> g_freopen{nullptr}, g_freopen64{nullptr};

// Looked up at load, not at a first call: dlsym holds the dynamic loader's lock, which a signal
// handler leaving that call by siglongjmp would leave held for good (see shim/sigwait_api.cc).
__attribute__((constructor)) void find_real_freopen() {
  next_symbol(&g_freopen, "freopen");
  next_symbol(&g_freopen64, "freopen64");
}

FILE* noted(FILE* reopened) {
  if (reopened && reopened == stderr && fileno(reopened) == STDERR_FILENO)
    tracker::note_stderr_set();
  return reopened;
}

}  // namespace

extern "C" HL_EXPORT int dup2(int old_fd, int new_fd) noexcept {
  const int result = static_cast<int>(syscall(SYS_dup2, old_fd, new_fd));
  return old_fd == new_fd ? result : noted(result);  // the same descriptor: nothing changed
}
extern "C" HL_EXPORT int dup3(int old_fd, int new_fd, int flags) noexcept {
  return noted(static_cast<int>(syscall(SYS_dup3, old_fd, new_fd, flags)));
}
extern "C" HL_EXPORT FILE* freopen(const char* path, const char* mode, FILE* stream) {
  return noted(next_symbol(&g_freopen, "freopen")(path, mode, stream));
}
extern "C" HL_EXPORT FILE* freopen64(const char* path, const char* mode, FILE* stream) {
  return noted(next_symbol(&g_freopen64, "freopen64")(path, mode, stream));
}
