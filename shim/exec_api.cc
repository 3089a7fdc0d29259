// The exec family, interposed for one thing: the address-space and data limits a program set for
// itself are held lifted by heapledger's own mappings (space_limit.h), and the program image an
// exec starts must get the limits the program asked for, not the lifted ones. The soft limits
// are put back to the program's just before the exec, and lifted again if the exec returns (it
// failed). The hard limit stays lifted: lowered, it could not be raised again after a failed
// exec (execvp tries each directory in PATH). Nothing else changes: each calls libc's own.
// posix_spawn, system and popen start their child inside libc, and their own mappings (the
// child's stack) need the lifted limit: their children start with it (README, Known limits).
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "shim/config.h"
#include "shim/space_limit.h"

using namespace heapledger::detail;

namespace {

// libc's function of that name, looked up once.
template <class Fn>
Fn next(std::atomic<Fn>& cache, const char* name) {
  Fn fn = cache.load(std::memory_order_acquire);
  if (!fn) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    cache.store(fn, std::memory_order_release);
  }
  return fn;
}

// Whether the process has one thread: the lowered limit is the whole process's, and while an exec
// that fails (execvp tries each directory in PATH) is under way, another thread's mappings would
// fail (a review's program: 5,085 of 5,463 of its 1 MiB mallocs did). A child made with fork or
// vfork to run the exec has one. Read from /proc/self/status, with the system calls themselves.
bool one_thread() {
  char text[4096];
  const long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const long n = syscall(SYS_read, fd, text, sizeof text - 1);
  syscall(SYS_close, fd);
  if (n <= 0) return false;
  text[n] = 0;
  const char* threads = std::strstr(text, "\nThreads:");
  return threads && std::strtol(threads + 9, nullptr, 10) == 1;
}

// The program's own soft limits while the exec runs, where it has one thread. With more, the
// image to come starts with the lifted ones (README, Known limits).
class ProgramLimit {
 public:
  ProgramLimit()
      : dropped_(space_limit::any_lifted() && one_thread() && space_limit::drop_lift()) {}
  ~ProgramLimit() {
    if (dropped_) space_limit::restore_lift();
  }
  ProgramLimit(const ProgramLimit&) = delete;
  ProgramLimit& operator=(const ProgramLimit&) = delete;

 private:
  bool dropped_;
};

using ExecveFn = int (*)(const char*, char* const[], char* const[]);
using ExecvFn = int (*)(const char*, char* const[]);
using FexecveFn = int (*)(int, char* const[], char* const[]);
using ExecveatFn = int (*)(int, const char*, char* const[], char* const[], int);
constinit std::atomic<ExecveFn> g_execve{nullptr}, g_execvpe{nullptr};
constinit std::atomic<ExecvFn> g_execv{nullptr}, g_execvp{nullptr};
constinit std::atomic<FexecveFn> g_fexecve{nullptr};
constinit std::atomic<ExecveatFn> g_execveat{nullptr};

int call_execve(const char* path, char* const argv[], char* const envp[]) {
  ProgramLimit limit;
  return next(g_execve, "execve")(path, argv, envp);
}
int call_execvp(const char* file, char* const argv[]) {
  ProgramLimit limit;
  return next(g_execvp, "execvp")(file, argv);
}

// execl, execle, execlp: their arguments up to the null one, as an array on the stack while
// run(argv) runs; *ap is left after the null one (execle's environment follows it).
template <class Run>
int with_args(const char* first, va_list* ap, Run&& run) {
  va_list copy;
  va_copy(copy, *ap);
  std::size_t n = 1;
  while (va_arg(copy, char*)) ++n;
  va_end(copy);
  auto** argv = static_cast<char**>(__builtin_alloca((n + 1) * sizeof(char*)));
  argv[0] = const_cast<char*>(first);
  for (std::size_t i = 1; i < n; ++i) argv[i] = va_arg(*ap, char*);
  (void)va_arg(*ap, char*);  // the null one
  argv[n] = nullptr;
  return run(argv);
}

}  // namespace

extern "C" HL_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  return call_execve(path, argv, envp);
}
extern "C" HL_EXPORT int execv(const char* path, char* const argv[]) noexcept {
  ProgramLimit limit;
  return next(g_execv, "execv")(path, argv);
}
extern "C" HL_EXPORT int execvp(const char* file, char* const argv[]) noexcept {
  return call_execvp(file, argv);
}
extern "C" HL_EXPORT int execvpe(const char* file, char* const argv[],
                                 char* const envp[]) noexcept {
  ProgramLimit limit;
  return next(g_execvpe, "execvpe")(file, argv, envp);
}
extern "C" HL_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) noexcept {
  ProgramLimit limit;
  return next(g_fexecve, "fexecve")(fd, argv, envp);
}
extern "C" HL_EXPORT int execveat(int dirfd, const char* path, char* const argv[],
                                  char* const envp[], int flags) noexcept {
  ProgramLimit limit;
  return next(g_execveat, "execveat")(dirfd, path, argv, envp, flags);
}
extern "C" HL_EXPORT int execl(const char* path, const char* arg, ...) noexcept {
  va_list ap;
  va_start(ap, arg);
  const int result =
      with_args(arg, &ap, [&](char** argv) { return call_execve(path, argv, environ); });
  va_end(ap);
  return result;
}
extern "C" HL_EXPORT int execlp(const char* file, const char* arg, ...) noexcept {
  va_list ap;
  va_start(ap, arg);
  const int result = with_args(arg, &ap, [&](char** argv) { return call_execvp(file, argv); });
  va_end(ap);
  return result;
}
extern "C" HL_EXPORT int execle(const char* path, const char* arg, ...) noexcept {
  va_list ap;
  va_start(ap, arg);
  const int result = with_args(
      arg, &ap, [&](char** argv) { return call_execve(path, argv, va_arg(ap, char* const*)); });
  va_end(ap);
  return result;
}
